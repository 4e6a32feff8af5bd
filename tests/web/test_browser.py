"""End-to-end checks in Debian's Chromium: the journeys issue 7 names, with screenshots saved
under test-artifacts/web/."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from tests.web.conftest import DemoSite, shot

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def page(browser: Any, demo_site: DemoSite) -> Any:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US")
    new_page = context.new_page()
    new_page.set_default_timeout(15_000)
    yield new_page
    context.close()


def sign_in(page: Any, site: DemoSite, username: str) -> None:
    page.goto(f"{site.url}/login")
    page.fill("#username", username)
    page.fill("#password", f"{username}-demo-2026")
    page.click("form[action='/login'] button[type=submit]")
    page.wait_for_load_state()
    assert page.locator(".who").count() == 1, "signed-in name missing from the top bar"


def test_rating_then_a_city(page: Any, demo_site: DemoSite) -> None:
    page.goto(f"{demo_site.url}/rating?lang=en")
    rows = page.locator("#rating-table tbody tr")
    assert rows.count() >= 40
    first_rank = rows.nth(0).locator("td.rank").inner_text()
    assert first_rank.strip() == "1"
    shot(page, "rating")
    link = rows.nth(0).locator("th a")
    name = link.inner_text()
    link.click()
    page.wait_for_load_state()
    assert page.locator("h1").inner_text() == name
    assert page.locator("#city-rank").inner_text().startswith("1 ")
    assert page.locator("svg.radar").count() == 1
    shot(page, "city")
    # Filter: single-industry towns only, ranks restart at 1.
    page.goto(f"{demo_site.url}/rating?kind=single_industry")
    monotown_rows = page.locator("#rating-table tbody tr")
    assert 0 < monotown_rows.count() < 48
    assert monotown_rows.nth(0).locator("td.rank").inner_text().strip() == "1"
    assert monotown_rows.nth(0).locator(".badge.monotown").count() == 1


def test_switching_language_is_remembered(page: Any, demo_site: DemoSite) -> None:
    page.goto(f"{demo_site.url}/rating")
    assert page.locator("h1").inner_text() == "National Smart City rating"
    page.select_option("#lang-select", "kk")
    page.wait_for_url("**lang=kk**")
    assert page.locator("h1").inner_text() == "Smart City ұлттық рейтингі"
    assert page.locator("html").get_attribute("lang") == "kk"
    shot(page, "rating-kk")
    page.goto(f"{demo_site.url}/map")  # no ?lang=: the cookie decides
    assert page.locator("h1").inner_text() == "Қалалар картасы"
    page.goto(f"{demo_site.url}/map?lang=ru")
    assert page.locator("h1").inner_text() == "Карта городов"
    shot(page, "map-ru")


def test_filing_a_request_reaches_the_operator_queue(page: Any, demo_site: DemoSite) -> None:
    page.goto(f"{demo_site.url}/requests/new")
    # Several cities take reports: the plain link asks which one first.
    assert page.locator("#service_code").count() == 0
    page.click('a[href="/requests/new?city=astana"]')
    page.wait_for_selector("#service_code")
    page.select_option("#service_code", "pothole")
    assert page.locator("fieldset[data-service=heating]").is_hidden()
    page.select_option("#attr-pothole-size", index=1)  # the service's one required question
    page.fill("#description", "Deep pothole at the crossing, browser test")
    page.fill("#address_string", "Kabanbay Batyr avenue 12")
    picker = page.locator("svg.map-pick")
    picker.scroll_into_view_if_needed()
    box = picker.bounding_box()
    picker.click(position={"x": box["width"] * 0.55, "y": box["height"] * 0.45})
    latitude = float(page.input_value("#lat"))
    longitude = float(page.input_value("#long"))
    assert 50.9 < latitude < 51.4 and 71.1 < longitude < 71.8
    shot(page, "request-new")
    page.click("#submit-request")
    page.wait_for_selector("#request-created")
    request_id = page.locator("#request-id").inner_text().strip()
    assert page.locator("#request-status").inner_text() == "open"
    shot(page, "request-created")
    sign_in(page, demo_site, "operator")
    page.goto(f"{demo_site.url}/operator?sort=newest")
    card = page.locator(f"#request-{request_id}")
    assert card.count() == 1
    assert "Deep pothole" in card.inner_text()
    shot(page, "operator-queue")


def test_casting_a_budgeting_ballot(page: Any, demo_site: DemoSite) -> None:
    assert demo_site.pb_process is not None, "the budgeting demo has a process in its voting phase"
    from qala.components.budgeting.iin import make_iin

    sign_in(page, demo_site, "citizen")
    page.goto(f"{demo_site.url}/budgeting/{demo_site.pb_process}")
    boxes = page.locator("form[data-ballot] input[type=checkbox]")
    assert boxes.count() >= 2
    boxes.nth(0).check()
    page.fill("#iin", make_iin(date(1990, 5, 17), sex="female", serial=4242))
    shot(page, "pb-ballot")
    page.click("#cast-ballot")
    page.wait_for_selector("#ballot-receipt")
    assert len(page.locator("#ballot-receipt code").inner_text().strip()) >= 8
    shot(page, "pb-receipt")


def test_operator_closes_an_incident(page: Any, demo_site: DemoSite) -> None:
    assert demo_site.incident_id is not None, "the small demo opens an incident (operate)"
    sign_in(page, demo_site, "operator")
    page.goto(f"{demo_site.url}/operator")
    card = page.locator(f"#incident-{demo_site.incident_id}")
    assert card.count() == 1
    shot(page, "operator-board")
    card.locator("select[name=reason]").select_option("resolved")
    card.locator("input[name=note]").fill("Crew repaired the main")
    page.once("dialog", lambda dialog: dialog.accept())  # the close asks for confirmation
    card.locator("form[action$='/close'] button").click()
    page.wait_for_selector(".flash.ok")
    assert page.locator(f"#incident-{demo_site.incident_id}").count() == 0
    from qala.components.operate import incidents

    with demo_site.context.database.session() as session:
        closed = incidents.view(incidents.get_incident(session, demo_site.incident_id))
    assert closed.status == "closed" and closed.close_reason == "resolved"
    assert closed.audit[-1].actor == "operator"


def test_phone_layout_and_keyboard(page: Any, demo_site: DemoSite) -> None:
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{demo_site.url}/")
    page.keyboard.press("Tab")  # the skip link comes first
    assert page.evaluate("document.activeElement.className") == "skip"
    assert page.locator("#mainnav").is_hidden()
    page.click(".nav-toggle")
    assert page.locator("#mainnav").is_visible()
    shot(page, "home-phone")
    scroll_width = page.evaluate("document.documentElement.scrollWidth")
    assert scroll_width <= 390 + 1, f"page scrolls sideways on a phone ({scroll_width}px)"


def test_operator_board_is_told_about_new_requests(page: Any, demo_site: DemoSite) -> None:
    """A request filed elsewhere appears on an open board through server-sent events, sooner
    than the 8-second polling would bring it."""
    import re

    import httpx

    sign_in(page, demo_site, "operator")
    page.goto(f"{demo_site.url}/operator?sort=newest")
    page.wait_for_timeout(1500)  # let the EventSource connect
    citizen = httpx.Client(base_url=demo_site.url, headers={"accept": "text/html"})
    form = citizen.get("/requests/new?city=astana").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', form)
    assert token
    answer = citizen.post(
        "/requests/new",
        data={
            "csrf_token": token.group(1),
            "city": "astana",
            "service_code": "street_light",
            "description": "Pushed to the board (SSE test)",
            "lat": "51.13",
            "long": "71.41",
        },
    )
    assert answer.status_code == 303
    followed = citizen.get(answer.headers["location"]).text
    request_id = re.search(r'id="request-id">(\d+)<', followed)
    assert request_id
    page.wait_for_selector(f"#request-{request_id.group(1)}", timeout=6500)


@pytest.mark.parametrize("language", ["kk", "ru"])
def test_the_signed_ledger_fits_a_phone(page: Any, demo_site: DemoSite, language: str) -> None:
    # The root hash, signature and public key have no spaces; unbroken they widened the page.
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{demo_site.url}/budgeting/ledger?lang={language}")
    assert page.locator("#signed-head").count() == 1
    shot(page, f"ledger-{language}-phone")
    scroll_width = page.evaluate("document.documentElement.scrollWidth")
    assert scroll_width <= 390 + 1, (
        f"the ledger page scrolls sideways on a phone ({scroll_width}px)"
    )
