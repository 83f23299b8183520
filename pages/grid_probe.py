"""Grid probe: place an image on an n x n canvas and ask GAPNet and PermuteNet where it is."""
import streamlit as st
import torch

from engine.core.stats import format_rate
from engine.core.training import TrainConfig
from engine.probe import lab
from engine.probe.lab import (
    CLASSES,
    HEAD_LABELS,
    ImageError,
    ProbeConfig,
    decode_image,
    denormalize,
    image_to_patch,
    place_on_grid,
    shape_example,
)
from ui.export import chart_config, download_buttons, note_refused_params, url_snapshot
from ui.findings import more
from ui.jobs import busy_message, busy_note, current_run, recent_runs, run_status, start_run, store
from ui.probe import (
    MARK_POINTS,
    add_run_probe,
    canvas_figure,
    class_bars,
    curve_figure,
    grid_heatmap,
    home_claims,
    long_run_figure,
    object_row_note,
    per_cell_hover,
    rescale_cell,
    shipped_available,
    shipped_curves,
    shipped_probe,
    shipped_table1,
    table1_notes,
    table1_view,
    to_image,
    user_probes,
)
from ui.sidebar import user_patch_source

# Before any widget reads the URL. A parameter whose widget already holds a value in this session (a rerun, or
# a click callback that just moved it) is the session's own setting, not a link's: only a link's values are noted.
LINK = {key: raw for key, raw in url_snapshot("gp_").items() if key not in st.session_state}


def place_clicked_cell() -> None:
    """A canvas click moves the cell box (a callback runs before the box is drawn, so it may set its value)."""
    points = st.session_state.gp_canvas.selection.points
    if points and points[0].get("customdata") is not None:
        st.session_state.gp_cell = int(points[0]["customdata"])


st.title("Grid probe: GAPNet vs PermuteNet")
with st.expander("What am I looking at?"):
    st.markdown(
        "**Position survives global average pooling, in the order of the channels.** An image is pasted into one cell "
        "of an n×n canvas. **GAPNet** ends in a conv to n² channels and a global average pool: the pooled values *are* "
        "the cell scores. **PermuteNet** shuffles the pooled channels before its linear classifier, on every forward "
        "pass. If position lived in the *spatial* layout, pooling would erase it for both. GAPNet keeps it, and "
        f"{home_claims(shipped_table1())['permutenet']} So position lives largely in the **channel order** (paper "
        "Sec. 3, Table 1). " + more("Table 1 location", "Table 1 object")
    )

run_model = add_run_probe(current_run("probe")[0])  # a finished or stopped run of this page's URL is listed

c1, c2, c3 = st.columns(3)
task = c1.radio("Task", ["location", "object"], horizontal=True, key="gp_task", bind="query-params")
# The same grids for both tasks, so switching task never moves the grid (or leaves the URL behind).
grids = sorted({3, 5, 7} | {m.config.grid for m in user_probes().values()})
grid = c2.select_slider("Grid", options=grids, value=3, key="gp_grid", bind="query-params")
c3.caption("Padding: **zero** for the shipped networks; yours, of any padding, are listed by name under *Networks*.")

models = {HEAD_LABELS[h]: shipped_probe(h, task, grid, "zero") for h in ("gapnet", "permutenet") if shipped_available(h, task, grid, "zero")}
models |= {name: m for name, m in user_probes().items() if m.config.task == task and m.config.grid == grid}
if not models:
    st.warning(f"No {task} model for a {grid}×{grid} grid yet: train one in the *Train your own* tab.")
    shipped = [g for g in grids if shipped_available("gapnet", task, g, "zero")]
    if shipped:
        st.button(f"Show the shipped {shipped[0]}×{shipped[0]} {task} networks", key="gp_to_shipped",
                  on_click=st.session_state.update, kwargs={"gp_grid": shipped[0]})
kept = st.session_state.get("gp_nets")
if kept and models and not set(kept) <= set(models):  # picked on another grid or task: keep what is here, else the first two
    st.session_state.gp_nets = [name for name in kept if name in models] or list(models)[:2]
chosen = st.multiselect("Networks", list(models), default=list(models)[:2], key="gp_nets", bind="query-params") if models else []
absent = [name for name in LINK.get("gp_nets", []) if name not in models]
if absent:  # a link's network trained or uploaded in another browser: say so rather than drop it silently
    st.info(f"This link names {', '.join(f'**{n}**' for n in absent)}, which this browser does not have: a network "
            "trained or uploaded elsewhere comes with its run link (`?run=`) or upload link (`?ckpt=`), or upload its "
            "checkpoint in the sidebar.")

