"""Shared test setup: an isolated cache folder, CPU only, torchvision importable, tests marked by area.

``engine`` and ``ui`` are imported from the editable install (``pip install -e .``, done by scripts/install.sh);
``browser_harness`` and ``byo_fixtures`` from this folder, which pytest puts on ``sys.path`` as the conftest's rootdir.
Tests live by area: ``unit/`` (engine), ``app/`` (AppTest pages, UI helpers), ``browser/`` (chromium).
"""
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("POSLAB_CACHE", str(ROOT / ".cache" / "test"))
os.environ.setdefault("POSLAB_DEVICE", "cpu")

import engine.core.tvfix  # noqa: E402,F401  (before any torchvision import)

# Over about 10 s on a 2-core CPU (``pytest --durations=0``): a file, "file::test" (no parameters) or "file::fixture"
# for a module fixture whose setup lands on whichever of its tests runs first.
SLOW = {
    "test_probe_assets.py",  # every test evaluates shipped probes on 400 fresh canvases
    "test_shift_shipped.py::measured",  # Top-1 and Cons.8 of the four shipped models
    "test_probe_engine.py::test_a_few_training_steps_lower_the_loss",
    "test_channel_code.py::test_shipped_object_classifier_gap_decodes_the_cell_unless_permuted",
    "test_byo_models.py::test_real_network_decodes_position_in_channel_order_on_a_fresh_sample",  # PP-OCR, 1,200 images
    "test_byo_models_page.py::test_onnx_and_timm_uploads_decode_on_the_page_as_plain_modules",  # two page decodes
    "test_seg_shipped.py",  # Fig. 4/6 of the shipped default and control on 200 fresh scenes
    "test_seg_page.py",  # the lab's first run ranks and measures two models; one sweep job
    "test_seg_scale_page.py",  # the lab on a data set larger than the live slider: a full-data-set sweep job
    "test_distributed.py::test_two_gloo_processes_equal_one_process_exactly",  # three worker processes
    "test_distributed.py::test_a_failing_rank_fails_the_run_with_its_message_and_no_json",
    "test_distributed.py::test_streamed_sweep_equals_the_in_memory_sweep",
}


def area(path: Path, test: str) -> str:
    """A test's marker by its folder: ``browser/`` (chromium), ``app/`` (AppTest pages and the UI helpers) or
    ``unit/`` (the engine; a page test kept beside the engine tests it extends says so with ``_page_`` in its name)."""
    folder = path.parent.name
    if folder == "browser":
        return "browser"
    if folder == "app" or "_page_" in test:
        return "app"
    return "engine"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test with its area, and ``slow`` where ``SLOW`` names its file, itself or one of its fixtures."""
    for item in items:
        name = getattr(item, "originalname", item.name)
        item.add_marker(area(item.path, name))
        keys = {item.path.name, *(f"{item.path.name}::{n}" for n in (name, *getattr(item, "fixturenames", ())))}
        if keys & SLOW:
            item.add_marker("slow")


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

    from browser_harness import CHROMIUM, CHROMIUM_ARGS

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="session")
def app():
    """A Streamlit server shared by the browser tests; its base URL."""
    from browser_harness import streamlit_server

    with streamlit_server() as running:
        yield running.url


@pytest.fixture
def page(chromium, request):
    """A fresh browser tab; a screenshot lands in test-artifacts/ when the test fails."""
    from browser_harness import ARTIFACTS

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
