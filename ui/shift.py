"""Shift lab helpers: cached shipped models, the background trainer, and the plotly figures."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st
import torch
from PIL import Image
from plotly.colors import qualitative

from engine.core.cache import CACHE, model_key
from engine.core.progress import ProgressFn
from engine.core.runs import Run
from engine.core.stats import format_pct, pct_interval
from engine.core.storage import CheckpointError, fingerprint
from engine.data.grid import denormalize
from engine.data.named import named_source
from engine.models.shift import METHOD_LABELS, METHODS, ShiftNet, load_shift_model
from engine.shift import lab
from engine.shift.consistency import held_out_images, slide_views
from engine.shift.shipped import PAPER_TABLE2, SHIPPED_SETS, load_shipped, recorded_row

TEACHING_SEED = 31_337


@dataclass
class Entry:
    """One model on the page: its name, network, Top-1 / Cons / curves, and its weights' cache key."""

    name: str
    origin: str
    model: ShiftNet
    evaluation: dict
    key: str = field(init=False)

    def __post_init__(self) -> None:
        self.key = model_key(self.model, self.model.config.label)


SET_LABELS = {"shapes": "Generated shapes, 10 classes (paper column: CIFAR-10)",
              "shapes100": "Generated shapes-100, 100 classes (paper column: CIFAR-100)",
              "digits": "scikit-learn digits, 10 classes of real handwriting"}
PAPER_COLUMN = {"shapes": "cifar10", "shapes100": "cifar100", "digits": "cifar10"}  # the paper's closest regime


@st.cache_resource(show_spinner="Loading the shipped shift-lab models…")
def shipped_entries(dataset: str = "shapes") -> tuple[list[Entry], list[str]]:
    """The shipped models of one set with the evaluation stored at training time, and messages for missing ones."""
    entries, missing = [], []
    if dataset not in SHIPPED_SETS:
        return entries, missing
    for method in METHODS:
        try:
            model, meta = load_shipped(method, dataset)
        except (FileNotFoundError, ValueError) as err:
            missing.append(str(err))
            continue
        entries.append(Entry(METHOD_LABELS[method], "shipped", model, meta["eval"]))
    return entries, missing


def missing_note(dataset: str, found: list[Entry], missing: list[str]) -> str:
    """One line for a set's models that are not shipped: what was measured without them (the asset budget), or how
    many still have to be trained (the card has their commands)."""
    shipped = f"{len(found)} of the {len(found) + len(missing)} {SET_LABELS[dataset]} models ship"
    rows = {m: recorded_row(m, dataset) for m in METHODS if not any(e.model.config.method == m for e in found)}
    if all(rows.values()):
        measured = "; ".join(f"{METHOD_LABELS[m]} was trained but left out of assets/ (the 40 MB budget): Top-1 "
                             f"{r['top1']:.1f}, Cons.8 {r['cons']:.1f} on {r['samples']} test images" for m, r in rows.items())
        return f"{shipped}. {measured} (assets/shift/MODEL_CARD.md has its command)."
    return f"{shipped} so far; assets/shift/MODEL_CARD.md has the commands that make the others."


def tour_text() -> str:
    """The home tour's AugShift sentence, from the shipped shapes-100 models' stored evaluation (the paper's regime)."""
    entries = {e.model.config.method: e.evaluation for e in shipped_entries("shapes100")[0]}
    if "baseline" not in entries or "augshift" not in entries:
        return "The shapes-100 models are not shipped in this copy (assets/shift/MODEL_CARD.md has their commands)."
    base, aug = entries["baseline"], entries["augshift"]
    return (f"On the shipped 100-class shapes at {images_per_class('shapes100')} training images per class (the paper's "
            f"CIFAR-100 regime), Cons.8 "
            f"rises from {base['cons']:.1f}% to {aug['cons']:.1f}% at Top-1 {base['top1']:.1f}% vs {aug['top1']:.1f}% "
            f"(n={aug['samples']:,}; the paper: 70.1% to 85.6% at 72.6%); on the saturated 10-class shapes the gain is small.")


