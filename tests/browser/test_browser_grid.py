"""The Grid probe in chromium: a real click on the canvas places the image, and the URL follows the page's state."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import expect

from browser_harness import APP_IDLE, ARTIFACTS, LOAD_TIMEOUT, no_exception, open_page

CELL = "Cell (row-major; or click the canvas)"


def gapnet_says(page):
    return page.locator("[data-testid='stMetric']").filter(has_text="GAPNet says").first


def click_cell(page, cell: int, tries: int = 3) -> None:
    """Click the canvas marker of ``cell`` (plotly scatter points, in cell order) and wait for the rerun.

    A click that lands while plotly redraws the canvas (a rerun just after navigation) is lost, or finds the
    marker momentarily hidden, so the click is repeated, at most ``tries`` times; the cell must follow in the end."""
    for attempt in range(tries):
        page.wait_for_selector(APP_IDLE, timeout=LOAD_TIMEOUT)
        try:
            page.locator("[data-testid='stPlotlyChart'] .scatterlayer .point").nth(cell).click(force=True, timeout=LOAD_TIMEOUT)
            expect(page.get_by_label(CELL)).to_have_value(str(cell), timeout=20_000 if attempt < tries - 1 else LOAD_TIMEOUT)
            break
        except (AssertionError, PlaywrightError):
            if attempt == tries - 1:
                raise
    page.wait_for_selector(APP_IDLE, timeout=LOAD_TIMEOUT)


def refused_note(page):
    return page.locator("[data-testid='stCaptionContainer']").filter(has_text="link settings were not used")


@pytest.mark.parametrize("grid,cells", [(3, (4, 8)), (7, (30, 48))])
def test_clicking_a_canvas_cell_moves_gapnets_answer(url, page, grid, cells):
    open_page(page, f"{url}/grid-probe?gp_grid={grid}", "Grid probe")
    expect(gapnet_says(page)).to_contain_text("cell 0", timeout=LOAD_TIMEOUT)
    for cell in cells:
        click_cell(page, cell)
        expect(gapnet_says(page)).to_contain_text(f"cell {cell}", timeout=LOAD_TIMEOUT)  # the heatmap's argmax
        assert f"gp_cell={cell}" in page.url
    page.screenshot(path=str(ARTIFACTS / f"grid-probe-click-{grid}x{grid}.png"))
    assert refused_note(page).count() == 0
    for title in page.locator("[data-testid='stPlotlyChart'] .gtitle").all():  # heatmap titles are not cut
        chart = title.locator("xpath=ancestor::*[local-name()='svg'][1]").bounding_box()
        box = title.bounding_box()
        assert chart["x"] <= box["x"] and box["x"] + box["width"] <= chart["x"] + chart["width"]
    no_exception(page)


def test_a_click_works_after_the_tours_deep_link(url, page):
    open_page(page, url, "PosLab")
    page.get_by_role("link", name="Open the 7×7 grid probe").click()
    expect(gapnet_says(page)).to_contain_text("cell 30", timeout=LOAD_TIMEOUT)
    click_cell(page, 6)
    expect(gapnet_says(page)).to_contain_text("cell 6", timeout=LOAD_TIMEOUT)
    assert "gp_grid=7" in page.url and "gp_cell=6" in page.url
    no_exception(page)


def test_switching_task_keeps_the_grid_and_the_url_in_step(url, page):
    open_page(page, f"{url}/grid-probe?gp_grid=5", "Grid probe")
    page.get_by_text("object", exact=True).first.click()
    expect(page.get_by_text("Class right when this image visits each of the 25 cells")).to_be_visible(timeout=LOAD_TIMEOUT)
    page.wait_for_selector(APP_IDLE, timeout=LOAD_TIMEOUT)
    assert re.search(r"gp_grid=5\b", page.url) and "gp_task=object" in page.url
    page.get_by_text("location", exact=True).first.click()
    expect(gapnet_says(page)).to_be_visible(timeout=LOAD_TIMEOUT)
    page.wait_for_selector(APP_IDLE, timeout=LOAD_TIMEOUT)
    expect(page.get_by_role("slider").first).to_have_attribute("aria-valuetext", "5")
    assert re.search(r"gp_grid=5\b", page.url) and "gp_task" not in page.url
    assert refused_note(page).count() == 0
    no_exception(page)
