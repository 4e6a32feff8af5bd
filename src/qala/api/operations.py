"""Operations endpoints: ``/healthz`` (alive), ``/readyz`` (ready to serve: database reachable
and migrated, broker connected when an ingester runs in this process) and ``/metrics``
(Prometheus), plus the middleware that counts and times every request by route template.

``/metrics`` tells an attacker what runs and how busy it is, so it is not public: with
``QALA_METRICS_TOKEN`` set it answers a scraper sending ``Authorization: Bearer <token>``;
without a token, only a direct loopback client (no proxy's forwarding headers) — a Prometheus on
the same machine. Anyone else gets 404, as if there were no such page.
"""

from __future__ import annotations

import hmac
import time
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from qala import __version__
from qala.components.accounts.deps import ContextDep
from qala.core.metrics import CONTENT_TYPE
from qala.registry import readiness
from qala.runtime import Context

LOOPBACK = {"127.0.0.1", "::1", "localhost"}
FORWARDING_HEADERS = (b"x-forwarded-for", b"forwarded", b"x-real-ip")


def may_read_metrics(request: Request, context: ContextDep) -> None:
    """Refuse (404) a scrape that neither carries the metrics token nor comes straight from
    this machine."""
    token = context.settings.metrics_token
    if token:
        sent = request.headers.get("authorization", "")
        if hmac.compare_digest(sent.encode(), f"Bearer {token}".encode()):
            return
        raise HTTPException(404)
    # The socket's peer, not client_address: a trusted proxy's X-Forwarded-For has replaced it
    # by then, and a loopback proxy in front of the public must not make everyone local.
    peer = request.scope.get("client")
    forwarded = any(name in FORWARDING_HEADERS for name, _v in request.scope["headers"])
    if peer and peer[0] in LOOPBACK and not forwarded:
        return
    raise HTTPException(404)


MetricsReader = Annotated[None, Depends(may_read_metrics)]


# What load balancers and orchestrators poll (no docstrings: they would become OpenAPI text).
def healthz() -> dict[str, str]:
    return {"status": "ok", "version": __version__}


def readyz(context: ContextDep) -> JSONResponse:
    ready, checks = readiness(context)
    return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)


def metrics(context: ContextDep, _reader: MetricsReader) -> Response:
    return Response(context.metrics().exposition(), media_type=CONTENT_TYPE)


class RequestMetrics:
    """Counts and times each HTTP request under its route template, read after routing."""

    def __init__(self, app: ASGIApp, *, context: Context) -> None:
        self.app = app
        self.metrics = context.metrics()
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = [500]

        async def send_noting_status(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_noting_status)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            count, timing = self._series(scope["method"], route, status[0])
            count.inc()
            timing.observe(time.perf_counter() - started)

    def _series(self, method: str, route: str, status: int) -> tuple[Any, Any]:
        """The counter and histogram children of a request's labels, looked up once: asking
        prometheus-client for them costs more than counting (it validates the labels under a
        lock). Few keys: routes are templates."""
        key = (method, route, status)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = (
                self.metrics.requests.labels(method, route, str(status)),
                self.metrics.request_seconds.labels(method, route),
            )
        return found
