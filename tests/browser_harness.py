"""Browser-test plumbing: a Streamlit server on a free localhost port and Debian's chromium via Playwright."""
from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = os.environ.get("POSLAB_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]


LOAD_TIMEOUT = 120_000
# The app's root element once it is connected and no script run is under way. Streamlit's status widget is no
# signal for this: it shows "Running..." only after a run has lasted 500 ms, so it is absent early in every run.
# A freshly loaded page reads "initial" until its first run has finished, never "notRunning".
APP_IDLE = "[data-testid='stApp'][data-test-connection-state='CONNECTED'][data-test-script-state='notRunning']"


def open_page(page, url: str, heading: str) -> None:
    """Go to ``url`` and wait until its heading shows and the app's first run has finished."""
    from playwright.sync_api import expect

    page.goto(url)
    expect(page.get_by_role("heading", name=re.compile(heading)).first).to_be_visible(timeout=LOAD_TIMEOUT)
    page.wait_for_selector(APP_IDLE, timeout=LOAD_TIMEOUT)


def no_exception(page) -> None:
    """No exception box and no dialog (e.g. "Page not found") over the page."""
    assert page.locator("[data-testid='stException']").count() == 0
    assert page.get_by_role("dialog").count() == 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class Server:
    url: str
    pid: int


@contextlib.contextmanager
def streamlit_server(timeout: float = 120, app: Path | None = None) -> Iterator[Server]:
    """Start the app as README does (``python -m ui.serve``) on localhost; yield its URL and pid; stop it afterwards.
    ``app``: serve this entry script instead of app.py, the same way (a benchmark's bare page)."""
    port = free_port()
    env = {**os.environ, "POSLAB_DEVICE": "cpu", "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false"}
    ARTIFACTS.mkdir(exist_ok=True)
    log = open(ARTIFACTS / f"server-{port}.log", "wb")
    serve = ["-m", "ui.serve"] if app is None else [
        "-c", "import sys, pathlib, ui.serve as s; s.APP = pathlib.Path(sys.argv[1]); s.main(sys.argv[2:])", str(app)]
    proc = subprocess.Popen([sys.executable, *serve, "--server.address", "127.0.0.1",
                             "--server.port", str(port), "--server.headless", "true"], cwd=ROOT, env=env,
                            stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(0.5)
        else:
            raise RuntimeError(f"Streamlit server did not start; see {log.name}")
        yield Server(url, proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:  # killed so the next test starts clean; a test's own failure stays chained
            proc.kill()
            proc.wait()
            raise AssertionError(f"the server did not stop within 20 s of SIGTERM; see {log.name}")
        finally:
            log.close()
