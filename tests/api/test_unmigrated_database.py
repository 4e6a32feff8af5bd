"""A server started on a database without Qala's schema (never migrated, or behind this
version) tells every caller what fixes it — 503 naming `qala db upgrade`, in the caller's
format — instead of a 500 or a 503 that says to try again shortly (which never helps)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from qala.runtime import Context
from qala.settings import Settings

FIX = "qala db upgrade"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.sqlite'}"
        return
    server = request.getfixturevalue("postgres_server")
    url = server.create()
    yield url
    server.drop(url)


def test_every_part_of_the_api_says_to_run_the_migrations(empty_database_url: str) -> None:
    from qala.api.app import create_app

    settings = Settings(database_url=empty_database_url, secret_key="unmigrated")
    context = Context.from_settings(settings)
    app = create_app(settings, context=context, migrate=False)
    client = TestClient(app, raise_server_exceptions=False)
    try:
        answer = client.get("/open311/v2/services.json")
        assert answer.status_code == 503, answer.text
        assert FIX in answer.json()[0]["description"]
        assert "Retry-After" not in answer.headers
        answer = client.get("/open311/v2/requests.xml")
        assert answer.status_code == 503 and FIX in answer.text
        answer = client.get("/ngsi-ld/v1/entities", params={"type": "Device"})
        assert answer.status_code == 503, answer.text
        assert FIX in answer.json()["detail"]
        answer = client.get("/api/v1/places")
        assert answer.status_code == 503, answer.text
        assert FIX in answer.json()["detail"]
    finally:
        context.database.dispose()
