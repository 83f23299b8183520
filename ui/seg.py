"""Segmentation lab, Streamlit side: shared cached model/data/latents and the plotly figures.

Everything cached with ``st.cache_resource`` is shared between sessions and threads and is only
read: ablations pass channel masks, they never modify the model or the latents.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from engine.seg.ablation import evaluate_latents, scores
from engine.seg.classes import NAMES, colorize
from engine.seg.features import LatentCache, Latents
from engine.seg.lab import DEFAULT_VAL, channel_order, subset_latents
from engine.seg.metrics import REGIONS
from engine.seg.models import SegModel, load_model
from engine.seg.ranking import rank
from engine.seg.scenes import SceneSet, generate
from engine.storage import ASSETS

COLORS = {"overall": "#d62728", "left": "#1f77b4", "right": "#2ca02c", "kflip1": "#9467bd", "kflip2": "#8c564b",
          "random": "#7f7f7f"}


def model_files() -> list[Path]:
    """Segmentation checkpoints shipped in assets/seg."""
    return sorted((ASSETS / "seg").glob("*.pt"))


@st.cache_resource(show_spinner="Loading the segmentation model…")
def shared_model(path: str) -> SegModel:
    return load_model(path)


@st.cache_resource(show_spinner="Generating street scenes…")
def shared_data() -> SceneSet:
    return generate(DEFAULT_VAL)


@st.cache_resource
def shared_cache() -> LatentCache:
    return LatentCache(max_bytes=512 << 20)


@st.cache_resource(show_spinner="Computing backbone latents (once per model and data)…")
def shared_latents(path: str, subset: str) -> Latents:
    seg, data = shared_model(path), shared_data()
    return subset_latents(shared_cache().get(seg, data), data, subset)


@st.cache_resource(show_spinner="Ranking channels…")
def shared_order(path: str, ranking: str, draw: int = 0) -> np.ndarray:
    return channel_order(shared_model(path), shared_data(), ranking, draw)


@st.cache_data(show_spinner=False)
def baseline_scores(path: str, subset: str) -> dict[str, float]:
    return scores(evaluate_latents(shared_model(path), shared_latents(path, subset)))


@st.cache_data(show_spinner=False)
def ranking_scores(path: str, method: str) -> np.ndarray:
    return rank(shared_model(path), shared_data(), method).scores


def ranking_figure(scores_by_method: dict[str, np.ndarray]) -> go.Figure:
    """Score per channel, sorted descending, one line per ranking method."""
    fig = go.Figure()
    for method, s in scores_by_method.items():
        fig.add_scatter(y=np.sort(s)[::-1], mode="lines", name=method, line_color=COLORS.get(method))
    fig.update_layout(xaxis_title="rank", yaxis_title="mean GAP difference (flip)", height=320,
                      margin=dict(l=10, r=10, t=30, b=10), title="Channel rankings")
    return fig


def sweep_figure(rows: list[dict]) -> go.Figure:
    """mIoU vs N per region: each ranking as a line, random as mean with a min-max band (Fig. 4 top)."""
    fig = make_subplots(rows=1, cols=4, subplot_titles=[f"{r} mIoU" for r in REGIONS], shared_yaxes=True)
    for col, region in enumerate(REGIONS, start=1):
        for name in dict.fromkeys(r["ranking"] for r in rows):
            pts = [r for r in rows if r["ranking"] == name]
            ns = sorted({r["n"] for r in pts})
            vals = [[100 * r[region] for r in pts if r["n"] == n] for n in ns]
            color = COLORS.get(name, "#000")
            if name == "random":
                fig.add_scatter(x=ns + ns[::-1], y=[max(v) for v in vals] + [min(v) for v in vals][::-1], fill="toself",
                                line_width=0, fillcolor="rgba(127,127,127,0.25)", name="random min-max",
                                showlegend=col == 1, row=1, col=col)
            fig.add_scatter(x=ns, y=[float(np.mean(v)) for v in vals], mode="lines+markers", line_color=color,
                            name=f"{name} (mean)" if name == "random" else name, showlegend=col == 1, row=1, col=col)
    fig.update_xaxes(title_text="N zeroed")
    fig.update_layout(height=330, margin=dict(l=10, r=10, t=40, b=10))
    return fig


def range_figure(rows: list[dict]) -> go.Figure:
    """mIoU per region when only ranks [a, b) are zeroed (Fig. 4 bottom row)."""
    fig = make_subplots(rows=1, cols=4, subplot_titles=[f"{r} mIoU" for r in REGIONS], shared_yaxes=True)
    for col, region in enumerate(REGIONS, start=1):
        for name in dict.fromkeys(r["ranking"] for r in rows):
            pts = [r for r in rows if r["ranking"] == name]
            fig.add_bar(x=[f"{r['a']}-{r['b']}" for r in pts], y=[100 * r[region] for r in pts], name=name,
                        marker_color=COLORS.get(name), showlegend=col == 1, row=1, col=col)
    fig.update_xaxes(title_text="ranks zeroed")
    fig.update_layout(height=330, margin=dict(l=10, r=10, t=40, b=10))
    return fig


def region_attack_figure(rows: list[dict]) -> go.Figure:
    """Left-half mIoU vs N under the left, overall and right rankings (Fig. 6)."""
    fig = go.Figure()
    for name in ("left", "overall", "right"):
        pts = sorted((r for r in rows if r["ranking"] == name), key=lambda r: r["n"])
        fig.add_scatter(x=[r["n"] for r in pts], y=[100 * r["left"] for r in pts], mode="lines+markers", name=name,
                        line_color=COLORS[name])
    fig.update_layout(xaxis_title="N zeroed", yaxis_title="left-half mIoU (%)", height=320,
                      margin=dict(l=10, r=10, t=30, b=10), title="Region-specific attack (left half)")
    return fig


def overlay(image: np.ndarray, labels: np.ndarray, alpha: float = 0.55) -> np.ndarray:
    """An RGB image with a label map blended over it."""
    return (image * (1 - alpha) + colorize(labels) * alpha).astype(np.uint8)


def changed_map(image: np.ndarray, changed: np.ndarray) -> np.ndarray:
    """The image dimmed, with pixels whose prediction changed in bright magenta."""
    out = (image * 0.35).astype(np.uint8)
    out[changed] = (255, 0, 255)
    return out


def legend_markdown(labels: np.ndarray) -> str:
    """A colour legend of the classes present in a label map."""
    present = [c for c in np.unique(labels) if c < len(NAMES)]
    return " ".join(f"<span style='color:rgb{tuple(int(v) for v in colorize(np.array([c]))[0])}'>■</span> {NAMES[c]}"
                    for c in present)
