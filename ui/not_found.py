"""The app's own "No such page": an unknown path of any depth gets it, with a link to every page.

Streamlit alone runs the default page under a "Page not found" dialog for an unknown single-segment path; a deeper
one is redirected by ``ui.serve`` to ``/not-found?path=...``. app.py asks :func:`unknown_page` which path the
browser asked for and, when no page has it, adds :func:`page` under that very path (hidden from the menu).
"""
from __future__ import annotations

from collections.abc import Sequence

import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

TITLE = "No such page"


def unknown_page(pages: Sequence[st.Page]) -> str | None:
    """The path segment this run's browser asked for when no page in ``pages`` has it (``None`` otherwise)."""
    ctx = get_script_run_ctx()
    manager = ctx.pages_manager if ctx else None
    if manager is None or manager.intended_page_script_hash or not manager.intended_page_name:
        return None
    name = manager.intended_page_name
    if name in {p.url_path for p in pages} or "/" in name or name != name.strip():
        return None  # a page's, or one no page can take (Streamlit's own "Page not found" then)
    return name


def page(pages: Sequence[st.Page], name: str) -> st.Page:
    """A hidden page at ``name`` that says there is no such page and links to each of ``pages``."""
    def render() -> None:
        asked = st.query_params.get("path") or f"/{name}"
        st.title(TITLE)
        st.markdown(f"PosLab has no page at `{asked}`. The pages are:")
        for target in pages:
            st.page_link(target, label=target.title, icon=target.icon)

    return st.Page(render, title=TITLE, icon=":material/explore_off:", url_path=name, visibility="hidden")
