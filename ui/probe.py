"""Grid-probe helpers for the pages: cached model loading and plotly figures."""
from __future__ import annotations

import json

import numpy as np
import plotly.graph_objects as go
import streamlit as st
import torch

from engine.models.probe import HEAD_LABELS, ProbeNet
from engine.probe import cell_sweep
from engine.probe_assets import PROBE_ASSETS, load_shipped_probe, shipped_probe_path


@st.cache_resource(max_entries=16, show_spinner="Loading checkpoint…")
def shipped_probe(head: str, task: str, grid: int, padding: str) -> ProbeNet:
    """A shipped probe, loaded once per server and shared read-only by every session."""
    return load_shipped_probe(head, task, grid, padding)[0]


@st.cache_data(max_entries=256, show_spinner=False)
def sweep(_model: ProbeNet, model_key: str, patch: np.ndarray) -> torch.Tensor:
    """``cell_sweep`` of one patch, computed once per (model, image): moving the cell reuses it."""
    return cell_sweep(_model, torch.from_numpy(patch))


def model_key(name: str, model: ProbeNet) -> str:
    """A cache key for a model in this server process (name, settings and identity)."""
    return f"{name}|{model.config.label}|{id(model)}"


def shipped_available(head: str, task: str, grid: int, padding: str) -> bool:
    return shipped_probe_path(head, task, grid, padding).is_file()


def user_probes() -> dict[str, ProbeNet]:
    """Models this session trained or loaded, by display name."""
    return st.session_state.setdefault("user_probes", {})


def shipped_table1() -> list[dict]:
    """Rows measured by ``python -m engine table1 --json assets/probe/table1.json`` (see the model card)."""
    path = PROBE_ASSETS / "table1.json"
    return json.loads(path.read_text()) if path.is_file() else []


def to_image(canvas: torch.Tensor, scale: int = 1) -> np.ndarray:
    """(3, H, W) in [0, 1] -> uint8 HWC, optionally upscaled by pixel repetition."""
    img = (canvas.clamp(0, 1).permute(1, 2, 0).numpy() * 255).astype(np.uint8)
    return img.repeat(scale, 0).repeat(scale, 1) if scale > 1 else img


def canvas_figure(image: np.ndarray, grid: int, selected: int) -> go.Figure:
    """The canvas with a clickable square marker per cell (plotly cannot click a heatmap)."""
    size = image.shape[0]
    step = size / grid
    centres = [(c % grid + 0.5) * step for c in range(grid * grid)], [(c // grid + 0.5) * step for c in range(grid * grid)]
    fig = go.Figure(go.Image(z=image, hoverinfo="skip"))
    fig.add_trace(go.Scatter(
        x=centres[0], y=centres[1], mode="markers", customdata=list(range(grid * grid)),
        marker=dict(symbol="square", size=max(8, int(300 / grid)), opacity=0.12, color=["#ff4b4b" if c == selected else "#ffffff" for c in range(grid * grid)],
                    line=dict(width=2, color=["#ff4b4b" if c == selected else "rgba(255,255,255,0.5)" for c in range(grid * grid)])),
        hovertemplate="cell %{customdata}<extra>click to place</extra>", showlegend=False))
    fig.update_layout(width=340, height=340, margin=dict(l=0, r=0, t=0, b=0), clickmode="event+select", dragmode=False)
    fig.update_xaxes(visible=False, range=[0, size])
    fig.update_yaxes(visible=False, range=[size, 0])
    return fig


def grid_heatmap(values: np.ndarray, title: str, mark: int | None = None, target: int | None = None,
                 zmax: float = 1.0, fmt: str = ".2f", colorscale: str = "Viridis") -> go.Figure:
    """A grid x grid heatmap (row-major cells), the argmax ringed in red and the true cell in white."""
    grid = values.shape[0]
    fig = go.Figure(go.Heatmap(z=values, zmin=0, zmax=zmax, colorscale=colorscale, texttemplate=f"%{{z:{fmt}}}",
                               showscale=False, hovertemplate="row %{y}, col %{x}: %{z:.3f}<extra></extra>"))
    for cell, colour, name in ((target, "white", "true cell"), (mark, "#ff4b4b", "prediction")):
        if cell is not None:
            r, c = divmod(int(cell), grid)
            fig.add_shape(type="rect", x0=c - 0.5, x1=c + 0.5, y0=r - 0.5, y1=r + 0.5, line=dict(color=colour, width=4), name=name)
    fig.update_layout(title=title, width=340, height=340, margin=dict(l=10, r=40, t=40, b=10), modebar=dict(orientation="v"))
    fig.update_yaxes(autorange="reversed", visible=False)
    fig.update_xaxes(visible=False)
    return fig


def class_bars(probs: np.ndarray, classes: tuple[str, ...], title: str, target: int | None = None) -> go.Figure:
    """Class probabilities as bars, the true class highlighted."""
    colours = ["#ff4b4b" if i == target else "#4c78a8" for i in range(len(classes))]
    fig = go.Figure(go.Bar(x=list(classes), y=probs, marker_color=colours))
    fig.update_layout(title=title, height=300, yaxis=dict(range=[0, 1], title="probability"), margin=dict(l=10, r=10, t=40, b=10))
    return fig


def curve_figure(history: list[dict[str, float]]) -> go.Figure:
    """Training loss and accuracy against step, two y axes."""
    steps = [h["step"] for h in history]
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=steps, y=[h.get("loss") for h in history], name="loss", yaxis="y"))
    fig.add_trace(go.Scatter(x=steps, y=[h.get("accuracy") for h in history], name="accuracy %", yaxis="y2"))
    fig.update_layout(height=280, margin=dict(l=10, r=10, t=10, b=10), xaxis_title="step",
                      yaxis=dict(title="loss", type="log"), yaxis2=dict(title="accuracy %", overlaying="y", side="right", range=[0, 100]))
    return fig


def net_label(model: ProbeNet) -> str:
    return HEAD_LABELS[model.config.head]
