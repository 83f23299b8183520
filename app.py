"""PosLab: an interactive explorer of channel-wise position encoding after global pooling.

Run with ``streamlit run app.py``. This entry point owns navigation and the shared sidebar;
each experiment lives in ``app_pages/`` and does its work through ``engine``.

The page folder must not be called ``pages/``: when one sits beside the entry point, Streamlit's
first script run on a fresh server (before any ``st.navigation`` call has switched that mode off)
uses the old pages-directory navigation, which knows no page such as ``segmentation-lab``, so the
first visitor of a deep link got a "Page not found" dialog over the right page.
"""
# Heavy modules are imported here, once, before any page: a widget rerun that interrupts a
# first lazy import can otherwise leave a half-initialised module behind.
import engine.tvfix  # noqa: F401  (before anything imports torchvision)
import numpy  # noqa: F401
import pandas  # noqa: F401
import plotly.graph_objects  # noqa: F401
import streamlit as st
import torch  # noqa: F401

from ui.sidebar import render_sidebar

st.set_page_config(page_title="PosLab", page_icon=":material/explore:", layout="wide")

PAGES = [
    st.Page("app_pages/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("app_pages/grid_probe.py", title="Grid probe", icon=":material/grid_on:", url_path="grid-probe"),
    st.Page("app_pages/channel_code.py", title="Channel code", icon=":material/barcode:", url_path="channel-code"),
    st.Page("app_pages/segmentation_lab.py", title="Segmentation lab", icon=":material/directions_car:", url_path="segmentation-lab"),
    st.Page("app_pages/shift_lab.py", title="Shift lab", icon=":material/swap_horiz:", url_path="shift-lab"),
]

navigation = st.navigation(PAGES)
render_sidebar()
navigation.run()
