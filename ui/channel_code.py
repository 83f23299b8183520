"""Channel code page helpers: cached loaders, the recorded results, and the plotly figures."""
from __future__ import annotations

import json
import time
import weakref
from collections.abc import Callable
from concurrent.futures import TimeoutError as Pending
from dataclasses import asdict, dataclass

import pandas as pd
import plotly.graph_objects as go
import streamlit as st
import torch
from plotly.subplots import make_subplots

from engine.channel import lab
from engine.channel.code_map import SHIPPED_IMAGES, ChannelMap
from engine.channel.decode import READOUTS
from engine.channel.features import LAYERS, Probed
from engine.channel.nets import CHANNEL_ASSETS, net_path, net_version
from engine.core.cache import model_key
from engine.core.kept_jobs import Job, KeptJobs
from engine.core.stats import format_pct, pct_interval
from engine.core.storage import fingerprint
from engine.data.grid import denormalize
from engine.models.probe import HEAD_LABELS
from engine.probe.shipped import paper_accuracy
from ui import model_sources
from ui.export import cut, download_buttons
from ui.jobs import POLL_SECONDS
from ui.probe import percent, table1_entry, user_probes
from ui.uploads import user_classifiers

YOURS = "yours: "
DEMO_NETS = dict(zip(lab.DEMO_NETS, ("Location GAPNet (trained in order)", "Object PermuteNet (trained shuffled)",
                                    "Object GAPNet (trained in order)")))  # the demo's networks and their titles
FRESH_WAIT = 0.3  # seconds a click waits for its fresh result before showing its progress instead
DECODES = KeptJobs("channel_code/fresh/decode")  # every session's fresh decodes by settings, one computing at a time
SHUFFLES = KeptJobs("channel_code/fresh/shuffle")  # and fresh 2 x 2s (longer jobs), beside the decodes
MAPS = KeptJobs("channel_code/maps")  # code maps computing for the page (kept in memory; their features on disk)
DECODE_PARAM, SHUFFLE_PARAM = "fresh_decode", "fresh_shuffle"  # URL parameters naming the fresh results shown
FRESH_TRAIN, FRESH_TEST = 600, 300  # vectors a fresh decode's probes train and test on
SEEDS = 10_000  # a fresh sample's seed is drawn from range(SEEDS)
SHUFFLE_NETS = [f"probe/{task}-{head}" for task in ("location", "object") for head in ("gapnet", "permutenet")]
_WEIGHTS: weakref.WeakKeyDictionary[Probed, str] = weakref.WeakKeyDictionary()  # fingerprints of non-shipped networks
TABLE1_SAMPLES = 2000  # `python -m engine table1 --eval-samples` default, for rows that do not record their n


def missing(keys: list[str], grid: int = 3) -> list[str]:
    """The shipped checkpoints among ``keys`` that are not there."""
    return [key for key in keys if not net_path(key, grid).is_file()]


def user_nets() -> dict[str, Probed]:
    """This session's probes and image classifiers (sidebar uploads), by their name on this page."""
    return {f"{YOURS}{name}": model for name, model in (user_probes() | user_classifiers()).items()}


def _user(key: str) -> lab.UserNet | None:
    """An upload (``yours: ...``) as the lab's user network, its features kept off the disk; a network made elsewhere
    (``ui.model_sources``) as the engine opens it; ``None`` for a shipped one."""
    if key.startswith(YOURS):
        return lab.UserNet(key, user_nets()[key], persist=False)
    return model_sources.open_source(key) if key in model_sources.sources() else None


def network(key: str) -> Probed | None:
    """The model behind a user's or an outside network's key (``None`` for a shipped one)."""
    user = _user(key)
    return user.model if user else None


