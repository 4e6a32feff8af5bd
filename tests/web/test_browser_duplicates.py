"""Issue 18's duplicate hints walked in Chromium on a 390 px phone, in Kazakh and Russian: a
resident filing next to an open request of the same service is shown it, supports it, and the
request's page counts the support. Also without scripts (the server's step before filing)."""

from __future__ import annotations

from typing import Any

import pytest
from tests.web.conftest import DemoSite, shot

from qala.components.requests311.services import NewRequest, load_jurisdictions, submit_request

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PHONE = {"width": 390, "height": 844}
COUNTED = {"kk": "1 тұрғын қолдады", "ru": "1 житель поддержал"}
TITLE = {"kk": "Жақын маңдағы ұқсас ашық өтініштер", "ru": "Похожие открытые обращения рядом"}


def open_request(site: DemoSite, lat: float, lon: float) -> str:
    """An open pothole report at the point, as if a neighbour had filed it."""
    context = site.context
    with context.database.transaction() as session:
        astana = load_jurisdictions(session)["astana"]
        submitted = submit_request(
            session,
            astana,
            NewRequest(
                service_code="pothole",
                lat=lat,
                lon=lon,
                description="Глубокая яма у перехода",
                attributes={"size": ["large"]},
            ),
            now=context.clock(),
            bus=context.bus,
        )
    return submitted.service_request_id


def fill_report(page: Any, lat: float, lon: float) -> None:
    page.select_option("#service_code", "pothole")
    page.select_option("#attr-pothole-size", index=1)
    page.fill("#description", "Яма на переходе")
    page.fill("#lat", f"{lat:.6f}")
    page.fill("#long", f"{lon:.6f}")
    page.press("#long", "Tab")  # the change event: the form asks for hints


def width(page: Any) -> int:
    return int(page.evaluate("document.documentElement.scrollWidth"))


@pytest.mark.parametrize(
    ("language", "point"), [("kk", (51.1611, 71.4702)), ("ru", (51.1471, 71.4391))]
)
def test_filing_next_to_an_open_request_offers_to_support_it(
    browser: Any, demo_site: DemoSite, language: str, point: tuple[float, float]
) -> None:
    existing = open_request(demo_site, *point)
    context = browser.new_context(viewport=PHONE, is_mobile=True)
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.goto(f"{demo_site.url}/requests/new?city=astana&lang={language}")
    fill_report(page, point[0] + 0.00018, point[1])  # 20 m north
    hint = page.locator(f'#nearby-list li[data-id="{existing}"]')
    hint.wait_for(state="visible")
    assert page.locator("#nearby-notice").is_visible()
    assert TITLE[language] in page.locator("#nearby-hints").inner_text()
    assert "20 м" in hint.inner_text()
    assert width(page) <= PHONE["width"]
    shot(page, f"duplicates-hint-{language}-phone")
    hint.locator("button.support-button").click()
    page.wait_for_url(f"**/requests/{existing}?city=astana**")
    assert page.locator("#request-supporters").inner_text() == COUNTED[language]
    assert page.locator(".flash.ok").count() == 1
    assert width(page) <= PHONE["width"]
    shot(page, f"duplicates-supported-{language}-phone")
    context.close()


def test_without_scripts_the_hint_comes_before_filing(browser: Any, demo_site: DemoSite) -> None:
    point = (51.1391, 71.4122)
    existing = open_request(demo_site, *point)
    context = browser.new_context(viewport=PHONE, is_mobile=True, java_script_enabled=False)
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.goto(f"{demo_site.url}/requests/new?city=astana&lang=ru")
    fill_report(page, point[0], point[1] + 0.0002)  # 14 m east
    assert page.locator("#nearby-hints").is_hidden()
    page.click("#submit-request")
    page.wait_for_selector("#nearby-banner")
    hint = page.locator(f'#nearby-list li[data-id="{existing}"]')
    assert hint.is_visible()
    assert width(page) <= PHONE["width"]
    hint.locator("button.support-button").click()
    page.wait_for_url(f"**/requests/{existing}?city=astana**")
    assert page.locator("#request-supporters").inner_text() == COUNTED["ru"]
    context.close()
