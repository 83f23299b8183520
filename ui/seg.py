"""Segmentation lab, Streamlit side: the shipped models and data sets loaded once per server, the calls of the lab
(engine.seg.lab) the page makes, and the plotly figures.

Latents, channel orders and no-ablation scores live in the engine's byte-bounded cache (engine.core.cache.CACHE),
keyed by content; what ``st.cache_resource`` holds (models, data sets) is shared between sessions and only read:
ablations pass channel masks, they never modify the model or the latents.
"""
from __future__ import annotations

import json
import shlex
from collections.abc import Callable
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from engine.core.distributed import memory_budget
from engine.core.runs import Recorder
from engine.core.storage import ASSETS, cache_dir, fingerprint
from engine.data.cityscapes_classes import colorize
from engine.data.scenes import SceneSet
from engine.models.segmentation import SegModel, cached_pretrained, load_model, load_pretrained
from engine.seg import lab, live
from engine.seg.features import Latents, unlabelled_latents
from engine.seg.fidelity import Fidelity, TopN
from engine.seg.lab import DEFAULT_VAL, load_data
from engine.seg.live import changed_map as changed_map
from engine.seg.live import overlay as overlay
from engine.seg.live import pictures as pictures
from engine.seg.metrics import REGIONS
from ui.paths import server_path
from ui.uploads import user_seg_models

COLORS = {"overall": "#d62728", "left": "#1f77b4", "right": "#2ca02c", "kflip1": "#9467bd", "kflip2": "#8c564b",
          "magnitude": "#ff7f0e", "relative": "#e377c2", "random": "#7f7f7f"}
# Paper Sec. 4.2 (DeepLabV3-ResNet-50, Cityscapes val, 2048 latent channels): all-image mIoU with the top N
# channels of the overall ranking zeroed, and with N random channels zeroed.
PAPER_WIDTH = 2048
PAPER_MIOU = {0: (74.0, 74.0), 100: (71.9, 73.4), 500: (64.7, 70.5)}
# The shipped pair: the default (trained without flips, leans on absolute position) and its control (flip-trained).
SHIPPED = {"default": "default: trained without flips", "control": "control: trained with flips"}


def model_files() -> list[Path]:
    """Segmentation checkpoints shipped in assets/seg, the default first."""
    return sorted((ASSETS / "seg").glob("*.pt"), key=lambda p: (p.stem not in SHIPPED, list(SHIPPED).index(p.stem)
                                                                 if p.stem in SHIPPED else 0, p.stem))


@st.cache_resource(show_spinner="Loading the segmentation model…")
def shared_model(path: str) -> SegModel:
    return load_model(path)


@st.cache_resource(max_entries=2, show_spinner="Loading torchvision's pretrained weights from the local cache…")
def shared_pretrained(arch: str) -> SegModel:
    return load_pretrained(arch)


def model_choices() -> dict[str, Callable[[], SegModel]]:
    """Every model this session can use, by label: shipped, the user's (sidebar uploads), cached torchvision weights."""
    choices: dict[str, Callable[[], SegModel]] = {f"shipped {SHIPPED.get(p.stem, p.stem)}": lambda p=p: shared_model(str(p))
                                                  for p in model_files()}
    choices |= {f"yours: {name}": lambda m=m: m for name, m in user_seg_models().items()}
    choices |= {f"torchvision pretrained: {a}": lambda a=a: shared_pretrained(a) for a in cached_pretrained()}
    return choices


@st.cache_resource(max_entries=4, show_spinner="Reading the images…")
def shared_data(path: str = "", split: str = "val", count: int = DEFAULT_VAL.count, height: int = DEFAULT_VAL.height) -> SceneSet:
    """Generated val scenes (no path) or a Cityscapes folder inside the data root, loaded once per server."""
    return load_data(server_path(path) if path else None, split, count, height)


def live_ablation(seg: SegModel, data: SceneSet, subset: str, ranking: str, draw: int, n: int | None,
                  rank_range: tuple[int, int] | None, rank_on: str, images: int) -> lab.AblationResult:
    """One slider position: the first ``images`` images of ``subset`` with the channels zeroed, once per server for
    every session (engine.seg.live: the shipped models' top-N positions are a lookup; latents, orders and the
    no-ablation scores come from the engine's cache, so any other move runs the head once)."""
    with st.spinner("Computing backbone latents (once per model and data)…"):
        return live.ablate(seg, data, subset, ranking, draw, n, rank_range, rank_on, images)


