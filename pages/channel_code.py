"""Channel code: where position lives in the GAP vector; decode it, shuffle it (paper Sec. 3)."""
import random

import streamlit as st

from engine.channel import lab
from engine.channel.lab import LAYERS, SHIPPED_IMAGES, available_nets
from ui import channel_code as cc
from ui import model_sources
from ui.export import chart_config, download_buttons, note_refused_params, url_snapshot
from ui.findings import more
from ui.probe import shipped_table1

LINK = url_snapshot("cc_")  # before any widget reads the URL
st.title("Channel code")
if found := cc.headline(cc.recorded("decode") or []):
    st.markdown(found)
st.markdown("The tabs: the code itself (the same images placed in every cell), a linear probe that reads the cell from "
            "frozen GAP vectors, the paper's 2 x 2 of training and testing with or without a channel shuffle, and a "
            "permutation you apply yourself.")
link_note = st.empty()
with st.expander("What am I looking at?"):
    st.markdown(
        "**Global average pooling removes the spatial axes, yet the pooled vector still says where the object was: "
        "position is written into *which channels* are active.** **The code**: one row per cell, one column per GAP "
        "channel; a channel that lights up for one cell only is a position detector. Location-trained GAPNets dedicate "
        "channels to cells; an object-only classifier keeps far fewer, and an *untrained* net shows how much zero "
        "padding alone writes into GAP. **Decode**: if a linear probe reads the cell from the vector in order but not "
        "after a per-sample shuffle, position lives in the channel order. **The 2 x 2**: the paper's claim is an "
        "asymmetry: a net trained with shuffled channels (PermuteNet) still recognises objects nearly as well as "
        "GAPNet, but not locations; whether that shows here is under the 2 x 2. " + more("Position decodable from GAP", "Table 1 object"))

left, mid, right, far = st.columns(4)
grid = left.selectbox("Grid", [3, 5, 7], key="cc_grid", bind="query-params")
nets = available_nets(grid) + model_sources.sources() + list(cc.user_nets())
key = mid.selectbox("Network", nets, key="cc_net", bind="query-params", format_func=model_sources.label,
                    help="object-classifier: trained only for the object (on 3x3 canvases); probe/...: the grid-probe "
                    "networks; untrained: the object classifier at initialisation, a control for how much position zero "
                    "padding alone writes into GAP; real: PP-OCR's text-direction classifier, trained elsewhere on real "
                    "text (rapidocr-onnxruntime), beside its architecture untrained; cache: weights already in your "
                    "torch / Hugging Face cache; yours: a probe, torchvision or timm state dict (.pt / .pth / "
                    ".safetensors) or an ONNX classifier loaded under *Your checkpoints* in the sidebar.")
layer = right.selectbox("Layer pooled", LAYERS, index=len(LAYERS) - 1, key="cc_layer", bind="query-params",
                        help="A classifier's stages: a ResNet's stem and layer1-4; a MobileNet's features by resolution. "
                             "layer4 is the vector its classifier reads.")
images = far.slider("Images averaged", 8, 128, SHIPPED_IMAGES, step=8, key="cc_images", bind="query-params")

if missing_real := model_sources.missing_note():
    st.caption(missing_real)
if real := model_sources.recorded_note(key):
    st.caption(real)
if found := model_sources.found_note(cc.network(key)):  # where its GAP was found, for every tab
    st.caption(found)
code = cc.code_map(key, grid, layer, images)  # None while a map with none shipped to stand computes (its note shows)
cmap = code.map if code else None
# A tab is computed and drawn only while it is open (a tab switch reruns the page); its controls render always, so
# a link and a reload keep them.
code_tab, decode_tab, shuffle_tab, demo_tab = st.tabs(["The code", "Decode", "Shuffle: the 2 x 2", "Permute it yourself"],
                                                      key="cc_tab", bind="query-params")
