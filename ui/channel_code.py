"""Channel code page helpers: cached loaders, the recorded results, and the plotly figures."""
from __future__ import annotations

import json

import pandas as pd
import plotly.graph_objects as go
import streamlit as st
import torch
from plotly.subplots import make_subplots

from engine.channel_code import ChannelMap, Probed, Shuffled, channel_map, decode_cells, shuffle_2x2
from engine.channel_nets import CHANNEL_ASSETS, at_grid, net_for_grid, net_path
from engine.data.grid import denormalize, place_on_grid
from engine.data.patches import GeneratedShapes
from engine.models.probe import HEAD_LABELS, ProbeNet, predict_proba
from engine.probe_assets import paper_accuracy
from ui.probe import user_probes
from ui.uploads import user_classifiers

YOURS = "yours: "
DEMO_NETS = {"probe/location-gapnet": "Location, GAPNet (trained in order)",
             "probe/object-permutenet": "Object, PermuteNet (trained shuffled)",
             "probe/object-gapnet": "Object, GAPNet (trained in order)"}


@st.cache_resource(show_spinner=False)
def net(key: str, grid: int) -> ProbeNet:
    """Network ``key`` for ``grid`` canvases (shared, read-only: only evaluated)."""
    return net_for_grid(key, grid)[0]


def missing(keys: list[str], grid: int = 3) -> list[str]:
    """The shipped checkpoints among ``keys`` that are not there."""
    return [key for key in keys if not net_path(key, grid).is_file()]


def user_nets() -> dict[str, Probed]:
    """This session's probes and image classifiers (sidebar uploads), by their name on this page."""
    return {f"{YOURS}{name}": model for name, model in (user_probes() | user_classifiers()).items()}


def network(key: str, grid: int) -> tuple[Probed, str]:
    """Network ``key`` for ``grid`` canvases and its cache key (an upload's includes its identity: names are per session)."""
    if key.startswith(YOURS):
        model = user_nets()[key]
        return at_grid(model, grid), f"{key}|{grid}|{id(model)}"
    return net(key, grid), f"{key}|{grid}"


@st.cache_data(show_spinner="Placing the images in every cell...")
def _map(_model: Probed, model_key: str, layer: str, images: int, persist: bool) -> ChannelMap:
    return channel_map(_model, images=images, layer=layer, persist=persist)


def cached_map(key: str, grid: int, layer: str, images: int) -> ChannelMap:
    """The channel map of network ``key``; an upload's features never reach the disk cache."""
    return _map(*network(key, grid), layer, images, not key.startswith(YOURS))


def recorded(name: str) -> list[dict] | None:
    """Rows written by the CLI into ``assets/channel_code/<name>.json`` (``None`` if absent)."""
    path = CHANNEL_ASSETS / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def cell_label(cell: int, grid: int) -> str:
    return f"r{cell // grid} c{cell % grid}"


def code_heatmap(cmap: ChannelMap) -> go.Figure:
    """Cells x channels, each channel standardised across cells, channels ordered by preferred cell."""
    order = cmap.order.tolist()
    z = cmap.zscores()[:, order]
    cells = [cell_label(c, cmap.grid) for c in range(cmap.grid**2)]
    fig = go.Figure(go.Heatmap(
        z=z.tolist(), x=list(range(len(order))), y=cells, colorscale="RdBu_r", zmid=0,
        customdata=[order] * len(cells),
        hovertemplate="channel %{customdata}<br>cell %{y}<br>z %{z:.2f}<extra></extra>",
        colorbar={"title": "z across cells"}))
    preferred = cmap.preferred[cmap.order]
    for i in range(1, len(order)):
        if preferred[i] != preferred[i - 1]:
            fig.add_vline(x=i - 0.5, line_width=1, line_color="rgba(0,0,0,0.35)")
    fig.update_layout(height=260 + 12 * cmap.grid**2, margin={"l": 10, "r": 10, "t": 30, "b": 10},
                      xaxis_title="channels, ordered by preferred cell (most selective first)",
                      yaxis={"autorange": "reversed", "title": "cell the images sit in"})
    return fig


