"""Grid-probe helpers for the pages: cached model loading, shipped Table 1 numbers in words, and plotly figures."""
from __future__ import annotations

import base64
import io
import json

import numpy as np
import plotly.graph_objects as go
import streamlit as st
import torch
from PIL import Image
from plotly.subplots import make_subplots

from engine.core.runs import Run
from engine.core.stats import format_rate, wilson
from engine.core.storage import CheckpointError
from engine.models.probe import ProbeNet, load_probe
from engine.probe.evaluate import ProbeEvaluation
from engine.probe.shipped import PROBE_ASSETS, load_shipped_probe, paper_accuracy, shipped_probe_path


@st.cache_resource(max_entries=16, show_spinner="Loading checkpoint…")
def shipped_probe(head: str, task: str, grid: int, padding: str) -> ProbeNet:
    """A shipped probe, loaded once per server and shared read-only by every session."""
    return load_shipped_probe(head, task, grid, padding)[0]


def shipped_available(head: str, task: str, grid: int, padding: str) -> bool:
    """Whether a checkpoint for this setting ships in ``assets/probe``."""
    return shipped_probe_path(head, task, grid, padding).is_file()


def user_probes() -> dict[str, ProbeNet]:
    """Models this session trained or loaded, by display name."""
    return st.session_state.setdefault("user_probes", {})


@st.cache_resource(max_entries=16, show_spinner=False)
def _run_probe(path: str, modified: float) -> ProbeNet:
    """A run's checkpoint loaded once per version of the file (shared read-only)."""
    return load_probe(path)[0]


def add_run_probe(run: Run | None) -> str | None:
    """The model of an ended probe run (done, or stopped / interrupted at its last checkpoint) listed among this
    session's probes; its display name, or ``None`` when it has none."""
    if run is None or run.active or not run.has_checkpoint:
        return None
    name = f"{run.title} · run {run.id[:6]}" + ("" if run.state == "done" else f" (step {run.checkpoint_step:,})")
    try:
        user_probes()[name] = _run_probe(str(run.checkpoint), run.checkpoint.stat().st_mtime)
    except (CheckpointError, OSError):
        return None
    return name


# The probe card's target: object recognition "largely survives" the shuffle when PermuteNet is within this many points.
OBJECT_SURVIVES_POINTS = 15


def shipped_table1() -> list[dict]:
    """Rows measured by ``python -m engine table1 --json assets/probe/table1.json`` (see the model card)."""
    path = PROBE_ASSETS / "table1.json"
    return json.loads(path.read_text()) if path.is_file() else []


@st.cache_data(show_spinner=False)
def shipped_curves(head: str, task: str) -> dict[int, list[dict]]:
    """Accuracy vs training steps recorded in the shipped checkpoints' meta (long runs), by grid."""
    curves = {}
    for grid in (3, 5, 7):
        if shipped_available(head, task, grid, "zero"):
            curve = load_shipped_probe(head, task, grid)[1].get("curve")
            if curve:
                curves[grid] = curve
    return curves


def chance(task: str, grid: int) -> float:
    """Accuracy (%) of a uniform guess: one cell of grid², or one of the 10 shape classes."""
    return 100.0 / (grid * grid if task == "location" else 10)


# Where ours differs from the paper by more than MARK_POINTS, the one-line reason (measured; see the probe card).
MARK_POINTS = 10
DIFF_REASONS = {
    ("location", "PermuteNet", "below"): "only the channel sum reaches its shuffled classifier (the sum only column); "
                                         "ours get less out of that one number, with fewer steps (reflect and replicate: "
                                         "600 on the CPU), than the paper's",
    ("object", "GAPNet", "above"): "the generated shapes are easier than CIFAR-10 photographs",
    ("object", "PermuteNet", "above"): "the generated shapes are easier than CIFAR-10 photographs",
    ("object", "PermuteNet", "below"): "its one usable signal, the channel sum, is learned slowly: accuracy vs training "
                                       "steps below and in the card",
}


