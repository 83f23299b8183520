"""Which server paths a browser user may name: only those that resolve inside one data root.

The root is ``$POSLAB_DATA_ROOT`` when set; otherwise the user's home on a server bound to this
machine only (localhost), and none at all (path boxes off) on a server other machines can reach.
Paths are resolved with ``..`` and symlinks followed before the check, so neither can step outside.
The command line is not confined: it reads what its user can read.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from engine.core.errors import PathRefused

ROOT_ENV = "POSLAB_DATA_ROOT"
LOCAL_ADDRESSES = frozenset({"localhost", "127.0.0.1", "::1"})


def is_local(bind_address: str | None) -> bool:
    """Whether a server bound to ``bind_address`` is reachable from this machine only (``None``/empty: every interface)."""
    return (bind_address or "").strip().strip("[]") in LOCAL_ADDRESSES


def data_root(bind_address: str | None, environ: Mapping[str, str] = os.environ) -> Path | None:
    """The folder browser paths must resolve inside: ``$POSLAB_DATA_ROOT``, else home when bound to localhost, else ``None``."""
    if environ.get(ROOT_ENV, "").strip():
        return Path(environ[ROOT_ENV].strip()).expanduser().resolve()
    return Path.home().resolve() if is_local(bind_address) else None


def shown_root(root: Path) -> str:
    """The root as a page names it: ``~`` for the home folder, else its path."""
    return "~" if root == Path.home().resolve() else str(root)


def confine(text: str, root: Path | None) -> Path:
    """``text`` resolved (``~`` expanded, relative to the root, ``..`` and symlinks followed); :class:`PathRefused` outside ``root``."""
    if root is None:
        raise PathRefused(f"This server takes no folder or file paths (it is reachable from other machines and no "
                          f"{ROOT_ENV} is set); upload files instead.")
    try:
        path = (root / Path(text.strip()).expanduser()).resolve()
    except (RuntimeError, OSError, ValueError):  # an unknown ~user, a symlink loop, a NUL byte
        path = None
    if path is None or not path.is_relative_to(root):
        raise PathRefused(f"Only paths inside {shown_root(root)} are read on this server; that one is outside it.")
    return path