def entry_dataset(entry: Entry) -> str:
    """The built-in set a model was trained on (older checkpoints: the 10-class shapes)."""
    return getattr(entry.model.config, "dataset", "shapes")


def table_rows(entries: list[Entry]) -> list[dict]:
    """Rows for the Top-1 / Cons table (CSV-ready, every rate in percent), the paper's CIFAR-10 and CIFAR-100 numbers
    beside each."""
    rows = []
    for e in entries:
        ev, paper = e.evaluation, PAPER_TABLE2.get(e.model.config.method)
        top1_low, top1_high = pct_interval(ev["top1"], ev["samples"])
        cons_low, cons_high = pct_interval(ev["cons"], ev["samples"])
        rows.append({"model": e.name, "from": e.origin, "data": entry_dataset(e), "classes": len(e.model.config.classes),
                     "images": ev["samples"], "passes": ev["passes"],
                     "max_shift_px": ev["max_shift"], "top1_pct": round(ev["top1"], 2),
                     "top1_ci95_low_pct": round(top1_low, 2), "top1_ci95_high_pct": round(top1_high, 2),
                     "cons_pct": round(ev["cons"], 2), "cons_ci95_low_pct": round(cons_low, 2),
                     "cons_ci95_high_pct": round(cons_high, 2),
                     "paper_cifar10_top1_pct": paper["cifar10"][0] if paper else None,
                     "paper_cifar10_cons8_pct": paper["cifar10"][1] if paper else None,
                     "paper_cifar100_top1_pct": paper["cifar100"][0] if paper else None,
                     "paper_cifar100_cons8_pct": paper["cifar100"][1] if paper else None})
    return rows


# AugShift counts as a clear gain on a set when its Cons.8 is at least CLEAR_GAIN points above the baseline's with its
# Top-1 within SAME_TOP1 points (the paper: +4.0 on CIFAR-10 at -1.0 Top-1, +15.5 on CIFAR-100 at equal Top-1).
CLEAR_GAIN, SAME_TOP1 = 3.0, 2.0


def gain_status(entries: list[Entry], dataset: str) -> str:
    """One set's AugShift result in words: its Cons.8 and Top-1 against the baseline's, whether that is a clear gain
    (``CLEAR_GAIN`` points of Cons.8 at a Top-1 within ``SAME_TOP1``), and the paper's gain beside it."""
    by_method = {e.model.config.method: e.evaluation for e in entries if e.origin == "shipped"}
    if "baseline" not in by_method or "augshift" not in by_method:
        return "AugShift against the baseline: not measured, no shipped models."
    base, aug = by_method["baseline"], by_method["augshift"]
    gain, gap = aug["cons"] - base["cons"], aug["top1"] - base["top1"]
    clear = gain >= CLEAR_GAIN and abs(gap) <= SAME_TOP1
    verdict = "**a clear gain**" if clear else "**no clear gain**" + (
        f" (Cons.8 up less than {CLEAR_GAIN:.0f} points)" if gain < CLEAR_GAIN else "") + (
        f" (Top-1 differs by more than {SAME_TOP1:.0f})" if abs(gap) > SAME_TOP1 else "")
    paper = {"cifar10": "CIFAR-10: +4.0 Cons.8 at -1.0 Top-1", "cifar100": "CIFAR-100: +15.5 Cons.8 at equal Top-1"}
    return (f"{SET_LABELS.get(dataset, dataset).split(' (')[0]}: AugShift's Cons.{aug['max_shift']} is {aug['cons']:.1f} "
            f"against the baseline's {base['cons']:.1f} ({gain:+.1f} points), its Top-1 {aug['top1']:.1f} against "
            f"{base['top1']:.1f} ({gap:+.1f}): {verdict}. The paper, {paper[PAPER_COLUMN.get(dataset, 'cifar10')]}.")


