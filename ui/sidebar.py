"""The sidebar every page shares: where the work runs and where the caches live."""
from __future__ import annotations

import streamlit as st

from engine.device import pick_device
from engine.storage import cache_dir


def render_sidebar() -> None:
    with st.sidebar:
        st.caption(f"Compute: **{pick_device().type.upper()}** · cache: `{cache_dir()}`")
