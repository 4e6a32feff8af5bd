"""Phone-size pages in Debian's Chromium, in Kazakh and Russian: the text a resident sees has no
English words (the same word check as the crawl in test_every_word.py), screenshots kept."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from tests.web.conftest import DemoSite, shot
from tests.web.crawl import CODES, latin_words
from tests.web.test_every_word import ALLOWED, typed_by_people

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PAGES = ("/", "/rating", "/cities/astana", "/indicators", "/requests/new", "/budgeting")


@pytest.fixture(params=["kk", "ru"])
def phone(request: pytest.FixtureRequest, browser: Any) -> Iterator[tuple[Any, str]]:
    language = str(request.param)
    context = browser.new_context(
        viewport={"width": 390, "height": 844},
        device_scale_factor=1,
        is_mobile=True,
        has_touch=True,
        locale={"kk": "kk-KZ", "ru": "ru-RU"}[language],
    )
    page = context.new_page()
    page.set_default_timeout(60_000)  # full-page screenshots of long pages on a busy machine
    yield page, language
    context.close()


def test_phone_pages_show_no_english_word(phone: tuple[Any, str], demo_site: DemoSite) -> None:
    page, language = phone
    found: list[str] = []
    for path in PAGES:
        page.goto(f"{demo_site.url}{path}?lang={language}")
        page.wait_for_load_state()
        assert page.locator("html").get_attribute("lang") == language, path
        name = path.strip("/").replace("/", "-") or "home"
        shot(page, f"phone-{language}-{name}")
        # Codes and cited source titles are not words of the page's language (as in the crawl).
        text = page.evaluate(
            "tags => { document.querySelectorAll(tags).forEach(e => { e.textContent = ''; });"
            " return document.body.innerText; }",
            ",".join(sorted(CODES)),
        )
        for line in str(text).splitlines():
            words = latin_words(line) - ALLOWED
            if words and not typed_by_people(line):
                found.append(f"{path}: {sorted(words)} in {line[:120]!r}")
    assert not found, "\n".join(found[:60])


def test_budgeting_results_speak_plainly_on_a_phone(
    phone: tuple[Any, str], demo_site: DemoSite
) -> None:
    """A resident reads "funded … within the budget left" in words; the rule's account (price
    factor, rounds) is one click away."""
    page, language = phone
    page.goto(f"{demo_site.url}/budgeting?lang={language}")
    finished = page.locator("a[href^='/budgeting/astana-pb-2025']")
    if finished.count() == 0:
        pytest.skip("the demo has no finished budgeting process")
    finished.first.click()
    page.wait_for_load_state()
    table = page.locator("#results-table")
    assert table.count() == 1
    plain = {"kk": "Қаржыландырылды", "ru": "Профинансирован"}[language]
    assert plain in str(page.evaluate("document.body.innerText"))
    technical = page.locator("#results-table details.technical").first
    assert not technical.evaluate("d => d.open")
    shot(page, f"phone-{language}-budgeting-results")
