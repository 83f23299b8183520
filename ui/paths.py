"""Path boxes in the browser: every box that takes a server path goes through :func:`server_path`.

It accepts only paths inside the data root (``engine.core.paths``: ``$POSLAB_DATA_ROOT``, else home on a
localhost-bound server); :func:`path_boxes_on` tells a page whether to offer such a box at all.
"""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from engine.core import paths


def bind_address() -> str | None:
    """The address this server listens on (``None``: every interface)."""
    return st.get_option("server.address")


def data_root() -> Path | None:
    """The folder path boxes read inside, for this server's bind address (``None``: path boxes off)."""
    return paths.data_root(bind_address())


def path_boxes_on() -> bool:
    """Whether this server takes folder and file paths from the browser at all."""
    return data_root() is not None


def path_help(what: str) -> str:
    """A path box's help line: what it takes and where it may point."""
    root = data_root()
    if root is None:
        return f"Off on this server: it is reachable from other machines and no {paths.ROOT_ENV} is set."
    return f"{what} Only paths inside {paths.shown_root(root)} are read ({paths.ROOT_ENV} sets another folder)."


def server_path(text: str) -> str:
    """A path typed into a path box, resolved inside the data root; raises ``PathRefused`` (a ``ValueError``) outside it."""
    return str(paths.confine(text, data_root()))