def code_map(key: str, grid: int, layer: str, images: int) -> lab.CodeMap | None:
    """The code map of network ``key`` (its features from the engine's shared cache; an upload's stay in memory).

    A map not shipped and not computed yet answers at once: it computes on a worker thread (one job per network, grid
    and count of images, for every session) while a progress note shows and the map of the default count stands
    where that one is ready (``None`` where not); the page reruns when it is done. An upload's map computes in the
    page's own run."""
    user = _user(key)
    if user is None or user.persist:
        if (ready := lab.code_map(grid, layer, images, key, user, compute=False)) is not None:
            return ready
        name = fingerprint("map", key, grid, images, _weights(key, grid, user))  # every layer is computed at once
        job = MAPS.start(name, lambda: lab.code_map(grid, layer, images, key, user), {}, persist=False)
        if not job.rows.done():
            standing = lab.code_map(grid, layer, SHIPPED_IMAGES, key, user, compute=False)
            st.fragment(_pending, run_every=POLL_SECONDS)(job, lambda seconds: (
                f"Averaging {images} images in each of the {grid * grid} cells of {key}: {seconds:.0f} s so far. "
                + (f"Until it is done, the map below averages {SHIPPED_IMAGES}." if standing else
                   "Its map shows here when it is done; the other tabs work meanwhile.")))
            return standing
    with st.spinner("Placing the images in every cell..."):
        return lab.code_map(grid, layer, images, key, user)


def recorded(name: str) -> list[dict] | None:
    """Rows written by the CLI into ``assets/channel_code/<name>.json`` (``None`` if absent)."""
    path = CHANNEL_ASSETS / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def cell_label(cell: int, grid: int) -> str:
    """A cell's row and column, e.g. 'r0 c2'."""
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
    preferred = cmap.preferred[cmap.order].tolist()
    fig.update_layout(shapes=[  # one list: add_vline per boundary takes ~7 ms each (49 cells: a third of a second)
        {"type": "line", "xref": "x", "yref": "y domain", "x0": i - 0.5, "x1": i - 0.5, "y0": 0, "y1": 1,
         "line": {"width": 1, "color": "rgba(0,0,0,0.35)"}}
        for i in range(1, len(order)) if preferred[i] != preferred[i - 1]])
    fig.update_layout(height=260 + 12 * cmap.grid**2, margin={"l": 10, "r": 10, "t": 30, "b": 10},
                      xaxis_title="channels, ordered by preferred cell (most selective first)",
                      yaxis={"autorange": "reversed", "title": "cell the images sit in"})
    return fig


def cell_small_multiples(cmap: ChannelMap) -> go.Figure:
    """The grid of grids: in each cell, the response map of the most selective channel preferring it; a cell no
    channel prefers says so."""
    g = cmap.grid
    tops = cmap.top_per_cell()
    titles = [f"ch {t} · {cmap.selectivity[t]:.2f}" if t >= 0 else "" for t in tops]
    fig = make_subplots(rows=g, cols=g, subplot_titles=titles, horizontal_spacing=0.02, vertical_spacing=0.06)
    maps = cmap.maps()
    for cell, top in enumerate(tops):
        row, col = cell // g + 1, cell % g + 1
        if top >= 0:
            fig.add_trace(go.Heatmap(z=maps[top].tolist(), colorscale="Viridis", showscale=False,
                                     hovertemplate=f"channel {top}<br>row %{{y}} col %{{x}}<br>%{{z:.3f}}<extra></extra>"),
                          row=row, col=col)
        else:
            panel = fig.get_subplot(row, col)
            fig.add_annotation(text="no channel<br>peaks here", showarrow=False, font={"size": 10, "color": "#999"},
                               xref="paper", yref="paper", x=sum(panel.xaxis.domain) / 2, y=sum(panel.yaxis.domain) / 2)
    fig.update_xaxes(showticklabels=False, showgrid=False, zeroline=False, ticks="")
    fig.update_yaxes(showticklabels=False, showgrid=False, zeroline=False, ticks="", autorange="reversed")
    fig.update_annotations(font_size=10)
    fig.update_layout(height=110 * g + 60, margin={"l": 10, "r": 10, "t": 30, "b": 10})
    return fig


