"""An error nobody foresaw: logged with an id, answered in the caller's format with that id."""

from __future__ import annotations

import logging

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from qala.api import create_app
from qala.settings import Settings


def _boom() -> None:
    raise RuntimeError("secret internal detail")


@pytest.fixture
def app(sqlite_url: str) -> FastAPI:
    app = create_app(Settings(database_url=sqlite_url, secret_key="t"))
    for path in ("/api/v1/boom", "/open311/v2/boom.json", "/open311/v2/boom.xml"):
        app.add_api_route(path, _boom)
    app.add_api_route("/ngsi-ld/v1/boom", _boom)
    app.add_api_route("/boom", _boom)
    app.router.routes.insert(0, app.router.routes.pop())  # before the pages' catch-alls
    return app


@pytest.mark.parametrize(
    ("path", "accept", "expect"),
    [
        ("/api/v1/boom", "application/json", '"error_id"'),
        ("/open311/v2/boom.json", "*/*", '"code":500'),
        ("/open311/v2/boom.xml", "*/*", "<errors><error><code>500</code>"),
        ("/ngsi-ld/v1/boom", "application/json", "errors/InternalError"),
        ("/boom?lang=kk", "text/html", "Біз жақта қате орын алды"),
    ],
)
def test_unexpected_errors_name_their_log_id(
    app: FastAPI, caplog: pytest.LogCaptureFixture, path: str, accept: str, expect: str
) -> None:
    client = TestClient(app, raise_server_exceptions=False)
    with caplog.at_level(logging.ERROR, logger="qala.errors"):
        answer = client.get(path, headers={"accept": accept})
    assert answer.status_code == 500
    error_id = answer.headers["x-error-id"]
    assert expect in answer.text
    assert error_id in answer.text
    assert "secret internal detail" not in answer.text and "Traceback" not in answer.text
    logged = [r for r in caplog.records if error_id in r.getMessage()]
    assert logged and logged[0].exc_info is not None  # the log has the traceback
    app.state.context.database.dispose()