with code_tab:
    if code_tab.open and cmap:
        a, b, c, d = st.columns(4)
        a.metric("Channels", len(cmap.order))
        b.metric("Mean selectivity", f"{cmap.selectivity.mean():.2f}",
                 help="Per channel (peak - mean elsewhere) / (peak + mean elsewhere) over the cells, averaged over channels")
        c.metric("Mean position share", f"{cmap.position_share.mean():.2f}",
                 help="share of a channel's variance over images x cells that the cell explains")
        d.metric("Cells some channel prefers", f"{cc.cells_preferred(cmap)} of {grid * grid}",
                 help="how many cells are at least one channel's preferred (peak) cell")
        st.plotly_chart(cc.code_heatmap(cmap), key="cc_heatmap", config=chart_config(f"channel-code-{grid}x{grid}-{layer}"))
        st.markdown(cc.selectivity_note(cmap) + f" (Means over {cmap.images} test images in every cell.)")
        download_buttons(code.rows(), f"channel-code-{grid}x{grid}-{layer}")
        st.caption("Each column is one channel's mean GAP activation with the images in each cell, standardised across "
                   "cells; channels are grouped by the cell they prefer (vertical lines).")

        st.subheader("Grid of grids")
        multiples_col, counts_col = st.columns([4, 1])
        multiples_col.plotly_chart(cc.cell_small_multiples(cmap), key="cc_multiples")
        counts_col.plotly_chart(cc.preferred_figure(cmap), key="cc_counts")
        st.caption(cc.multiples_note(cmap))

    linked = st.query_params.get("cc_channel", "")
    if cmap:
        channel = st.selectbox(
            "Channel", cmap.order.tolist(), key="cc_channel", bind="query-params",
            format_func=lambda ch: f"ch {ch} · prefers {cc.cell_label(int(cmap.preferred[ch]), grid)} · "
                                   f"selectivity {cmap.selectivity[ch]:.2f}")
    elif linked.isdigit():  # while the map computes, the link's channel is kept
        st.selectbox("Channel", [int(linked)], index=None, key="cc_channel", bind="query-params", disabled=True)
    if code_tab.open and cmap:
        col_map, col_stats = st.columns([2, 1])
        col_map.plotly_chart(cc.channel_response(cmap, channel), key="cc_channel_map")
        col_stats.metric("Preferred cell", cc.cell_label(int(cmap.preferred[channel]), grid))
        col_stats.metric("Selectivity", f"{cmap.selectivity[channel]:.2f}")
        col_stats.metric("Position share", f"{cmap.position_share[channel]:.2f}")

with decode_tab:
    if decode_tab.open:
        st.markdown("A linear probe (logistic regression on standardised, frozen GAP vectors) predicts the cell. "
                    "**ordered**: the vector as it is; **permuted**: each vector's channels in its own random order "
                    "(train and test); **sorted**: the vector's values sorted, the most any read-out blind to channel "
                    "identity could use.")
        recorded = cc.recorded("decode")
        if recorded:
            st.dataframe(cc.decode_frame(recorded), hide_index=True, key="cc_decode_recorded")
            download_buttons(cc.decode_export(recorded), "decode-recorded", as_json=recorded)
            st.caption("Each read-out: accuracy (%) on the test vectors, with its 95% Wilson interval in brackets.")
            st.markdown(cc.sorted_note(recorded) or "")
            st.caption("Recorded with `python -m engine decode --grids 3 5 7 --layers layer3 layer4 --train 1500 --test 500 "
                       "--json assets/channel_code/decode.json` (see assets/channel_code/MODEL_CARD.md).")
        else:
            st.info("No recorded decode table yet: `python -m engine decode --json assets/channel_code/decode.json`.")
        clicked = st.button(f"Decode on a fresh sample ({key}, {grid}x{grid}, {layer})", key="cc_decode_run")
        if clicked:
            cc.start_fresh_decode(key, grid, layer, random.randrange(cc.SEEDS))
        cc.show_fresh_decode(key, grid, layer, cc.FRESH_WAIT if clicked else 0.0)  # the URL's, through reloads and links

