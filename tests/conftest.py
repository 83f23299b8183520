"""Shared test setup: an isolated cache folder, few threads, torchvision importable."""
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


@pytest.fixture(autouse=True)
def _navigation_only(monkeypatch):
    """AppTest runs app.py as ``python -m ui.serve`` does: Streamlit's legacy pages-folder mode off.

    AppTest resets ``PagesManager.uses_pages_directory`` before every run; with ``pages/`` beside
    app.py, reruns would then run a page script found by hash directly, skipping app.py's sidebar.
    """
    from streamlit.runtime.pages_manager import PagesManager
    from streamlit.testing.v1 import app_test

    class NavigationOnly(PagesManager):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            PagesManager.uses_pages_directory = False

    monkeypatch.setattr(app_test, "PagesManager", NavigationOnly)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Expose each phase's report on the test item (browser tests screenshot on failure)."""
    outcome = yield
    rep = outcome.get_result()
    setattr(item, f"rep_{rep.when}", rep)


@pytest.fixture(scope="session")
def chromium():
    """Debian's chromium, launched once for every browser test."""
    from playwright.sync_api import sync_playwright

    from browser import CHROMIUM, CHROMIUM_ARGS

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="session")
def app():
    """A Streamlit server shared by the browser tests; its base URL."""
    from browser import streamlit_server

    with streamlit_server() as running:
        yield running.url


@pytest.fixture
def page(chromium, request):
    """A fresh browser tab; a screenshot lands in test-artifacts/ when the test fails."""
    from browser import ARTIFACTS

    context = chromium.new_context(viewport={"width": 1400, "height": 1000})
    tab = context.new_page()
    yield tab
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        ARTIFACTS.mkdir(exist_ok=True)
        tab.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"))
    context.close()


@pytest.fixture
def url(app):
    """The base URL of the shared app server."""
    return app