def table1_view(rows: list[dict]) -> list[dict]:
    """Table 1 rows for display, the key columns first: accuracy beside the paper and chance, the difference, the
    channel-sum-only accuracy, n with a 95% Wilson interval; where ours differs by more than ``MARK_POINTS``, a numbered
    marker (``differs``) and its reason (``why``, shown under the table by ``table1_notes``); last, where the row came from.
    Every cell is a number or text: a column that does not apply to a row reads "–"."""
    view, reasons = [], []
    for row in rows:
        shown = {k: row[k] for k in ("task", "padding", "grid", "net")}
        shown |= {"accuracy": round(row["accuracy"], 1), "paper": "–" if row.get("paper") is None else row["paper"],
                  "chance": round(chance(row["task"], row["grid"]), 1), "vs paper": "–", "differs": "", "why": ""}
        if row.get("paper") is not None:
            diff = row["accuracy"] - row["paper"]
            shown["vs paper"] = f"{diff:+.1f}"
            why = DIFF_REASONS.get((row["task"], row["net"], "above" if diff > 0 else "below"), "")
            if abs(diff) > MARK_POINTS and why:
                reasons += [why] if why not in reasons else []
                shown |= {"differs": f"◆{reasons.index(why) + 1}", "why": why}
        shown["sum only"] = "–" if row.get("sum_only") is None else f"{row['sum_only']:.1f}"
        shown["95% CI"], shown["n"] = "–", "–"
        if row.get("samples"):
            low, high = wilson(round(row["accuracy"] * row["samples"] / 100), row["samples"])
            shown |= {"95% CI": f"{100 * low:.1f}-{100 * high:.1f}", "n": f"{row['samples']:,}"}
        shown["source"] = row.get("source", "checkpoint")
        view.append(shown)
    return view


def table1_notes(view: list[dict]) -> list[str]:
    """The reasons behind the table's ◆ markers, one line each, in the order of their numbers."""
    marked = dict.fromkeys((v["differs"], v["task"], v["net"], "above" if v["vs paper"].startswith("+") else "below",
                            v["why"]) for v in view if v["differs"])
    return [f"{mark} {task} {net}, {side} the paper: {why}." for mark, task, net, side, why in marked]


def table1_entry(rows: list[dict], task: str, grid: int, net: str) -> dict | None:
    """The shipped Table 1 row for (task, grid, net label), zero padding; ``None`` when not measured."""
    return next((r for r in rows if (r["task"], r["grid"], r["net"], r["padding"]) == (task, grid, net, "zero")), None)


def percent(value: float) -> str:
    """An accuracy (%) as every page prints it: one decimal, e.g. '59.0%' (Table 1 shows the same digits)."""
    return f"{value:.1f}%"


def measured(row: dict) -> str:
    """A Table 1 accuracy as a page quotes it: percent, with n when the row records it."""
    return percent(row["accuracy"]) + (f" (n={row['samples']:,})" if row.get("samples") else "")


def object_row_note(rows: list[dict]) -> str | None:
    """One line on the object rows: how far PermuteNet falls behind GAPNet at each grid, beside the paper's gaps."""
    parts, worst = [], 0.0
    for grid in (3, 5, 7):
        gap_row, perm_row = (table1_entry(rows, "object", grid, net) for net in ("GAPNet", "PermuteNet"))
        if gap_row is None or perm_row is None:
            continue
        ours = gap_row["accuracy"] - perm_row["accuracy"]
        paper = paper_accuracy("object", "zero", "gapnet", grid) - paper_accuracy("object", "zero", "permutenet", grid)
        parts.append(f"{grid}×{grid}: PermuteNet {measured(perm_row)}, GAPNet {measured(gap_row)}, {ours:.0f} points "
                     f"apart (paper {paper:.0f})")
        worst = max(worst, ours)
    if not parts:
        return None
    note = "Object rows: " + "; ".join(parts) + "."
    if worst > OBJECT_SURVIVES_POINTS:
        note += (f" More than {OBJECT_SURVIVES_POINTS} points apart, the shuffle costs object recognition here too: with a fresh "
                 "permutation on every call its linear layer can only read the channel sum (`assets/probe/MODEL_CARD.md`).")
    return note


