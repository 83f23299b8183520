"""The whole app in a real browser: Debian's chromium driven by Playwright against a local server."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, streamlit_server

PAGES = {"home": "PosLab", "grid-probe": "Grid probe"}
LOAD_TIMEOUT = 120_000


@pytest.fixture(scope="module")
def server():
    with streamlit_server() as running:
        yield running.url


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def page(browser, request):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    p = context.new_page()
    yield p
    failed = getattr(request.node, "rep_call", None)
    if failed is not None and failed.failed:
        p.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
    context.close()


def open_page(page: Page, url: str, heading: str) -> None:
    page.goto(url)
    expect(page.get_by_role("heading", name=re.compile(heading)).first).to_be_visible(timeout=LOAD_TIMEOUT)
    page.wait_for_selector("[data-testid='stStatusWidget']", state="detached", timeout=LOAD_TIMEOUT)


@pytest.mark.parametrize("path,heading", PAGES.items())
def test_page_loads_without_an_exception(server, page, path, heading):
    open_page(page, f"{server}/{path}", heading)
    assert page.locator("[data-testid='stException']").count() == 0


def test_grid_probe_placing_an_image_moves_gapnets_answer(server, page):
    open_page(page, f"{server}/grid-probe", "Grid probe")
    metric = page.locator("[data-testid='stMetric']").filter(has_text="GAPNet says").first
    expect(metric).to_contain_text("cell 0", timeout=LOAD_TIMEOUT)
    cell = page.get_by_label("Cell (row-major; or click the canvas)")
    cell.fill("5")
    cell.press("Enter")
    expect(metric).to_contain_text("cell 5", timeout=LOAD_TIMEOUT)
    page.screenshot(path=str(ARTIFACTS / "grid-probe.png"), full_page=True)
    assert page.locator("[data-testid='stException']").count() == 0
