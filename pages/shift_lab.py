"""Shift lab (paper Sec. 4.1, Table 2): how consistent are predictions when the input moves a few pixels?"""
import pandas as pd
import streamlit as st

from engine.core.training import TrainConfig
from engine.shift import lab as shift_lab
from engine.shift.lab import DEFAULT_LAMBDA, METHOD_LABELS, METHODS, SHIPPED_SETS, ShiftConfig
from ui.export import chart_config, download_buttons, note_refused_params, url_snapshot
from ui.findings import more
from ui.jobs import busy_message, busy_note, current_run, recent_runs, run_status, start_run, store
from ui.shift import (
    PAPER_COLUMN,
    SET_LABELS,
    Entry,
    curve_figure,
    curve_rows,
    curves_note,
    entry_dataset,
    gain_status,
    images_per_class,
    measure,
    measured_frame,
    missing_note,
    probability_figure,
    run_entry,
    scatter_figure,
    shipped_entries,
    slide_probabilities,
    table_frame,
    table_note,
    table_rows,
    teaching_image,
    tour_text,
    view_image,
)

LINK = url_snapshot("shift_")  # before any widget reads the URL

st.title("Shift lab")
st.caption("A CNN classifier is not shift invariant: the GAP latent keeps position information, so a few pixels of "
           "shift can flip the prediction. **AugShift** (the paper's Eq. 1) trains on two shifted crops and pulls their "
           "GAP latents together; **BlurPool** (Zhang 2019) low-pass filters before every subsampling. "
           "**Cons.k** = how often two random shifts (0..k-1 px in each axis) of an image get the same class.")
link_note = st.empty()
with st.expander("What am I looking at?"):
    per_class = images_per_class("shapes100")
    st.markdown(
        f"**{tour_text()}** Four small ResNet-18 classifiers per data set, trained plain, with AugShift, with BlurPool "
        "and with both: on the generated 10-class shapes and on the generated **shapes-100** (10 shapes x 5 fill "
        "patterns x 2 colour schemes" + (f", {per_class} training images per class" if per_class else "") + ": many "
        "classes, few images each). **Results** puts each set's Top-1 and Cons.8 beside the paper's Table 2; read the "
        "*direction*. **Slide an image** moves one test image pixel by pixel; **Train your own** adds a model. *digits* "
        "is scikit-learn's real handwriting (no models ship for it). " + more("Table 2 shift consistency"))


SETS = shift_lab.datasets()
dataset = st.selectbox("Data set", SETS, format_func=SET_LABELS.get, key="shift_set", bind="query-params",
                       help="The set of the curves, the sliding image, Measure it yourself and Train your own; "
                            "Results shows every set's table.")
shipped_by_set = {name: shipped_entries(name) for name in SHIPPED_SETS}
for name, (found, missing) in shipped_by_set.items():
    if name != dataset:  # a note on the models of the set shown only
        continue
    if name != "shapes" and missing:  # one line, not a warning per method
        st.info(missing_note(name, found, missing))
        continue
    for message in missing:
        st.warning(message)
user: list[Entry] = st.session_state.setdefault("shift_user_entries", [])
finished = run_entry(current_run("shift")[0])  # the finished run of this page's URL (a reload, a link) is listed
if finished is not None and finished.name not in {e.name for e in user}:
    user.append(finished)
shipped = shipped_by_set.get(dataset, ([], []))[0]
entries = shipped + [e for e in user if entry_dataset(e) == dataset]

results, teach, train = st.tabs(["Results", "Slide an image", "Train your own"], key="shift_tab", bind="query-params")

with results:
    if results.open:  # tables and charts drawn only while shown (a tab switch reruns the page); its controls always
        for name in [*SHIPPED_SETS, *([dataset] if dataset not in SHIPPED_SETS else [])]:
            set_shipped = shipped_by_set.get(name, ([], []))[0]
            set_entries = set_shipped + [e for e in user if entry_dataset(e) == name]
            st.markdown(f"**{SET_LABELS[name]}**")
            if not set_entries:
                st.caption("No models yet: see assets/shift/MODEL_CARD.md for the commands that make them.")
                continue
            rows = table_rows(set_entries)
            st.dataframe(table_frame(rows), hide_index=True, width="stretch")
            download_buttons(rows, f"shift_table_{name}")
            st.markdown(gain_status(set_entries, name))
            st.caption(table_note(set_entries))
        if not entries:
            st.info(f"No models for {SET_LABELS[dataset]} on this page yet: train one under *Train your own*.")
        else:
            st.markdown(f"**{SET_LABELS[dataset]}: accuracy against consistency, and the per-shift curves**")
            st.plotly_chart(scatter_figure(entries, PAPER_COLUMN[dataset]), width="stretch",
                            config=chart_config("shift_top1_vs_consistency"))
            left, right = st.columns(2)
            left.plotly_chart(curve_figure(entries, "agree_curve", "Agreement with the prediction at shift 0"), width="stretch",
                              config=chart_config("shift_agreement_curve"))
            right.plotly_chart(curve_figure(entries, "prob_curve", "True-class probability"), width="stretch",
                               config=chart_config("shift_probability_curve"))
            download_buttons(curve_rows(entries), "shift_curves")
            st.caption(curves_note(entries))

    st.markdown("**Measure it yourself**: Top-1 and Cons.k of one model, now, on fresh held-out images; Cons.k also "
                "on the images it classifies right and wrong (the paper's AugShift stays consistent even where it is "
                "wrong: CIFAR-100 Cons.8 85.6 at Top-1 72.6).")
    names = {e.name: e for e in entries}
    m1, m2, m3, m4 = st.columns([2, 1, 1, 1])
    chosen = m1.selectbox("Model", list(names), key="shift_cons_model", bind="query-params")
    if chosen is None:
        st.caption("No model of this data set to measure yet.")
    samples = m2.number_input("Images", 100, 2000, 500, step=100, key="shift_cons_images", bind="query-params")
    k = m3.selectbox("Max shift k (px)", [8, 16], key="shift_cons_k", bind="query-params")
    passes = m4.number_input("Passes", 1, 5, 2, key="shift_cons_passes", bind="query-params")
    measured: list[dict] = st.session_state.setdefault("shift_measured", [])
    if st.button("Evaluate consistency", key="shift_cons_run", disabled=chosen is None):
        bar = st.progress(0.0, "consistency")
        measured.append(measure(names[chosen], int(samples), int(k), int(passes),
                                on_progress=lambda p: bar.progress(p.fraction, p.message)))
        bar.empty()
    if measured:
        st.table(measured_frame(measured), hide_index=True)
        download_buttons(measured, "shift_consistency")
        st.caption("Each rate with its 95% Wilson interval and the images it counts. Cons.k compares images x passes "
                   "shifted pairs, but an image's pairs are not independent, so the interval counts each image once. "
                   "A model gets few images wrong, so Cons.k on them rests on few images: read its interval, not the "
                   "bare number.")

