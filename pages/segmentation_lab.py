"""Segmentation lab: rank position-encoding latent channels, zero them, watch mIoU per region (paper Sec. 4.2)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from engine.core.storage import CheckpointError, cache_dir, fingerprint
from engine.seg import lab
from engine.seg.lab import (
    METHODS,
    RANK_ON,
    RANKINGS,
    REGIONS,
    SPLITS,
    SUBSETS,
    DataError,
    ImageError,
    cached_pretrained,
    decode_image,
    fit_image,
    pretrained_file,
    region_fractions,
)
from ui import seg as ui
from ui.export import chart_config, download_buttons, note_refused_params, url_snapshot
from ui.findings import more
from ui.jobs import busy_message, busy_note, recent_runs, run_status, start_run, store
from ui.paths import path_boxes_on

LINK = url_snapshot("seg_")  # before any widget reads the URL
MODES = {"top": "top N", "range": "rank range"}

st.title("Segmentation lab")
st.caption("Paper Sec. 4.2: which latent channels carry position, and what breaks without them.")
link_note = st.empty()
if verdicts := ui.verdicts():
    st.markdown("\n".join(f"- {line}" for line in verdicts))
with st.expander("What am I looking at?"):
    st.markdown(
        "**The three lines above are what the shipped models show; below, the charts behind them and a lab to try "
        "your own.** A DeepLabV3 network segments generated drive-on-the-right street scenes "
        f"({lab.DEFAULT_VAL.count} val images, {lab.DEFAULT_VAL.height}×{lab.DEFAULT_VAL.width}). Each latent channel "
        "is **ranked** by how much its global average changes when the image is mirrored (Eq. 2 *overall*; Eq. 3 "
        "*left*/*right*, on scenes with pedestrians in one half), then the top **N** are **zeroed** before the head: "
        "mIoU (%) over the image and its left, center and right thirds. The shipped **default** was trained without "
        "flips and leans on position; the **control**, trained with flips, cannot. Their latents are sparse, so flip "
        "sensitivity goes with size: compare with the *largest* channels (*magnitude*). Rankings use held-out scenes "
        "(*Rank on*). Bring a Cityscapes folder, a photo or a checkpoint from the sidebar. "
        + more("Fig 4 top", "Fig 4 bottom", "Fig 6", "Mirror cost"))

shipped = ui.shipped_fidelity()
if shipped:
    st.subheader("What the shipped models show")
    for col, (role, fid) in zip(st.columns(len(shipped)), shipped.items()):
        with col:
            st.markdown(f"**{ui.SHIPPED[role]}** · mIoU {100 * fid.baseline['all']:.1f} · mirrored scenes "
                        f"{100 * fid.mirrored['all']:.1f} (costs {ui.points(fid.mirror_cost)} points)")
            st.plotly_chart(ui.fig4_figure(fid, f"Fig. 4 top: top N vs random ({role})"), key=f"seg_fig4_{role}",
                            config=chart_config(f"seg_fig4_{role}"))
            st.plotly_chart(ui.range_bars(fid, f"Fig. 4 bottom: one eighth of the ranking zeroed ({role})"),
                            key=f"seg_range_{role}", config=chart_config(f"seg_fig4_ranges_{role}"))
            st.plotly_chart(ui.fig6_figure(fid, f"Fig. 6: left- vs right-ranked channels ({role})"), key=f"seg_fig6_{role}",
                            config=chart_config(f"seg_fig6_{role}"))
            st.markdown(ui.claims_markdown(fid))
    st.caption(f"Measured by `python -m engine fidelity` on the {next(iter(shipped.values())).images} val scenes "
               "(rankings on the held-out rank split, 5 random draws). Paper (DeepLabV3-ResNet-50, Cityscapes): zeroing "
               "the top 100 of 2048 channels 71.9 vs 73.4 random, top 500 64.7 vs 70.5, from 74.0.")

choices = ui.model_choices()
if not choices:
    st.error("No segmentation model: train one with `python -m engine train-seg` or load a checkpoint in the sidebar.")
    st.stop()
c1, c2, c3 = st.columns(3)
model_name = c1.selectbox("Model", list(choices), key="seg_model", bind="query-params")
source = c2.radio("Data", ["Generated scenes", "Cityscapes folder"], horizontal=True, key="seg_source",
                  bind="query-params")
subset = c3.selectbox("Subset", SUBSETS, key="seg_subset", bind="query-params",
                      help="val-left / val-right: images whose pedestrians are only in that half")
if not cached_pretrained():
    st.caption(f"torchvision's pretrained weights: none in the local torch cache ({pretrained_file('deeplabv3_resnet50').parent}); "
               "this app is offline and never downloads them.")
try:
    seg = choices[model_name]()
except CheckpointError as err:
    st.error(str(err))
    st.stop()

data_args: dict = {}
if source == "Cityscapes folder":
    d1, d2, d3, d4 = st.columns([3, 1, 1, 1])
    path = d1.text_input("Cityscapes folder", key="seg_data_path", bind="query-params", disabled=not path_boxes_on(),
                         placeholder="e.g. ~/data/cityscapes",
                         help="torchvision's layout: leftImg8bit/<split>/<city>/*_leftImg8bit.png and "
                              "gtFine/<split>/<city>/*_gtFine_labelIds.png; label ids are mapped to the 19 train ids")
    split = d2.selectbox("Split", SPLITS, index=SPLITS.index("val"), key="seg_split", bind="query-params")
    count = d3.number_input("Images", 1, 5000, 100, key="seg_count", bind="query-params",
                            help="the first N images, sorted by path")
    height = d4.selectbox("Height", [128, 256, 512], key="seg_height", bind="query-params",
                          help="working resolution: height × 2·height")
    if path.strip():
        data_args = {"path": path.strip(), "split": split, "count": int(count), "height": int(height)}
    else:
        st.info("Enter the folder holding leftImg8bit/ and gtFine/; until then the generated scenes are used.")
try:
    data = ui.shared_data(**data_args)
except (DataError, ValueError) as err:
    st.error(f"{err} Using the generated scenes instead.")
    data = ui.shared_data()
r1, r2 = st.columns([2, 1])
ranking = r1.selectbox("Ranking", RANKINGS, key="seg_ranking", bind="query-params",
                       help="overall = Eq. 2, left/right = Eq. 3, kflip1/2 = Kernel-Flip*/**, magnitude = largest mean "
                            "activation (a baseline), relative = Eq. 2 per unit of mean activation (flip sensitivity "
                            "with size taken out), random = a seeded random order")
rank_on = r2.radio("Rank on", RANK_ON, horizontal=True, key="seg_rank_on", bind="query-params",
                   help="held-out: a separate set of scenes (the rank split; for a Cityscapes folder its train split), "
                        "so rankings are not tuned to the images they are tested on. val: the evaluated images "
                        "themselves (in-sample), as the paper's authors ranked")
try:  # a Cityscapes folder without a train split has no held-out images to rank on
    lab.ranking_data(data, rank_on)
except DataError as err:
    st.warning(f"{err} Using Rank on: val.")
    rank_on = "val"
width, names = seg.channels, seg.class_names
try:
    lab.check_metric_model(seg)
    metrics_ok = True
except ValueError as err:
    st.warning(str(err))
    metrics_ok = False
total_images = len(lab.subset_index(data, subset))
live_images = min(total_images, lab.live_limit())
st.caption(f"`{seg.label}` · latent width **{width}** channels · {total_images} images in {subset} "
           f"({data.key['kind']}, {data.images.shape[1]}×{data.images.shape[2]})")
if live_images < total_images:
    st.info(f"Live slider on the first {live_images} of the {total_images} {subset} images, so each move stays fast. "
            f"The sweeps below run on all {total_images} as background jobs (latents streamed from disk when they do "
            "not fit in memory) and write their rows to a JSON file.", icon="ℹ️")

with st.expander("Your street photo", expanded=False):
    photo_file = st.file_uploader("A street photo (PNG, JPEG, WebP, BMP, TIFF, GIF)", key="seg_photo_upload",
                                  help="Centre-cropped to 2:1 and resized to the data's working resolution. Kept in "
                                       "memory for this session only.")
    if model_name.startswith("shipped"):
        st.caption("The shipped models have seen only generated street scenes, never a photo: yours is segmented "
                   "into the classes of those scenes, so expect rough labels.")
    photo = None
    if photo_file is not None:
        try:
            img = decode_image(photo_file.getvalue(), photo_file.name)
            photo = np.array(fit_image(img, data.images.shape[2], data.images.shape[1]))[None]
        except ImageError as err:
            st.error(str(err))


@st.fragment
def live_panel() -> None:
    m1, m2, m3 = st.columns([2, 2, 1])
    mode = m1.radio("Zero", list(MODES), format_func=MODES.get, horizontal=True, key="seg_mode", bind="query-params")
    if mode == "top":
        n = m2.slider("N channels zeroed", 0, width, round(0.1 * width), key="seg_n", bind="query-params")
        zeroed_range = None
    else:
        zeroed_range = tuple(sorted(m2.slider("ranks zeroed [a, b)", 0, width, (0, round(0.1 * width)), key="seg_range",
                                              bind="query-params")))
        n = None
    draw = m3.number_input("random draw", 0, 99, 0, disabled=ranking != "random", key="seg_draw", bind="query-params")
    result = ui.live_ablation(seg, data, subset, ranking, int(draw), n, zeroed_range, rank_on, live_images) \
        if metrics_ok else None
    zeroed = result.draws[0].zeroed if result else lab.select(lab.channel_order(seg, data, ranking, int(draw), rank_on),
                                                               n, zeroed_range)
    if photo is not None:
        q = lab.view(seg, ui.photo_latents(seg, photo), 0, zeroed)
        changed = region_fractions(q["changed"])
        st.markdown("**Your photo** (no ground truth: the share of pixels whose class changed, per region)")
        for col, region in zip(st.columns(4), REGIONS):
            col.metric(f"{region}: pixels changed", f"{100 * changed[region]:.1f}%")
        cols = st.columns(4)
        cols[0].image(photo[0], caption="your photo")
        cols[1].image(ui.overlay(photo[0], q["before"]), caption="prediction, no ablation")
        cols[2].image(ui.overlay(photo[0], q["after"]), caption="prediction, channels zeroed")
        cols[3].image(ui.changed_map(photo[0], q["changed"]), caption=f"changed pixels: {int(q['changed'].sum())}")
        st.markdown(ui.legend_markdown(np.concatenate([q["before"], q["after"]]), names), unsafe_allow_html=True)
    if result is None:
        return
    base, now = result.baseline, result.draws[0].scores
    for col, region in zip(st.columns(4), REGIONS):
        col.metric(f"{region} mIoU", f"{100 * now[region]:.1f}", f"{100 * (now[region] - base[region]):+.1f}",
                   help="mIoU (%) with the channels zeroed; delta vs. no ablation")
    st.caption(f"mIoU (%) over the {result.images} {subset} images ({len(zeroed)} of {width} channels zeroed). One "
               "random draw is one sample: the sweeps below and the shipped panel above show the spread over draws.")
    rows = [{"region": r, "miou_pct": 100 * now[r], "miou_pct_no_ablation": 100 * base[r], "images": result.images}
            for r in REGIONS]
    view = {"model": seg.label, "data": data.key, "subset": subset, "ranking": ranking, "rank_on": rank_on,
            "draw": int(draw) if ranking == "random" else None, "zeroed_channels": [int(c) for c in zeroed], "mIoU": rows}
    download_buttons(rows, "seg_view", as_json=view)
    idx = st.slider("image", 0, result.images - 1, 0, key="seg_image", bind="query-params")
    lat = lab.latents(seg, data, subset, live_images)
    q, pictures = lab.live_view(seg, lat, idx, zeroed), ui.pictures(seg, data, subset, lat, idx, zeroed)  # once per server
    captions = {"input": "input", "truth": "ground truth", "before": "prediction, no ablation",
                "after": "prediction, channels zeroed", "changed": f"changed pixels: {int(q['changed'].sum())}"}
    for col, (name, caption) in zip(st.columns(5), captions.items()):
        col.image(pictures[name], caption=caption)
    st.markdown(ui.legend_markdown(q["truth"], names), unsafe_allow_html=True)


# The live panel's values change in place: no fade of its elements while a move's rerun runs (Streamlit dims stale
# elements after 0.5 s, and with many tabs on a small machine that fading costs the browsers more than the move).
st.html("<style>.st-key-seg_live [data-stale='true'] {opacity: 1 !important; transition: none !important;}</style>")
with st.container(key="seg_live"):
    live_panel()

st.subheader("Rankings")
shown = st.multiselect("Methods", METHODS, default=["overall", "left", "right"], key="seg_methods", bind="query-params")
rankings = ui.shared_rankings(seg, data, tuple(shown), rank_on)
st.plotly_chart(ui.ranking_figure({m: r.scores for m, r in rankings.rankings.items()}), key="seg_ranking_plot",
                config=chart_config("seg_rankings"))
download_buttons(rankings.rows(), "seg_rankings", as_json=ui.ranking_json(rankings))

if not metrics_ok:
    with link_note:
        note_refused_params(LINK)
    st.stop()
st.subheader("Sweeps")
context = (seg.fingerprint, fingerprint(data.key), subset, rank_on)
s1, s2, s3, s4 = st.columns(4)
sweep_rankings = s1.multiselect("Rankings", METHODS, default=["overall", "left", "right"], key="seg_sweep_rankings",
                                bind="query-params")
fractions = s2.multiselect("N (% of width)", [1, 2, 5, 10, 15, 25, 40], default=[5, 10, 25], key="seg_sweep_n",
                           bind="query-params")
draws = s3.number_input("random draws", 1, 20, 5, key="seg_sweep_draws", bind="query-params")
step = s4.number_input("rank-range step", 8, width, max(8, width // 8), key="seg_sweep_step", bind="query-params")
with link_note:
    note_refused_params(LINK, {"seg_mode": MODES.get})
b1, b2 = st.columns(2)
busy = busy_message("seg_sweep")
run_top = b1.button("Run top-N sweep", disabled=busy is not None)
run_range = b2.button("Run rank-range sweep", disabled=busy is not None)
busy_note(busy)
if run_top or run_range:  # every image of the subset; beyond the live slider's, rows are also written to a JSON file
    kind = "seg_sweep" if run_top else "seg_ranges"
    ns = [0] + [round(f / 100 * width) for f in sorted(fractions)]
    params = (kind, sweep_rankings, ns, int(draws), None if run_top else int(step))
    full = live_images < total_images and not seg.meta.get("uploaded")
    out = cache_dir() / "seg" / "sweeps" / f"{fingerprint(context, params)}.json" if full else None
    work = ui.sweep_work(seg, data, subset, rank_on, sweep_rankings, ns, int(draws), None if run_top else int(step), out)
    title = f"{'top-N' if run_top else 'rank-range'} sweep" + (f" of all {total_images} images" if live_images < total_images else "")
    settings = {"sweep": kind, "context": list(context), "file": str(out) if out else None}
    command = ui.sweep_command(model_name, data_args, subset, rank_on, sweep_rankings, ns, int(draws),
                               None if run_top else int(step))
    start_run(store().create("seg_sweep", title, settings, command, 0), lambda rec: rec.finish(rows=work(rec).rows()))

sweep_run = run_status("seg_sweep")  # progress and Stop while it runs (polling only then); its rows once done
recent_runs("seg_sweep")
if sweep_run is not None and sweep_run.state == "done":  # a reload or a link shows the rows it kept
    st.session_state[sweep_run.settings["sweep"]] = tuple(sweep_run.settings["context"]), sweep_run.rows()
    st.session_state.seg_sweep_file = Path(sweep_run.settings["file"]) if sweep_run.settings["file"] else None
swept = st.session_state.get("seg_sweep", (None, None))
images = total_images  # sweeps run on every image of the subset
written = st.session_state.get("seg_sweep_file")
if swept[0] == context:  # results of the model, data, subset and rank-on choice shown now only
    st.plotly_chart(ui.sweep_figure(swept[1], images), key="seg_sweep_plot", config=chart_config("seg_topn_sweep"))
    st.caption(ui.sweep_verdict(swept[1]))
    if {"left", "overall", "right"} <= {r["ranking"] for r in swept[1]}:
        st.plotly_chart(ui.region_attack_figure(swept[1], images), key="seg_attack_plot",
                        config=chart_config("seg_region_attack"))
        st.caption(ui.attack_verdict(swept[1]))
    download_buttons(swept[1], "seg_topn_sweep", percent=ui.MIOU_PCT)
    ui.note_written(written)
    st.caption("The paper's all-image mIoU beside this sweep's, at the same share of the latent:")
    st.dataframe(pd.DataFrame(ui.paper_comparison(swept[1], width)).style.format(precision=1, na_rep="–"),
                 hide_index=True)
ranged = st.session_state.get("seg_ranges", (None, None))
if ranged[0] == context:
    base = next(r for r in ranged[1] if r["ranking"] == "none")  # a range sweep carries its own baseline
    st.plotly_chart(ui.range_figure([r for r in ranged[1] if r["ranking"] != "none"], base, images),
                    key="seg_range_plot", config=chart_config("seg_range_sweep"))
    download_buttons(ranged[1], "seg_range_sweep", percent=ui.MIOU_PCT)
    ui.note_written(written)