def images_per_class(dataset: str) -> int | None:
    """Training images per class of a set's shipped models (their fixed pool over their classes); ``None`` if none ship."""
    entries = shipped_entries(dataset)[0]
    if not entries or not entries[0].model.config.train_images:
        return None
    config = entries[0].model.config
    return config.train_images // len(config.classes)


def table_frame(rows: list[dict]) -> pd.DataFrame:
    """The Top-1 / Cons table as the page shows it: each rate with its 95% interval, the images it was measured on,
    the paper's Table 2 (CIFAR-10 and CIFAR-100) beside it."""
    return pd.DataFrame([{"model": r["model"], "from": r["from"], "images": r["images"],
                          "Top-1 % (95% CI)": format_pct(r["top1_pct"], r["images"]),
                          f"Cons.{r['max_shift_px']} % (95% CI)": format_pct(r["cons_pct"], r["images"]),
                          "paper CIFAR-10 Top-1": _paper(r["paper_cifar10_top1_pct"]),
                          "paper CIFAR-10 Cons.8": _paper(r["paper_cifar10_cons8_pct"]),
                          "paper CIFAR-100 Top-1": _paper(r["paper_cifar100_top1_pct"]),
                          "paper CIFAR-100 Cons.8": _paper(r["paper_cifar100_cons8_pct"])} for r in rows])


def _paper(value: float | None) -> str:
    """A paper number for the table, or why there is none."""
    return "not reported" if value is None else f"{value:.1f}"


def table_note(entries: list[Entry]) -> str:
    """How the table's numbers were measured and what their intervals count."""
    sizes = sorted({(e.evaluation["samples"], e.evaluation["passes"]) for e in entries})
    measured = "; ".join(f"{n:,} held-out images, {p} passes ({n * p:,} shifted pairs)" for n, p in sizes)
    return (f"Measured on {measured}. 95% Wilson intervals in brackets; for Cons.k they count each image once "
            "(an image's pairs are not independent), which makes them wider than a per-pair count. The paper's numbers "
            "are ResNet-18 on CIFAR-10 and CIFAR-100 (other data and scale), shown for the direction of the effect; it "
            "never measured AugShift + BlurPool.")


def curve_rows(entries: list[Entry]) -> list[dict]:
    """The per-shift curves of every model as CSV rows: diagonal shift (px); agreement, true-class probability and
    accuracy in percent; the images each point averages."""
    return [{"model": e.name, "from": e.origin, "shift_px": s, "images": e.evaluation["samples"],
             "agreement_with_shift0_pct": agree, "true_class_probability_pct": prob, "accuracy_pct": acc}
            for e in entries
            for s, (agree, prob, acc) in enumerate(zip(e.evaluation["agree_curve"], e.evaluation["prob_curve"],
                                                      e.evaluation["acc_curve"]))]


def curves_note(entries: list[Entry]) -> str:
    """How many images each curve point and each scatter point averages."""
    sizes = ", ".join(f"{n:,}" for n in sorted({e.evaluation["samples"] for e in entries}))
    return (f"Each point of the curves averages {sizes} held-out images; the scatter's bars are 95% Wilson intervals "
            "(Cons.k counting each image once).")


