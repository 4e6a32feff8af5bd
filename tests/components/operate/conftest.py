"""Fixtures for Operate: an app with an operator token, a capture server for notifications."""

from __future__ import annotations

import getpass
import json
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from qala.api.app import create_app
from qala.runtime import Context
from qala.settings import Settings

DEPLOY = Path(__file__).parents[3] / "deploy" / "mosquitto"
# The ingester's own broker login in the private brokers (the ACL names it qala-ingest).
INGESTER = ("qala-ingest", "ingester-secret")


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


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class PrivateBroker:
    """Mosquitto with deploy/mosquitto's configuration on a free loopback port."""

    port: int
    folder: Path
    process: subprocess.Popen[bytes] | None = field(default=None)

    @property
    def passwords(self) -> Path:
        return self.folder / "passwords"

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["mosquitto", "-c", str(self.folder / "mosquitto.conf")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        self.process.kill()
        raise AssertionError(self.process.stderr.read().decode() if self.process.stderr else "")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


def shipped_broker(folder: Path, *, anonymous: bool = False) -> PrivateBroker:
    """deploy/mosquitto's configuration written into ``folder`` with a free port and the
    folder's files (not started). ``anonymous``: no password file or ACL, anyone may connect
    (one test publisher standing in for every device); the queue and persistence settings stay."""
    broker = PrivateBroker(_free_port(), folder)
    paths: dict[str, Any] = {"persistence_location": f"{folder}/"}
    if not anonymous:
        broker.passwords.write_text("", encoding="utf-8")
        shutil.copy(DEPLOY / "acl", folder / "acl")
        paths |= {"password_file": broker.passwords, "acl_file": folder / "acl"}
    lines = []
    for line in (DEPLOY / "mosquitto.conf").read_text(encoding="utf-8").splitlines():
        key = line.split(" ", 1)[0]
        if anonymous and key in ("password_file", "acl_file"):
            continue
        if key in paths:
            line = f"{key} {paths[key]}"
        elif key == "listener":
            line = f"listener {broker.port} 127.0.0.1"
        elif anonymous and key == "allow_anonymous":
            line = "allow_anonymous true"
        lines.append(line)
    lines.append(f"user {getpass.getuser()}")  # a root test run must not drop to `mosquitto`
    (folder / "mosquitto.conf").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return broker


@pytest.fixture
def private_broker(tmp_path: Path) -> Iterator[PrivateBroker]:
    """The shipped configuration with this test's port, files and folder (the test writes the
    password file, then starts the broker); stopped at the end."""
    if shutil.which("mosquitto") is None:
        pytest.skip("mosquitto is not installed (apt-get install -y mosquitto)")
    broker = shipped_broker(tmp_path)
    try:
        yield broker
    finally:
        broker.stop()
