"""A freshly started server: its very first session may arrive by a deep link and must see that page cleanly."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from browser_harness import no_exception, open_page, streamlit_server


@pytest.fixture
def cold_url():
    """The base URL of a server of this test's own that no session has visited yet (the shared one has)."""
    with streamlit_server() as server:
        yield server.url


def test_first_session_of_a_cold_server_opens_a_deep_link(cold_url, page):
    open_page(page, f"{cold_url}/segmentation-lab?seg_ranking=left&seg_n=20", "Segmentation lab")
    no_exception(page)  # no "Page not found" dialog over the page
    thumb = page.locator("[data-testid='stSlider']").filter(has_text="N channels zeroed").get_by_role("slider")
    expect(thumb).to_have_value("20")
    expect(page.get_by_role("combobox", name="Ranking", exact=True)).to_have_value("left")
    assert "seg_n=20" in page.url
