"""Home: the finding in a few sentences, and a way into each experiment."""
import streamlit as st

st.title("🧭 PosLab")
st.markdown(
    "**A CNN still knows *where* things are after global average pooling.** Pooling collapses the spatial "
    "grid, but the network writes position into *which channels* fire, so the information survives in "
    "the **order of the channels** of the pooled vector (Islam et al., ICCV 2021, *Global Pooling, More "
    "than Meets the Eye*). Shuffle the channels and position is gone, while *what* the object is mostly "
    "survives. Here you can see that for yourself, and try to break it."
)

st.subheader("Experiments")
st.page_link("pages/grid_probe.py", label="Grid probe: GAPNet finds the cell after GAP, PermuteNet cannot", icon="🔲")