def measure(entry: Entry, samples: int, max_shift: int, passes: int, on_progress: ProgressFn | None = None) -> dict:
    """Measure one model's Top-1 and Cons.k now, on ``samples`` held-out images; a CSV-ready row (rates in percent, the
    images each rate counts) with the seconds taken."""
    measured = lab.consistency([(entry.model, entry.name)], samples=samples, max_shift=max_shift, passes=passes,
                               on_progress=on_progress).models[0]
    ev = measured.evaluation
    right = round(ev.top1 * samples / 100)  # Top-1 and the right / wrong split read the same unshifted crop
    return {"model": entry.name, "images": samples, "passes": passes, "max_shift_px": max_shift,
            "top1_pct": round(ev.top1, 2), "cons_pct": round(ev.cons, 2), "images_right": right,
            "cons_right_pct": _round(ev.cons_right), "images_wrong": samples - right,
            "cons_wrong_pct": _round(ev.cons_wrong), "seconds": round(measured.seconds, 1)}


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def measured_frame(rows: list[dict]) -> pd.DataFrame:
    """Measured rows as the page shows them: every rate with its 95% interval and the images it counts."""
    return pd.DataFrame([{"model": r["model"], "images": r["images"], "passes": r["passes"],
                          "Top-1 %": format_pct(r["top1_pct"], r["images"]),
                          f"Cons.{r['max_shift_px']} %": format_pct(r["cons_pct"], r["images"]),
                          **{f"Cons.{r['max_shift_px']} % on images it gets {side}":
                             _per_image(r[f"cons_{side}_pct"], r[f"images_{side}"]) for side in ("right", "wrong")},
                          "seconds": f"{r['seconds']:.1f}"} for r in rows])


def _per_image(pct: float | None, images: int) -> str:
    """A Cons.k on a subset of images: the rate, its 95% interval counting each image once, and how many images."""
    if pct is None or images == 0:
        return "no such images"
    return f"{format_pct(pct, images)} on {images:,} image{'s' if images > 1 else ''}"


def scatter_figure(entries: list[Entry], column: str = "cifar10") -> go.Figure:
    """Accuracy vs consistency: each model a point with its 95% intervals, one colour per method; the paper's CIFAR-10
    rows as hollow markers of the same colour. Names live in the legend, so close points never overlap labels."""
    fig = go.Figure()
    for e in entries:
        ev = e.evaluation
        (t_low, t_high), (c_low, c_high) = pct_interval(ev["top1"], ev["samples"]), pct_interval(ev["cons"], ev["samples"])
        fig.add_trace(go.Scatter(
            x=[ev["cons"]], y=[ev["top1"]], mode="markers", name=e.name,
            marker=dict(size=12, symbol="circle" if e.origin == "shipped" else "diamond", color=_color(e.model.config.method)),
            error_x=dict(type="data", symmetric=False, array=[c_high - ev["cons"]], arrayminus=[ev["cons"] - c_low]),
            error_y=dict(type="data", symmetric=False, array=[t_high - ev["top1"]], arrayminus=[ev["top1"] - t_low]),
            hovertemplate=(f"{e.name}<br>Cons.{ev['max_shift']} %{{x:.1f}} ({c_low:.1f}–{c_high:.1f})<br>"
                           f"Top-1 %{{y:.1f}} ({t_low:.1f}–{t_high:.1f})<br>{ev['samples']:,} images<extra></extra>")))
    for method, paper in PAPER_TABLE2.items():
        if paper:
            fig.add_trace(go.Scatter(x=[paper[column][1]], y=[paper[column][0]], mode="markers",
                                     name=f"paper {column.upper().replace('CIFAR', 'CIFAR-')}: {METHOD_LABELS[method]}",
                                     marker=dict(size=11, symbol="circle-open", color=_color(method), line_width=2)))
    fig.update_layout(xaxis_title="Consistency (%)", yaxis_title="Top-1 (%)", height=440, margin=dict(t=30, b=40),
                      legend=dict(orientation="h", yanchor="top", y=-0.18))
    return fig


def _color(method: str) -> str:
    """One colour per training method, shared by our models and the paper's row."""
    return qualitative.Plotly[METHODS.index(method) % len(qualitative.Plotly)]


def curve_figure(entries: list[Entry], key: str, title: str) -> go.Figure:
    """One line per model over the diagonal shift 0..k (``key`` = agree_curve, prob_curve or acc_curve)."""
    fig = go.Figure()
    for e in entries:
        curve = e.evaluation[key]
        fig.add_trace(go.Scatter(x=list(range(len(curve))), y=curve, mode="lines+markers", name=e.name,
                                 line=dict(color=_color(e.model.config.method),
                                           dash="solid" if e.origin == "shipped" else "dot")))
    # a vertical toolbar leaves the half-width title readable; the legend goes below, out of the toolbar's way
    fig.update_layout(title=title, xaxis_title="diagonal shift (px)", yaxis_title="%", height=420, margin=dict(t=50, b=40, r=40),
                      modebar=dict(orientation="v"), legend=dict(orientation="h", yanchor="top", y=-0.22))
    return fig


