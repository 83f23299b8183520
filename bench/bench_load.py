"""Load test: several browser sessions move the Segmentation lab's ablation slider at once; idle tabs' cost.

Each session follows one of four patterns of key presses on the N slider (PageUp/PageDown/Home/End). Every pattern is
first run alone (the single-session reference), then all sessions at once against the same server; every (N, mIoU)
the concurrent sessions see must equal what their pattern saw alone: no errors, no cross-talk. Prints the median and
p95 latency per slider move, the server's and the browsers' CPU time per move (they share the cores) and the server's
peak memory.

    python bench/bench_load.py [--sessions 4] [--moves 8] [--model control]
    python bench/bench_load.py --sessions 16 --servers 2    # also the same sessions split over two servers
    python bench/bench_load.py --idle 3 --seconds 60        # 3 idle tabs of each lab: the server's CPU time

With ``--servers 2`` two PosLab processes share one cache folder (as behind a reverse proxy with sticky sessions;
each session connects to one of them directly) and the p95 is compared with all sessions on one server.
Traffic goes only to Streamlit servers this script starts on 127.0.0.1; bounded in moves and time.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
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
LABS = ("grid-probe", "segmentation-lab", "shift-lab")


# The waits below watch the page with a MutationObserver and read textContent (no forced layout), instead of
# Playwright's polling on every animation frame: with many tabs on the same cores, the polling's own CPU grew with the
# latency it measured.
WATCH = """([selector, value, timeout]) => new Promise(resolve => {
  const read = () => selector ? (document.querySelector(selector) ? 'idle' : null)
    : [...document.querySelectorAll("[data-testid='stMetric']")].find(m => m.textContent.includes('all mIoU'))
        ?.querySelector("[data-testid='stMetricValue']")?.textContent.trim();
  const done = () => { const now = read(); return now != null && now !== value; };
  if (done()) return resolve(true);
  const watcher = new MutationObserver(() => { if (done()) { watcher.disconnect(); resolve(true); } });
  watcher.observe(document.body, {subtree: true, childList: true, characterData: true, attributes: true});
  setTimeout(() => { watcher.disconnect(); resolve(done()); }, timeout);
})"""


async def settle(page: Page) -> None:
    """Wait until the app has finished its run; called once that run has begun (first load, or a metric changed)."""
    if not await page.evaluate(WATCH, [APP_IDLE, None, TIMEOUT]):
        raise PlaywrightTimeout(f"the app did not finish its run within {TIMEOUT / 1000:.0f} s")


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


async def run_session(browser, url: str, keys: tuple[str, ...], start_together: asyncio.Barrier | None = None,
                      on_start=None) -> tuple[list[tuple[int, str]], list[float], tuple[float, float]]:
    """Open the lab at ``url``, press ``keys`` on the N slider one at a time; record readings and latencies, and the
    seconds from opening the page to its heading and to its first chart. With ``start_together``, the first move waits until every
    session has opened its page (and the last one to arrive calls ``on_start``)."""
    context = await browser.new_context(viewport={"width": 1400, "height": 1000})
    page = await context.new_page()
    start = time.perf_counter()
    await page.goto(url)
    await page.get_by_role("heading", name="Segmentation lab").first.wait_for(timeout=TIMEOUT)
    heading = time.perf_counter() - start
    await page.locator("[data-testid='stPlotlyChart']").first.wait_for(timeout=TIMEOUT)
    first_chart = (heading, time.perf_counter() - start)
    thumb = page.get_by_role("slider", name=SLIDER)
    await thumb.wait_for(timeout=TIMEOUT)
    await page.locator("[data-testid='stMetric']").filter(has_text="all mIoU").first.wait_for(timeout=TIMEOUT)
    await settle(page)
    if start_together is not None and await start_together.wait() == 0 and on_start is not None:
        on_start()
    readings, latencies = [await reading(page)], []
    for key in keys:
        before_n, before_value = readings[-1]
        start = time.perf_counter()
        await thumb.focus()
        await page.keyboard.press(key)
        # answered when the metric shows a new value; a move that keeps the value (rare with these jumps) is not timed
        if await page.evaluate(WATCH, [None, before_value, 30_000]):
            latencies.append(time.perf_counter() - start)
        await settle(page)
        readings.append(await reading(page))
    await context.close()
    return readings, latencies, first_chart


def peak_rss_mib(pid: int) -> float:
    """Peak resident memory (VmHWM) of a process, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads) so far, from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def browser_cpu_seconds(servers: list) -> float:
    """CPU time so far of this script's child processes other than the servers: chromium and the Playwright driver
    (with their exited children's, which their parents have reaped)."""
    parent, times = {}, {}
    for proc in Path("/proc").iterdir():
        try:
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, ValueError):
            continue
        if proc.name.isdigit():
            parent[int(proc.name)] = int(fields[1])
            times[int(proc.name)] = sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")
    skip, total = {x.pid for x in servers}, 0.0
    for pid, seconds in times.items():
        up = parent.get(pid)
        while up is not None and up not in skip and up != os.getpid():
            up = parent.get(up)
        total += seconds if up == os.getpid() and pid not in skip else 0.0
    return total


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1] if len(values) > 1 else values[0]


def lab_url(server, model: str) -> str:
    return f"{server.url}/segmentation-lab?seg_model={quote(f'shipped {SHIPPED[model]}')}"