def shared_rankings(seg: SegModel, data: SceneSet, methods: tuple[str, ...], rank_on: str = "held-out") -> lab.RankResult:
    """The rankings of ``methods`` (each computed once per model, data and split in the engine's shared cache; the
    spinner shows only for a computation, after Streamlit's half-second delay)."""
    with st.spinner("Ranking channels…"):
        return lab.rank(seg, data, methods, rank_on)


def photo_latents(seg: SegModel, image: np.ndarray) -> Latents:
    """A photo's latents under ``seg``, kept in this session only (one photo at a time; never in a shared cache)."""
    key = fingerprint(seg.fingerprint, image)
    held = st.session_state.get("seg_photo_latents")
    if held is None or held[0] != key:
        with st.spinner("Segmenting your photo…"):
            held = (key, unlabelled_latents(seg, image))
        st.session_state.seg_photo_latents = held
    return held[1]


def sweep_work(seg: SegModel, data: SceneSet, subset: str, rank_on: str, rankings: list[str], ns: list[int], draws: int,
               step: int | None, path: Path | None) -> Callable[[Recorder], lab.SweepResult]:
    """A sweep job's work: the lab's sweep of every image of ``subset`` within a quarter of the memory budget (streamed
    from disk beyond it), rank ranges with their own baseline row; rows written to ``path`` when given."""
    def work(run: Recorder) -> lab.SweepResult:
        return lab.sweep(seg, data, rankings, ns, draws, step, subset=subset, rank_on=rank_on, baseline_row=True,
                         limit=memory_budget(0.25), path=path, on_progress=run.on_progress, stop=run.stop)
    return work


def sweep_command(model: str, data_args: dict, subset: str, rank_on: str, rankings: list[str], ns: list[int],
                  draws: int, step: int | None) -> str:
    """The ``sweep`` command line of a page sweep (the page's model named in a comment where it is no file)."""
    parts = ["python", "-m", "engine", "sweep", "--rankings", ",".join(rankings), "--draws", draws, "--subset", subset,
             "--rank-on", rank_on]
    parts += ["--range-step", step] if step else ["--ns", ",".join(map(str, ns))]
    if data_args:
        parts += ["--data", data_args["path"], "--split", data_args["split"], "--val-images", data_args["count"],
                  "--height", data_args["height"]]
    return shlex.join(map(str, parts)) + f"  # model: {model}"


def note_written(path: Path | None) -> None:
    """Say where a full-data-set sweep wrote its rows (relative to the server's cache folder)."""
    if path is not None and path.is_file():
        st.caption(f"The full-data-set sweep wrote these rows to `{path.relative_to(cache_dir())}` in the server's "
                   "cache folder.")


@st.cache_data(show_spinner=False)
def shipped_fidelity() -> dict[str, Fidelity]:
    """The measured Fig. 4/6 numbers of the shipped models (``python -m engine fidelity``), by role."""
    out = {}
    for role in SHIPPED:
        path = ASSETS / "seg" / f"fidelity_{role}.json"
        if path.is_file():
            out[role] = Fidelity.from_json(json.loads(path.read_text()))
    return out


def points(value: float) -> str:
    """A 0-1 mIoU difference in points, one decimal, without a "-0.0" for a cost that rounds to nothing."""
    return f"{round(100 * value, 1) + 0.0:.1f}"


