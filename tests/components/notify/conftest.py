"""Real peers on loopback for the notification tests: an SMTP server (aiosmtpd) that keeps what
it receives, and an HTTP server standing in for an SMS provider's gateway."""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from tests.conftest import require_module


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class MailBox:
    """What the SMTP server accepted; with ``stall`` set, the next message is read but never
    answered (the sender hangs in DATA, as when a server dies mid-delivery)."""

    messages: list[EmailMessage] = field(default_factory=list)
    stall: bool = False
    stalled: threading.Event = field(default_factory=threading.Event)
    port: int = 0

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.stall:
            self.stall = False
            self.stalled.set()
            await asyncio.sleep(3600)  # the client is killed meanwhile; nothing is kept
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)
        return "250 Message accepted for delivery"


@pytest.fixture
def mailbox() -> Iterator[MailBox]:
    controller_module = require_module(
        "aiosmtpd.controller", "the `dev` extra (aiosmtpd) is not installed"
    )
    box = MailBox(port=free_port())
    controller = controller_module.Controller(box, hostname="127.0.0.1", port=box.port)
    controller.start()
    yield box
    controller.stop()


@dataclass
class SmsGatewayStub:
    """A local HTTP server that records every POST (body and headers) and answers 202, or the
    status in ``answer``."""

    port: int
    received: list[dict[str, Any]] = field(default_factory=list)
    answer: int = 202

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1/sms"


@pytest.fixture
def sms_gateway() -> Iterator[SmsGatewayStub]:
    stub = SmsGatewayStub(free_port())

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
            stub.received.append({"path": self.path, "headers": dict(self.headers), "body": body})
            self.send_response(stub.answer)
            self.end_headers()
            self.wfile.write(b'{"status": "accepted"}')

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", stub.port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield stub
    server.shutdown()
    server.server_close()


@pytest.fixture
def sqlite_city(sqlite_context: Any) -> Any:
    """Astana's catalogue on a fresh SQLite store, notifications started."""
    from tests.components.requests311.conftest import make_city

    from qala.registry import start_components

    start_components(sqlite_context)
    return make_city(sqlite_context)


@pytest.fixture
def city(context: Any) -> Any:
    """The same on each backend (SQLite, PostgreSQL)."""
    from tests.components.requests311.conftest import make_city

    from qala.registry import start_components

    start_components(context)
    return make_city(context)
