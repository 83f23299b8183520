"""Cold start: how long a fresh server on an empty cache folder takes to show each page and to answer the Channel
code page's controls, in chromium.

A server is started on 127.0.0.1 with ``POSLAB_CACHE`` set to a new empty folder, so nothing computed by an earlier
run helps. Each page is opened in a fresh tab and timed until its first chart is in the page (Home has no chart: until
its first run has finished), as the page itself records it: from the navigation's start to the end of the task that
added the element, with no polling delay; a lab's line also says when the page's thread took its first chart's data
from the websocket (chromium stamps a received frame when the page's main thread handles it, so a thread busy with
other work, such as plotly's bundle, stamps it late). Then, on the Channel code page: the grid 3 -> 5 -> 7, a network switch at 7x7, 128 images averaged (a count not shipped: also timed
until its map shows), its Decode tab and a fresh decode, each timed until the page's run has finished; the fresh decode computes on the server's
worker thread, so it is also timed until its table shows. Then reloads: the finished fresh decode's table shown
again, and a second fresh decode reloaded while it computes, timed from its click until its table shows. Last, each
page is opened again in a new browser context (a second visitor, as in a class: the server has run each page once);
then a visitor opens Home and follows its navigation to each lab, and opens each lab in a new tab of that browser
(its scripts cached). Last, the floor under all of these: a bare page with one small chart, served the same way.

    python bench/bench_cold.py [--json out.json] [--baseline earlier.json] [--pages-only]

``--pages-only`` opens the pages (cold, then again) and leaves the Channel code controls out, so it also runs on
commits whose pages have other controls. With ``--baseline`` each line also shows the earlier run's seconds and the
ratio. Traffic goes only to the server this script starts.
"""
from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from playwright.sync_api import Page, sync_playwright  # noqa: E402

from browser_harness import APP_IDLE, CHROMIUM, CHROMIUM_ARGS, streamlit_server  # noqa: E402

TIMEOUT = 300_000
CHART = "[data-testid='stPlotlyChart'] .main-svg"
PAGES = {"Home": ("", "PosLab", None), "Grid probe": ("grid-probe", "Grid probe", CHART),
         "Channel code": ("channel-code", "Channel code", CHART), "Segmentation lab": ("segmentation-lab", "Segmentation lab", CHART),
         "Shift lab": ("shift-lab", "Shift lab", CHART)}
LABS = {name: page for name, page in PAGES.items() if page[2]}
BARE_APP = """import plotly.graph_objects as go
import streamlit as st

st.title("Bare page")
st.plotly_chart(go.Figure(go.Scatter(x=list(range(8)), y=[1, 3, 2, 5, 4, 6, 5, 7])))
"""
READ_HOME = 2_000  # ms a visitor spends on Home before following its navigation
SHOWN = """([heading, chart]) => { window.__clicked = performance.now(); window.__shown = null;
  new MutationObserver((_, o) => { const h = document.querySelector("h1");
    if (h && h.textContent.includes(heading) && document.querySelector(chart)) {
      window.__shown = performance.now() - window.__clicked; o.disconnect(); } })
  .observe(document, {subtree: true, childList: true, attributes: true}); }"""
RUNNING = "[data-testid='stApp'][data-test-script-state='running']"
FRESH_TABLE = ".st-key-cc_fresh_decode_table"
SWITCH_NET = "probe/location-gapnet"


def mark_script(selectors: dict[str, str]) -> str:
    """A script that records, in the page, when each of ``selectors`` first matches (``window.__marks``) and when its
    count of matches last grew (``window.__last``), in ``performance.now()`` ms since navigation, at the end of the
    task that added the elements (no polling delay)."""
    return ("window.__marks = {}; window.__last = {}; const counts = {}; const wanted = " + json.dumps(selectors) + "; "
            "new MutationObserver(() => { const now = performance.now(); "
            "for (const [name, s] of Object.entries(wanted)) { const n = document.querySelectorAll(s).length; "
            "if (n && !(name in window.__marks)) window.__marks[name] = now; "
            "if (n > (counts[name] || 0)) { counts[name] = n; window.__last[name] = now; } } })"
            ".observe(document, {subtree: true, childList: true, attributes: true});")