def preferred_figure(cmap: ChannelMap) -> go.Figure:
    """How many channels prefer each cell."""
    counts = cmap.preferred_counts().tolist()
    fig = go.Figure(go.Heatmap(z=counts, colorscale="Greys", showscale=False, texttemplate="%{z}",
                               hovertemplate="row %{y} col %{x}<br>%{z} channels<extra></extra>"))
    fig.update_xaxes(showticklabels=False, showgrid=False, zeroline=False, ticks="")
    fig.update_yaxes(showticklabels=False, showgrid=False, zeroline=False, ticks="", autorange="reversed",
                     scaleanchor="x")
    fig.update_layout(height=110 * cmap.grid + 60, margin={"l": 10, "r": 10, "t": 40, "b": 10},
                      title={"text": "channels preferring<br>each cell", "font": {"size": 13}})
    return fig


def cells_preferred(cmap: ChannelMap) -> int:
    """How many cells are some channel's preferred cell."""
    return int((cmap.preferred_counts() > 0).sum())


def multiples_note(cmap: ChannelMap) -> str:
    """What the grid of grids shows for this map, and why some panels are empty."""
    cells, covered = cmap.grid**2, cells_preferred(cmap)
    note = ("In each cell: the response map over the whole grid of the most selective channel that prefers that cell "
            "(title: channel · selectivity); right: how many channels prefer each cell.")
    if covered < cells:
        counts = cmap.preferred_counts().flatten()
        busiest = ", ".join(f"{cell_label(c, cmap.grid)} ({int(counts[c])})"
                            for c in counts.argsort(descending=True)[:min(covered, 3)].tolist())
        note += (f" {cells - covered} of {cells} cells are no channel's preferred cell, so their panels are empty: "
                 f"the {len(cmap.order)} channels peak in {covered} cell{'s' if covered > 1 else ''} "
                 f"({busiest}{', ...' if covered > 3 else ''}).")
    return note


def selectivity_note(cmap: ChannelMap) -> str:
    """What mean selectivity measures, with this map's spread of preferred cells beside it."""
    cells, covered = cmap.grid**2, cells_preferred(cmap)
    note = (f"**Mean selectivity** averages, over the {len(cmap.order)} channels, how peaked each channel's response "
            "is over the cells: (peak − mean elsewhere) / (peak + mean elsewhere), 0 = flat, 1 = one cell only. It "
            "does not ask whether different channels prefer different cells, which is what a channel-wise code of "
            f"every cell needs. Here the channels prefer {covered} of {cells} cells")
    if covered * 2 <= cells:
        return note + (": most channels peak in the same place, so a high mean selectivity here is one signal repeated "
                       "across channels (readable from their sum, without knowing which channel is which), not a "
                       "position code spread over the channels.")
    return note + "."


def channel_response(cmap: ChannelMap, channel: int) -> go.Figure:
    """One channel's mean GAP response with the images in each cell."""
    m = cmap.maps()[channel]
    fig = go.Figure(go.Heatmap(z=m.tolist(), colorscale="Viridis", text=[[f"{v:.3f}" for v in row] for row in m.tolist()],
                               texttemplate="%{text}", hovertemplate="row %{y} col %{x}<br>%{z:.4f}<extra></extra>"))
    fig.update_layout(height=320, margin={"l": 10, "r": 10, "t": 45, "b": 10}, title=f"channel {channel}",
                      yaxis={"autorange": "reversed", "scaleanchor": "x"})
    return fig


def decode_frame(rows: list[dict]) -> pd.DataFrame:
    """Decode rows as a table: one line per net, grid and layer; one column per read-out, each accuracy (%) with its
    95% Wilson interval over the test vectors."""
    frame = pd.DataFrame(rows)
    if "trained_grid" in frame:  # None for the untrained control; groupby would drop it
        frame["trained_grid"] = ["-" if pd.isna(g) else str(int(g)) for g in frame["trained_grid"]]
    frame["shown"] = [format_pct(a, n) for a, n in zip(frame["accuracy"], frame["test"])]
    index = [c for c in ("net", "trained_grid", "grid", "layer") if c in frame]
    table = frame.pivot_table(index=index, columns="readout", values="shown", aggfunc="first", sort=False)
    table = table[[r for r in READOUTS if r in table.columns]]
    grouped = frame.groupby(index, sort=False)
    table["test vectors"] = grouped["test"].first()
    table["chance"] = grouped["chance"].first().round(1)
    return table.reset_index()


