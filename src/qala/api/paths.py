"""Paths answered with or without a trailing slash where a standard writes the slash.

ETSI GS CIM 009 writes collection resources as ``/ngsi-ld/v1/entities/``; FastAPI would answer
307 to the slashed form, and HTTP clients do not follow a redirect on POST. A plain ASGI
middleware drops the slash before routing, for the prefixes given only (the web pages keep
their redirects).
"""

from __future__ import annotations

from qala.api.security import ASGIApp, Receive, Scope, Send


class TrailingSlashOptional:
    """Routes ``PREFIX…/`` as ``PREFIX…`` for each of ``prefixes``."""

    def __init__(self, app: ASGIApp, *, prefixes: tuple[str, ...]) -> None:
        self.app = app
        self.prefixes = prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if (
            scope["type"] == "http"
            and len(path) > 1
            and path.endswith("/")
            and path.startswith(self.prefixes)
        ):
            scope = dict(scope)
            scope["path"] = path.rstrip("/")
            raw = scope.get("raw_path")
            if isinstance(raw, bytes):
                scope["raw_path"] = raw.rstrip(b"/")
        await self.app(scope, receive, send)