place_tab, all_tab, table_tab, train_tab = st.tabs(["Place an image", "All cells", "Table 1", "Train your own"], key="gp_tab", bind="query-params")

with place_tab:
    dataset = user_patch_source()
    sources = ["Generated shape", "Upload"] + (["Dataset sample"] if dataset else [])
    kind = st.radio("Image", sources, horizontal=True, key="gp_source", bind="query-params")
    label, classes = None, CLASSES
    if kind == "Generated shape":
        s1, s2 = st.columns(2)
        label = s1.selectbox("Class", range(len(CLASSES)), format_func=lambda i: CLASSES[i], key="gp_class", bind="query-params")
        patch = shape_example(label, s2.slider("Variant", 0, 9, 0, key="gp_variant", bind="query-params"))
    elif kind == "Dataset sample":
        index = st.number_input(f"{dataset.name} test image", 0, 100_000, 0, key="gp_index", bind="query-params")
        images, labels = dataset.sample(1, seed=int(index), split="test")
        patch, label, classes = images[0], int(labels[0]), dataset.classes
    else:
        files = st.file_uploader("Images (PNG, JPEG, WebP, BMP, TIFF, GIF)", accept_multiple_files=True, key="gp_uploads")
        uploads = {}
        for f in files or []:
            try:
                uploads[f.name] = image_to_patch(decode_image(f.getvalue(), f.name))
            except ImageError as err:
                st.error(str(err))
        if not uploads:
            st.info("Upload one or more images to place them on the grid.")
            st.stop()
        name = st.selectbox("Uploaded image", list(uploads), key="gp_upload_pick")
        patch = uploads[name]
        if task == "location" and len(uploads) > 1:
            st.dataframe([{"image": n, **{f"{net}: cells right": lab.sweep(models[net], p).rate() for net in chosen}}
                          for n, p in uploads.items()], hide_index=True)
    sweeps = {name: lab.sweep(models[name], patch) for name in chosen}
    if "gp_cell" in st.session_state and st.session_state.get("gp_cell_grid", grid) != grid:  # the grid changed: same spot
        st.session_state.gp_cell = rescale_cell(st.session_state.gp_cell, st.session_state.gp_cell_grid, grid)
    cell = st.number_input("Cell (row-major; or click the canvas)", 0, grid * grid - 1, key="gp_cell", bind="query-params")
    st.session_state.gp_cell_grid = grid
    canvas = denormalize(place_on_grid(patch.unsqueeze(0), torch.tensor([cell]), grid))[0]
    left, right = st.columns([1, 2])
    with left:
        st.plotly_chart(canvas_figure(to_image(canvas, max(1, 320 // canvas.shape[-1])), grid, cell),
                        on_select=place_clicked_cell, selection_mode="points", key="gp_canvas", config={"displayModeBar": False})
        scored = [net for net in chosen if task == "location" or (label is not None and len(classes) == models[net].config.num_outputs)]
        if scored:
            st.caption(f"{'Cells' if task == 'location' else 'Class'} right when this image visits each of the {grid * grid} "
                       "cells: " + "; ".join(f"{net} {sweeps[net].rate(label)}" for net in scored))
    with right:
        cols = st.columns(max(1, len(chosen)))
        for col, name in zip(cols, chosen):
            probs = sweeps[name].probs[cell].numpy()
            if task == "location":
                col.plotly_chart(grid_heatmap(probs.reshape(grid, grid), f"{name}: P(cell)", int(probs.argmax()), cell), key=f"gp_heat_{name}",
                                 config=chart_config(f"grid-{grid}-cell-{cell}-{name}"))
                col.metric(f"{name} says", f"cell {int(probs.argmax())}", f"{probs[cell]:.0%} on the true cell", delta_color="off")
            elif len(classes) == models[name].config.num_outputs:
                col.plotly_chart(class_bars(probs, classes, f"{name}: P(class)", label), key=f"gp_bars_{name}")
            else:
                col.warning(f"{name} predicts {models[name].config.num_outputs} classes; this image source has {len(classes)}.")

with all_tab:
    st.caption("Accuracy per cell over many fresh images placed at random (held-out draws); hover a cell for its count.")
    samples = st.select_slider("Images", [200, 500, 1000, 2000], value=500, key="gp_all_n")
    if st.button("Evaluate all cells", key="gp_all_run"):
        cols = st.columns(max(1, len(chosen)))
        for col, name in zip(cols, chosen):
            with st.spinner(f"Evaluating {name}…"):
                result = lab.evaluate(models[name], name, samples=samples)
            col.plotly_chart(grid_heatmap(result.evaluation.per_cell.numpy(), f"{name}: % right per cell", zmax=100, fmt=".0f",
                                          colorscale="RdYlGn", hover=per_cell_hover(result.evaluation, task)),
                             key=f"gp_all_{name}", config=chart_config(f"grid-{grid}-all-cells-{name}"))
            with col:
                st.caption(f"Overall {format_rate(round(result.evaluation.accuracy * samples / 100), samples)}; about "
                           f"{samples / (grid * grid):.0f} images per cell, so each cell's number is rough.")
                download_buttons(result.rows(), f"grid-{grid}-all-cells-{name}")

with table_tab:  # drawn only while shown (a tab switch reruns the page): a table and a chart fewer on opening
    if table_tab.open:
        rows = shipped_table1()
        if rows:
            view = table1_view(rows)
            st.dataframe(view, hide_index=True, width="stretch", height=36 * (len(rows) + 1) + 2,
                         column_order=[c for c in view[0] if c != "why"],  # the reasons are listed under the table
                         column_config={c: st.column_config.NumberColumn(format="%.1f") for c in ("accuracy", "paper", "chance")})
            st.caption(f"**◆**: more than {MARK_POINTS} points from the paper. " + " ".join(table1_notes(view)))
            download_buttons(rows, "table1")
            counted = "n: placements per row, 95% CI: Wilson" if all(r.get("samples") for r in rows) else "the file records no n"
            st.caption("Accuracy in %. Measured by `python -m engine table1 --tasks location object --grids 3 5 7 --paddings "
                       "zero reflect replicate --json assets/probe/table1.json` on fresh placements (a seed not used in "
                       f"training); {counted}. **source**: *checkpoint* rows are the shipped networks, re-measured; *measured "
                       "row* cells come from networks that do not fit the 40 MB asset budget, each with the command that made "
                       "it (download the table). Paper numbers: ResNet-18 on CIFAR-10, Table 1.")
            note = object_row_note(rows)
            if note:
                st.info(note)
            curves = shipped_curves("permutenet", "object")
            if curves:
                st.subheader("Object PermuteNet: accuracy vs training steps")
                gapnet = {r["grid"]: r["accuracy"] for r in rows if (r["task"], r["net"], r["padding"]) == ("object", "GAPNet", "zero")}
                st.plotly_chart(long_run_figure(curves, gapnet), key="gp_long_run", config=chart_config("object-permutenet-curve"))
                st.caption("Each point: accuracy on 500 fresh placements during training (the checkpoints' recorded curve); "
                           "the legs, rates and times are in `assets/probe/MODEL_CARD.md`. The **sum only** column above is "
                           "the accuracy from the channel sum of the GAP vector alone, on the same placements: where it "
                           "matches PermuteNet's, the shuffled classifier uses nothing else.")
        else:
            st.info("No Table 1 results shipped: run `python -m engine table1 --json assets/probe/table1.json`.")

with train_tab:
    with st.form("gp_train"):
        t1, t2, t3, t4 = st.columns(4)
        head = t1.selectbox("Net", ["gapnet", "permutenet", "classifier"], format_func=HEAD_LABELS.get)
        t_grid = t2.number_input("Grid", 2, 9, 3)
        t_pad = t3.selectbox("Padding", ["zero", "reflect", "replicate", "circular"])
        width = t4.select_slider("Width", [0.125, 0.25, 0.5, 1.0], value=0.25)
        u1, u2, u3 = st.columns(3)
        t_task = u1.selectbox("Task", ["location", "object"], index=["location", "object"].index(task))
        steps = u2.number_input("Steps (batch 48)", 10, 20000, 200, step=50)
        seed = u3.number_input("Seed", 0, 10_000, 0)
        busy = busy_message("probe")
        submitted = st.form_submit_button("Train", type="primary", disabled=busy is not None)
    busy_note(busy)
    if submitted:
        config = ProbeConfig(head=head, task=t_task, grid=int(t_grid), padding=t_pad, width=width)
        start_run(lab.start_run(store(), config, TrainConfig(steps=int(steps), seed=int(seed))), lab.train_run)

    per_point = TrainConfig.batch * TrainConfig.report_every
    run = run_status("probe", lambda h: st.plotly_chart(curve_figure(h, per_point), key="gp_curve",
                                                         config=chart_config("training-curve")), resume=lab.train_run)
    if run is not None and run_model is not None:
        accuracy = run.result.get("accuracy")
        scored = f" Accuracy {accuracy:.1f}% on {run.result['samples']} fresh placements." if accuracy is not None else ""
        st.success(f"**{run_model}** is selectable above (grid {run.settings['config']['grid']}, "
                   f"{run.settings['config']['task']}).{scored}")
    recent_runs("probe")

note_refused_params(LINK)  # after every URL-bound widget has read its value