def cell_small_multiples(cmap: ChannelMap) -> go.Figure:
    """The grid of grids: in each cell, the response map of the most selective channel preferring it."""
    g = cmap.grid
    tops = cmap.top_per_cell()
    titles = [f"ch {t} · {cmap.selectivity[t]:.2f}" if t >= 0 else "none" for t in tops]
    fig = make_subplots(rows=g, cols=g, subplot_titles=titles, horizontal_spacing=0.02, vertical_spacing=0.06)
    maps = cmap.maps()
    for cell, top in enumerate(tops):
        if top < 0:
            continue
        fig.add_trace(go.Heatmap(z=maps[top].tolist(), colorscale="Viridis", showscale=False,
                                 hovertemplate=f"channel {top}<br>row %{{y}} col %{{x}}<br>%{{z:.3f}}<extra></extra>"),
                      row=cell // g + 1, col=cell % g + 1)
    fig.update_xaxes(showticklabels=False)
    fig.update_yaxes(showticklabels=False, autorange="reversed")
    fig.update_annotations(font_size=10)
    fig.update_layout(height=110 * g + 60, margin={"l": 10, "r": 10, "t": 30, "b": 10})
    return fig


def channel_response(cmap: ChannelMap, channel: int) -> go.Figure:
    """One channel's mean GAP response with the images in each cell."""
    m = cmap.maps()[channel]
    fig = go.Figure(go.Heatmap(z=m.tolist(), colorscale="Viridis", text=[[f"{v:.3f}" for v in row] for row in m.tolist()],
                               texttemplate="%{text}", hovertemplate="row %{y} col %{x}<br>%{z:.4f}<extra></extra>"))
    fig.update_layout(height=320, margin={"l": 10, "r": 10, "t": 30, "b": 10}, title=f"channel {channel}",
                      yaxis={"autorange": "reversed", "scaleanchor": "x"})
    return fig


def decode_frame(rows: list[dict]) -> pd.DataFrame:
    """Decode rows as a table: one line per net, grid and layer; one column per read-out."""
    frame = pd.DataFrame(rows)
    if "trained_grid" in frame:  # None for the untrained control; groupby would drop it
        frame["trained_grid"] = ["-" if pd.isna(g) else str(int(g)) for g in frame["trained_grid"]]
    index = [c for c in ("net", "trained_grid", "grid", "layer") if c in frame]
    table = frame.pivot_table(index=index, columns="readout", values="accuracy", sort=False)
    table["chance"] = frame.groupby(index, sort=False)["chance"].first()
    return table.round(1).reset_index()


def paper_beside(rows: list[dict]) -> pd.DataFrame:
    """Each net's own-condition accuracy in the 2 x 2 (per-call shuffle, tested as trained) beside the paper's
    Table 1 (3x3, zero padding)."""
    head_of = {label: head for head, label in HEAD_LABELS.items()}
    own = [r for r in rows if r["kind"] == "per_call" and r["trained"] == r["tested"]]
    return pd.DataFrame([{"task": r["task"], "net": r["net"], "here (shapes, 3x3)": r["accuracy"],
                          "paper (CIFAR-10, 3x3)": paper_accuracy(r["task"], "zero", head_of[r["net"]], 3)} for r in own])


def head_note(rows: list[dict]) -> str:
    """One line on how much of each trained head is a per-output constant (it then reads only the sum)."""
    shares = {}
    for r in rows:
        shares.setdefault(r["net"], r.get("head_mean_share"))
    parts = [f"{net} {100 * share:.0f}%" for net, share in shares.items() if share is not None]
    return ("Share of each head's weight energy in its per-output mean over channels (100% = it reads only the "
            "sum of the vector): " + ", ".join(parts) + ".") if parts else ""


def shuffle_frames(rows: list[dict]) -> dict[tuple[str, str], pd.DataFrame]:
    """The 2 x 2 tables, one per (task, kind): rows trained, columns tested."""
    frame = pd.DataFrame(rows)
    out = {}
    for (task, kind), part in frame.groupby(["task", "kind"], sort=False):
        table = part.pivot(index="trained", columns="tested", values="accuracy").round(1)
        names = part.groupby("trained")["net"].first()
        table.index = [f"trained {t} ({names[t]})" for t in table.index]
        table.columns = [f"tested {t}" for t in table.columns]
        out[(task, kind)] = table
    return out


@st.cache_data(show_spinner="Decoding the cell from GAP vectors...")
def _decode(_model: Probed, model_key: str, layer: str, train: int, test: int, seed: int, persist: bool) -> list[dict]:
    results = decode_cells(_model, train=train, test=test, layer=layer, seed=seed, persist=persist)
    return [{"permuted": r.readout != "ordered", **r.as_dict()} for r in results]


def fresh_decode(key: str, grid: int, layer: str, train: int, test: int, seed: int) -> list[dict]:
    """Decode-table rows of network ``key`` on a fresh sample (``seed``); an upload's features stay in memory."""
    rows = _decode(*network(key, grid), layer, train, test, seed, not key.startswith(YOURS))
    return [{"net": key, "grid": grid, **row} for row in rows]


@st.cache_data(show_spinner="Evaluating the 2 x 2...")
def fresh_shuffle(kind: str, samples: int) -> list[dict]:
    rows = []
    for task in ("location", "object"):
        rows += shuffle_2x2(net(f"probe/{task}-gapnet", 3), net(f"probe/{task}-permutenet", 3), kind, samples=samples)
    return rows


def demo_canvases(image_seed: int) -> tuple[torch.Tensor, int, tuple[str, ...]]:
    """One test patch placed in each of the 9 cells of a 3x3 canvas, its class index, and the class names."""
    source = GeneratedShapes()
    patch, label = source.sample(1, image_seed, "test")
    return place_on_grid(patch.expand(9, -1, -1, -1), torch.arange(9), 3), int(label[0]), source.classes


def demo_permutation(seed: int) -> torch.Tensor:
    """A random order of the demo networks' latent channels (they share one width)."""
    channels = net("probe/location-gapnet", 3).backbone.out_channels
    return torch.randperm(channels, generator=torch.Generator().manual_seed(seed))


def demo_hits(probs: dict[str, torch.Tensor], label: int) -> dict[str, int]:
    """In how many of the 9 cells each demo network is right (its cell, or the object's class)."""
    targets = {"probe/location-gapnet": torch.arange(9)}
    return {key: int((p.argmax(1) == targets.get(key, torch.full((9,), label))).sum()) for key, p in probs.items()}


def demo_predictions(canvases: torch.Tensor, permutation: torch.Tensor | None) -> dict[str, torch.Tensor]:
    """Probabilities of each demo network, channels in order or passed through ``permutation``."""
    mode = "none" if permutation is None else "fixed"
    return {key: predict_proba(Shuffled(net(key, 3), mode, permutation), canvases) for key in DEMO_NETS}


def canvas_image(canvas: torch.Tensor) -> torch.Tensor:
    """A normalised canvas as an HWC image in [0, 1]."""
    return denormalize(canvas.unsqueeze(0))[0].permute(1, 2, 0)


def location_figure(probs: torch.Tensor, title: str) -> go.Figure:
    fig = go.Figure(go.Heatmap(z=probs.view(3, 3).tolist(), zmin=0, zmax=1, colorscale="Blues", showscale=False,
                               texttemplate="%{z:.2f}", hovertemplate="row %{y} col %{x}<br>p %{z:.3f}<extra></extra>"))
    fig.update_layout(height=260, title=title, margin={"l": 10, "r": 10, "t": 40, "b": 10},
                      yaxis={"autorange": "reversed", "scaleanchor": "x"})
    return fig


def object_figure(probs: torch.Tensor, classes: tuple[str, ...], title: str) -> go.Figure:
    fig = go.Figure(go.Bar(x=list(classes), y=probs.tolist()))
    fig.update_layout(height=260, title=title, yaxis={"range": [0, 1]}, margin={"l": 10, "r": 10, "t": 40, "b": 10})
    return fig