def decode_export(rows: list[dict]) -> list[dict]:
    """Decode rows for CSV: accuracy and chance in percent, the interval and the sample sizes named as such."""
    out = []
    for r in rows:
        low, high = pct_interval(r["accuracy"], r["test"])
        out.append({"net": r["net"], "trained_grid": r.get("trained_grid"), "grid": r["grid"], "layer": r["layer"],
                    "readout": r["readout"], "accuracy_pct": round(r["accuracy"], 2), "ci95_low_pct": round(low, 2),
                    "ci95_high_pct": round(high, 2), "chance_pct": round(r["chance"], 2), "train_vectors": r["train"],
                    "test_vectors": r["test"]})
    return out


def decoded(rows: list[dict], net: str, grid: int = 3, layer: str = "layer4") -> dict[str, dict]:
    """The recorded decode rows of one network, grid and layer, by read-out (empty when not recorded)."""
    return {r["readout"]: r for r in rows if (r["net"], r["grid"], r["layer"]) == (net, grid, layer)}


def headline(rows: list[dict]) -> str | None:
    """The page's finding in one line: the cell read from an object-only classifier's GAP vector, in order and permuted."""
    got = decoded(rows, "object-classifier")
    if not {"ordered", "permuted"} <= got.keys():
        return None
    ordered, permuted = got["ordered"], got["permuted"]
    return (f"**Found:** the cell an object sits in can be read from the GAP vector of a network trained only to name "
            f"it: {percent(ordered['accuracy'])} in channel order, {percent(permuted['accuracy'])} with each vector's "
            f"channels permuted (chance {percent(ordered['chance'])}; 3×3 grid, layer4, {ordered['test']:,} test vectors).")


def tour_text(rows: list[dict] | None) -> str:
    """Home's channel-code step: what the linear read-outs recorded for the location GAPNet and the object classifier."""
    gap, obj = decoded(rows or [], "probe/location-gapnet"), decoded(rows or [], "object-classifier")
    if not {"ordered", "permuted", "sorted"} <= gap.keys() or not {"ordered", "permuted"} <= obj.keys():
        return "Decode the cell from the vector, in channel order and with the channels shuffled."
    return (f"A linear read-out finds the cell from the location GAPNet's vector {percent(gap['ordered']['accuracy'])} of "
            f"the time in channel order and {percent(gap['permuted']['accuracy'])} with each vector's channels shuffled "
            f"(chance {percent(gap['ordered']['chance'])}); its sorted values alone still give "
            f"{percent(gap['sorted']['accuracy'])}, so this net also writes the cell into *which values* occur. For a "
            f"network trained only to name the object, shuffling drops it from {percent(obj['ordered']['accuracy'])} to "
            f"{percent(obj['permuted']['accuracy'])}.")


def sorted_note(rows: list[dict]) -> str | None:
    """What the sorted read-out shows for the location GAPNet in ``rows``, and which column is the control."""
    gap = [r for r in rows if r["net"] == "probe/location-gapnet"]
    if not {"sorted", "permuted"} <= {r["readout"] for r in gap}:
        return None
    grids = ", ".join(f"{g}x{g}" for g in sorted({r["grid"] for r in gap}))
    tests = ", ".join(f"{n:,}" for n in sorted({r["test"] for r in gap}))
    return (f"**Order-blind is not position-blind.** For the location GAPNet the **sorted** read-out, which cannot "
            f"know which channel holds which value, still decodes the cell at {_by_layer(gap, 'sorted')} ({grids}; "
            f"{tests} test vectors each). Sorted, that net's values still carry position: *which* values occur, not "
            "only which channel holds them, says where the object is. So the sorted column is no control for "
            "\"position lives in the channel order\" on this net. The control is **permuted**: the same linear probe "
            f"with every vector's channels in their own random order, which reads {_by_layer(gap, 'permuted')}; the "
            "gap from **ordered** to **permuted** is what the channel order adds for a linear read-out.")


