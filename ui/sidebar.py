"""The sidebar every page shares: compute device, caches, the user's own dataset folder and checkpoints."""
from __future__ import annotations

import streamlit as st

from engine.core import paths
from engine.core.device import pick_device
from engine.core.storage import cache_dir
from engine.data.patches import DataError, PatchSource, open_patch_source
from ui.paths import bind_address, path_boxes_on, path_help, server_path
from ui.uploads import render_checkpoint_uploader


@st.cache_resource(max_entries=4, show_spinner="Reading the dataset folder…")
def patch_source(path: str, patch: int = 32) -> PatchSource:
    """A dataset folder opened once per server (read-only afterwards)."""
    return open_patch_source(path, patch)


def _open_user_source() -> tuple[PatchSource | None, str | None]:
    """The sidebar's dataset folder opened, or ``None`` and why not (``None, None`` when the box is empty)."""
    text = st.session_state.get("data_path", "").strip()
    if not text:
        return None, None
    try:
        return patch_source(server_path(text)), None
    except (DataError, paths.PathRefused) as err:
        return None, str(err)


def user_patch_source() -> PatchSource | None:
    """The dataset folder set in the sidebar, or ``None`` (the sidebar says why when it is unusable)."""
    return _open_user_source()[0]


def render_sidebar() -> None:
    with st.sidebar:
        st.text_input("Your image dataset (folder path)", key="data_path", placeholder="e.g. ~/data/cifar10",
                      disabled=not path_boxes_on(),
                      help=path_help("CIFAR-10/100 in torchvision's layout (the folder holding cifar-10-batches-py) or an "
                                     "ImageFolder (one sub-folder per class). Leave empty for the built-in generated shapes."))
        source, problem = _open_user_source()
        if problem:
            st.error(problem)
        elif source is not None:
            st.caption(f"Using **{source.name}**: {len(source.classes)} classes.")
        render_checkpoint_uploader()
        where = f" · cache: `{cache_dir()}`" if paths.is_local(bind_address()) else ""  # no server paths for remote users
        st.caption(f"Compute: **{pick_device().type.upper()}**{where}")
