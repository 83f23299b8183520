"""Where chromium's main thread spends a page's opening: a CPU profile of one page opened in a fresh tab (the server
has run the page once), summed per 100 ms, with the moments its heading, first table and charts appeared.

    python bench/profile_open.py channel-code [--bin 0.1]

Each line: the time since the profile started (just before navigating), the milliseconds the main thread was busy
in that bin and the scripts it ran most (Streamlit's, plotly's, "(program)" for parsing and compiling). The marks are taken in the page by a
MutationObserver, so they show when an element was added, at the end of the task that added it. Traffic goes only
to the server this script starts.

The profiler changes what it measures: with it attached, plotly's bundle evaluates in about 0.35 s, without it in
0.75-0.8 s (chromium 156 here), and charts show about 0.4 s earlier. So the first lines come from another opening
with no profiler: its marks and its main thread's long tasks (the Long Tasks API: each task over 50 ms), the
durations to trust; the profile says which scripts ran, in order.
"""
from __future__ import annotations

import argparse
import collections
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from bench_cold import mark_script  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402

from browser_harness import APP_IDLE, CHROMIUM, CHROMIUM_ARGS, streamlit_server  # noqa: E402

TIMEOUT = 120_000
CHART = "[data-testid='stPlotlyChart'] .main-svg"
MARKS = mark_script({"heading": "h1", "table": "[data-testid='stDataFrame'], [data-testid='stTable']", "chart": CHART})
LONG_TASKS = ("window.__long = []; new PerformanceObserver(list => { for (const e of list.getEntries()) "
              "window.__long.push([e.startTime, e.duration]); }).observe({type: 'longtask', buffered: true});")


def long_tasks(browser, url: str) -> tuple[dict, list]:
    """The in-page marks and the main thread's long tasks (over 50 ms: start and length, ms since navigation) of
    opening ``url`` in a fresh tab with no profiler attached."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.add_init_script(MARKS)
    page.add_init_script(LONG_TASKS)
    page.goto(url)
    page.wait_for_selector(APP_IDLE, timeout=TIMEOUT)
    time.sleep(1)
    marks, tasks = page.evaluate("window.__marks"), page.evaluate("window.__long")
    context.close()
    return marks, tasks


def profile(url: str, path: str) -> tuple[dict, dict, tuple[dict, list]]:
    """The in-page marks (ms since navigation) and chromium's CPU profile of opening ``url/path`` in a fresh tab; then
    :func:`long_tasks` of another such opening, with no profiler."""
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            warm = browser.new_context()
            warm.new_page().goto(f"{url}/{path}")
            warm.pages[0].wait_for_selector(APP_IDLE, timeout=TIMEOUT)
            warm.close()
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            page = context.new_page()
            page.add_init_script(MARKS)
            cdp = context.new_cdp_session(page)
            cdp.send("Profiler.enable")
            cdp.send("Profiler.setSamplingInterval", {"interval": 1000})
            cdp.send("Profiler.start")
            page.goto(f"{url}/{path}")
            page.wait_for_selector(APP_IDLE, timeout=TIMEOUT)
            time.sleep(1)
            marks = page.evaluate("window.__marks")
            if "chart" in marks:  # when the last of the first view's charts was added
                marks["last chart"] = page.evaluate("window.__last.chart")
            prof = cdp.send("Profiler.stop")["profile"]
            context.close()
            return marks, prof, long_tasks(browser, f"{url}/{path}")
        finally:
            browser.close()


def busy_per_bin(prof: dict, width: float) -> dict[int, collections.Counter]:
    """Milliseconds per script, in bins of ``width`` seconds from the profile's start (each sample counts the time
    since the one before it)."""
    nodes = {n["id"]: n["callFrame"] for n in prof["nodes"]}
    bins: dict[int, collections.Counter] = collections.defaultdict(collections.Counter)  # script -> ms
    t = prof["startTime"]
    for sample, delta in zip(prof["samples"], prof["timeDeltas"]):
        t += delta
        frame = nodes[sample]
        bins[int((t - prof["startTime"]) / (width * 1e6))][frame["url"].rsplit("/", 1)[-1] or frame["functionName"]] += delta / 1e3
    return bins


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("path", help="the page's path, e.g. channel-code ('' for Home)")
    parser.add_argument("--bin", type=float, default=0.1, help="seconds per line")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="poslab-profile-") as cache:
        os.environ["POSLAB_CACHE"] = cache
        with streamlit_server() as server:
            marks, prof, (plain_marks, tasks) = profile(server.url, args.path)
    print("without the profiler: marks (s after navigation) " + ", ".join(f"{k} {v / 1000:.2f}" for k, v in plain_marks.items()))
    print("  long tasks (start s + ms): " + ", ".join(f"{start / 1000:.2f}+{length:.0f}" for start, length in tasks))
    print("profiled: marks (s after navigation) " + ", ".join(f"{k} {v / 1000:.2f}" for k, v in marks.items()))
    for index, counts in sorted(busy_per_bin(prof, args.bin).items()):
        busy = {name: n for name, n in counts.items() if name != "(idle)"}
        top = ", ".join(f"{name} {ms:.0f}" for name, ms in sorted(busy.items(), key=lambda kv: -kv[1])[:4])
        print(f"{index * args.bin:5.1f} s  busy {sum(busy.values()):4.0f} ms  {top}")


if __name__ == "__main__":
    main()