def _by_layer(rows: list[dict], readout: str) -> str:
    """A read-out's accuracy range per layer, deepest first, e.g. '99.8–100.0% from layer4 and 75.0–99.6% from layer3'."""
    layers = sorted({r["layer"] for r in rows if r["readout"] == readout}, key=LAYERS.index, reverse=True)
    return " and ".join(f"{_span([r['accuracy'] for r in rows if r['readout'] == readout and r['layer'] == layer])} "
                        f"from {layer}" for layer in layers)


def _span(values: list[float]) -> str:
    """A range of accuracies, e.g. '98.2–99.8%'."""
    low, high = min(values), max(values)
    return f"{low:.1f}%" if round(low, 1) == round(high, 1) else f"{low:.1f}–{high:.1f}%"


def paper_beside(rows: list[dict], table1: list[dict]) -> pd.DataFrame:
    """Each net's own-condition accuracy in the 2 x 2 (per-call shuffle, tested as trained), with its sample size and
    95% interval, beside the Grid probe's Table 1 re-measurement and the paper's Table 1 (3x3, zero padding)."""
    head_of = {label: head for head, label in HEAD_LABELS.items()}
    out = []
    for r in _own_condition(rows):
        t1 = table1_entry(table1, r["task"], 3, r["net"])
        out.append({"task": r["task"], "net": r["net"], "here (shapes, 3x3)": r["accuracy"], "n here": r["samples"],
                    "95% CI here": _interval_text(r["accuracy"], r["samples"]),
                    "Grid probe Table 1": round(t1["accuracy"], 1) if t1 else None,
                    "n Table 1": _table1_samples(t1) if t1 else None,
                    "paper (CIFAR-10, 3x3)": paper_accuracy(r["task"], "zero", head_of[r["net"]], 3)})
    return pd.DataFrame(out)


def _own_condition(rows: list[dict]) -> list[dict]:
    """The 2 x 2 cells where a net is tested as it was trained (per-call shuffle)."""
    return [r for r in rows if r["kind"] == "per_call" and r["trained"] == r["tested"]]


def _interval_text(accuracy: float, n: int) -> str:
    low, high = pct_interval(accuracy, n)
    return f"{low:.1f}–{high:.1f}"


def _table1_samples(row: dict) -> int:
    """How many placements a Table 1 row was measured on (rows written before it was recorded: the command's default)."""
    return row.get("samples", TABLE1_SAMPLES)


def samples_note(rows: list[dict], table1: list[dict]) -> str | None:
    """Why the 2 x 2 and the Grid probe's Table 1 read differently for the same checkpoint: two samples, with sizes."""
    pairs = [(r, t1) for r in _own_condition(rows) if (t1 := table1_entry(table1, r["task"], 3, r["net"]))]
    if not pairs:
        return None
    r, t1 = max(pairs, key=lambda p: abs(p[0]["accuracy"] - p[1]["accuracy"]))
    n1 = _table1_samples(t1)
    return (f"**here** and **Grid probe Table 1** measure the same checkpoints on different samples: e.g. {r['task']} "
            f"{r['net']} reads {r['accuracy']:.1f}% here ({r['samples']:,} placements, 95% CI "
            f"{_interval_text(r['accuracy'], r['samples'])}) and {percent(t1['accuracy'])} in Table 1 ({n1:,} other "
            f"placements, {_interval_text(t1['accuracy'], n1)}). The intervals count images only; a PermuteNet's score "
            "also moves with the channel permutations drawn (one per 25 images, from each measurement's seed), so two "
            "samples of it can differ by more.")


def recorded_note(rows: list[dict]) -> str:
    """One line on the object row of the 2 x 2: how far PermuteNet falls below GAPNet here, with sample sizes."""
    own = {(r["task"], r["net"]): r for r in _own_condition(rows)}
    gap, perm = own.get(("object", "GAPNet")), own.get(("object", "PermuteNet"))
    if not gap or not perm:
        return ""
    verdict = ("so the asymmetry does not show here" if gap["accuracy"] - perm["accuracy"] > 15
               else "close, as in the paper")
    return (f"On the generated shapes our object PermuteNet names the shape {perm['accuracy']:.1f}% of the time against "
            f"GAPNet's {gap['accuracy']:.1f}% ({perm['samples']:,} placements each), {verdict}: its head can read only "
            "the channel sum (assets/probe/MODEL_CARD.md).")