def verdicts(fids: dict[str, Fidelity] | None = None) -> list[str]:
    """The lab's three one-line answers, worded from the shipped measurements (``python -m engine fidelity``): Fig. 4 on
    the default, the same test on the control, Fig. 6; each at the largest N measured. Empty without both files."""
    fids = shipped_fidelity() if fids is None else fids
    default, control = fids.get("default"), fids.get("control")
    if default is None or control is None or not default.top_n or not control.top_n or not default.regional:
        return []
    top, ctrl = default.top_n[-1], control.top_n[-1]

    def versus(t: TopN, full: bool) -> str:
        """The ranked top N's mIoU against random ones; ``full`` names the draws (the second line need not repeat it)."""
        lowest = _pct(min(t.random))
        if full:
            return f"{_pct(t.ranked)}, {t.n} random ones {_pct(t.random_mean)} (mean of {len(t.random)} draws; lowest {lowest})"
        return f"{_pct(t.ranked)} against {_pct(t.random_mean)} (lowest {lowest})"

    fig4 = (f"**Fig. 4 {'holds' if top.below_every_draw else 'does not hold'}** on the default: zeroing its top {top.n} "
            f"({top.fraction:.0%}) flip-ranked channels leaves mIoU {versus(top, True)}.")
    size = all(t.magnitude <= t.ranked for t in (top, ctrl))
    largest = f"({_pct(top.magnitude)} default, {_pct(ctrl.magnitude)} control)"
    mirror = f"mirroring costs it {points(control.mirror_cost)} points, the default {points(default.mirror_cost)}"
    if ctrl.below_every_draw:
        control_line = (f"**On the control too**, trained with flips ({mirror}): {versus(ctrl, False)}. So here the "
                        + (f"ranking measures size: the {top.n} largest channels leave as little or less {largest}."
                           if size else f"ranking finds more than size: the {top.n} largest channels leave more "
                           f"{largest}, but a model that cannot use position shows it too."))
    else:
        control_line = (f"**Not on the control**, trained with flips ({mirror}): {versus(ctrl, False)}. So on the "
                        "default the ranking finds what position adds.")
    reg = default.regional[-1]
    own = reg.left_gap > 0 and reg.right_gap > 0
    anywhere = any(r.left_gap > 0 and r.right_gap > 0 for f in fids.values() for r in f.regional)
    fig6 = (f"**Fig. 6 {'holds' if own else 'does not hold'}**: at N={reg.n} on the default, left-ranked channels leave the "
            f"left half {_pct(reg.left_half['left'])} mIoU, right-ranked ones {_pct(reg.left_half['right'])} (right "
            f"half: {_pct(reg.right_half['right'])} and {_pct(reg.right_half['left'])}). "
            + ("Each half loses most to its own ranking, as in the paper." if own else
               "The paper's pattern, each half hurt most by its own ranking, "
               + ("shows at no N on either model." if not anywhere else "does not show on both halves here.")))
    return [fig4, control_line, fig6]


def _pct(value: float) -> str:
    """A 0-1 mIoU as the lab prints it: percent, one decimal."""
    return f"{100 * value:.1f}"


def tour_text() -> dict[str, str]:
    """What the home tour's segmentation steps will show: the lab's own verdicts (Fig. 4 on both models, Fig. 6)."""
    lines = verdicts()
    return {"fig4": " ".join(lines[:2]), "fig6": lines[2]} if lines else {"fig4": "", "fig6": ""}


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


MIOU_PCT = {region: f"{region}_miou_pct" for region in REGIONS}  # exported columns: mIoU in percent, unit named


def ranking_json(result: lab.RankResult) -> dict:
    """Rankings as the page's JSON download: per method its image count, channel order and scores."""
    return {m: {"images": r.count, "order": r.order.tolist(), "scores": r.scores.tolist()} for m, r in result.rankings.items()}


def ranking_figure(scores_by_method: dict[str, np.ndarray]) -> go.Figure:
    """Score per channel, sorted descending, one line per ranking method."""
    fig = go.Figure()
    for method, s in scores_by_method.items():
        fig.add_scatter(y=np.sort(s)[::-1], mode="lines", name=method, line_color=COLORS.get(method))
    fig.update_layout(xaxis_title="rank", yaxis_title="mean GAP difference (flip)", height=320,
                      margin=dict(l=10, r=10, t=30, b=10), title="Channel rankings")
    return fig


def sweep_figure(rows: list[dict], images: int) -> go.Figure:
    """mIoU change vs N per region (0 = no ablation, stated in each axis): each ranking as a line, random as mean with
    a min-max band over its draws (Fig. 4 top)."""
    base = {region: 100 * next((r[region] for r in rows if r["n"] == 0), float("nan")) for region in REGIONS}
    fig = make_subplots(rows=1, cols=4, subplot_titles=[f"{r} (0 = {base[r]:.1f})" for r in REGIONS], shared_yaxes=True)
    draws = len({r["draw"] for r in rows if r["ranking"] == "random"})
    for col, region in enumerate(REGIONS, start=1):
        for name in dict.fromkeys(r["ranking"] for r in rows):
            pts = [r for r in rows if r["ranking"] == name]
            ns = sorted({r["n"] for r in pts})
            vals = [[100 * r[region] - base[region] for r in pts if r["n"] == n] for n in ns]
            if name == "random":
                fig.add_scatter(x=ns + ns[::-1], y=[max(v) for v in vals] + [min(v) for v in vals][::-1], mode="lines", fill="toself",
                                line_width=0, fillcolor="rgba(127,127,127,0.25)", name=f"random: min-max of {draws} draws",
                                showlegend=col == 1, hoverinfo="skip", row=1, col=col)
            fig.add_scatter(x=ns, y=[float(np.mean(v)) for v in vals], mode="lines+markers", line_color=COLORS.get(name, "#000"),
                            name="random: mean" if name == "random" else name, showlegend=col == 1, row=1, col=col)
    fig.update_xaxes(title_text="N zeroed")
    fig.update_yaxes(title_text="mIoU change, points", row=1, col=1)
    return _finish(fig, f"Top-N sweep on {images} images", 380)


