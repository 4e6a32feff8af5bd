"""Uploads and bodies are refused before they are read when the caller may not send them.

FastAPI reads a request's body before it resolves the route's dependencies, so an anonymous
12 MiB upload to ``/data/import`` was read up to its limit and only then answered 401, and so was
a JSON body to any role-restricted route (an observation batch up to 16 MiB). The route's caller
checks now run first (``CallerFirstRoute``). Real uvicorn, real sockets: the client sends the
headers and the first 64 KiB, then waits for the answer without sending the rest.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn
from fastapi.routing import APIRoute

from qala.api import create_app
from qala.components.accounts.deps import SAFE_METHODS, caller_checks
from qala.settings import Settings

DECLARED = 12 * 1024 * 1024  # under every upload route's own limit (16 and 64 MiB)
FIRST_PART = (
    b"--qalagate\r\n"
    b'Content-Disposition: form-data; name="file"; filename="values.csv"\r\n'
    b"Content-Type: text/csv\r\n\r\n" + b"x" * 65_536
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, dict[str, str]]]:
    from sqlalchemy import select

    from qala.components.accounts.models import User
    from qala.components.accounts.services import ensure_demo_users, issue_token

    folder = tmp_path_factory.mktemp("gate")
    app = create_app(Settings(database_url=f"sqlite:///{folder}/qala.sqlite", secret_key="t"))
    tokens: dict[str, str] = {}
    with app.state.context.database.transaction() as session:
        ensure_demo_users(session)
        for user in session.scalars(select(User)):
            tokens.setdefault(user.role, issue_token(session, user, label="gate test"))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    uv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not uv.started and time.monotonic() < deadline:
        time.sleep(0.02)
    yield port, tokens
    uv.should_exit = True
    thread.join(10)
    app.state.context.database.dispose()


def _first_answer(
    port: int,
    path: str,
    headers: dict[str, str],
    wait_s: float = 3.0,
    *,
    method: str = "POST",
    declared: int = DECLARED,
    content_type: str = "multipart/form-data; boundary=qalagate",
    first_part: bytes = FIRST_PART,
) -> str:
    """Send the headers of a ``declared``-byte body and its first 64 KiB; the status line the
    server answers with before the rest arrives, or "" when it keeps waiting for the body."""
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", f"Content-Length: {declared}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines.append(f"Content-Type: {content_type}")
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + first_part)
        sock.settimeout(wait_s)
        try:
            answer = sock.recv(4096)
        except TimeoutError:
            return ""
    return answer.split(b"\r\n", 1)[0].decode()


@pytest.mark.parametrize("path", ["/api/v1/data/import", "/api/v1/data/check", "/api/v1/sem/fit"])
def test_an_anonymous_upload_is_refused_before_its_body_is_read(
    server: tuple[int, dict[str, str]], path: str
) -> None:
    port, _tokens = server
    assert _first_answer(port, path, {}).startswith("HTTP/1.1 401")


def test_a_wrong_token_is_refused_before_the_body_is_read(
    server: tuple[int, dict[str, str]],
) -> None:
    port, _tokens = server
    answer = _first_answer(port, "/api/v1/data/import", {"Authorization": "Bearer not-a-token"})
    assert answer.startswith("HTTP/1.1 401")


def test_a_role_without_the_right_is_refused_before_the_body_is_read(
    server: tuple[int, dict[str, str]],
) -> None:
    port, tokens = server
    answer = _first_answer(
        port, "/api/v1/data/import", {"Authorization": f"Bearer {tokens['citizen']}"}
    )
    assert answer.startswith("HTTP/1.1 403")


def test_an_analyst_upload_is_read(server: tuple[int, dict[str, str]]) -> None:
    port, tokens = server
    answer = _first_answer(
        port, "/api/v1/data/import", {"Authorization": f"Bearer {tokens['analyst']}"}, 1.0
    )
    assert answer == "", f"the analyst's upload was answered before it was sent: {answer}"


def test_an_anonymous_upload_to_the_import_page_is_refused_before_it_is_read(
    server: tuple[int, dict[str, str]],
) -> None:
    port, _tokens = server
    answer = _first_answer(port, "/admin/import", {})
    assert answer.startswith(("HTTP/1.1 401", "HTTP/1.1 303", "HTTP/1.1 403")), answer


def _gated_routes() -> list[tuple[str, str, int]]:
    """Every route that checks its caller and takes a body: (method, path, body limit)."""
    app = create_app(Settings(database_url="sqlite://", secret_key="t"), migrate=False)
    default = app.router.max_body_size or 1024 * 1024

    def walk(routes: list[object]) -> Iterator[object]:
        for route in routes:
            yield route
            if hasattr(route, "original_router"):
                yield from walk(route.original_router.routes)

    found = []
    for route in walk(list(app.routes)):
        if isinstance(route, APIRoute) and caller_checks(route.dependant):
            limit = route.max_body_size or default
            # any segment will do, but NGSI-LD checks that an entity id is a URI first
            segment = "urn:ngsi-ld:Thing:1" if route.path.startswith("/ngsi-ld") else "1"
            path = re.sub(r"\{[^}]+\}", segment, route.path_format)
            found += [(m, path, limit) for m in sorted(route.methods - SAFE_METHODS)]
    return found


GATED = _gated_routes()


def test_the_gated_routes_include_the_json_bodies_that_were_read_first() -> None:
    paths = {path for _method, path, _limit in GATED}
    assert {
        "/api/v1/operate/observations",  # a dependency reading the body came before the user's
        "/api/v1/requests/bulk",
        "/api/v1/budgeting/projects/1/payments",
        "/ngsi-ld/v1/entityOperations/create",
    } <= paths
    assert len(GATED) > 60


@pytest.mark.parametrize(("method", "path", "limit"), GATED, ids=[f"{m} {p}" for m, p, _ in GATED])
def test_an_anonymous_body_is_refused_before_it_is_read(
    server: tuple[int, dict[str, str]], method: str, path: str, limit: int
) -> None:
    port, _tokens = server
    json_start = b"[" + b"0," * 32_768  # 64 KiB of a JSON array that never ends
    answer = _first_answer(
        port,
        path,
        {},
        method=method,
        declared=min(limit, DECLARED) - 1,
        content_type="application/json",
        first_part=json_start,
    )
    # 401 for the API, a redirect to sign in (303) for pages
    assert answer.startswith(("HTTP/1.1 401", "HTTP/1.1 303")), f"{method} {path}: {answer!r}"
