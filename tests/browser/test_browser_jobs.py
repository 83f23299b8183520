"""Runs in a real browser: a Grid probe training survives a reload, a Stop keeps its last checkpoint (downloaded, the
CLI measures what the page measures), and a server restart leaves the finished run there and the one in flight
interrupted, continued to the same step count."""
from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs, quote, urlparse

from playwright.sync_api import expect

from browser_harness import APP_IDLE, ARTIFACTS, LOAD_TIMEOUT, ROOT, no_exception, open_page, streamlit_server

TRAIN = "grid-probe?gp_tab=Train+your+own"


def run_id(page) -> str:
    return parse_qs(urlparse(page.url).query)["run"][0]


def record(cache: Path, rid: str) -> dict:
    return json.loads((cache / "runs" / rid / "run.json").read_text())


def wait_until(predicate, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.25)


def train(page, base: str, steps: int) -> str:
    """Start a training of ``steps`` steps on the Grid probe page; its run id (from the URL)."""
    open_page(page, f"{base}/{TRAIN}", "Grid probe")
    page.get_by_label("Steps (batch 48)").fill(str(steps))
    page.get_by_role("button", name="Train", exact=True).click()
    expect(page.get_by_role("button", name="Stop")).to_be_visible(timeout=LOAD_TIMEOUT)
    wait_until(lambda: "run=" in page.url)
    return run_id(page)


def test_a_run_survives_a_reload_a_stop_and_a_server_restart(chromium, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("POSLAB_CACHE", str(cache))
    tab = chromium.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True).new_page()
    try:
        with streamlit_server() as server:
            # reload mid-run: the same run's progress goes on, and its model appears when it is done
            done_id = train(tab, server.url, 60)
            wait_until(lambda: record(cache, done_id)["step"] >= 10)
            tab.reload()
            tab.wait_for_selector(APP_IDLE, timeout=LOAD_TIMEOUT)
            expect(tab.get_by_test_id("stProgress").get_by_text(re.compile("running|done"))).to_be_visible(timeout=LOAD_TIMEOUT)
            expect(tab.get_by_text("selectable above")).to_be_visible(timeout=LOAD_TIMEOUT)
            assert run_id(tab) == done_id and record(cache, done_id)["state"] == "done"
            no_exception(tab)

            # Stop: the model at its last checkpoint is listed, usable, and downloadable
            stopped_id = train(tab, server.url, 500)
            wait_until(lambda: record(cache, stopped_id)["checkpoint_step"] >= 50)
            tab.get_by_role("button", name="Stop").click()
            expect(tab.get_by_text(re.compile(r"was stopped; the model at its last checkpoint \(step [\d,]+ of 500\)")))\
                .to_be_visible(timeout=LOAD_TIMEOUT)
            stopped = record(cache, stopped_id)
            assert stopped["state"] == "stopped" and 50 <= stopped["checkpoint_step"] < 500
            tab.wait_for_selector(APP_IDLE, timeout=LOAD_TIMEOUT)  # the page's rerun after the run ended has drawn its buttons
            with tab.expect_download(timeout=LOAD_TIMEOUT) as download:
                tab.get_by_role("button", name="Checkpoint (.pt)").click()
            saved = tmp_path / "stopped.pt"
            download.value.save_as(saved)
            name = f"{stopped['title']} · run {stopped_id[:6]} (step {stopped['checkpoint_step']:,})"
            open_page(tab, f"{server.url}/grid-probe?run={stopped_id}&gp_tab=All+cells&gp_nets={quote(name)}", "Grid probe")
            tab.get_by_role("button", name="Evaluate all cells").click()
            overall = tab.get_by_text(re.compile(r"^Overall \d+\.\d%"))
            expect(overall).to_be_visible(timeout=LOAD_TIMEOUT)
            page_accuracy = re.search(r"Overall (\d+\.\d)%", overall.inner_text()).group(1)
            cli = subprocess.run([sys.executable, "-m", "engine", "eval-probe", "--checkpoint", str(saved), "--samples", "500"],
                                 cwd=ROOT, capture_output=True, text=True, timeout=300)
            assert cli.returncode == 0, cli.stderr
            cli_accuracy = float(re.search(r"accuracy ([\d.]+)%", cli.stdout).group(1))
            assert f"{cli_accuracy:.1f}" == page_accuracy
            no_exception(tab)

            # a run in flight when the server stops
            flight_id = train(tab, server.url, 100)
            wait_until(lambda: record(cache, flight_id)["checkpoint_step"] >= 20)
        tab.screenshot(path=str(ARTIFACTS / "runs-before-restart.png"), full_page=True)

        with streamlit_server() as server:  # the same cache folder: the run store is still there
            open_page(tab, f"{server.url}/{TRAIN}&run={done_id}", "Grid probe")
            expect(tab.get_by_text("selectable above")).to_be_visible(timeout=LOAD_TIMEOUT)
            open_page(tab, f"{server.url}/{TRAIN}&run={flight_id}", "Grid probe")
            kept = record(cache, flight_id)["checkpoint_step"]
            expect(tab.get_by_text(f"was interrupted; the model at its last checkpoint (step {kept:,} of 100)"))\
                .to_be_visible(timeout=LOAD_TIMEOUT)
            tab.get_by_role("button", name="Continue to step 100").click()
            expect(tab.get_by_test_id("stProgress").get_by_text(re.compile(r": running, \d+ of 100"))).to_be_visible(
                timeout=LOAD_TIMEOUT)
            expect(tab.get_by_test_id("stProgress").get_by_text(": done, 100 of 100")).to_have_count(1, timeout=4 * LOAD_TIMEOUT)
            expect(tab.get_by_test_id("stProgress")).to_have_count(1)  # one bar: the run's fragment was not drawn twice
            expect(tab.get_by_text(re.compile(r"selectable above .* Accuracy \d+\.\d% on 500"))).to_be_visible()
            finished = record(cache, flight_id)
            assert finished["state"] == "done" and finished["step"] == finished["checkpoint_step"] == 100
            tab.screenshot(path=str(ARTIFACTS / "runs-continued.png"), full_page=True)
            no_exception(tab)
    finally:
        tab.context.close()
