"""No page a resident opens scrolls sideways on a 390 px phone, in Kazakh or Russian.

Found on the walk after the merges: the indicator filter's framework list (long names of the new
frameworks) and the analysis page's run list pushed /indicators to 575 px and /rating/analysis to
402 px; a filter and its select now never outgrow the screen.
"""

from __future__ import annotations

from typing import Any

import pytest
from tests.web.conftest import DemoSite

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PAGES = (
    "/",
    "/requests/new",
    "/requests/new?city=karaganda",
    "/requests",
    "/rating",
    "/rating/what-if",
    "/rating/analysis",
    "/cities/astana",
    "/cities/temirtau",
    "/budgeting",
    "/map",
    "/indicators",
    "/login",
    "/register",
)


@pytest.mark.parametrize("language", ["kk", "ru"])
def test_no_page_scrolls_sideways_on_a_phone(
    browser: Any, demo_site: DemoSite, language: str
) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    page = context.new_page()
    wide = []
    for path in PAGES:
        joiner = "&" if "?" in path else "?"
        answer = page.goto(f"{demo_site.url}{path}{joiner}lang={language}")
        assert answer is not None and answer.status == 200, path
        width = page.evaluate("document.documentElement.scrollWidth")
        if width > 390:
            wide.append(f"{path}: {width} px")
    context.close()
    assert not wide, wide


STAFF_PAGES = {
    # the data call's pages, as the account that works with them
    "submitter": ("/calls", "/calls/1", "/calls/1/places/astana"),
    "reviewer": ("/calls/1/review", "/calls/1/places/almaty"),
    "publisher": ("/calls/1",),
}


@pytest.mark.parametrize("language", ["kk", "ru"])
def test_the_data_call_pages_fit_a_phone(browser: Any, demo_site: DemoSite, language: str) -> None:
    wide = []
    for username, paths in STAFF_PAGES.items():
        context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
        page = context.new_page()
        page.goto(f"{demo_site.url}/login?lang={language}")
        page.fill("#username", username)
        page.fill("#password", f"{username}-demo-2026")
        page.click("form[action='/login'] button[type=submit]")
        page.wait_for_load_state()
        for path in paths:
            answer = page.goto(f"{demo_site.url}{path}?lang={language}")
            assert answer is not None and answer.status == 200, (username, path)
            width = page.evaluate("document.documentElement.scrollWidth")
            if width > 390:
                wide.append(f"{username} {path}: {width} px")
        context.close()
    assert not wide, wide
