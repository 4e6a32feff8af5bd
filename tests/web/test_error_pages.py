"""Browsers get translated error pages (404 for an unknown place or jurisdiction, 422 for a query
FastAPI cannot read), never JSON and never an exception's English text; API clients keep JSON."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from tests.web.crawl import VisibleText, latin_words
from tests.web.test_every_word import ALLOWED

from qala.runtime import Context
from qala.settings import Settings


@pytest.fixture(scope="module")
def client(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    from qala.api.app import create_app

    folder = tmp_path_factory.mktemp("errors")
    shutil.copy(sqlite_template, folder / "qala.sqlite")
    settings = Settings(database_url=f"sqlite:///{folder / 'qala.sqlite'}", secret_key="errors")
    context = Context.from_settings(settings)
    yield TestClient(create_app(settings, context=context), follow_redirects=False)
    context.database.dispose()


@pytest.mark.parametrize(
    ("path", "status", "heading"),
    [
        ("/cities/atlantis", 404, "Страница не найдена"),
        ("/requests/new?city=atlantis", 404, "Страница не найдена"),
        ("/no/such/page", 404, "Страница не найдена"),
        ("/rating?year=abc", 422, "Некоторые значения указаны неверно"),
    ],
)
def test_browsers_get_a_translated_page(
    client: TestClient, path: str, status: int, heading: str
) -> None:
    client.cookies.clear()  # no language remembered from an earlier case
    answer = client.get(path, headers={"accept": "text/html", "accept-language": "ru"})
    assert answer.status_code == status
    assert answer.headers["content-type"].startswith("text/html")
    text = VisibleText()
    text.feed(answer.text)
    shown = "\n".join(text.parts)
    assert heading in shown
    assert not latin_words(shown) - ALLOWED, shown
    joiner = "&" if "?" in path else "?"
    kazakh = client.get(f"{path}{joiner}lang=kk", headers={"accept": "text/html"})
    assert kazakh.status_code == status and '<html lang="kk">' in kazakh.text


def test_api_clients_keep_json(client: TestClient) -> None:
    answer = client.get("/rating?year=abc", headers={"accept": "application/json"})
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["loc"] == ["query", "year"]
    missing = client.get("/requests/new?city=atlantis", headers={"accept": "application/json"})
    assert missing.status_code == 404
    assert isinstance(missing.json()["detail"], str)