def range_figure(rows: list[dict], base: dict[str, float], images: int) -> go.Figure:
    """mIoU change per region when only ranks [a, b) are zeroed (Fig. 4 bottom row); 0 = no ablation."""
    fig = make_subplots(rows=1, cols=4, subplot_titles=[f"{r} (0 = {100 * base[r]:.1f})" for r in REGIONS], shared_yaxes=True)
    for col, region in enumerate(REGIONS, start=1):
        for name in dict.fromkeys(r["ranking"] for r in rows):
            pts = [r for r in rows if r["ranking"] == name]
            fig.add_bar(x=[f"{r['a']}-{r['b']}" for r in pts], y=[100 * (r[region] - base[region]) for r in pts], name=name,
                        marker_color=COLORS.get(name), showlegend=col == 1, row=1, col=col)
    fig.update_xaxes(title_text="ranks zeroed")
    fig.update_yaxes(title_text="mIoU change, points", row=1, col=1)
    return _finish(fig, f"Rank-range sweep on {images} images", 380)


def region_attack_figure(rows: list[dict], images: int) -> go.Figure:
    """Each half's mIoU change vs N under the left, overall and right rankings (Fig. 6 and its mirror image)."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=["left half", "right half"], shared_yaxes=True)
    for col, half in enumerate(("left", "right"), start=1):
        base = 100 * next((r[half] for r in rows if r["n"] == 0), float("nan"))
        for name in ("left", "overall", "right"):
            pts = sorted((r for r in rows if r["ranking"] == name), key=lambda r: r["n"])
            fig.add_scatter(x=[r["n"] for r in pts], y=[100 * r[half] - base for r in pts], mode="lines+markers",
                            name=f"{name}-ranked", line_color=COLORS[name], showlegend=col == 1, row=1, col=col)
    fig.update_xaxes(title_text="N zeroed")
    fig.update_yaxes(title_text="mIoU change of the half, points", row=1, col=1)
    return _finish(fig, f"Region-specific attack on {images} images (Fig. 6)", 340)


def sweep_verdict(rows: list[dict]) -> str:
    """One line: at each N, does the first ranking hurt more than every random draw (the paper's Fig. 4 pattern)?"""
    ranked = next((r["ranking"] for r in rows if r["ranking"] != "random"), None)
    ns = sorted({r["n"] for r in rows if r["n"] > 0})
    if ranked is None or not any(r["ranking"] == "random" for r in rows):
        return "Add random draws to compare the ranking with chance."
    parts = []
    for n in ns:
        top = next(r["all"] for r in rows if r["ranking"] == ranked and r["n"] == n)
        lowest = min(r["all"] for r in rows if r["ranking"] == "random" and r["n"] == n)
        parts.append(f"N={n}: {'yes' if top < lowest else 'no'} ({100 * top:.1f} vs lowest random {100 * lowest:.1f})")
    return f"Paper's pattern (top N by {ranked} below every random draw): " + "; ".join(parts)


def attack_verdict(rows: list[dict]) -> str:
    """One line: does the left ranking hurt the left half more than the right ranking, and the mirror image?"""
    parts = []
    for n in sorted({r["n"] for r in rows if r["n"] > 0}):
        get = {(r["ranking"], h): r[h] for r in rows if r["n"] == n for h in ("left", "right")}
        if ("left", "left") in get and ("right", "left") in get:
            ok = get[("left", "left")] < get[("right", "left")] and get[("right", "right")] < get[("left", "right")]
            parts.append(f"N={n}: {'yes' if ok else 'no'}")
    return "Paper's pattern (each side's ranking hurts its own half more): " + "; ".join(parts) if parts else ""


def _finish(fig: go.Figure, title: str, height: int = 340) -> go.Figure:
    """Title on top, legend below the plot (never over the axes)."""
    fig.update_layout(title=dict(text=title, font_size=14), height=height, margin=dict(l=10, r=40, t=50, b=10),
                      legend=dict(orientation="h", yanchor="top", y=-0.25, x=0), modebar_orientation="v")
    return fig


def fig4_figure(fid: Fidelity, title: str) -> go.Figure:
    """Fig. 4 top: change of all-image mIoU (points; 0 = no ablation) vs N zeroed for the flip ranking (Eq. 2), the
    largest-N channels and random draws (mean, min-max band)."""
    base, ns = 100 * fid.baseline["all"], [0] + [t.n for t in fid.top_n]

    def delta(values: list[float]) -> list[float]:
        return [0.0] + [100 * v - base for v in values]

    lo, hi = delta([min(t.random) for t in fid.top_n]), delta([max(t.random) for t in fid.top_n])
    fig = go.Figure()
    fig.add_scatter(x=ns + ns[::-1], y=hi + lo[::-1], mode="lines", fill="toself", line_width=0, fillcolor="rgba(127,127,127,0.25)",
                    name=f"random: min-max of {len(fid.top_n[0].random) if fid.top_n else 0} draws", hoverinfo="skip")
    fig.add_scatter(x=ns, y=delta([t.random_mean for t in fid.top_n]), mode="lines+markers", name="random: mean",
                    line_color=COLORS["random"])
    fig.add_scatter(x=ns, y=delta([t.magnitude for t in fid.top_n]), mode="lines+markers", name="largest N (magnitude)",
                    line=dict(color=COLORS["magnitude"], dash="dash"))
    fig.add_scatter(x=ns, y=delta([t.ranked for t in fid.top_n]), mode="lines+markers", name="top N by flip (Eq. 2)",
                    line_color=COLORS["overall"])
    fig.update_xaxes(title_text=f"N zeroed (of {fid.channels})")
    fig.update_yaxes(title_text=f"mIoU change, points (0 = {base:.1f})")
    return _finish(fig, title)


def range_bars(fid: Fidelity, title: str) -> go.Figure:
    """Fig. 4 bottom: mIoU change when only one eighth of the flip ranking is zeroed, first eighth to last."""
    base = 100 * fid.baseline["all"]
    fig = go.Figure(go.Bar(x=[f"{a}-{b}" for a, b, _ in fid.eighths], y=[100 * v - base for _, _, v in fid.eighths],
                           marker_color=COLORS["overall"], name="ranks zeroed"))
    fig.update_xaxes(title_text="ranks zeroed (most flip-sensitive first)")
    fig.update_yaxes(title_text=f"mIoU change, points (0 = {base:.1f})")
    return _finish(fig, title, 300)


def fig6_figure(fid: Fidelity, title: str) -> go.Figure:
    """Fig. 6: each half's mIoU change under the left- and the right-specific ranking (Eq. 3), at every N."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=["left half", "right half"], shared_yaxes=True)
    for col, (half, values) in enumerate((("left", "left_half"), ("right", "right_half")), start=1):
        base = 100 * fid.baseline[half]
        for ranking in ("left", "right"):
            fig.add_bar(x=[f"N={r.n}" for r in fid.regional], y=[100 * getattr(r, values)[ranking] - base for r in fid.regional],
                        name=f"{ranking}-ranked (Eq. 3)", marker_color=COLORS[ranking], showlegend=col == 1, row=1, col=col)
    fig.update_yaxes(title_text="mIoU change of the half, points", row=1, col=1)
    return _finish(fig, title)


def claims_markdown(fid: Fidelity) -> str:
    """The paper's patterns as a list: holds here or not, and the numbers measured."""
    return "\n".join(f"- **{'holds' if c['holds'] else 'does not hold'}** · {c['claim']}: {c['here']}" for c in fid.claims())


def legend_markdown(labels: np.ndarray, names: list[str]) -> str:
    """A colour legend of the classes present in a label map."""
    present = [c for c in np.unique(labels) if c < len(names)]
    return " ".join(f"<span style='color:rgb{tuple(int(v) for v in colorize(np.array([c]))[0])}'>■</span> {names[c]}"
                    for c in present)