def home_claims(rows: list[dict]) -> dict[str, str]:
    """What the shuffle does, worded from the shipped Table 1 (the paper's numbers where none ship): ``shuffle`` for
    Home's intro, ``gapnet`` and ``permutenet`` for the tour and the Grid probe's explainer."""
    find = {(r["task"], r["grid"], r["net"]): r for r in rows if r["padding"] == "zero"}
    grids = [g for g in (3, 5, 7) if ("location", g, "GAPNet") in find and ("location", g, "PermuteNet") in find]
    if not grids:
        paper = ", ".join(f"{paper_accuracy('location', 'zero', 'permutenet', g)}% at {g}×{g}" for g in (3, 5, 7))
        return {"shuffle": "In the paper, shuffling the pooled channels loses most of the position, while *what* the "
                           "object is largely survives.",
                "gapnet": f"in the paper it names the cell {paper_accuracy('location', 'zero', 'gapnet', 7)}% of the time.",
                "permutenet": f"in the paper the location accuracy falls to {paper}."}
    last = grids[-1]
    shuffle = (f"Here, shuffling the pooled channels drops location accuracy on a {last}×{last} grid from "
               f"{percent(find['location', last, 'GAPNet']['accuracy'])} to "
               f"{percent(find['location', last, 'PermuteNet']['accuracy'])} (chance {percent(chance('location', last))})")
    objects = find.get(("object", 3, "GAPNet")), find.get(("object", 3, "PermuteNet"))
    if None in objects:
        shuffle += "."
    elif objects[0]["accuracy"] - objects[1]["accuracy"] <= OBJECT_SURVIVES_POINTS:
        shuffle += (f", while object accuracy largely survives it, as in the paper ({percent(objects[0]['accuracy'])} to "
                    f"{percent(objects[1]['accuracy'])} on 3×3).")
    else:
        shuffle += (f" and, unlike in the paper, object accuracy on 3×3 too ({percent(objects[0]['accuracy'])} to "
                    f"{percent(objects[1]['accuracy'])}).")
    samples = {find['location', g, net].get("samples") for g in grids for net in ("GAPNet", "PermuteNet")}
    counted = f" ({next(iter(samples)):,} placements each)" if len(samples) == 1 and None not in samples else ""
    return {"shuffle": shuffle,
            "gapnet": f"the shipped GAPNet names the right cell {measured(find['location', last, 'GAPNet'])} of the time "
                      f"(chance {percent(chance('location', last))}).",
            "permutenet": "the shipped PermuteNet finds the cell far less often than GAPNet: " + ", ".join(
                f"{percent(find['location', g, 'PermuteNet']['accuracy'])} at {g}×{g} (chance {percent(chance('location', g))})"
                for g in grids) + " against GAPNet's " + " / ".join(percent(find['location', g, 'GAPNet']['accuracy'])
                                                                     for g in grids) + counted + "."}


def to_image(canvas: torch.Tensor, scale: int = 1) -> np.ndarray:
    """(3, H, W) in [0, 1] -> uint8 HWC, optionally upscaled by pixel repetition."""
    img = (canvas.clamp(0, 1).permute(1, 2, 0).numpy() * 255).astype(np.uint8)
    return img.repeat(scale, 0).repeat(scale, 1) if scale > 1 else img


def rescale_cell(cell: int, old_grid: int, new_grid: int) -> int:
    """The cell of a ``new_grid`` canvas at the same relative spot as ``cell`` on an ``old_grid`` one (corners stay corners)."""
    row, col = divmod(min(int(cell), old_grid * old_grid - 1), old_grid)
    scale = (new_grid - 1) / max(1, old_grid - 1)
    return round(row * scale) * new_grid + round(col * scale)


def canvas_figure(image: np.ndarray, grid: int, selected: int) -> go.Figure:
    """The canvas with a clickable square marker per cell (plotly cannot click a heatmap). The image travels as a PNG
    (a few kB, drawn by the browser as it is), not as plotly's array of pixel values (a third of a MB to parse)."""
    size = image.shape[0]
    step = size / grid
    centres = [(c % grid + 0.5) * step for c in range(grid * grid)], [(c // grid + 0.5) * step for c in range(grid * grid)]
    png = io.BytesIO()
    Image.fromarray(image).save(png, format="PNG")
    fig = go.Figure(go.Image(source="data:image/png;base64," + base64.b64encode(png.getvalue()).decode(), hoverinfo="skip"))
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
                 zmax: float = 1.0, fmt: str = ".2f", colorscale: str = "Viridis", hover: list[list[str]] | None = None) -> go.Figure:
    """A grid x grid heatmap (row-major cells), the argmax ringed in red and the true cell in white; ``hover`` per cell."""
    grid = values.shape[0]
    fig = go.Figure(go.Heatmap(z=values, zmin=0, zmax=zmax, colorscale=colorscale, texttemplate=f"%{{z:{fmt}}}",
                               showscale=False, customdata=hover,
                               hovertemplate="row %{y}, col %{x}: " + ("%{customdata}" if hover else "%{z:.3f}") + "<extra></extra>"))
    for cell, colour, name in ((target, "white", "true cell"), (mark, "#ff4b4b", "prediction")):
        if cell is not None:
            r, c = divmod(int(cell), grid)
            fig.add_shape(type="rect", x0=c - 0.5, x1=c + 0.5, y0=r - 0.5, y1=r + 0.5, line=dict(color=colour, width=4), name=name)
    fig.update_layout(title=title, width=340, height=340, margin=dict(l=10, r=40, t=40, b=10), modebar=dict(orientation="v"))
    fig.update_yaxes(autorange="reversed", visible=False)
    fig.update_xaxes(visible=False)
    return fig


def per_cell_hover(evaluation: ProbeEvaluation, task: str) -> list[list[str]] | None:
    """Per cell of a location evaluation: accuracy, 95% Wilson interval and images placed there (``None`` for objects)."""
    if task != "location":
        return None  # the confusion is over classes: it does not say how many images each cell got
    confusion, grid = evaluation.confusion, evaluation.per_cell.shape[0]
    hits, counts = confusion.diag().tolist(), confusion.sum(1).tolist()
    cells = [format_rate(h, n) for h, n in zip(hits, counts)]
    return [cells[r * grid:(r + 1) * grid] for r in range(grid)]


def class_bars(probs: np.ndarray, classes: tuple[str, ...], title: str, target: int | None = None) -> go.Figure:
    """Class probabilities as bars, the true class highlighted."""
    colours = ["#ff4b4b" if i == target else "#4c78a8" for i in range(len(classes))]
    fig = go.Figure(go.Bar(x=list(classes), y=probs, marker_color=colours))
    fig.update_layout(title=title, height=300, yaxis=dict(range=[0, 1], title="probability"), margin=dict(l=10, r=10, t=40, b=10))
    return fig


def curve_figure(history: list[dict[str, float]], images_per_point: int) -> go.Figure:
    """Training loss (log) above training accuracy (%), one shared step axis."""
    steps = [h["step"] for h in history]
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08)
    fig.add_trace(go.Scatter(x=steps, y=[h.get("loss") for h in history], name="loss", showlegend=False), row=1, col=1)
    fig.add_trace(go.Scatter(x=steps, y=[h.get("accuracy") for h in history], name="accuracy", showlegend=False), row=2, col=1)
    fig.update_layout(height=360, margin=dict(l=70, r=20, t=10, b=50), modebar=dict(orientation="v"))
    fig.update_yaxes(title_text="loss (log)", type="log", dtick="D2", row=1, col=1)
    fig.update_yaxes(title_text="accuracy %", range=[0, 100], tickvals=[0, 25, 50, 75, 100], row=2, col=1)
    fig.update_xaxes(title_text=f"step (each point: the last {images_per_point:,} training images)", row=2, col=1)
    return fig


