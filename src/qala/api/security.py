"""Security headers on every answer, added by a plain ASGI middleware (a few microseconds: the
Open311 and NGSI-LD reads are the platform's busiest routes and pay for everything here).

- ``Content-Security-Policy``: scripts only from this site, never inline (the pages have none);
  inline ``style`` attributes stay allowed for the server-drawn charts; scripts connect only here
  and to NCALayer on the resident's own computer (``QALA_NCALAYER_URL``, the identity page's
  signing app); no framing
  (``frame-ancestors 'none'``), no plugins, forms post only here. The interactive API docs
  (``/docs``, ``/redoc``) load FastAPI's bundled viewer from its CDN with an inline starter, so
  they get no CSP; they show no user data. Images load from this site only, plus the tile
  server's origin when the deployment names one (``QALA_TILE_URL``): the tiled map's tiles are
  ``<img>`` elements; nothing else of the map comes from elsewhere (Leaflet is served from here).
- ``X-Content-Type-Options: nosniff``, ``X-Frame-Options: DENY`` (for browsers without CSP 2),
  ``Referrer-Policy: strict-origin-when-cross-origin``, a ``Permissions-Policy`` that gives pages
  no camera, microphone or payment, and the position only to this site (the report form's map).
- ``Strict-Transport-Security`` when the request came over TLS, or when the deployment says its
  cookies are for HTTPS only (``QALA_SECURE_COOKIES``): then a proxy terminates TLS.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def content_security_policy(*connect: str, tile_origin: str | None = None) -> str:
    """The pages' policy; ``connect`` adds places scripts may open connections to, and
    ``tile_origin`` (``https://tiles.example.kz``) joins ``img-src``."""
    images = "img-src 'self' data: blob:" + (f" {tile_origin}" if tile_origin else "")
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self' 'unsafe-inline'",
            images,
            " ".join(["connect-src 'self'", *connect]),
            "font-src 'self'",
            "object-src 'none'",
            "base-uri 'self'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


COMMON = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"strict-origin-when-cross-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), payment=(), geolocation=(self)"),
]
HSTS = (b"strict-transport-security", b"max-age=31536000; includeSubDomains")
DOCS_PATHS = ("/docs", "/redoc")


class SecurityHeaders:
    """Adds the headers above to every HTTP answer of ``app``."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        tls_always: bool = False,
        connect: tuple[str, ...] = (),
        tile_origin: str | None = None,
    ) -> None:
        self.app = app
        self.tls_always = tls_always
        policy = content_security_policy(*connect, tile_origin=tile_origin)
        csp_header = (b"content-security-policy", policy.encode())
        # The four header sets, by (answer is a page with CSP, answer goes over TLS): built
        # once, not per request.
        self.sets = {
            (csp, tls): (*COMMON, *((csp_header,) if csp else ()), *((HSTS,) if tls else ()))
            for csp in (False, True)
            for tls in (False, True)
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        csp = not scope["path"].startswith(DOCS_PATHS)
        extra = self.sets[csp, self.tls_always or scope.get("scheme") == "https"]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                message["headers"] = [
                    *message.get("headers", []),
                    *(header for header in extra if header[0] not in present),
                ]
            await send(message)

        await self.app(scope, receive, send_with_headers)
