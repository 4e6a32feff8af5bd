"""The done-when walk of issue 15 in Debian's Chromium: rating → city → its report → reporting a
problem → voting → following a project → the operator board, in Kazakh and Russian, on a 390 px
phone and a desktop screen.

Every page on the way is checked the same way (``Walk.look``): the page is in the chosen language
with no English word (the word check of test_every_word.py), it does not scroll sideways, a block
that scrolls sideways says so, chart labels are big enough to read on the phone and not cut on the
desktop. Along the way the defects found on the first walk are checked where a resident meets
them: the language switch keeps the query string and what was typed; the rating's region filter
gives rank and interval on one basis; the text field counts what is left; a disabled vote button
looks and says disabled; the receipt names the projects; refreshing after voting changes nothing;
a returning voter is told they voted and changes the ballot with the receipt; an operator chooses
and confirms a close; a long description is never cut silently; ``?flash=`` text in a link is not
shown. Screenshots go to the test's temporary folder, and to ``test-artifacts/walk/`` when
``QALA_TEST_ARTIFACTS`` is set (git-ignored).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from tests.web.conftest import DemoSite
from tests.web.crawl import CODES, latin_words
from tests.web.test_every_word import ALLOWED, typed_by_people

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SCREENS = {
    "phone": {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True},
    "desktop": {"viewport": {"width": 1280, "height": 900}},
}
READABLE_PX = 10.0
"""The smallest chart text (rendered pixels) a phone shows; 12 px labels in a 640-unit drawing
squeezed into 360 px came out under 7 px."""
OTHER = {"kk": "ru", "ru": "kk"}
REPO = Path(__file__).resolve().parents[2]


@dataclass
class Walk:
    page: Any
    site: DemoSite
    language: str
    screen: str
    folders: list[Path]
    english: list[str] = field(default_factory=list)
    seen: int = 0

    def __post_init__(self) -> None:
        self.name = f"{self.language}-{self.screen}"
        """The journey (its language at the start and its screen)."""

    @property
    def width(self) -> int:
        return int(SCREENS[self.screen]["viewport"]["width"])  # type: ignore[index]

    def go(self, path: str) -> None:
        joiner = "&" if "?" in path else "?"
        answer = self.page.goto(f"{self.site.url}{path}{joiner}lang={self.language}")
        assert answer is not None and answer.status == 200, path

    def look(self, name: str) -> None:
        """The checks every page of the walk passes, and its screenshot."""
        page = self.page
        page.wait_for_load_state()
        self.seen += 1
        where = f"{self.language}/{self.screen} {name} ({page.url})"
        assert page.locator("html").get_attribute("lang") == self.language, where
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= self.width + 1, f"{where}: scrolls sideways ({width} px)"
        self.english += [f"{where}: {line}" for line in english_lines(page)]
        for silent in page.evaluate(SCROLLING_BLOCKS):
            assert not silent, f"{where}: a block scrolls sideways without saying so: {silent}"
        for label in page.evaluate(CHART_TEXT):
            if self.screen == "phone":
                assert label["size"] >= READABLE_PX, f"{where}: chart text too small {label}"
            inside = label["left"] >= -0.5 and label["right"] <= label["width"] + 0.5
            assert inside, f"{where}: chart label cut at the drawing's edge {label}"
        for folder in self.folders:
            folder.mkdir(parents=True, exist_ok=True)
            page.screenshot(
                path=str(folder / f"{self.language}-{self.screen}-{self.seen:02d}-{name}.png"),
                full_page=True,
            )


ENGLISH_TEXT = (
    "tags => { const copy = document.body.cloneNode(true);"
    " copy.querySelectorAll(tags + ',script,style,template,noscript').forEach(e => e.remove());"
    " copy.querySelectorAll('svg title').forEach(e => e.remove());"
    " const holder = document.createElement('div'); holder.style.position = 'absolute';"
    " holder.style.left = '-99999px'; holder.appendChild(copy); document.body.appendChild(holder);"
    " const text = copy.innerText; holder.remove();"
    " const attrs = [...document.querySelectorAll('[title],[aria-label],[placeholder],[alt]')]"
    "   .flatMap(e => ['title','aria-label','placeholder','alt'].map(a => e.getAttribute(a) || ''));"
    " return text + '\\n' + attrs.join('\\n'); }"
)
SCROLLING_BLOCKS = (
    "() => [...document.querySelectorAll('.table-wrap, .chart-wrap')]"
    ".filter(b => b.checkVisibility() && b.scrollWidth > b.clientWidth + 1)"
    ".map(b => { const p = b.previousElementSibling;"
    " return (p && p.classList.contains('scroll-hint') && p.innerText.trim()) ? ''"
    " : b.outerHTML.slice(0, 160); })"
)
"""Blocks that scroll sideways without a hint before them (an empty string for each with one)."""
DOTS_AND_INTERVALS = """() => {
  const svg = document.querySelector('svg.chart');
  return [...svg.querySelectorAll('circle.dot')].map(c => {
    const line = [...svg.querySelectorAll('line.interval')]
      .find(l => l.getAttribute('y1') === c.getAttribute('cy'));
    return {x: +c.getAttribute('cx'), x1: +line.getAttribute('x1'), x2: +line.getAttribute('x2')};
  });
}"""
"""Each dot of the rating chart and the interval bar of its row."""
CHART_TEXT = """() => [...document.querySelectorAll('svg.chart:not(.spark)')]
  .filter(svg => svg.checkVisibility() && svg.getBoundingClientRect().width > 0).flatMap(svg => {
    const frame = svg.getBoundingClientRect();
    const scale = frame.width / svg.viewBox.baseVal.width;
    return [...svg.querySelectorAll('text')].filter(t => t.textContent.trim()).map(t => {
      const box = t.getBoundingClientRect();
      return {text: t.textContent.slice(0, 40), size: parseFloat(getComputedStyle(t).fontSize) * scale,
              left: box.left - frame.left, right: box.right - frame.left, width: frame.width};
    });
  })"""
"""Each chart label's rendered size and where it sits across its drawing (screen pixels)."""


