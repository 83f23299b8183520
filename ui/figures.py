"""The findings' figures as PNG files, rendered from the shipped measurements with the app's own plotly figures.

    python -m ui.figures --out docs/img

Each figure is written to a self-contained HTML page (plotly.js inline, nothing fetched) and photographed by Debian's
chromium through Playwright, the browser the tests already use: ``bash scripts/install.sh --test`` installs both.
"""
from __future__ import annotations

import argparse
import os
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import plotly.graph_objects as go

from ui import claims

WIDTH, HEIGHT = 900, 460
CHROMIUM = os.environ.get("POSLAB_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]
NET_COLORS = {"GAPNet": "#1f77b4", "PermuteNet": "#d62728", "paper": "#7f7f7f", "sum": "#ff7f0e"}


def table1_figure(task: str) -> go.Figure:
    """Table 1 of one task: GAPNet, PermuteNet and the paper's PermuteNet per grid (accuracy %, 95% intervals)."""
    rows, grids = claims._table1(task), [3, 5, 7]
    fig = go.Figure()
    for net in ("GAPNet", "PermuteNet"):
        values = [rows[(net, g)] for g in grids]
        lows, highs = zip(*(claims.pct_interval(r["accuracy"], r["samples"]) for r in values))
        fig.add_bar(x=[f"{g}x{g}" for g in grids], y=[r["accuracy"] for r in values], name=f"{net} (PosLab)",
                    marker_color=NET_COLORS[net],
                    error_y=dict(type="data", symmetric=False, array=[h - r["accuracy"] for h, r in zip(highs, values)],
                                 arrayminus=[r["accuracy"] - lo for lo, r in zip(lows, values)]))
    if task == "object":
        fig.add_bar(x=[f"{g}x{g}" for g in grids], y=[rows[("PermuteNet", g)]["sum_only"] for g in grids],
                    name="PermuteNet from the channel sum alone", marker_color=NET_COLORS["sum"])
    fig.add_bar(x=[f"{g}x{g}" for g in grids], y=[rows[("PermuteNet", g)]["paper"] for g in grids], name="PermuteNet (paper)",
                marker=dict(color="white", line=dict(color=NET_COLORS["paper"], width=2)))
    chance = [100 / (g * g) if task == "location" else 10.0 for g in grids]
    fig.add_scatter(x=[f"{g}x{g}" for g in grids], y=chance, mode="markers", name="chance",
                    marker=dict(symbol="line-ew-open", size=40, color="black"))
    fig.update_layout(barmode="group", yaxis_title=f"{task} accuracy (%)", xaxis_title="grid",
                      title=f"Table 1, {task}: accuracy after GAP (zero padding)")
    return fig


def decode_figure() -> go.Figure:
    """The cell decoded from GAP vectors: in channel order vs channels permuted, shipped and real networks."""
    rows = claims.decode_rows()
    names = [r["network"] for r in rows if r["order"]]
    order = [r["accuracy"] for r in rows if r["order"]]
    permuted = [r["accuracy"] for r in rows if not r["order"]]
    fig = go.Figure()
    fig.add_bar(x=names, y=order, name="channel order", marker_color=NET_COLORS["GAPNet"])
    fig.add_bar(x=names, y=permuted, name="channels permuted", marker_color=NET_COLORS["PermuteNet"])
    fig.update_layout(barmode="group", yaxis_title="cell decoded (%)", title="The cell decoded from a 3x3 canvas's GAP vector")
    return fig


def mirror_figure() -> go.Figure:
    """All-image mIoU of the shipped segmentation pair on the val scenes and on the same scenes mirrored."""
    fig = go.Figure()
    fids = {role: claims._fidelity(role) for role in ("default", "control")}
    for label, key in (("scenes", "baseline"), ("mirrored scenes", "mirrored")):
        fig.add_bar(x=[f"{role} ({'no flips' if role == 'default' else 'flip-trained'})" for role in fids],
                    y=[100 * getattr(f, key)["all"] for f in fids.values()], name=label)
    fig.update_layout(barmode="group", yaxis_title="mIoU (%)", title="Mirroring the val scenes")
    return fig


def figures() -> dict[str, Callable[[], go.Figure]]:
    """Every findings figure by file stem (the stems docs/findings.md links)."""
    from ui import seg, shift  # the app's own figures (Streamlit modules; only their plotly builders are used)

    def default() -> claims.Fidelity:
        return claims._fidelity("default")

    return {
        "table-1-location": lambda: table1_figure("location"),
        "table-1-object": lambda: table1_figure("object"),
        "table-2": lambda: shift.scatter_figure(shift.shipped_entries("shapes100")[0], "cifar100"),
        "fig-4-top": lambda: seg.fig4_figure(default(), "Fig. 4 top: top N vs random (default)"),
        "fig-4-bottom": lambda: seg.range_bars(default(), "Fig. 4 bottom: one eighth of the ranking zeroed (default)"),
        "fig-6": lambda: seg.fig6_figure(default(), "Fig. 6: left- vs right-ranked channels (default)"),
        "decodable": decode_figure,
        "mirror-cost": mirror_figure,
    }


def render(figs: dict[str, go.Figure], out: Path) -> list[Path]:
    """Write each figure to ``out/<stem>.png`` through chromium; the written paths. Runs on a worker thread: Playwright's
    sync API refuses a thread whose event loop is busy (a notebook, or another sync Playwright session)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(_render, figs, out).result()


def _render(figs: dict[str, go.Figure], out: Path) -> list[Path]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as err:
        raise SystemExit("Rendering needs Playwright and Debian's chromium: bash scripts/install.sh --test") from err
    if not Path(CHROMIUM).is_file():
        raise SystemExit(f"No chromium at {CHROMIUM}: apt-get install chromium (or set POSLAB_CHROMIUM)")
    out.mkdir(parents=True, exist_ok=True)
    written = []
    with sync_playwright() as pw, tempfile.TemporaryDirectory() as tmp:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": WIDTH, "height": HEIGHT})
        for stem, fig in figs.items():
            fig.update_layout(width=WIDTH, height=HEIGHT, template="plotly_white")
            html = Path(tmp) / f"{stem}.html"
            fig.write_html(html, include_plotlyjs=True, full_html=True, config={"staticPlot": True})
            page.goto(html.as_uri())
            page.wait_for_selector(".main-svg")
            path = out / f"{stem}.png"
            page.locator(".plotly-graph-div").screenshot(path=path)
            written.append(path)
        browser.close()
    return written


def main(argv: list[str] | None = None) -> None:
    """Render the findings' figures (all, or those named) to PNG files."""
    parser = argparse.ArgumentParser(prog="python -m ui.figures", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=claims.ROOT / "docs" / "img")
    parser.add_argument("names", nargs="*", help="figure stems (default: all)")
    args = parser.parse_args(argv)
    builders = figures()
    unknown = set(args.names) - set(builders)
    if unknown:
        parser.error(f"unknown figure(s) {sorted(unknown)}; known: {sorted(builders)}")
    for path in render({name: builders[name]() for name in args.names or builders}, args.out):
        print(f"wrote {path} ({path.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()