def head_note(rows: list[dict]) -> str:
    """One line on how much of each trained head is a per-output constant (it then reads only the sum)."""
    shares = {}
    for r in rows:
        shares.setdefault(r["net"], r.get("head_mean_share"))
    parts = [f"{net} {100 * share:.0f}%" for net, share in shares.items() if share is not None]
    return ("Share of each head's weight energy in its per-output mean over channels (100% = it reads only the "
            "sum of the vector): " + ", ".join(parts) + ".") if parts else ""


def shuffle_frames(rows: list[dict]) -> dict[tuple[str, str], pd.DataFrame]:
    """The 2 x 2 tables, one per (task, kind): rows trained, columns tested; accuracy (%) with its 95% interval."""
    frame = pd.DataFrame(rows)
    frame["shown"] = [format_pct(a, n) for a, n in zip(frame["accuracy"], frame["samples"])]
    out = {}
    for (task, kind), part in frame.groupby(["task", "kind"], sort=False):
        table = part.pivot(index="trained", columns="tested", values="shown")
        names = part.groupby("trained")["net"].first()
        table.index = [f"trained {t} ({names[t]})" for t in table.index]
        table.columns = [f"tested {t}" for t in table.columns]
        out[(task, kind)] = table
    return out


def shuffle_export(rows: list[dict]) -> list[dict]:
    """2 x 2 rows for CSV: accuracy, its interval and chance in percent, the head's mean share as a fraction."""
    out = []
    for r in rows:
        low, high = pct_interval(r["accuracy"], r["samples"])
        out.append({"task": r["task"], "kind": r["kind"], "grid": r["grid"], "trained": r["trained"],
                    "tested": r["tested"], "net": r["net"], "accuracy_pct": round(r["accuracy"], 2),
                    "ci95_low_pct": round(low, 2), "ci95_high_pct": round(high, 2),
                    "chance_pct": round(r["chance"], 2), "samples": r["samples"],
                    "head_mean_share_fraction": r.get("head_mean_share")})
    return out


def fresh_decode(key: str, grid: int, layer: str, train: int, test: int, seed: int, user: lab.UserNet | None = None
                 ) -> list[dict]:
    """Decode-table rows of network ``key`` (``user``: the upload or outside network behind it) on a fresh sample
    (``seed``); an upload's features stay in memory."""
    return lab.decode([grid], [layer], [key], user, train=train, test=test, seed=seed).rows()


def fresh_shuffle(samples: int, seed: int) -> list[dict]:
    """The 2 x 2 of both tasks and both kinds of shuffle on ``samples`` fresh test placements (``seed``)."""
    return lab.shuffle(samples=samples, seed=seed).rows()


@dataclass(frozen=True)
class FreshDecode:
    """A fresh decode's settings; the URL carries them as ``grid/layer/train/test/seed/network``."""

    key: str
    grid: int
    layer: str
    train: int
    test: int
    seed: int

    @property
    def param(self) -> str:
        return f"{self.grid}/{self.layer}/{self.train}/{self.test}/{self.seed}/{self.key}"

    @classmethod
    def parse(cls, text: str) -> FreshDecode | None:
        """The settings a URL value spells (``None``: it spells none)."""
        parts = text.split("/", 5)
        if len(parts) != 6 or parts[1] not in LAYERS or not all(map(_count, (parts[0], *parts[2:5]))):
            return None
        grid, layer, train, test, seed, key = parts
        return cls(key, int(grid), layer, int(train), int(test), int(seed))


@dataclass(frozen=True)
class FreshShuffle:
    """A fresh 2 x 2's settings; the URL carries them as ``samples/seed``."""

    samples: int
    seed: int

    @property
    def param(self) -> str:
        return f"{self.samples}/{self.seed}"

    @classmethod
    def parse(cls, text: str) -> FreshShuffle | None:
        """The settings a URL value spells (``None``: it spells none)."""
        parts = text.split("/")
        return cls(int(parts[0]), int(parts[1])) if len(parts) == 2 and all(map(_count, parts)) else None