def english_lines(page: Any) -> list[str]:
    """Lines of the page (and of its shown attributes) with English words, as the crawl finds
    them: codes and cited titles left out, text residents typed allowed."""
    text = str(page.evaluate(ENGLISH_TEXT, ",".join(sorted(CODES))))
    found = []
    for line in text.splitlines():
        words = latin_words(line) - ALLOWED
        if words and not typed_by_people(line):
            found.append(f"{sorted(words)} in {line[:120]!r}")
    return found


@pytest.fixture
def folders(tmp_path: Path) -> list[Path]:
    kept = [tmp_path / "screens"]
    if os.environ.get("QALA_TEST_ARTIFACTS"):
        kept.append(REPO / "test-artifacts" / "walk")
    return kept


@pytest.fixture(
    params=[(lang, screen) for lang in ("kk", "ru") for screen in SCREENS],
    ids=lambda p: f"{p[0]}-{p[1]}",
)
def walk(
    request: pytest.FixtureRequest, browser: Any, demo_site: DemoSite, folders: list[Path]
) -> Iterator[Walk]:
    language, screen = request.param
    context = browser.new_context(
        **SCREENS[screen], locale={"kk": "kk-KZ", "ru": "ru-RU"}[language]
    )
    page = context.new_page()
    page.set_default_timeout(60_000)  # full-page screenshots of long pages on a busy machine
    yield Walk(page, demo_site, language, screen, folders)
    context.close()


def test_the_walk(walk: Walk) -> None:
    rating_and_city(walk)
    report_a_problem(walk)
    vote_and_follow(walk)
    operator_board(walk)
    assert not walk.english, "\n".join(walk.english[:60])
    assert walk.seen >= 12


# -- the steps ---------------------------------------------------------------------------------
def rating_and_city(walk: Walk) -> None:
    page = walk.page
    walk.go("/rating")
    walk.look("rating")
    page.select_option("#region", "karaganda-region")
    page.click("form.filters button[type=submit]")
    page.wait_for_url("**region=karaganda-region**")
    walk.look("rating-region")
    # The region filter: the national rank sits with the interval it belongs to.
    assert page.locator("#selection-basis").count() == 1
    rows = page.locator("#rating-table tbody tr")
    assert rows.count() >= 2
    for i in range(rows.count()):
        national = int(rows.nth(i).locator("td.rank-national").inner_text())
        low, high = interval(rows.nth(i).locator("td.interval-text").inner_text())
        assert low <= national <= high, (national, low, high)
    for dot in page.evaluate(DOTS_AND_INTERVALS):
        assert dot["x1"] - 0.5 <= dot["x"] <= dot["x2"] + 0.5, dot
    # The language switch keeps the filter.
    switch_language(walk)
    assert "region=karaganda-region" in page.url
    assert page.input_value("#region") == "karaganda-region"
    switch_language(walk)
    city = rows.nth(0).locator("th a")
    name = city.inner_text()
    city.click()
    page.wait_for_load_state()
    assert page.locator("h1").inner_text() == name
    walk.look("city")
    page.click("a[href$='.html'][href^='/reports/city/']")
    walk.look("city-report")


