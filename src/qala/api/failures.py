"""The last resort: an error nobody expected is logged under an id and answered in the shape
the caller's part of the API uses, naming that id — never a bare traceback or "Internal Server
Error" with nothing to report. Browsers get the translated error page.
"""

from __future__ import annotations

import logging
import uuid
from xml.sax.saxutils import escape

from fastapi import Request
from fastapi.responses import JSONResponse, Response

from qala.store.database import is_missing_schema, is_transient
from qala.web.shell import server_error_page, wants_html

log = logging.getLogger("qala.errors")
NGSI_INTERNAL = "https://uri.etsi.org/ngsi-ld/errors/InternalError"


async def unexpected_error(request: Request, exc: Exception) -> Response:
    """Log ``exc`` with a new error id and answer 500 in the caller's format."""
    error_id = uuid.uuid4().hex[:12]
    log.error(
        "unexpected error %s on %s %s",
        error_id,
        request.method,
        request.url.path,
        exc_info=(type(exc), exc, exc.__traceback__),
    )
    message = f"unexpected server error; the log keeps it as {error_id}"
    path = request.url.path
    if path.startswith("/ngsi-ld/"):
        problem = {"type": NGSI_INTERNAL, "title": "Internal error", "detail": message}
        return JSONResponse(problem, status_code=500, headers={"X-Error-Id": error_id})
    if path.startswith("/open311/"):
        if path.endswith(".xml"):
            body = (
                '<?xml version="1.0" encoding="utf-8"?>'
                f"<errors><error><code>500</code><description>{escape(message)}</description>"
                "</error></errors>"
            )
            return Response(body, 500, media_type="text/xml", headers={"X-Error-Id": error_id})
        return JSONResponse(
            [{"code": 500, "description": message}],
            status_code=500,
            headers={"X-Error-Id": error_id},
        )
    if wants_html(request):
        page = server_error_page(request, error_id)
        page.headers["X-Error-Id"] = error_id
        return page
    return JSONResponse(
        {"detail": message, "error_id": error_id},
        status_code=500,
        headers={"X-Error-Id": error_id},
    )


# Seconds a client is told to wait when the database is unreachable (a restart or failover).
RETRY_AFTER_S = 5


async def database_error(request: Request, exc: Exception) -> Response:
    """A database that is down, restarting or dropped the connection answers 503 with
    ``Retry-After`` in the caller's format (the request may simply be sent again: nothing was
    committed, or it was and the store ignores the repeat). A database without Qala's schema
    (never migrated, or behind this version) answers 503 saying what fixes it. Any other database
    error is unexpected."""
    if is_missing_schema(exc):
        log.error(
            "the database has no table or column this version needs (%s); run `qala db upgrade`",
            getattr(exc, "orig", exc),
        )
        message = "the database is not migrated to this version of Qala; run `qala db upgrade`"
        return _unavailable(request, message, {})
    if not is_transient(exc):
        return await unexpected_error(request, exc)
    log.warning("database unavailable on %s %s: %s", request.method, request.url.path, exc)
    message = "the database is unavailable; try again shortly"
    return _unavailable(request, message, {"Retry-After": str(RETRY_AFTER_S)})


def _unavailable(request: Request, message: str, headers: dict[str, str]) -> Response:
    """503 with ``message`` in the shape the caller's part of the API uses."""
    path = request.url.path
    if path.startswith("/ngsi-ld/"):
        problem = {"type": NGSI_INTERNAL, "title": "Service unavailable", "detail": message}
        return JSONResponse(problem, status_code=503, headers=headers)
    if path.startswith("/open311/"):
        if path.endswith(".xml"):
            body = (
                '<?xml version="1.0" encoding="utf-8"?>'
                f"<errors><error><code>503</code><description>{escape(message)}</description>"
                "</error></errors>"
            )
            return Response(body, 503, media_type="text/xml", headers=headers)
        return JSONResponse([{"code": 503, "description": message}], 503, headers=headers)
    return JSONResponse({"detail": message}, status_code=503, headers=headers)


def database_error_types() -> tuple[type[Exception], ...]:
    """The exception classes a database call raises: SQLAlchemy's, and the drivers' own from
    raw cursors (the observations' COPY)."""
    import sqlite3

    import psycopg
    from sqlalchemy.exc import DBAPIError

    return (DBAPIError, psycopg.Error, sqlite3.Error)