with shuffle_tab:
    if shuffle_tab.open:
        st.markdown("GAPNet (trained in order) and PermuteNet (trained with a fresh channel shuffle on every call), each "
                    "tested with its latent channels in order or shuffled. **per_call**: a fresh permutation per batch. "
                    "**fixed**: one permutation; its \"trained with shuffle\" net is GAPNet with its head's inputs relabeled by "
                    "that permutation, exactly what training with a fixed permutation yields. 3x3 grid, test patches.")
        absent = cc.missing(cc.SHUFFLE_NETS)
        recorded_shuffle = cc.recorded("shuffle")
        shuffle_rows, fresh_seed = recorded_shuffle, None
        if absent:
            st.info(f"Waiting for the grid-probe checkpoints {', '.join(absent)} (assets/probe) for a fresh run.")
        else:
            samples_col, run_col = st.columns([1, 2])
            samples = samples_col.select_slider("Samples for a fresh run", [200, 500, 1000], 200, key="cc_shuffle_samples")
            if shuffle_clicked := run_col.button("Evaluate on a fresh sample", key="cc_shuffle_run"):
                cc.start_fresh_shuffle(samples, random.randrange(cc.SEEDS))
            fresh_rows, seed = cc.fresh_shuffle_rows(cc.FRESH_WAIT if shuffle_clicked else 0.0)  # the URL's, until the next run
            if fresh_rows:
                shuffle_rows, fresh_seed = fresh_rows, seed
        if shuffle_rows:
            columns = st.columns(2)
            for i, ((task, kind), table) in enumerate(cc.shuffle_frames(shuffle_rows).items()):
                columns[i % 2].markdown(f"**{task}** task, **{kind}** shuffle (chance {100 / (9 if task == 'location' else 10):.1f}%)")
                columns[i % 2].dataframe(table, key=f"cc_shuffle_{task}_{kind}")
            download_buttons(cc.shuffle_export(shuffle_rows), "shuffle-2x2", as_json=shuffle_rows)
            st.caption(f"Accuracy (%) on {shuffle_rows[0]['samples']:,} test placements per cell, 95% Wilson interval in "
                       "brackets (over images; a per-call shuffle's score also varies with the permutations drawn). "
                       + cc.head_note(shuffle_rows))
            if fresh_seed is None:
                st.caption("Recorded with `python -m engine shuffle --samples 1000 --json assets/channel_code/shuffle.json`.")
            else:
                st.caption(f"A fresh sample: seed {fresh_seed} (a reload or this page's link shows it again). Remake it with "
                           f"`python -m engine shuffle --samples {shuffle_rows[0]['samples']} --seed {fresh_seed}`.")
            if recorded_shuffle:
                table1 = shipped_table1()
                st.markdown("Each net tested as it was trained, beside the paper's Table 1 (zero padding):")
                st.dataframe(cc.paper_beside(recorded_shuffle, table1), hide_index=True,
                             column_config={c: st.column_config.NumberColumn(format="%.1f")
                                            for c in ("here (shapes, 3x3)", "Grid probe Table 1", "paper (CIFAR-10, 3x3)")})
                st.caption(cc.recorded_note(recorded_shuffle))
                st.caption(cc.samples_note(recorded_shuffle, table1) or "")
        else:
            st.info("No recorded 2 x 2 yet: `python -m engine shuffle --json assets/channel_code/shuffle.json`.")

with demo_tab:
    absent = cc.missing(list(cc.DEMO_NETS))
    if absent:
        st.info(f"The demo needs the grid-probe checkpoints {', '.join(absent)} (assets/probe).")
        with link_note:
            note_refused_params(LINK)
        st.stop()
    st.session_state.setdefault("cc_draws", 0)  # permutations drawn so far; draw n uses seed n
    st.session_state.setdefault("cc_permuted", False)
    image_col, cell_col, b1, b2 = st.columns(4)
    image_seed = image_col.number_input("Image", 0, 9999, 7, key="cc_image", bind="query-params")
    cell = cell_col.selectbox("Cell", list(range(9)), index=0, format_func=lambda c: cc.cell_label(c, 3), key="cc_cell", bind="query-params")
    with link_note:
        note_refused_params(LINK, {"cc_cell": lambda c: cc.cell_label(c, 3)})
    if demo_tab.open:
        if b1.button("Apply a random permutation", key="cc_permute"):
            st.session_state.cc_draws += 1
            st.session_state.cc_permuted = True
        if b2.button("Restore the order", key="cc_restore"):
            st.session_state.cc_permuted = False

        draw = st.session_state.cc_draws
        demo = lab.permutation_demo(int(image_seed), draw if st.session_state.cc_permuted else None)
        st.markdown(f"Latent channels **{'in order' if demo.draw is None else f'permuted (draw {demo.draw})'}**. "
                    f"The image is a **{demo.classes[demo.label]}**, placed in {cc.cell_label(cell, 3)}.")
        img_col, *plot_cols = st.columns(4)
        img_col.image(cc.canvas_image(demo.canvases[cell]).numpy(), caption="input canvas", clamp=True)
        for column, (net_key, title) in zip(plot_cols, cc.DEMO_NETS.items()):
            figure = (cc.location_figure(demo.probs[net_key][cell], title) if "location" in net_key
                      else cc.object_figure(demo.probs[net_key][cell], demo.classes, title))
            column.plotly_chart(figure, key=f"cc_demo_{net_key}")
        for column, (net_key, title) in zip(st.columns(3), cc.DEMO_NETS.items()):
            column.metric(f"{title}: right in", f"{demo.hits[net_key]}/9 cells")