def _count(text: str) -> bool:
    """Whether a URL field is a plain count or seed (digits only, at most six)."""
    return text.isascii() and text.isdigit() and len(text) <= 6


def _weights(key: str, grid: int, user: lab.UserNet | None) -> str:
    """What names the weights behind ``key``: a shipped network's checkpoint version, else a fingerprint of the weights
    (hashed once per model: an upload read again from its link hashes the same)."""
    if user is None:
        return net_version(key, grid)
    if user.model not in _WEIGHTS:
        _WEIGHTS[user.model] = model_key(user.model)
    return _WEIGHTS[user.model]


def _decode_job(fresh: FreshDecode, user: lab.UserNet | None) -> tuple[str, bool]:
    """The kept name of a fresh decode and whether its rows may go to disk (not an upload's: nothing outlives it)."""
    return fingerprint("decode", asdict(fresh), _weights(fresh.key, fresh.grid, user)), user is None or user.persist


def _shuffle_job(fresh: FreshShuffle) -> str:
    """The kept name of a fresh 2 x 2: its settings and the versions of the four checkpoints it reads."""
    return fingerprint("shuffle", asdict(fresh), [net_version(key, 3) for key in SHUFFLE_NETS])


def start_fresh_decode(key: str, grid: int, layer: str, seed: int) -> None:
    """:func:`fresh_decode` of these settings started on the worker thread (found instead when it has run: on this
    server or, unless an upload's, in the cache folder); its settings go into the URL."""
    fresh, user = FreshDecode(key, grid, layer, FRESH_TRAIN, FRESH_TEST, seed), _user(key)
    name, persist = _decode_job(fresh, user)
    DECODES.start(name, lambda: fresh_decode(key, grid, layer, fresh.train, fresh.test, seed, user), asdict(fresh), persist)
    st.query_params[DECODE_PARAM] = fresh.param


def start_fresh_shuffle(samples: int, seed: int) -> None:
    """:func:`fresh_shuffle` started on the worker thread (or found); its settings go into the URL."""
    fresh = FreshShuffle(samples, seed)
    SHUFFLES.start(_shuffle_job(fresh), lambda: fresh_shuffle(samples, seed), asdict(fresh))
    st.query_params[SHUFFLE_PARAM] = fresh.param


def show_fresh_decode(key: str, grid: int, layer: str, wait: float = 0.0) -> None:
    """The fresh decode the URL names, when it is of these settings: its table once done (waiting up to ``wait`` s);
    until then its progress, the recorded table above standing meanwhile. A reload or a link reattaches to it."""
    text = st.query_params.get(DECODE_PARAM)
    fresh = FreshDecode.parse(text) if text is not None else None
    if text is not None and fresh is None:
        st.caption(f"ℹ️ This link's fresh decode (`{DECODE_PARAM}={cut(text)}`) was not understood; decode again.")
    if fresh is None or (fresh.key, fresh.grid, fresh.layer) != (key, grid, layer):  # shown for its own settings only
        return
    job = DECODES.find(*_decode_job(fresh, _user(key)))
    if job is None:
        st.caption(f"ℹ️ The fresh decode this link names (seed {fresh.seed}) is not kept on this server; decode again.")
        return
    rows = _rows(job, wait, "decode", lambda seconds: (
        f"Decoding on a fresh sample: {fresh.train + fresh.test:,} new canvases through the network, {seconds:.0f} s so "
        "far (a 7x7 grid takes seconds). The recorded table above stands meanwhile; the fresh one shows here when it "
        "is done."))
    if rows is not None:
        with st.container(key="cc_fresh_decode_table"):
            st.dataframe(decode_frame(rows), hide_index=True, key="cc_decode_fresh")
            download_buttons(decode_export(rows), "decode-fresh", as_json=rows)
            st.caption(f"A fresh sample: seed {fresh.seed}, {fresh.train:,} training and {fresh.test:,} test vectors "
                       "(a reload or this page's link shows it again)." + _decode_command(fresh))


