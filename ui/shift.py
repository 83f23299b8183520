"""Shift lab helpers: cached shipped models, the background trainer, and the plotly figures."""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go
import streamlit as st
import torch
from PIL import Image

from engine.data.grid import denormalize
from engine.data.patches import GeneratedShapes
from engine.shift.consistency import ShiftEvaluation, evaluate_shift, held_out_images, slide, slide_views
from engine.shift.models import METHOD_LABELS, METHODS, ShiftConfig, ShiftNet
from engine.shift.shipped import PAPER_TABLE2, load_shipped
from engine.progress import ProgressFn
from engine.shift.train import train_shift
from engine.training import TrainConfig
from ui.jobs import Job

TEACHING_SEED = 31_337


@dataclass
class Entry:
    """One model on the page: its name, network, and Top-1 / Cons / curves."""

    name: str
    origin: str
    model: ShiftNet
    evaluation: dict


@st.cache_resource(show_spinner="Loading the shipped shift-lab models…")
def shipped_entries() -> tuple[list[Entry], list[str]]:
    """The shipped models with the evaluation stored at training time, and messages for missing ones."""
    entries, missing = [], []
    for method in METHODS:
        try:
            model, meta = load_shipped(method)
        except (FileNotFoundError, ValueError) as err:
            missing.append(str(err))
            continue
        entries.append(Entry(METHOD_LABELS[method], "shipped", model, meta["eval"]))
    return entries, missing


def table_rows(entries: list[Entry]) -> list[dict]:
    """Rows for the Top-1 / Cons table, the paper's CIFAR-10 numbers beside each method."""
    rows = []
    for e in entries:
        paper = PAPER_TABLE2.get(e.model.config.method)
        rows.append({"model": e.name, "from": e.origin, "Top-1": round(e.evaluation["top1"], 1),
                     f"Cons.{e.evaluation['max_shift']}": round(e.evaluation["cons"], 1),
                     "paper CIFAR-10 Top-1": paper["cifar10"][0] if paper else None,
                     "paper CIFAR-10 Cons.8": paper["cifar10"][1] if paper else None})
    return rows


def curve_rows(entries: list[Entry]) -> list[dict]:
    """The per-shift curves of every model as rows: diagonal shift, agreement, true-class probability, accuracy."""
    return [{"model": e.name, "from": e.origin, "shift (px)": s, "agreement with shift 0": agree,
             "true-class probability": prob, "accuracy": acc}
            for e in entries
            for s, (agree, prob, acc) in enumerate(zip(e.evaluation["agree_curve"], e.evaluation["prob_curve"],
                                                      e.evaluation["acc_curve"]))]


def measure(entry: Entry, samples: int, max_shift: int, passes: int, on_progress: ProgressFn | None = None) -> dict:
    """Measure one model's Top-1 and Cons.k now, on ``samples`` held-out images; a table row with the seconds taken."""
    start = time.perf_counter()
    evaluation = evaluate_shift(entry.model, samples=samples, max_shift=max_shift, passes=passes,
                                on_progress=on_progress)
    return {"model": entry.name, "images": samples, "passes": passes, "Top-1": round(evaluation.top1, 1),
            f"Cons.{max_shift}": round(evaluation.cons, 1), f"Cons.{max_shift} on images it gets right": _round(evaluation.cons_right),
            f"Cons.{max_shift} on images it gets wrong": _round(evaluation.cons_wrong), "seconds": round(time.perf_counter() - start, 1)}


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def scatter_figure(entries: list[Entry]) -> go.Figure:
    """Accuracy vs consistency: each model a point; the paper's CIFAR-10 rows as hollow markers."""
    fig = go.Figure()
    for origin, symbol in (("shipped", "circle"), ("yours", "diamond")):
        pts = [e for e in entries if e.origin == origin]
        if pts:
            fig.add_trace(go.Scatter(x=[e.evaluation["cons"] for e in pts], y=[e.evaluation["top1"] for e in pts],
                                     text=[e.name for e in pts], mode="markers+text", textposition="top center",
                                     marker=dict(size=13, symbol=symbol), name=f"{origin} (shapes)"))
    paper = [(METHOD_LABELS[m], v["cifar10"]) for m, v in PAPER_TABLE2.items() if v]
    fig.add_trace(go.Scatter(x=[c for _, (_, c) in paper], y=[t for _, (t, _) in paper], text=[n for n, _ in paper],
                             mode="markers+text", textposition="bottom center", name="paper (CIFAR-10)",
                             marker=dict(size=11, symbol="circle-open")))
    fig.update_layout(xaxis_title="Consistency (%)", yaxis_title="Top-1 (%)", height=420, margin=dict(t=30, b=40))
    return fig


