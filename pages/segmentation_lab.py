"""Segmentation lab: rank position-encoding latent channels, zero them, watch mIoU per region (paper Sec. 4.2)."""
from __future__ import annotations

import streamlit as st

from engine.progress import Stopped, StopToken
from engine.seg.ablation import channel_mask, evaluate_latents, qualitative, range_sweep, scores, select, sweep
from engine.seg.lab import RANKINGS, SUBSETS, subset_index
from engine.seg.metrics import REGIONS
from engine.seg.ranking import METHODS
from ui import seg as ui

st.title("🚗 Segmentation lab")
st.caption("Paper Sec. 4.2: rank the channels of a DeepLabV3 latent by how much their global average changes "
           "when the image is flipped (Eq. 2, Eq. 3, Kernel-Flip), zero the top N before the head and watch mIoU "
           "over the whole image and its left, center and right regions. Data: generated drive-on-the-right "
           "street scenes (val split, 200 images at 128×256).")

files = ui.model_files()
if not files:
    st.error("No segmentation model in assets/seg. Train one with `python -m engine train-seg`.")
    st.stop()
c1, c2, c3 = st.columns(3)
path = str(c1.selectbox("Model", files, format_func=lambda p: p.stem))
subset = c2.selectbox("Data", SUBSETS, key="seg_subset", help="val-left / val-right: images whose pedestrians are only in that half")
ranking = c3.selectbox("Ranking", RANKINGS, help="overall = Eq. 2, left/right = Eq. 3, kflip1/2 = Kernel-Flip*/**")
seg, data = ui.shared_model(path), ui.shared_data()
width = seg.channels
st.caption(f"`{seg.arch}` · latent width **{width}** channels · {len(subset_index(data, subset))} images in {subset}")


@st.fragment
def live_panel() -> None:
    m1, m2, m3 = st.columns([2, 2, 1])
    mode = m1.radio("Zero", ["top N", "rank range [a, b)"], horizontal=True)
    if mode == "top N":
        n = m2.slider("N channels zeroed", 0, width, round(0.1 * width), key="seg_n")
        zeroed_range = None
    else:
        zeroed_range = m2.slider("ranks zeroed", 0, width, (0, round(0.1 * width)), key="seg_range")
        n = None
    draw = m3.number_input("random draw", 0, 99, 0, disabled=ranking != "random")
    order = ui.shared_order(path, ranking, int(draw))
    mask = channel_mask(width, select(order, n, zeroed_range))
    lat = ui.shared_latents(path, subset)
    base = ui.baseline_scores(path, subset)
    now = scores(evaluate_latents(seg, lat, mask))
    for col, region in zip(st.columns(4), REGIONS):
        col.metric(f"{region} mIoU", f"{100 * now[region]:.1f}", f"{100 * (now[region] - base[region]):+.1f}",
                   help="mIoU (%) with the channels zeroed; delta vs. no ablation")
    idx = st.slider("image", 0, len(lat.labels) - 1, 0, key="seg_image")
    q = qualitative(seg, lat, idx, mask)
    image = data.images[subset_index(data, subset)[idx]]
    cols = st.columns(5)
    cols[0].image(image, caption="input")
    cols[1].image(ui.overlay(image, q["truth"]), caption="ground truth")
    cols[2].image(ui.overlay(image, q["before"]), caption="prediction, no ablation")
    cols[3].image(ui.overlay(image, q["after"]), caption="prediction, channels zeroed")
    cols[4].image(ui.changed_map(image, q["changed"]), caption=f"changed pixels: {int(q['changed'].sum())}")
    st.markdown(ui.legend_markdown(q["truth"]), unsafe_allow_html=True)


live_panel()

st.subheader("Rankings")
shown = st.multiselect("Methods", METHODS, default=["overall", "left", "right"])
st.plotly_chart(ui.ranking_figure({m: ui.ranking_scores(path, m) for m in shown}), key="seg_ranking_plot")

st.subheader("Sweeps")
s1, s2, s3, s4 = st.columns(4)
sweep_rankings = s1.multiselect("Rankings", METHODS, default=["overall", "left", "right"], key="sweep_rankings")
fractions = s2.multiselect("N (% of width)", [1, 2, 5, 10, 15, 25, 40], default=[5, 10, 25], key="sweep_fractions")
draws = s3.number_input("random draws", 1, 20, 5, key="sweep_draws")
step = s4.number_input("rank-range step", 8, width, max(8, width // 8))
b1, b2, b3 = st.columns(3)
run_top, run_range = b1.button("Run top-N sweep"), b2.button("Run rank-range sweep")
if b3.button("Stop") and "seg_stop" in st.session_state:
    st.session_state.seg_stop.stop()
if run_top or run_range:
    st.session_state.seg_stop = stop = StopToken()
    bar = st.progress(0.0, "sweep")
    lat = ui.shared_latents(path, subset)
    orders = {m: ui.shared_order(path, m) for m in sweep_rankings}
    try:
        if run_top:
            ns = [0] + [round(f / 100 * width) for f in sorted(fractions)]
            st.session_state.seg_sweep = sweep(seg, lat, orders, ns, int(draws), stop=stop,
                                               on_progress=lambda p: bar.progress(p.fraction, p.message))
        else:
            st.session_state.seg_ranges = range_sweep(seg, lat, orders, int(step), stop=stop,
                                                      on_progress=lambda p: bar.progress(p.fraction, p.message))
    except Stopped:
        st.warning("Sweep stopped.")
    bar.empty()
if "seg_sweep" in st.session_state:
    st.plotly_chart(ui.sweep_figure(st.session_state.seg_sweep), key="seg_sweep_plot")
    if {"left", "overall", "right"} <= {r["ranking"] for r in st.session_state.seg_sweep}:
        st.plotly_chart(ui.region_attack_figure(st.session_state.seg_sweep), key="seg_attack_plot")
if "seg_ranges" in st.session_state:
    st.plotly_chart(ui.range_figure(st.session_state.seg_ranges), key="seg_range_plot")
