"""A class's server in chromium: unknown paths of any depth get the app's own "No such page"; nothing leaves the server."""
from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from browser_harness import LOAD_TIMEOUT, open_page

PAGES = {"": "PosLab", "grid-probe": "Grid probe", "channel-code": "Channel code",
         "segmentation-lab": "Segmentation lab", "shift-lab": "Shift lab"}
PAGE_TITLES = ["Home", "Grid probe", "Channel code", "Segmentation lab", "Shift lab"]


@pytest.mark.parametrize("path", ["nope", "a/b", "grid-probe/extra", "channel-code/x/y/z"])
def test_an_unknown_path_of_any_depth_shows_no_such_page_with_links(url, page, path):
    open_page(page, f"{url}/{path}", "No such page")
    expect(page.get_by_text(f"/{path}", exact=False).first).to_be_visible()
    assert page.get_by_role("dialog").count() == 0  # not Streamlit's "Page not found" over Home
    for title in PAGE_TITLES:
        expect(page.locator("[data-testid='stPageLink']").filter(has_text=title)).to_be_visible()
    page.locator("[data-testid='stPageLink']").filter(has_text="Grid probe").click()
    expect(page.get_by_role("heading", name="Grid probe").first).to_be_visible(timeout=LOAD_TIMEOUT)


def test_no_request_leaves_the_server_while_opening_each_page(url, page):
    outside = []
    host = urlsplit(url).netloc
    page.on("request", lambda r: outside.append(r.url) if urlsplit(r.url).netloc not in {host, ""}
            and not r.url.startswith(("data:", "blob:")) else None)
    for path, heading in PAGES.items():
        open_page(page, f"{url}/{path}", heading)
    assert outside == []
    assert page.locator("link[rel~='icon']").first.get_attribute("href").startswith(("./media/", "/media/", f"{url}/media/"))
