"""Home: what PosLab is, where to start and a guided tour, each step one click into the right view.

Numbers quoted here are read from the shipped Table 1 (``assets/probe/table1.json``), the segmentation fidelity
JSON, the recorded channel decode (``assets/channel_code/decode.json``) and the shift
models' stored evaluation when the page runs.
"""
import streamlit as st

from ui.channel_code import recorded
from ui.channel_code import tour_text as channel_tour_text
from ui.probe import home_claims, shipped_table1
from ui.seg import tour_text
from ui.shift import tour_text as shift_tour_text

claims = home_claims(shipped_table1())
seg_tour = tour_text()
shift_tour = shift_tour_text()
st.title("PosLab")
st.markdown(
    "**PosLab tests one claim: a CNN still knows *where* things are after global average pooling, because it writes "
    "position into *which channels* fire** (Islam et al., ICCV 2021, *Global Pooling, More than Meets the Eye*, "
    f"arXiv 2108.07884). {claims['shuffle']}\n\n"
    "**Start with the guided tour below**: each step opens the page that shows it. Everything runs offline; bring "
    "your own images, data sets and models from the sidebar."
)

TOUR = [
    ("1 · The puzzle", "Global average pooling averages every channel over all positions. A shape in the top-left "
     "and the same shape in the bottom-right should give the same vector, so a classifier after GAP should be "
     "blind to position. Is it?", None, None, None),
    ("2 · GAPNet finds the cell anyway", "GAPNet's pooled values *are* its cell scores. Place a shape anywhere on a "
     f"7×7 grid: {claims['gapnet']}", "pages/grid_probe.py", "Open the 7×7 grid probe",
     {"gp_grid": "7", "gp_cell": "30"}),
    ("3 · PermuteNet finds it far less often", f"Shuffle the pooled channels before the classifier: "
     f"{claims['permutenet']} Position was carried by channel order. Compare with the paper's Table 1.",
     "pages/grid_probe.py", "Open Table 1", {"gp_tab": "Table 1"}),
    ("4 · The channel code", "Which channel fires for which cell? Place the same image in every cell and read "
     f"the pooled vector: each channel has a preferred cell. {channel_tour_text(recorded('decode'))}", "pages/channel_code.py", "Open the channel code", {"cc_net": "probe/location-gapnet", "cc_grid": "3"}),
    ("5 · Rank and zero position channels", "In a segmentation network, rank the channels by how much their pooled "
     "value changes when the image is mirrored, zero the top N and compare with as many random ones: in the paper "
     f"the ranked ones hurt far more. {seg_tour['fig4']}",
     "pages/segmentation_lab.py", "Zero the top 128 overall channels", {"seg_ranking": "overall", "seg_n": "128"}),
    ("6 · A region-specific attack", "Rank channels by the *signed* flip difference on images whose pedestrians are "
     f"on the left: in the paper, zeroing them hurts the left half of the image most. {seg_tour['fig6']}",
     "pages/segmentation_lab.py", "Zero the top 128 left-specific channels",
     {"seg_ranking": "left", "seg_n": "128"}),
    ("7 · AugShift", "If position hides in the pooled vector, pull the vectors of two shifted crops together "
     f"(an MSE term on the GAP latents): predictions become more shift-consistent. {shift_tour}",
     "pages/shift_lab.py", "Slide an image across the canvas", {"shift_tab": "Slide an image"}),
]

st.subheader("A guided tour")
for title, text, page, link, params in TOUR:
    with st.container(border=True):
        st.markdown(f"**{title}** — {text}")
        if page is not None:
            st.page_link(page, label=link, icon=":material/arrow_forward:", query_params=params)