def long_run_figure(curves: dict[int, list[dict]], gapnet: dict[int, float]) -> go.Figure:
    """Accuracy vs training steps of long runs. Runs continued from a smaller grid carry that grid's points first: the
    leg they share is drawn once, then each run's own leg, each grid with its own dash and marker; GAPNet's Table 1
    accuracy per grid as a named line in the legend (labels on the plot would overprint: the three lie within a point)."""
    curves = dict(sorted(curves.items()))
    shared = []
    for points in zip(*curves.values()):
        if any(p != points[0] for p in points):
            break
        shared.append(points[0])
    shared = shared if len(curves) > 1 else []
    styles = dict(zip(sorted(set(curves) | set(gapnet)), (("solid", "circle"), ("dash", "square"), ("dot", "diamond"),
                                                           ("dashdot", "triangle-up"))))
    fig = go.Figure()

    def line(points: list[dict], name: str, dash: str, symbol: str) -> None:
        fig.add_trace(go.Scatter(x=[p["step"] for p in points], y=[p["accuracy"] for p in points], mode="lines+markers",
                                 name=name, line=dict(dash=dash), marker=dict(symbol=symbol, size=8),
                                 text=[f"{p.get('grid', 3)}×{p.get('grid', 3)} canvas" for p in points],
                                 hovertemplate="step %{x:,}: %{y:.1f}% (%{text})<extra></extra>"))

    if shared:
        first = shared[0].get("grid", 3)
        line(shared, f"PermuteNet on {first}×{first} (every run's first leg)", *styles.get(first, ("solid", "circle")))
    for grid, curve in curves.items():
        own = curve[len(shared) - 1:] if shared else curve  # from the last shared point, so the legs join
        if len(own) > 1:
            line(own, f"PermuteNet, {'continued on ' if shared else 'ends on '}{grid}×{grid}", *styles[grid])
    steps = [p["step"] for curve in curves.values() for p in curve] or [0, 1]
    for grid, accuracy in sorted(gapnet.items()):
        fig.add_trace(go.Scatter(x=[min(steps), max(steps)], y=[accuracy, accuracy], mode="lines", hoverinfo="skip",
                                 name=f"GAPNet {grid}×{grid}: {percent(accuracy)} (Table 1)",
                                 line=dict(dash=styles.get(grid, ("dot",))[0], width=1.5, color="#555")))
    fig.add_hline(y=10, line_dash="dash", line_color="grey", annotation_text="chance")
    fig.update_layout(height=400, margin=dict(l=60, r=20, t=10, b=50), modebar=dict(orientation="v"),
                      legend=dict(orientation="h", yanchor="top", y=-0.22, x=0))
    fig.update_yaxes(title_text="object accuracy % (500 fresh placements)", range=[0, 101])
    fig.update_xaxes(title_text="training steps (48 canvases each), over every leg")
    return fig