def curve_figure(entries: list[Entry], key: str, title: str) -> go.Figure:
    """One line per model over the diagonal shift 0..k (``key`` = agree_curve, prob_curve or acc_curve)."""
    fig = go.Figure()
    for e in entries:
        curve = e.evaluation[key]
        fig.add_trace(go.Scatter(x=list(range(len(curve))), y=curve, mode="lines+markers", name=e.name))
    # a vertical toolbar leaves the half-width title readable; the legend goes below, out of the toolbar's way
    fig.update_layout(title=title, xaxis_title="diagonal shift (px)", yaxis_title="%", height=420, margin=dict(t=50, b=40, r=40),
                      modebar=dict(orientation="v"), legend=dict(orientation="h", yanchor="top", y=-0.22))
    return fig


@st.cache_data(show_spinner=False)
def teaching_image(index: int, crop: int = 32) -> tuple[torch.Tensor, int]:
    """One held-out generated image (normalised) and its label, chosen by index."""
    images, labels = held_out_images(GeneratedShapes(crop), index + 1, TEACHING_SEED)
    return images[index], int(labels[index])


def slide_probabilities(entries: list[Entry], image: torch.Tensor, max_shift: int) -> dict[str, np.ndarray]:
    """Probabilities (k + 1, classes) of each model as the image slides (cached per model and image)."""
    return {e.name: _slide_cached(e.name, id(e.model), image, max_shift, _model=e.model) for e in entries}


@st.cache_data(show_spinner=False, max_entries=256, hash_funcs={torch.Tensor: lambda t: t.numpy().tobytes()})
def _slide_cached(name: str, model_id: int, image: torch.Tensor, max_shift: int, _model: ShiftNet) -> np.ndarray:
    return slide(_model, image, max_shift).numpy()


def view_image(image: torch.Tensor, max_shift: int, shift: int, scale: int = 6) -> Image.Image:
    """The view at ``shift`` as an upscaled picture (nearest neighbour, so pixels stay visible)."""
    view = denormalize(slide_views(image, max_shift)[shift : shift + 1])[0]
    array = (view.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    return Image.fromarray(array).resize((array.shape[1] * scale, array.shape[0] * scale), Image.NEAREST)


def slide_rows(probs: dict[str, np.ndarray], max_shift: int, classes: tuple[str, ...]) -> list[dict]:
    """Every model's class probabilities (%) at every offset of the slide."""
    return [{"model": name, "offset (px)": s - max_shift // 2, **{c: float(100 * q) for c, q in zip(classes, p[s])}}
            for name, p in probs.items() for s in range(len(p))]


def probability_figure(probs: dict[str, np.ndarray], shift: int, classes: tuple[str, ...], label: int) -> go.Figure:
    """Grouped bars: every model's class probabilities at this shift; the true class is marked."""
    fig = go.Figure()
    for name, p in probs.items():
        fig.add_trace(go.Bar(x=list(classes), y=p[shift] * 100, name=name))
    fig.update_layout(barmode="group", yaxis=dict(title="probability (%)", range=[0, 100]), height=360,
                      margin=dict(t=40, b=40), title=f"true class: {classes[label]}")
    return fig


def train_and_evaluate(config: ShiftConfig, train: TrainConfig, eval_samples: int, job: Job) -> tuple[ShiftNet, ShiftEvaluation]:
    """The work of a page training job: train, then measure Top-1 / Cons.8 and the curves."""
    model, _ = train_shift(config, train, on_progress=job.on_progress, stop=job.stop)
    return model, evaluate_shift(model, samples=eval_samples, on_progress=job.on_progress)
