"""Background jobs in a real browser: a long training on the Grid probe stops at the Stop button."""
from __future__ import annotations

from playwright.sync_api import expect

from browser_harness import ARTIFACTS, LOAD_TIMEOUT, no_exception, open_page


def test_grid_probe_training_stops_at_the_stop_button(url, page):
    open_page(page, f"{url}/grid-probe?gp_tab=Train+your+own", "Grid probe")
    steps = page.get_by_label("Steps (batch 48)")
    expect(steps).to_be_visible(timeout=LOAD_TIMEOUT)
    steps.fill("20000")  # far more than the test waits for: it ends only by the Stop button
    page.get_by_role("button", name="Train", exact=True).click()
    stop = page.get_by_role("button", name="Stop")
    expect(stop).to_be_visible(timeout=LOAD_TIMEOUT)
    expect(page.get_by_text(": running", exact=False)).to_be_visible(timeout=LOAD_TIMEOUT)
    stop.click()
    expect(page.get_by_text("was stopped; nothing was kept.")).to_be_visible(timeout=LOAD_TIMEOUT)
    expect(page.get_by_text(": stopped", exact=False)).to_be_visible()
    expect(stop).to_have_count(0)
    page.screenshot(path=str(ARTIFACTS / "grid-probe-stopped.png"), full_page=True)
    no_exception(page)
