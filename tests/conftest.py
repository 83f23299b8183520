"""Shared test setup: an isolated cache folder, few threads, torchvision importable."""
import contextlib
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
os.environ.setdefault("POSLAB_CACHE", str(ROOT / ".cache" / "test"))
os.environ.setdefault("POSLAB_DEVICE", "cpu")

import engine.tvfix  # noqa: E402,F401  (before any torchvision import)


@pytest.fixture(autouse=True)
def _chdir_root(monkeypatch):
    """AppTest resolves page paths from the working directory."""
    monkeypatch.chdir(ROOT)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Expose each phase's report on the test item (browser tests screenshot on failure)."""
    outcome = yield
    rep = outcome.get_result()
    setattr(item, f"rep_{rep.when}", rep)


@pytest.fixture(scope="session")
def app():
    """A Streamlit server for the browser tests, after a first visit: a cold server's first session gets
    Streamlit's "Page not found" dialog even for a valid page, which would steal the keyboard focus."""
    from browser import LOAD_TIMEOUT, streamlit_server

    with streamlit_server() as running, _chromium() as browser:
        first = browser.new_page()
        first.goto(running.url)
        first.wait_for_selector("h1", timeout=LOAD_TIMEOUT)
        first.close()
        yield running.url, browser


@contextlib.contextmanager
def _chromium():
    from playwright.sync_api import sync_playwright

    from browser import CHROMIUM, CHROMIUM_ARGS

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(app, request):
    """A fresh browser tab; a screenshot lands in test-artifacts/ when the test fails."""
    from browser import ARTIFACTS

    context = app[1].new_context(viewport={"width": 1400, "height": 1000})
    tab = context.new_page()
    yield tab
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        ARTIFACTS.mkdir(exist_ok=True)
        tab.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"))
    context.close()


@pytest.fixture
def url(app):
    """The base URL of the running app."""
    return app[0]
