"""PosLab: an interactive explorer of channel-wise position encoding after global pooling.

Start it with ``python -m ui.serve`` (what ``scripts/start.sh`` runs). This entry point owns
navigation and the shared sidebar; each experiment lives in ``pages/`` and does its work through
``engine``. ``ui.serve`` is ``streamlit run app.py`` with Streamlit's legacy pages-folder mode off:
under plain ``streamlit run``, a fresh server's first visitor of a deep link such as
``/segmentation-lab`` gets a "Page not found" dialog (see ``ui/serve.py``).
"""
# Heavy modules are imported here, once, before any page: a widget rerun that interrupts a
# first lazy import can otherwise leave a half-initialised module behind.
from pathlib import Path

import numpy  # noqa: F401
import pandas  # noqa: F401
import plotly.graph_objects  # noqa: F401
import streamlit as st
import torch  # noqa: F401

import engine.core.tvfix  # noqa: F401  (before anything imports torchvision)
from ui import not_found
from ui.sidebar import render_sidebar

# A PNG served by this server (a ":material/...:" icon would be fetched from a font host on the internet).
st.set_page_config(page_title="PosLab", page_icon=str(Path(__file__).parent / "ui" / "static" / "favicon.png"), layout="wide")

PAGES = [
    st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("pages/grid_probe.py", title="Grid probe", icon=":material/grid_on:", url_path="grid-probe"),
    st.Page("pages/channel_code.py", title="Channel code", icon=":material/barcode:", url_path="channel-code"),
    st.Page("pages/segmentation_lab.py", title="Segmentation lab", icon=":material/directions_car:", url_path="segmentation-lab"),
    st.Page("pages/shift_lab.py", title="Shift lab", icon=":material/swap_horiz:", url_path="shift-lab"),
]

unknown = not_found.unknown_page(PAGES)
navigation = st.navigation(PAGES + [not_found.page(PAGES, unknown)] if unknown else PAGES)
render_sidebar()
navigation.run()
