"""Real NGSI-LD client libraries from PyPI (ngsildclient 0.5.2, FiLiP) against Qala served by uvicorn.

The clients pin old httpx/rich/pandas/pydantic, so they live in their own virtual env
(``scripts/setup_clients_venv.sh`` → ``.venv-clients``) and run in a subprocess; Qala runs in
another subprocess (uvicorn on a free loopback port). .ci/run creates the env before the tests.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.conftest import need

from qala.runtime import Context
from qala.settings import Settings

REPO = Path(__file__).resolve().parents[3]
CLIENTS_VENV = Path(os.environ.get("QALA_CLIENTS_VENV", REPO / ".venv-clients"))
CLIENT_PYTHON = CLIENTS_VENV / "bin" / "python"
SCRIPTS = Path(__file__).parent / "clients"
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def client_python() -> Path:
    need(CLIENT_PYTHON.exists(), f"no {CLIENTS_VENV}; create it with scripts/setup_clients_venv.sh")
    return CLIENT_PYTHON


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def served(sqlite_url: str, tmp_path: Path) -> Iterator[tuple[int, str]]:
    """Qala on uvicorn (own process) and an operator token."""
    from qala.components.accounts.services import create_user, issue_token

    context = Context.from_settings(Settings(database_url=sqlite_url, secret_key="t"))
    with context.database.transaction() as session:
        user = create_user(
            session, username="client.operator", password="correct-horse-battery", role="operator"
        )
        token = issue_token(session, user)
    context.database.dispose()
    port = _free_port()
    env = {**os.environ, "QALA_DATABASE_URL": sqlite_url, "QALA_SECRET_KEY": "t"}
    log = (tmp_path / "uvicorn.log").open("w")
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "qala.api.app:create_app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            pytest.fail(f"uvicorn did not start: {(tmp_path / 'uvicorn.log').read_text()}")
        yield port, token
    finally:
        server.terminate()
        server.wait(20)
        log.close()


def _run(python: Path, script: str, port: int, token: str) -> dict[str, object]:
    result = subprocess.run(
        [str(python), str(SCRIPTS / script), str(port), token],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_ngsildclient_creates_upserts_queries_and_deletes(
    client_python: Path, served: tuple[int, str]
) -> None:
    seen = _run(client_python, "ngsildclient_session.py", *served)
    assert seen == {
        "created": True,
        "upserted": True,
        "upserted_again": True,
        "pm25_after_upsert": 90.5,
        "query_type": [
            "urn:ngsi-ld:AirQualityObserved:Astana:kgmt-12",
            "urn:ngsi-ld:AirQualityObserved:Astana:kgmt-14",
        ],
        "query_q": ["urn:ngsi-ld:AirQualityObserved:Astana:kgmt-12"],
        "count": 2,
        "exists_before_delete": True,
        "deleted": True,
        "exists_after_delete": False,
    }


def test_filip_creates_upserts_queries_and_deletes(
    client_python: Path, served: tuple[int, str]
) -> None:
    seen = _run(client_python, "filip_session.py", *served)
    assert seen == {
        "location": "/ngsi-ld/v1/entities/urn:ngsi-ld:Streetlight:astana:1",
        "power_after_upsert": "off",
        "listed": ["urn:ngsi-ld:Streetlight:astana:1", "urn:ngsi-ld:Streetlight:astana:2"],
        "q_on": ["urn:ngsi-ld:Streetlight:astana:2"],
        "near": ["urn:ngsi-ld:Streetlight:astana:1"],
        "after_delete": ["urn:ngsi-ld:Streetlight:astana:1"],
    }