def report_a_problem(walk: Walk) -> None:
    page = walk.page
    walk.go("/requests/new?city=astana")
    page.select_option("#service_code", "pothole")
    page.select_option("#attr-pothole-size", index=1)
    description = {
        "kk": "Қиылыста терең шұңқыр, көлік дөңгелегі түседі. " * 4,
        "ru": "Глубокая яма на перекрёстке, машины попадают в неё колесом. " * 4,
    }[walk.language].strip()
    page.fill("#description", description)
    page.fill("#address_string", "Қабанбай батыр даңғылы 12")
    counter = page.locator("#description-counter")
    assert str(4000 - len(description)) in counter.inner_text()
    walk.look("request-form")
    # Switching the language keeps the city in the address and what was typed.
    switch_language(walk)
    assert "city=astana" in page.url
    assert page.input_value("#description") == description
    assert page.input_value("#address_string") == "Қабанбай батыр даңғылы 12"
    assert page.input_value("#service_code") == "pothole"
    assert page.locator("#attr-pothole-size").evaluate("s => s.selectedIndex") == 1
    switch_language(walk)
    assert page.input_value("#description") == description
    picker = page.locator("svg.map-pick")
    picker.scroll_into_view_if_needed()
    box = picker.bounding_box()
    # each journey reports at a spot of its own: a second pothole within 50 m of an open one
    # would first be shown the nearby requests (duplicate hints) instead of being filed
    across = 0.40 + 0.06 * ["kk-phone", "kk-desktop", "ru-phone", "ru-desktop"].index(walk.name)
    picker.click(position={"x": box["width"] * across, "y": box["height"] * 0.45})
    page.click("#submit-request")
    page.wait_for_selector("#request-created")
    walk.look("request-created")


def vote_and_follow(walk: Walk) -> None:
    from qala.components.budgeting.iin import make_iin

    site, page = walk.site, walk.page
    assert site.pb_process is not None, "the budgeting demo has a process in its voting phase"
    username = new_account(site, f"walk-{walk.name}", "citizen")
    sign_in(walk, username)
    walk.go(f"/budgeting/{site.pb_process}")
    walk.look("ballot")
    cast = page.locator("#cast-ballot")
    # Nothing chosen: the button is disabled, looks it and says why.
    assert cast.is_disabled()
    assert page.locator("#cast-why").inner_text().strip()
    grey = cast.evaluate("b => getComputedStyle(b).backgroundColor")
    assert cast.evaluate("b => getComputedStyle(b).cursor") == "not-allowed"
    boxes = page.locator("form[data-ballot] input[type=checkbox]")
    boxes.nth(0).check()
    assert cast.is_enabled() and not page.locator("#cast-why").inner_text().strip()
    assert cast.evaluate("b => getComputedStyle(b).backgroundColor") != grey
    first = project_name(page, 0)
    serial = {"kk-phone": 11, "kk-desktop": 12, "ru-phone": 13, "ru-desktop": 14}[walk.name]
    iin = make_iin(date(1985, 3, 9), sex="male", serial=serial)
    page.fill("#iin", iin)
    # The language switch keeps the choice (the other language may list the projects in another
    # order) but not the IIN (a personal number is not stored).
    chosen = f"#{boxes.nth(0).get_attribute('id')}"
    switch_language(walk)
    assert page.locator(chosen).is_checked() and page.input_value("#iin") == ""
    assert page.locator("form[data-ballot] input[type=checkbox]:checked").count() == 1
    switch_language(walk)
    assert page.locator(chosen).is_checked() and boxes.nth(0).is_checked()
    page.fill("#iin", iin)
    page.click("#cast-ballot")
    page.wait_for_selector("#ballot-receipt")
    # Sent on to the page itself: a refresh reloads it and casts nothing.
    assert page.url.split("#")[0].endswith(f"/budgeting/{site.pb_process}")
    receipt = page.locator("#ballot-receipt code").inner_text().strip()
    assert first in page.locator("#receipt-projects").inner_text()
    walk.look("receipt")
    counted = ballots_in(site)
    page.reload()
    page.wait_for_selector("#ballot-receipt")
    assert ballots_in(site) == counted
    assert page.locator("#ballot-receipt code").inner_text().strip() == receipt
    # Coming back later (the receipt no longer in the browser): told they voted; the receipt
    # they kept changes the ballot.
    page.context.clear_cookies(name="qala_pb_receipt")
    walk.go(f"/budgeting/{site.pb_process}")
    assert page.locator("#you-voted").count() == 1
    assert page.locator("#ballot-receipt").count() == 0
    walk.look("returning-voter")
    page.fill("#iin", iin)
    page.fill("#receipt", receipt)
    boxes.nth(0).uncheck()
    boxes.nth(1).check()
    second = project_name(page, 1)
    page.click("#cast-ballot")
    page.wait_for_selector("#ballot-receipt")
    assert ballots_in(site) == counted
    shown = page.locator("#receipt-projects").inner_text()
    assert second in shown and first not in shown
    walk.look("ballot-changed")
    follow_a_project(walk)


