"""Only configured proxies may say who the client is.

uvicorn believes ``X-Forwarded-For`` from 127.0.0.1 unless told otherwise, so any process on the
server's machine could post reports under made-up addresses and never meet the rate limit. Qala
now believes the header only from ``QALA_TRUSTED_PROXIES``. Real uvicorn, real sockets.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import uvicorn

from qala.api import create_app
from qala.settings import Settings

REPORT = {
    "jurisdiction_id": "astana",
    "service_code": "heating",
    "lat": "51.125",
    "long": "71.43",
    "attribute[issue]": "no_heating",
    "attribute[indoor_temperature]": "15",
    "description": "Cold flat (proxy test)",
}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _serve(settings: Settings) -> Iterator[str]:
    from qala.components.requests311.demo import astana_catalogue
    from qala.components.requests311.services import load_catalogue

    app = create_app(settings)
    with app.state.context.database.transaction() as session:
        load_catalogue(session, astana_catalogue())
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=port, log_level="warning", **settings.proxy_options()
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        app.state.context.database.dispose()


def _posts_from_made_up_addresses(base: str) -> list[int]:
    return [
        httpx.post(
            f"{base}/open311/v2/requests.json",
            data=REPORT,
            headers={"X-Forwarded-For": f"203.0.113.{n}"},
            timeout=10,
        ).status_code
        for n in range(1, 4)
    ]


@pytest.mark.parametrize(("trusted", "expected"), [("", [200, 429, 429]), ("127.0.0.1", [200] * 3)])
def test_forwarded_addresses_count_only_from_trusted_proxies(
    sqlite_url: str, trusted: str, expected: list[int]
) -> None:
    settings = Settings(
        database_url=sqlite_url,
        secret_key="t",
        rate_limit_per_minute=1,
        trusted_proxies=trusted,
    )
    for base in _serve(settings):
        assert _posts_from_made_up_addresses(base) == expected
