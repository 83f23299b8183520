"""The sidebar every page shares: compute device, caches, the user's own dataset folder and checkpoints."""
from __future__ import annotations

import streamlit as st

from engine.data.patches import DataError, PatchSource, open_patch_source
from engine.device import pick_device
from engine.storage import cache_dir
from ui.uploads import render_checkpoint_uploader


@st.cache_resource(max_entries=4, show_spinner="Reading the dataset folder…")
def patch_source(path: str, patch: int = 32) -> PatchSource:
    """A dataset folder opened once per server (read-only afterwards)."""
    return open_patch_source(path, patch)


def user_patch_source() -> PatchSource | None:
    """The dataset folder set in the sidebar, or ``None`` (a message is shown when it is unusable)."""
    path = st.session_state.get("data_path", "").strip()
    if not path:
        return None
    try:
        return patch_source(path)
    except DataError as err:
        st.sidebar.error(str(err))
        return None


def render_sidebar() -> None:
    with st.sidebar:
        st.text_input("Your image dataset (folder path)", key="data_path", placeholder="e.g. ~/data/cifar10",
                      help="CIFAR-10/100 in torchvision's layout (the folder holding cifar-10-batches-py) or an "
                           "ImageFolder (one sub-folder per class). Leave empty for the built-in generated shapes.")
        source = user_patch_source()
        if source is not None:
            st.caption(f"Using **{source.name}**: {len(source.classes)} classes.")
        render_checkpoint_uploader()
        st.caption(f"Compute: **{pick_device().type.upper()}** · cache: `{cache_dir()}`")