async def together(browser, started: list, model: str, patterns: list[tuple[str, ...]]):
    """Every session at once, session i on server ``i % len(started)``; they open the page, then all start moving.
    Returns the sessions' runs, the servers' and the browsers' CPU seconds and the wall seconds from the first move to
    the last."""
    barrier, window = asyncio.Barrier(len(patterns)), {}

    def on_start() -> None:
        window.update(cpu=sum(cpu_seconds(x.pid) for x in started), browsers=browser_cpu_seconds(started), wall=time.monotonic())

    runs = await asyncio.gather(*(run_session(browser, lab_url(started[i % len(started)], model), keys, barrier, on_start)
                                  for i, keys in enumerate(patterns)))
    return (runs, sum(cpu_seconds(x.pid) for x in started) - window["cpu"], browser_cpu_seconds(started) - window["browsers"],
            time.monotonic() - window["wall"])


def report(label: str, runs, alone: dict, patterns: list[tuple[str, ...]]) -> tuple[list[float], int]:
    """Print one concurrent run's latencies and its cross-talk check against the patterns run alone."""
    mismatches = [(i, a, b) for i, (seen, _, _) in enumerate(runs) for a, b in zip(alone[patterns[i]], seen) if a != b]
    lat = [x for _, l, _ in runs for x in l]
    print(f"{label}: readings compared {sum(len(r) for r, _, _ in runs)}, mismatches {len(mismatches)}; latency per move "
          f"median {statistics.median(lat):.2f} s, p95 {p95(lat):.2f} s")
    for m in mismatches[:5]:
        print("  mismatch (session, alone, concurrent):", m)
    return lat, len(mismatches)


async def slider(sessions: int, moves: int, model: str, servers: int) -> int:
    """The patterns alone on one server, then all sessions at once on a fresh server (and split over ``servers`` fresh
    ones): nothing the reference runs computed is in the measured servers' memory, only what every server shares
    (the shipped files and the cache folder)."""
    patterns = [PATTERNS[i % len(PATTERNS)][:moves] for i in range(sessions)]
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        alone, alone_lat, opening = {}, [], []
        with streamlit_server(timeout=180) as server:
            for keys in dict.fromkeys(patterns):  # the single-session reference, one pattern at a time
                alone[keys], lat, first_chart = await run_session(browser, lab_url(server, model), keys)
                alone_lat += lat
                opening.append(first_chart)
        print(f"{model} model: {sessions} sessions x {moves} slider moves, each checked against its pattern run alone")
        print("opening the lab alone (first: cold server): heading, first chart after "
              + ", ".join(f"{h:.1f}/{c:.1f}" for h, c in opening) + " s")
        print(f"latency per move, alone: median {statistics.median(alone_lat):.2f} s, p95 {p95(alone_lat):.2f} s")
        p95s, bad = {}, 0
        for count in sorted({1, servers}):
            with contextlib.ExitStack() as stack:
                started = [stack.enter_context(streamlit_server(timeout=180)) for _ in range(count)]
                runs, cpu, browsers, wall = await together(browser, started, model, patterns)
                memory = ", ".join(f"{peak_rss_mib(x.pid):.0f} MiB" for x in started)
            lat, more = report(f"{sessions} at once, {count} server{'s' if count > 1 else ''}", runs, alone, patterns)
            moved = sum(len(r[0]) - 1 for r in runs)
            print(f"  while they moved: server CPU {cpu:.1f} s in {wall:.1f} s ({100 * cpu / wall:.0f}% of one core), "
                  f"{cpu / moved:.3f} s per move; the browsers (chromium, Playwright) on the same cores: {browsers / moved:.3f} s per move")
            print(f"  bound without the browsers: server CPU per move x {len(patterns)} sessions / {os.cpu_count()} cores = "
                  f"{cpu / moved * len(patterns) / os.cpu_count():.2f} s for every session to move once")
            print(f"  all opening at once: first chart after median {statistics.median(r[2][1] for r in runs):.1f} s; "
                  f"server peak memory (VmHWM): {memory}")
            p95s[count], bad = p95(lat), bad + more
        if servers > 1:
            print(f"p95 with {servers} servers / 1 server: {p95s[servers] / p95s[1]:.2f}")
        await browser.close()
    return 1 if bad else 0


async def idle(tabs: int, seconds: float, pages: list[str]) -> int:
    """Open ``tabs`` tabs of each page, let them load, then measure the server's CPU time while nobody acts."""
    with streamlit_server(timeout=180) as server:
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            opened = []
            for name in pages:
                for _ in range(tabs):
                    page = await (await browser.new_context(viewport={"width": 1400, "height": 1000})).new_page()
                    await page.goto(f"{server.url}/{name}", timeout=TIMEOUT)
                    opened.append(page)
            for page in opened:
                await page.wait_for_selector(APP_IDLE, timeout=TIMEOUT)
            await asyncio.sleep(5)  # what the first runs left (charts' data requests) settles
            start, begin = cpu_seconds(server.pid), time.monotonic()
            await asyncio.sleep(seconds)
            used, wall = cpu_seconds(server.pid) - start, time.monotonic() - begin
            await browser.close()
    print(f"idle: {tabs} tabs of each of {', '.join(pages)} ({tabs * len(pages)} tabs) for {wall:.0f} s: "
          f"server CPU {100 * used / wall:.1f}% of one core")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=4)
    parser.add_argument("--moves", type=int, default=8, help="at most 8")
    parser.add_argument("--model", choices=list(SHIPPED), default="default", help="shipped model to open the lab with")
    parser.add_argument("--servers", type=int, default=1, help="also split the sessions over this many servers")
    parser.add_argument("--idle", type=int, default=0, metavar="K", help="measure K idle tabs of each page instead")
    parser.add_argument("--seconds", type=float, default=60, help="the idle measurement's window")
    parser.add_argument("--pages", nargs="+", default=list(LABS), help="pages the idle tabs open")
    args = parser.parse_args()
    if args.idle:
        raise SystemExit(asyncio.run(idle(args.idle, args.seconds, args.pages)))
    raise SystemExit(asyncio.run(slider(args.sessions, args.moves, args.model, args.servers)))
