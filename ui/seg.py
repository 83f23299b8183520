"""Segmentation lab, Streamlit side: shared cached model/data/latents and the plotly figures.

Everything cached with ``st.cache_resource`` is shared between sessions and threads and is only
read: ablations pass channel masks, they never modify the model or the latents.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from engine.seg.ablation import evaluate_latents, scores
from engine.seg.classes import colorize
from engine.seg.features import LatentCache, Latents
from engine.seg.lab import DEFAULT_VAL, channel_order, load_data, subset_latents
from engine.seg.metrics import REGIONS
from engine.seg.models import SegModel, cached_pretrained, load_model, load_pretrained
from engine.seg.ranking import Ranking, rank
from engine.seg.scenes import SceneSet
from engine.storage import ASSETS, fingerprint
from ui.uploads import user_seg_models

COLORS = {"overall": "#d62728", "left": "#1f77b4", "right": "#2ca02c", "kflip1": "#9467bd", "kflip2": "#8c564b",
          "random": "#7f7f7f"}
# Paper Sec. 4.2 (DeepLabV3-ResNet-50, Cityscapes val, 2048 latent channels): all-image mIoU with the top N
# channels of the overall ranking zeroed, and with N random channels zeroed.
PAPER_WIDTH = 2048
PAPER_MIOU = {0: (74.0, 74.0), 100: (71.9, 73.4), 500: (64.7, 70.5)}
SHIPPED_WIDTH = 576  # latent width of the shipped model, on which assets/seg/fidelity_sweep.json was measured
# Models and data are cache keys by identity of content: weights + settings, and the data's description.
HASH = {SegModel: lambda seg: seg.fingerprint, SceneSet: lambda data: fingerprint(data.key)}


def model_files() -> list[Path]:
    """Segmentation checkpoints shipped in assets/seg."""
    return sorted((ASSETS / "seg").glob("*.pt"))


@st.cache_resource(show_spinner="Loading the segmentation model…")
def shared_model(path: str) -> SegModel:
    return load_model(path)


@st.cache_resource(max_entries=2, show_spinner="Loading torchvision's pretrained weights from the local cache…")
def shared_pretrained(arch: str) -> SegModel:
    return load_pretrained(arch)


def model_choices() -> dict[str, Callable[[], SegModel]]:
    """Every model this session can use, by label: shipped, the user's (sidebar uploads), cached torchvision weights."""
    choices: dict[str, Callable[[], SegModel]] = {f"shipped: {p.stem}": lambda p=p: shared_model(str(p)) for p in model_files()}
    choices |= {f"yours: {name}": lambda m=m: m for name, m in user_seg_models().items()}
    choices |= {f"torchvision pretrained: {a}": lambda a=a: shared_pretrained(a) for a in cached_pretrained()}
    return choices


@st.cache_resource(max_entries=4, show_spinner="Reading the images…")
def shared_data(path: str = "", split: str = "val", count: int = DEFAULT_VAL.count, height: int = DEFAULT_VAL.height) -> SceneSet:
    """Generated val scenes (no path) or a Cityscapes folder, loaded once per server."""
    return load_data(path or None, split, count, height)


@st.cache_resource
def shared_cache(use_disk: bool = True) -> LatentCache:
    """The latent cache; the one for uploaded models keeps nothing on disk."""
    return LatentCache(max_bytes=512 << 20, use_disk=use_disk)


@st.cache_resource(max_entries=8, hash_funcs=HASH, show_spinner="Computing backbone latents (once per model and data)…")
def shared_latents(seg: SegModel, data: SceneSet, subset: str) -> Latents:
    return subset_latents(shared_cache(not seg.meta.get("uploaded")).get(seg, data), data, subset)


@st.cache_resource(max_entries=64, hash_funcs=HASH, show_spinner="Ranking channels…")
def shared_order(seg: SegModel, data: SceneSet, ranking: str, draw: int = 0) -> np.ndarray:
    return channel_order(seg, data, ranking, draw)


@st.cache_data(max_entries=32, hash_funcs=HASH, show_spinner=False)
def baseline_scores(seg: SegModel, data: SceneSet, subset: str) -> dict[str, float]:
    return scores(evaluate_latents(seg, shared_latents(seg, data, subset)))


@st.cache_data(max_entries=64, hash_funcs=HASH, show_spinner=False)
def shared_ranking(seg: SegModel, data: SceneSet, method: str) -> Ranking:
    return rank(seg, data, method)


@st.cache_data(show_spinner=False)
def shipped_comparison() -> list[dict]:
    """:func:`paper_comparison` of the sweep recorded for the shipped model on the default scenes."""
    path = ASSETS / "seg" / "fidelity_sweep.json"
    return paper_comparison(json.loads(path.read_text()) if path.is_file() else [], SHIPPED_WIDTH)


def paper_comparison(rows: list[dict], width: int) -> list[dict]:
    """The paper's all-mIoU beside a sweep's, at the sweep's N nearest the paper's share of the latent (within 1%)."""
    out = []
    for n_paper, (paper_top, paper_random) in PAPER_MIOU.items():
        share = n_paper / PAPER_WIDTH
        ns = sorted({r["n"] for r in rows}, key=lambda n: abs(n / width - share))
        n = ns[0] if ns and abs(ns[0] / width - share) <= 0.01 else None
        top = [100 * r["all"] for r in rows if r["n"] == n and r["ranking"] == "overall"]
        rand = [100 * r["all"] for r in rows if r["n"] == n and r["ranking"] == "random"]
        out.append({"N (paper, of 2048)": n_paper, "paper: top-N overall": paper_top, "paper: N random": paper_random,
                    f"N here (of {width})": "–" if n is None else str(n), "here: top-N overall": round(top[0], 1) if top else None,
                    "here: N random (mean)": round(float(np.mean(rand)), 1) if rand else None})
    return out


def ranking_export(rankings: dict[str, Ranking]) -> tuple[list[dict], dict]:
    """Rankings as table rows (method, rank, channel, score) and as JSON (per method: channel order and scores)."""
    rows = [{"method": m, "rank": i, "channel": int(c), "score": float(r.scores[c])}
            for m, r in rankings.items() for i, c in enumerate(r.order)]
    as_json = {m: {"images": r.count, "order": r.order.tolist(), "scores": r.scores.tolist()} for m, r in rankings.items()}
    return rows, as_json


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
    fig.update_layout(height=350, margin=dict(l=10, r=10, t=60, b=10))
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
    fig.update_layout(height=350, margin=dict(l=10, r=10, t=60, b=10))
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


def legend_markdown(labels: np.ndarray, names: list[str]) -> str:
    """A colour legend of the classes present in a label map."""
    present = [c for c in np.unique(labels) if c < len(names)]
    return " ".join(f"<span style='color:rgb{tuple(int(v) for v in colorize(np.array([c]))[0])}'>■</span> {names[c]}"
                    for c in present)