def _decode_command(fresh: FreshDecode) -> str:
    """The CLI command that remakes a fresh decode of a shipped or outside network (an upload's names no file: none)."""
    if fresh.key.startswith(YOURS):
        return ""
    net = f"--model {fresh.key}" if fresh.key in model_sources.sources() else f"--nets {fresh.key}"
    return (f" Remake it with `python -m engine decode --grids {fresh.grid} --layers {fresh.layer} {net} "
            f"--train {fresh.train} --test {fresh.test} --seed {fresh.seed}`.")


def fresh_shuffle_rows(wait: float = 0.0) -> tuple[list[dict] | None, int | None]:
    """The fresh 2 x 2 the URL names and its seed, once done (waiting up to ``wait`` s); until then its progress shown
    here and ``None`` rows (a reload or a link reattaches to it)."""
    text = st.query_params.get(SHUFFLE_PARAM)
    fresh = FreshShuffle.parse(text) if text is not None else None
    if text is not None and fresh is None:
        st.caption(f"ℹ️ This link's fresh 2 x 2 (`{SHUFFLE_PARAM}={cut(text)}`) was not understood; evaluate again.")
    if fresh is None:
        return None, None
    job = SHUFFLES.find(_shuffle_job(fresh))
    if job is None:
        st.caption(f"ℹ️ The fresh 2 x 2 this link names (seed {fresh.seed}) is not kept on this server; evaluate again.")
        return None, None
    rows = _rows(job, wait, "2 x 2", lambda seconds: (
        f"Evaluating the 2 x 2 on {fresh.samples:,} fresh test placements, {seconds:.0f} s so far. The recorded tables "
        "below stand meanwhile."))
    return rows, fresh.seed


def _rows(job: Job, wait: float, what: str, note: Callable[[float], str]) -> list[dict] | None:
    """A kept job's rows once it has ended (waiting up to ``wait`` s); until then ``note(seconds so far)`` redrawn every
    second; ``None`` while it runs and when it failed (said)."""
    try:
        return job.rows.result(timeout=wait)
    except Pending:  # poll while the job runs; the run that finds it done draws its rows and polls no more
        st.fragment(_pending, run_every=POLL_SECONDS if not job.rows.done() else None)(job, note)
    except Exception as err:  # noqa: BLE001  (a network that cannot decode: say why, keep the page)
        st.error(f"The fresh {what} failed: {err}")
    return None


def _pending(job: Job, note: Callable[[float], str]) -> None:
    """A pending job's progress; a whole-page run once it has ended, which draws its rows."""
    if job.rows.done():
        st.rerun()
    st.info(note(time.monotonic() - job.started), icon=":material/hourglass_top:")


def canvas_image(canvas: torch.Tensor) -> torch.Tensor:
    """A normalised canvas as an HWC image in [0, 1]."""
    return denormalize(canvas.unsqueeze(0))[0].permute(1, 2, 0)


def _demo_layout(fig: go.Figure, title: str) -> go.Figure:
    """A quarter-width demo chart: its title on two lines ("net<br>(how trained)") so it fits the column."""
    fig.update_layout(height=280, title={"text": title.replace(" (", "<br>("), "font": {"size": 14}},
                      margin={"l": 10, "r": 10, "t": 60, "b": 10})
    return fig


def location_figure(probs: torch.Tensor, title: str) -> go.Figure:
    """The location net's probability per cell of the 3x3 canvas."""
    fig = go.Figure(go.Heatmap(z=probs.view(3, 3).tolist(), zmin=0, zmax=1, colorscale="Blues", showscale=False,
                               texttemplate="%{z:.2f}", hovertemplate="row %{y} col %{x}<br>p %{z:.3f}<extra></extra>"))
    fig.update_layout(yaxis={"autorange": "reversed", "scaleanchor": "x"})
    return _demo_layout(fig, title)


def object_figure(probs: torch.Tensor, classes: tuple[str, ...], title: str) -> go.Figure:
    """An object net's probability per shape class."""
    fig = go.Figure(go.Bar(x=list(classes), y=probs.tolist()))
    fig.update_layout(yaxis={"range": [0, 1]})
    return _demo_layout(fig, title)