def follow_a_project(walk: Walk) -> None:
    page = walk.page
    walk.go("/budgeting")
    page.locator("a[href^='/budgeting/projects/']").first.click()
    page.wait_for_load_state()
    page.click("#follow-project button")
    page.wait_for_selector("#project-followed")
    walk.look("project-followed")


def operator_board(walk: Walk) -> None:
    page, site = walk.page, walk.site
    long_text = ("Вода на проезжей части, течь усиливается; " * 12).strip()
    journeys = ["kk-phone", "kk-desktop", "ru-phone", "ru-desktop"]
    lat = 51.05 + 0.02 * journeys.index(walk.name)
    incident = open_incident(site, long_text, lat)
    sign_in(walk, "operator")
    walk.go("/operator?flash=Система+взломана&kind=error")
    assert "Система взломана" not in page.locator("main").inner_text()
    walk.look("operator-board")
    card = page.locator(f"#incident-{incident}")
    # A long description is not cut silently: it says there is more and shows it all.
    more = card.locator("details.full-text")
    assert more.count() == 1 and "…" in more.locator("summary").inner_text()
    more.locator("summary").click()
    assert long_text in card.inner_text()
    # The reason is chosen, never preset; the close is confirmed.
    reason = card.locator("select[name=reason]")
    assert reason.input_value() == "" and reason.get_attribute("required") is not None
    close = card.locator("form[action$='/close'] button")
    close.click()  # no reason: the browser asks for one, nothing is sent
    assert page.locator(f"#incident-{incident}").count() == 1
    reason.select_option("resolved")
    asked: list[str] = []
    page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.dismiss()))
    close.click()
    page.wait_for_timeout(300)
    assert asked and str(incident) in asked[0]
    assert not latin_words(asked[0]) - ALLOWED, asked[0]
    assert page.locator(f"#incident-{incident}").count() == 1  # dismissed: still open
    page.once("dialog", lambda dialog: dialog.accept())
    close.click()
    page.wait_for_selector(".flash.ok")
    assert page.locator(f"#incident-{incident}").count() == 0
    walk.look("operator-closed")


# -- helpers -----------------------------------------------------------------------------------
def interval(text: str) -> tuple[int, int]:
    found = re.match(r"\s*(\d+)\s*[–-]\s*(\d+)", text)
    assert found, text
    return int(found.group(1)), int(found.group(2))


def switch_language(walk: Walk) -> None:
    """Switch to the other language with the selector in the top bar, as a reader does."""
    page = walk.page
    walk.language = OTHER[walk.language]
    page.select_option("#lang-select", walk.language)
    page.wait_for_url(f"**lang={walk.language}**")
    page.wait_for_load_state()
    assert page.locator("html").get_attribute("lang") == walk.language


def project_name(page: Any, index: int) -> str:
    box = page.locator("form[data-ballot] input[type=checkbox]").nth(index)
    label = page.locator(f"label[for='{box.get_attribute('id')}']")
    return str(label.inner_text()).strip()


def new_account(site: DemoSite, username: str, role: str) -> str:
    from qala.components.accounts.services import create_user

    with site.context.database.transaction() as session:
        create_user(
            session,
            username=username,
            password=f"{username}-demo-2026",
            role=role,
            display_name="Айгүл Серікқызы",
        )
    return username


def sign_in(walk: Walk, username: str) -> None:
    page = walk.page
    page.context.clear_cookies()
    walk.go("/login")
    page.fill("#username", username)
    page.fill("#password", f"{username}-demo-2026")
    page.click("form[action='/login'] button[type=submit]")
    page.wait_for_load_state()
    assert page.locator(".who").count() == 1, "signed-in name missing from the top bar"


def ballots_in(site: DemoSite) -> int:
    from sqlalchemy import func, select

    from qala.components.budgeting.models import Ballot

    with site.context.database.session() as session:
        return int(session.scalar(select(func.count()).select_from(Ballot)) or 0)


def open_incident(site: DemoSite, description: str, lat: float) -> int:
    """A new incident (its own position: reports of one place and kind join one incident)."""
    from qala.components.operate import incidents

    with site.context.database.transaction() as session:
        opened = incidents.open_incident(
            session,
            category="water",
            severity="major",
            now=site.context.clock(),
            actor="test",
            title="Прорыв водопровода",
            description=description,
            place_code="astana",
            lat=lat,
            lon=71.43,
        )
        return int(opened.incident.id)
