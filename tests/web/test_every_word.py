"""A crawl of every page as each role in Kazakh and Russian finds no English words.

The crawl follows the links of each page (a few pages of each shape, see ``tests/web/crawl.py``)
through the ASGI app; each page's visible text (and its titles, labels and placeholders) is split
into words, and a word in Latin letters that is not a reviewed proper name or code fails the test.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from tests.web.conftest import load_small_demo
from tests.web.crawl import crawl, latin_words

from qala.runtime import Context
from qala.settings import Settings

ROLES = (
    "visitor",
    "citizen",
    "operator",
    "analyst",
    "admin",
    "submitter",
    "reviewer",
    "publisher",
)
SEEDS = (
    "/",
    "/requests/new",
    "/budgeting",
    "/operator",
    "/admin",
    "/readiness",
    "/calls",
    "/login",
)

# Reviewed: proper names, standards, formats and codes that stay in Latin letters in kk and ru.
ALLOWED = {
    # the product, its licence and its interfaces
    "Qala",
    "Apache",
    # written in Latin letters in Russian and Kazakh too
    "SMS",
    "API",
    "OpenAPI",
    "Open311",
    "NGSI",
    "LD",
    "HTML",
    "PDF",
    "CSV",
    "XLSX",
    # picture formats, named as the phone's gallery names them
    "JPEG",
    "PNG",
    "HEIC",
    "HEIF",
    "JSON",
    "Parquet",
    "SVG",
    "MQTT",
    # standards, methods and their authors
    "ISO",
    "PLS",
    "SEM",
    "Chourabi",
    "et",
    "al",
    "Cohen",
    "Likert",
    # the national rating's official name ("Национальный рейтинг Smart City")
    "Smart",
    "City",
    # technologies known by their Latin abbreviations
    "IoT",
    "GPS",
    "Wi",
    "Fi",
    "BIM",
    "STEM",
    "LED",
    "GIS",
    "CCTV",
    "IT",
    # Astana's 109 contact centre
    "iKomek",
    # the language switcher names English in English
    "English",
    # keys of the keyboard, as printed on them
    "Tab",
    "Enter",
    # the zone's international name in "UTC+5"
    "UTC",
    # the NCA's signing app, the signature format and the key type (the identity page)
    "NCALayer",
    "CMS",
    "RSA",
}

# Text people typed (an operator's incident in tests/web/conftest.py): data supplied by others
# stays as supplied; only what Qala generates must be in the reader's language.
TYPED_BY_PEOPLE = (
    "Burst water main on Kenesary street",
    "Water on the road surface (test incident)",
)


def typed_by_people(line: str) -> bool:
    return any(text in line for text in TYPED_BY_PEOPLE)


@pytest.fixture(scope="module")
def site(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    from qala.api.app import create_app

    folder = tmp_path_factory.mktemp("words")
    shutil.copy(sqlite_template, folder / "qala.sqlite")
    settings = Settings(database_url=f"sqlite:///{folder / 'qala.sqlite'}", secret_key="words")
    context = Context.from_settings(settings)
    app = create_app(settings, context=context)
    load_small_demo(context, replications=5, budgeting=True, years=1)
    yield app
    context.database.dispose()


def client_as(app: object, role: str) -> TestClient:
    client = TestClient(app, headers={"accept": "text/html"}, follow_redirects=True)  # type: ignore[arg-type]
    if role != "visitor":
        page = client.get("/login").text
        token = re.search(r'name="csrf_token" value="([^"]+)"', page)
        assert token, "the sign-in form has no CSRF token"
        answer = client.post(
            "/login",
            data={
                "username": role,
                "password": f"{role}-demo-2026",
                "csrf_token": token.group(1),
                "next": "/",
            },
        )
        assert answer.status_code == 200, answer.text[:300]
    return client


def english_on_pages(app: object, role: str, language: str) -> tuple[int, list[str]]:
    client = client_as(app, role)
    pages = 0
    found: list[str] = []
    seen: set[str] = set()
    lines_seen: set[str] = set()
    for seed in SEEDS:
        for page in crawl(client, seed, language=language, per_shape=2, limit=80):
            if page.path in seen:
                continue
            seen.add(page.path)
            pages += 1
            for line in page.text.splitlines():
                if typed_by_people(line):
                    continue
                words = latin_words(line) - ALLOWED
                if words and line not in lines_seen:
                    lines_seen.add(line)
                    found.append(f"{page.path}: {sorted(words)} in {line[:140]!r}")
    return pages, found


@pytest.mark.slow
@pytest.mark.parametrize("language", ["kk", "ru"])
@pytest.mark.parametrize("role", ROLES)
def test_no_english_word_on_any_page(site: object, role: str, language: str) -> None:
    pages, found = english_on_pages(site, role, language)
    assert pages >= 8, f"the crawl reached only {pages} pages"
    assert not found, "\n".join(found[:80])


def test_the_word_check_sees_english() -> None:
    assert latin_words("Инфраструктура 74 ≥ 60 while participation 34") == {
        "while",
        "participation",
    }
    assert latin_words("ha_per_100000 astana-pb-2025 ef6ebbab9e58 12:05 a@b.kz") == set()
    assert latin_words("Национальный рейтинг Smart City") - ALLOWED == set()