@st.cache_data(show_spinner=False)
def teaching_image(index: int, crop: int = 32, dataset: str = "shapes") -> tuple[torch.Tensor, int]:
    """One held-out image of a built-in set (normalised) and its label, chosen by index."""
    images, labels = held_out_images(named_source(dataset, crop), index + 1, TEACHING_SEED)
    return images[index], int(labels[index])


def shown_classes(probs: dict[str, np.ndarray], shift: int, label: int, most: int = 10) -> list[int]:
    """The classes the bar chart shows: all of a small set; of a large one, the true class and the most probable
    ones at this shift over every model (``most`` in all), in class order."""
    classes = next(iter(probs.values())).shape[1] if probs else 0
    if classes <= most:
        return list(range(classes))
    peak = np.max([p[shift] for p in probs.values()], axis=0)
    peak[label] = np.inf
    return sorted(int(i) for i in np.argsort(-peak)[:most])


def slide_probabilities(entries: list[Entry], image: torch.Tensor, max_shift: int,
                        classes: tuple[str, ...]) -> lab.SlideResult:
    """Each model's probabilities (k + 1, classes) as the image slides (cached per model's weights and image)."""
    def probs(e: Entry) -> np.ndarray:
        return CACHE.get_or_compute(fingerprint("shift/slide", e.key, image, max_shift),
                                    lambda: lab.slide({e.key: e.model}, image, max_shift, ()).probs[e.key])

    return lab.SlideResult(max_shift, classes, {e.name: probs(e) for e in entries})


def view_image(image: torch.Tensor, max_shift: int, shift: int, scale: int = 6) -> Image.Image:
    """The view at ``shift`` as an upscaled picture (nearest neighbour, so pixels stay visible)."""
    view = denormalize(slide_views(image, max_shift)[shift : shift + 1])[0]
    array = (view.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    return Image.fromarray(array).resize((array.shape[1] * scale, array.shape[0] * scale), Image.NEAREST)


def probability_figure(entries: list[Entry], probs: dict[str, np.ndarray], shift: int, classes: tuple[str, ...],
                       label: int) -> go.Figure:
    """Grouped bars: every model's class probabilities at this shift; the true class is marked."""
    fig = go.Figure()
    colors = {e.name: _color(e.model.config.method) for e in entries}
    shown = shown_classes(probs, shift, label)
    for name, p in probs.items():
        fig.add_trace(go.Bar(x=[classes[i] for i in shown], y=p[shift][shown] * 100, name=name, marker_color=colors.get(name)))
    more = f" (the {len(shown)} most probable of {len(classes)} classes)" if len(shown) < len(classes) else ""
    fig.update_layout(barmode="group", yaxis=dict(title="probability (%)", range=[0, 100]), height=360,
                      margin=dict(t=40, b=40), title=f"true class: {classes[label]}{more}")
    return fig


@st.cache_resource(max_entries=16, show_spinner=False)
def _run_model(path: str, modified: float) -> ShiftNet:
    """A run's checkpoint loaded once per version of the file (shared read-only)."""
    return load_shift_model(path)[0]


def run_entry(run: Run | None) -> Entry | None:
    """A finished shift run as a model of the page (its evaluation from the run's record); ``None`` for any other."""
    if run is None or run.state != "done" or not run.has_checkpoint or "evaluation" not in run.result:
        return None
    try:
        model = _run_model(str(run.checkpoint), run.checkpoint.stat().st_mtime)
    except (CheckpointError, OSError):
        return None
    return Entry(f"yours: {run.title} · run {run.id[:6]}", "yours", model, run.result["evaluation"])
