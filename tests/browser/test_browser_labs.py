"""The Segmentation and Shift labs in a real browser: load, main interaction, and a shared link restoring its view."""
from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from browser_harness import ARTIFACTS, LOAD_TIMEOUT, no_exception, open_page


def slider(page: Page, label: str):
    """The thumb (role=slider) of the Streamlit slider labelled ``label``."""
    return page.locator("[data-testid='stSlider']").filter(has_text=label).get_by_role("slider")


def all_miou(page: Page):
    return page.locator("[data-testid='stMetric']").filter(has_text="all mIoU").locator("[data-testid='stMetricValue']")


def test_segmentation_lab_slider_changes_the_metrics(url, page):
    open_page(page, f"{url}/segmentation-lab", "Segmentation lab")
    expect(all_miou(page)).to_have_text(re.compile(r"^\d+\.\d$"), timeout=LOAD_TIMEOUT)
    no_exception(page)
    before = all_miou(page).inner_text()
    thumb = slider(page, "N channels zeroed")
    thumb.focus()
    thumb.press("End")  # zero every channel
    expect(thumb).to_have_value("512", timeout=30_000)
    expect(all_miou(page)).not_to_have_text(before, timeout=LOAD_TIMEOUT)
    expect(page).to_have_url(re.compile(r"seg_n=512"))  # the view is now a shareable link
    page.screenshot(path=str(ARTIFACTS / "segmentation-lab.png"), full_page=True)
    no_exception(page)


def test_segmentation_lab_link_restores_its_settings(url, page):
    open_page(page, f"{url}/segmentation-lab?seg_ranking=left&seg_n=100&seg_subset=val-left&seg_draw=abc",
              "Segmentation lab")
    expect(all_miou(page)).to_have_text(re.compile(r"^\d+\.\d$"), timeout=LOAD_TIMEOUT)
    expect(slider(page, "N channels zeroed")).to_have_value("100")
    for label, value in (("Ranking", "left"), ("Subset", "val-left")):
        expect(page.get_by_role("combobox", name=label, exact=True)).to_have_value(value)
    expect(page.get_by_text("Some link settings were not used")).to_contain_text("seg_draw=abc")
    no_exception(page)


def test_shift_lab_runs_a_consistency_evaluation(url, page):
    open_page(page, f"{url}/shift-lab?shift_cons_images=100&shift_cons_passes=1", "Shift lab")
    button = page.get_by_role("button", name="Evaluate consistency")
    expect(button).to_be_visible(timeout=LOAD_TIMEOUT)
    no_exception(page)
    button.click()
    result = page.locator("[data-testid='stTable']")
    expect(result).to_contain_text("Cons.8", timeout=LOAD_TIMEOUT)
    expect(result).to_contain_text("ResNet-18")
    page.screenshot(path=str(ARTIFACTS / "shift-lab.png"), full_page=True)
    no_exception(page)


def test_shift_lab_link_opens_its_tab_and_slide(url, page):
    open_page(page, f"{url}/shift-lab?shift_tab=Slide+an+image&shift_slide=-5", "Shift lab")
    expect(page.get_by_role("tab", name="Slide an image")).to_have_attribute("aria-selected", "true",
                                                                            timeout=LOAD_TIMEOUT)
    expect(slider(page, "Slide the image")).to_have_value("-5", timeout=LOAD_TIMEOUT)  # the slider reads the offset
    expect(page.get_by_text("offset -5 px")).to_be_visible()
    no_exception(page)


# Every plotly title and annotation on the page, placed relative to its chart's svg (negative = cut off).
TITLE_MARGINS = """() => Array.from(document.querySelectorAll('.js-plotly-plot')).flatMap(plot => {
    const svg = plot.querySelector('svg.main-svg').getBoundingClientRect();
    return Array.from(plot.querySelectorAll('.gtitle, .annotation-text')).map(t => {
        const r = t.getBoundingClientRect();
        return {text: t.textContent, left: r.left - svg.left, right: svg.right - r.right, top: r.top - svg.top,
                bottom: svg.bottom - r.bottom};
    });
})"""


def test_channel_code_chart_titles_are_fully_visible(url, page):
    open_page(page, f"{url}/channel-code", "Channel code")
    charts = page.locator(".js-plotly-plot")
    expect(charts.nth(3)).to_be_attached(timeout=LOAD_TIMEOUT)  # code, grid of grids, counts, one channel
    page.screenshot(path=str(ARTIFACTS / "channel-code.png"), full_page=True)
    titles = page.evaluate(TITLE_MARGINS)
    page.get_by_role("tab", name="Permute it yourself").click()  # the demo's three nets, drawn once their tab opens
    expect(page.locator(".js-plotly-plot .gtitle").filter(has_text="PermuteNet")).to_be_attached(timeout=LOAD_TIMEOUT)
    expect(charts).to_have_count(3, timeout=LOAD_TIMEOUT)
    titles += page.evaluate(TITLE_MARGINS)
    assert any("Object PermuteNet" in t["text"] for t in titles)
    cut = [t for t in titles if min(t["left"], t["right"], t["top"], t["bottom"]) < -0.5]
    assert not cut, f"chart titles cut off: {cut}"
    no_exception(page)