def open_timed(page: Page, url: str, heading: str, chart: str | None) -> dict[str, float]:
    """Seconds from navigating to ``url`` until its heading shows, its first chart shows (no chart: until its first run
    has finished) and that run has finished, as the page recorded them; and until the page's thread took the first
    websocket message holding a plotly figure ("chart data")."""
    cdp = page.context.new_cdp_session(page)
    network: dict[str, float] = {}

    def document(event: dict) -> None:
        if event.get("type") == "Document" and "start" not in network:
            network["start"] = event["timestamp"]

    def frame(event: dict) -> None:
        response = event["response"]
        if "chart data" not in network and response["opcode"] == 2 and b'"layout":' in base64.b64decode(response["payloadData"]):
            network["chart data"] = event["timestamp"]

    cdp.on("Network.requestWillBeSent", document)
    cdp.on("Network.webSocketFrameReceived", frame)
    cdp.send("Network.enable")
    page.add_init_script(mark_script({"heading": "h1", "chart": chart or APP_IDLE, "finished": APP_IDLE}))
    page.goto(url)
    page.get_by_role("heading", name=heading).first.wait_for(timeout=TIMEOUT)
    page.wait_for_selector(chart or APP_IDLE, timeout=TIMEOUT)
    page.wait_for_selector(APP_IDLE, timeout=TIMEOUT)
    marks = {name: ms / 1e3 for name, ms in page.evaluate("window.__marks").items()}
    if "chart data" in network:
        marks["chart data"] = network["chart data"] - network["start"]
    cdp.detach()
    return marks


def opened(name: str, marks: dict[str, float]) -> str:
    """One line for a page's opening."""
    data = f", chart data {marks['chart data']:.2f} s" if "chart data" in marks else ""
    return f"{name}: {marks['chart']:.2f} s (heading {marks['heading']:.2f} s{data}, run finished {marks['finished']:.2f} s)"


def rerun_timed(page: Page, act) -> float:
    """Seconds from ``act()`` (a widget change) until the run it starts has finished."""
    start = time.perf_counter()
    act()
    try:
        page.wait_for_selector(RUNNING, timeout=5_000)
    except Exception:  # noqa: BLE001  (a run shorter than the poll: already finished)
        pass
    page.wait_for_selector(APP_IDLE, timeout=TIMEOUT)
    return time.perf_counter() - start


def choose(page: Page, label: str, option: str):
    """An action picking ``option`` in the selectbox ``label``."""
    def act() -> None:
        page.get_by_role("combobox", name=label, exact=True).click()
        page.get_by_role("option", name=option, exact=True).click()
    return act


def measure(url: str, browser, controls: bool = True) -> dict[str, float]:
    """Every page's cold opening, then the Channel code controls (unless ``controls`` is false), then every page opened
    again, in seconds."""
    out = {}
    for name, (path, heading, chart) in PAGES.items():
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        page = context.new_page()
        marks = open_timed(page, f"{url}/{path}", heading, chart)
        out[f"open {name}"] = marks["chart"]
        if "chart data" in marks:
            out[f"open {name}: chart data"] = marks["chart data"]
        print(opened(f"open {name}", marks), flush=True)
        if name != "Channel code" or not controls:
            context.close()
            continue
        steps = {"Channel code grid 3 -> 5": choose(page, "Grid", "5"), "Channel code grid 5 -> 7": choose(page, "Grid", "7"),
                 f"Channel code network -> {SWITCH_NET} (7x7)": choose(page, "Network", SWITCH_NET),
                 "Channel code images averaged 32 -> 128 (7x7)": lambda: page.get_by_role("slider", name="Images averaged").press("End"),
                 "Channel code Decode tab (7x7)": lambda: page.get_by_role("tab", name="Decode").click(),
                 "Channel code fresh decode (7x7)": lambda: page.get_by_role("button", name="Decode on a fresh sample").click()}
        for step, act in steps.items():
            start = time.perf_counter()
            out[step] = rerun_timed(page, act)
            print(f"{step}: {out[step]:.2f} s", flush=True)
            if "images" in step:  # it answers with the shipped map and a note; then its own map replaces it
                page.get_by_text("Means over 128 test images").wait_for(timeout=TIMEOUT)
                out["Channel code 128-image map shown (7x7)"] = time.perf_counter() - start
                print(f"Channel code 128-image map shown (7x7): {out['Channel code 128-image map shown (7x7)']:.2f} s", flush=True)
        page.wait_for_selector(FRESH_TABLE, timeout=TIMEOUT)  # `start`: the last step's, the fresh decode
        out["Channel code fresh decode table shown (7x7)"] = time.perf_counter() - start
        print(f"Channel code fresh decode table shown (7x7): {out['Channel code fresh decode table shown (7x7)']:.2f} s",
              flush=True)
        out.update(reloads(page))
        assert page.locator("[data-testid='stException']").count() == 0, "an exception on the Channel code page"
        context.close()
    for name, (path, heading, chart) in PAGES.items():  # a second visitor: the server has run each page once
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        marks = open_timed(context.new_page(), f"{url}/{path}", heading, chart)
        out[f"open {name} again"] = marks["chart"]
        if "chart data" in marks:
            out[f"open {name} again: chart data"] = marks["chart data"]
        print(opened(f"open {name} again (another browser, fresh tab)", marks), flush=True)
        context.close()
    return out


