"""Fixtures for Operate: an app with an operator token, a capture server for notifications."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from fastapi.testclient import TestClient

from qala.api.app import create_app
from qala.runtime import Context
from qala.settings import Settings


@dataclass
class OperateApp:
    client: TestClient
    context: Context
    token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def make_operator(context: Context, username: str = "duty.operator", role: str = "operator") -> str:
    from qala.components.accounts.services import create_user, issue_token

    with context.database.transaction() as session:
        user = create_user(session, username=username, password="correct-horse-battery", role=role)
        return issue_token(session, user)


@pytest.fixture
def operate_app(database_url: str) -> Iterator[OperateApp]:
    """The platform with an operator's token, on each backend."""
    app = create_app(Settings(database_url=database_url, secret_key="t"))
    context: Context = app.state.context
    token = make_operator(context)
    with TestClient(app) as client:
        yield OperateApp(client, context, token)
    context.database.dispose()


@dataclass
class Capture:
    url: str
    received: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    event: threading.Event = field(default_factory=threading.Event)


@pytest.fixture
def capture_server() -> Iterator[Capture]:
    """An HTTP endpoint on a free loopback port that records POSTed JSON (subscription target)."""
    capture = Capture(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", 0))
            capture.received.append(json.loads(self.rfile.read(length)))
            capture.headers.append(dict(self.headers))
            capture.event.set()
            self.send_response(204)
            self.end_headers()

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    capture.url = f"http://127.0.0.1:{server.server_port}/notify"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield capture
    server.shutdown()
