"""Load test: several browser sessions move the Segmentation lab's ablation slider at once.

Each session follows its own pattern of key presses on the N slider (PageUp/PageDown/Home/End). Every pattern is first
run alone (the single-session reference), then all of them at once against the same server; every
(N, mIoU) the concurrent sessions see must equal what the session saw alone: no errors, no
cross-talk. Prints the median and p95 latency per slider move and the server's peak memory.

    python bench/bench_load.py [--sessions 4] [--moves 8] [--model control]

Traffic goes only to a Streamlit server this script starts on 127.0.0.1; bounded in moves and time.
"""
from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from playwright.async_api import Page, async_playwright  # noqa: E402
from playwright.async_api import TimeoutError as PlaywrightTimeout  # noqa: E402

from ui.seg import SHIPPED  # noqa: E402

from browser_harness import APP_IDLE, CHROMIUM, CHROMIUM_ARGS, streamlit_server  # noqa: E402

TIMEOUT = 180_000
SLIDER = "N channels zeroed"


async def settle(page: Page) -> None:
    """Wait until the app has finished its run; called once that run has begun (first load, or a metric changed)."""
    await page.wait_for_selector(APP_IDLE, timeout=TIMEOUT)


async def reading(page: Page) -> tuple[int, str]:
    """(N on the slider, the "all mIoU" value) as the page shows them now."""
    thumb = page.get_by_role("slider", name=SLIDER)
    n = int(await thumb.input_value())
    metric = page.locator("[data-testid='stMetric']").filter(has_text="all mIoU").first
    value = await metric.locator("[data-testid='stMetricValue']").inner_text()
    return n, value.strip()


PATTERNS = (  # one key press per move, so each move is exactly one rerun; each session goes its own way
    ("PageUp",) * 8,
    ("End",) + ("PageDown",) * 7,
    ("PageUp", "PageDown") * 4,
    ("Home",) + ("PageUp",) * 7,
)


async def run_session(browser, url: str, keys: tuple[str, ...]) -> tuple[list[tuple[int, str]], list[float]]:
    """Open the lab at ``url``, press ``keys`` on the N slider one at a time; record readings and latencies."""
    context = await browser.new_context(viewport={"width": 1400, "height": 1000})
    page = await context.new_page()
    await page.goto(url)
    thumb = page.get_by_role("slider", name=SLIDER)
    await thumb.wait_for(timeout=TIMEOUT)
    await page.locator("[data-testid='stMetric']").filter(has_text="all mIoU").first.wait_for(timeout=TIMEOUT)
    await settle(page)
    readings, latencies = [await reading(page)], []
    for key in keys:
        before_n, before_value = readings[-1]
        start = time.perf_counter()
        await thumb.focus()
        await page.keyboard.press(key)
        try:  # answered when the metric shows a new value; a move that keeps the value (rare with these jumps) is not timed
            await page.wait_for_function(
                "v => [...document.querySelectorAll(\"[data-testid='stMetric']\")].find(m => m.innerText.includes('all mIoU'))"
                "?.querySelector(\"[data-testid='stMetricValue']\")?.innerText.trim() !== v", arg=before_value, timeout=30_000)
            latencies.append(time.perf_counter() - start)
        except PlaywrightTimeout:
            pass
        await settle(page)
        readings.append(await reading(page))
    await context.close()
    return readings, latencies


def peak_rss_mib(pid: int) -> float:
    """Peak resident memory (VmHWM) of a process and its children's current RSS, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def main(sessions: int, moves: int, model: str) -> int:
    with streamlit_server(timeout=180) as server:
        lab = f"{server.url}/segmentation-lab?seg_model={quote(f'shipped {SHIPPED[model]}')}"
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            patterns = [PATTERNS[i % len(PATTERNS)][:moves] for i in range(sessions)]
            alone, alone_lat = [], []
            for keys in patterns:  # the single-session reference, one pattern at a time
                readings, lat = await run_session(browser, lab, keys)
                alone.append(readings)
                alone_lat += lat
            together = await asyncio.gather(*(run_session(browser, lab, keys) for keys in patterns))
            await browser.close()
        memory = peak_rss_mib(server.pid)
    mismatches = [(i, a, b) for i, (seen, _) in enumerate(together) for a, b in zip(alone[i], seen) if a != b]
    lat = [x for _, l in together for x in l]
    q = statistics.quantiles(lat, n=20)
    print(f"{model} model: {sessions} sessions x {moves} slider moves, each checked against the same pattern run alone")
    print(f"readings compared: {sum(len(r) for r, _ in together)}, mismatches: {len(mismatches)}")
    for m in mismatches[:5]:
        print("  mismatch (session, alone, concurrent):", m)
    print(f"latency per move, alone:       median {statistics.median(alone_lat):.2f} s, "
          f"p95 {statistics.quantiles(alone_lat, n=20)[-1]:.2f} s")
    print(f"latency per move, {sessions} at once: median {statistics.median(lat):.2f} s, p95 {q[-1]:.2f} s")
    print(f"server peak memory (VmHWM): {memory:.0f} MiB")
    return 1 if mismatches else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=4)
    parser.add_argument("--moves", type=int, default=8, help="at most 8")
    parser.add_argument("--model", choices=list(SHIPPED), default="default", help="shipped model to open the lab with")
    args = parser.parse_args()
    raise SystemExit(asyncio.run(main(args.sessions, args.moves, args.model)))