def navigations(url: str, browser) -> dict[str, float]:
    """A visitor who opens Home, reads it for 2 s and follows the navigation: seconds from clicking each lab's link
    (from Home each time, which has no chart) until the lab's heading and first chart show, as the page records it.
    Then the same browser opens each lab in a new tab: a returning visitor, its scripts in the browser's cache."""
    out = {}
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.goto(url)
    page.wait_for_selector(APP_IDLE, timeout=TIMEOUT)
    page.wait_for_timeout(READ_HOME)
    for name, (_, heading, chart) in LABS.items():
        page.evaluate(SHOWN, [heading, chart])
        page.get_by_role("link", name=name, exact=True).click()
        page.wait_for_function("window.__shown !== null", timeout=TIMEOUT)
        page.wait_for_selector(APP_IDLE, timeout=TIMEOUT)
        out[f"open {name} from Home's navigation"] = page.evaluate("window.__shown") / 1e3
        page.get_by_role("link", name="Home", exact=True).click()
        page.get_by_role("heading", name=PAGES["Home"][1]).first.wait_for(timeout=TIMEOUT)
        page.wait_for_selector(APP_IDLE, timeout=TIMEOUT)
    for name, (path, heading, chart) in LABS.items():
        tab = context.new_page()
        marks = open_timed(tab, f"{url}/{path}", heading, chart)
        out[f"open {name} in a new tab of the same browser"] = marks["chart"]
        tab.close()
    context.close()
    for item, seconds in out.items():
        print(f"{item}: {seconds:.2f} s", flush=True)
    return out


def bare_page(browser, folder: Path) -> dict[str, float]:
    """The floor under every lab's opening: a page of nothing but a heading and one 8-point plotly chart, served the
    same way (``ui.serve``, plotly's bundle preloaded), opened twice in fresh browser contexts."""
    app = folder / "bare_page.py"
    app.write_text(BARE_APP)
    out = {}
    with streamlit_server(app=app) as server:
        for visit in ("", " again"):
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            marks = open_timed(context.new_page(), server.url, "Bare page", CHART)
            context.close()
            out[f"open a bare page with one chart{visit}"] = marks["chart"]
            print(opened(f"open a bare page with one chart{visit}", marks), flush=True)
    return out


def reloads(page: Page) -> dict[str, float]:
    """A reload (F5) after the fresh decode: seconds until its table shows again (its URL names it; nothing is
    computed again). Then a second fresh decode reloaded at once: seconds from the click until its table shows."""
    out = {}
    start = time.perf_counter()
    page.reload()
    page.wait_for_selector(FRESH_TABLE, timeout=TIMEOUT)
    out["Channel code reload: fresh decode table shown again (7x7)"] = time.perf_counter() - start
    start = time.perf_counter()
    page.get_by_role("button", name="Decode on a fresh sample").click()
    page.get_by_text("Decoding on a fresh sample").wait_for(timeout=TIMEOUT)
    page.reload()  # while it computes: the reloaded page reattaches to the job
    page.get_by_text("Decoding on a fresh sample").wait_for(timeout=TIMEOUT)
    page.wait_for_selector(FRESH_TABLE, timeout=TIMEOUT)
    out["Channel code fresh decode reloaded while computing: table shown (7x7)"] = time.perf_counter() - start
    for item, seconds in out.items():
        print(f"{item}: {seconds:.2f} s", flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", type=Path, help="write the seconds per item here")
    parser.add_argument("--baseline", type=Path, help="an earlier --json to print beside")
    parser.add_argument("--pages-only", action="store_true", help="open the pages (twice each) but leave the controls out")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="poslab-cold-") as cache:
        os.environ["POSLAB_CACHE"] = cache
        with streamlit_server() as server, sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            try:
                seconds = measure(server.url, browser, controls=not args.pages_only)
                seconds |= navigations(server.url, browser)
            finally:
                browser.close()
        with sync_playwright() as pw:  # the app's server has stopped: the bare page has the machine to itself
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            try:
                seconds |= bare_page(browser, Path(cache))
            finally:
                browser.close()
    before = json.loads(args.baseline.read_text()) if args.baseline else {}
    print("\nitem | seconds" + (" | baseline | ratio" if before else ""))
    for item, s in seconds.items():
        line = f"{item} | {s:.2f}"
        if item in before:
            line += f" | {before[item]:.2f} | {before[item] / s:.1f}x"
        print(line)
    if args.json:
        args.json.write_text(json.dumps(seconds, indent=1))


if __name__ == "__main__":
    main()
