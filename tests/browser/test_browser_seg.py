"""The Segmentation lab's control model and its sweep job in a real browser: the control opens from a link, a
sweep runs in the background and its Stop button stops it."""
from __future__ import annotations

import re
from urllib.parse import quote

from playwright.sync_api import expect

from ui.seg import SHIPPED

from browser_harness import ARTIFACTS, LOAD_TIMEOUT, no_exception, open_page

CONTROL = f"shipped {SHIPPED['control']}"


def test_control_opens_from_a_link_and_its_sweep_stops(url, page):
    open_page(page, f"{url}/segmentation-lab?seg_model={quote(CONTROL)}&seg_sweep_draws=20", "Segmentation lab")
    expect(page.get_by_role("combobox", name="Model", exact=True)).to_have_value(CONTROL)
    metric = page.locator("[data-testid='stMetric']").filter(has_text="all mIoU").locator("[data-testid='stMetricValue']")
    expect(metric).to_have_text(re.compile(r"^\d+\.\d$"), timeout=LOAD_TIMEOUT)
    no_exception(page)

    page.get_by_role("button", name="Run top-N sweep").click()
    stop = page.get_by_role("button", name="Stop")
    expect(stop).to_be_visible(timeout=LOAD_TIMEOUT)
    stop.click()
    expect(page.get_by_text("was stopped; nothing was kept")).to_be_visible(timeout=LOAD_TIMEOUT)
    expect(page.get_by_text("Top-N sweep on")).to_have_count(0)  # a stopped sweep draws no chart
    page.screenshot(path=str(ARTIFACTS / "segmentation-lab-control.png"), full_page=True)
    no_exception(page)