with teach:
    c1, c2 = st.columns(2)
    index = c1.number_input("Test image", min_value=0, max_value=199, value=3, step=1, key="shift_image",
                            bind="query-params")
    max_shift = c2.select_slider("Canvas margin (px)", options=[8, 16], value=16, key="shift_margin",
                                 bind="query-params")
    half = max_shift // 2
    offset = st.slider("Slide the image (px, left to right)", -half, half, 0, key="shift_slide", bind="query-params",
                       help=f"Offset from the original position: -{half} to +{half} px on a canvas with a {max_shift} px margin")
    if teach.open:  # computed and drawn only while shown; its controls always, so the link keeps them
        shift = offset + half  # index of the view, 0..max_shift
        image, label = teaching_image(int(index), 32, dataset)
        classes = shift_lab.class_names(dataset)
        slid = slide_probabilities(entries, image, max_shift, classes)
        probs = slid.probs
        pic, bars = st.columns([1, 3])
        pic.image(view_image(image, max_shift, shift), caption=f"offset {offset:+d} px")
        if probs:
            bars.plotly_chart(probability_figure(entries, probs, shift, classes, label), width="stretch",
                              config=chart_config("shift_slide_probabilities"))
            st.dataframe(pd.DataFrame([{"model": n, "prediction": classes[int(p[shift].argmax())],
                                        "flips over the slide": int((p.argmax(1)[1:] != p.argmax(1)[:-1]).sum())}
                                       for n, p in probs.items()]), hide_index=True)
            download_buttons(slid.rows(), "shift_slide")
        else:
            bars.caption(f"true class: {classes[label]}; no model of this data set to ask yet.")

with train:
    with st.form("shift_train"):
        a, b, c = st.columns(3)
        method = a.selectbox("Method", METHODS, format_func=METHOD_LABELS.get, key="shift_method",
                             bind="query-params")
        steps = b.number_input("Steps", 1, 20_000, 300, step=50, key="shift_steps", bind="query-params")
        batch = c.number_input("Images per step", 8, 512, 64, step=8, key="shift_batch", bind="query-params")
        lam = a.number_input("AugShift lambda", 0.0, 1000.0, DEFAULT_LAMBDA, key="shift_lam", bind="query-params")
        blur = b.selectbox("BlurPool filter size", [2, 3, 4, 5], index=1, key="shift_blur", bind="query-params")
        seed = c.number_input("Seed", 0, 10_000, 0, key="shift_seed", bind="query-params")
        eval_samples = a.number_input("Evaluation images", 100, 5000, 500, step=100, key="shift_eval",
                                      bind="query-params")
        pool = b.number_input("Training images (0 = fresh every step)", 0, 100_000, ShiftConfig.train_images, step=100,
                              key="shift_pool", bind="query-params")
        clutter = c.number_input("Clutter", 0.0, 1.0, 0.0, step=0.1, key="shift_clutter", bind="query-params",
                                 disabled=dataset != "shapes",
                                 help="Harder 10-class shapes: lower contrast, a distractor shape and pixel noise "
                                      "(training and evaluation). 0 = the set the shipped models learned.")
        st.caption(f"Trains on {SET_LABELS[dataset]} (the data set selector above)"
                   + ("; its training images are its own 1,297, whatever the pool says." if dataset == "digits" else "."))
        busy = busy_message("shift")
        submitted = st.form_submit_button("Train", type="primary", disabled=busy is not None)
    busy_note(busy)
    if submitted:
        config = ShiftConfig(method=method, lam=lam, blur_filter=blur, train_images=int(pool), dataset=dataset,
                             clutter=float(clutter) if dataset == "shapes" else 0.0)
        train_config = TrainConfig(steps=int(steps), batch=int(batch), seed=int(seed))
        start_run(shift_lab.start_run(store(), config, train_config, int(eval_samples)), shift_lab.train_run)
    run_status("shift", resume=shift_lab.train_run)
    recent_runs("shift")

with link_note:
    note_refused_params(LINK, {"shift_method": METHOD_LABELS.get})
