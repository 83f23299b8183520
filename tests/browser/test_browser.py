"""The whole app in a real browser: Debian's chromium driven by Playwright against a local server."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from browser_harness import ARTIFACTS, LOAD_TIMEOUT, no_exception, open_page

PAGES = {"": "PosLab", "grid-probe": "Grid probe", "channel-code": "Channel code",
         "segmentation-lab": "Segmentation lab", "shift-lab": "Shift lab"}


@pytest.mark.parametrize("path,heading", PAGES.items())
def test_page_loads_without_an_exception(url, page, path, heading):
    open_page(page, f"{url}/{path}", heading)
    no_exception(page)


def test_grid_probe_placing_an_image_moves_gapnets_answer(url, page):
    open_page(page, f"{url}/grid-probe", "Grid probe")
    metric = page.locator("[data-testid='stMetric']").filter(has_text="GAPNet says").first
    expect(metric).to_contain_text("cell 0", timeout=LOAD_TIMEOUT)
    cell = page.get_by_label("Cell (row-major; or click the canvas)")
    cell.fill("5")
    cell.press("Enter")
    expect(metric).to_contain_text("cell 5", timeout=LOAD_TIMEOUT)
    page.screenshot(path=str(ARTIFACTS / "grid-probe.png"))
    no_exception(page)


def test_grid_probe_link_restores_its_view(url, page):
    open_page(page, f"{url}/grid-probe?gp_grid=5&gp_cell=12&gp_class=6", "Grid probe")
    expect(page.locator("[data-testid='stMetric']").filter(has_text="GAPNet says").first).to_contain_text("cell 12", timeout=LOAD_TIMEOUT)
    expect(page.get_by_label("Cell (row-major; or click the canvas)")).to_have_value("12")
    no_exception(page)


def test_grid_probe_upload_is_placed_and_located(url, page, tmp_path):
    from PIL import Image

    path = tmp_path / "photo.png"
    Image.new("RGB", (64, 48), (200, 30, 30)).save(path)
    open_page(page, f"{url}/grid-probe?gp_source=Upload&gp_cell=2", "Grid probe")
    uploader = page.locator("[data-testid='stFileUploader']").filter(has_text="Images (PNG")
    uploader.locator("input[type=file]").set_input_files(str(path))
    metric = page.locator("[data-testid='stMetric']").filter(has_text="GAPNet says").first
    expect(metric).to_contain_text("cell 2", timeout=LOAD_TIMEOUT)
    no_exception(page)


def test_tour_step_opens_the_page_with_its_settings(url, page):
    open_page(page, url, "PosLab")
    page.get_by_role("link", name="Open the 7×7 grid probe").click()
    expect(page.locator("[data-testid='stMetric']").filter(has_text="GAPNet says").first).to_contain_text("cell 30", timeout=LOAD_TIMEOUT)
    assert "gp_grid=7" in page.url
    no_exception(page)
