"""Build the FastAPI application from settings; nothing is created at import time."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from qala import __version__
from qala.api import operations, sem
from qala.api.failures import database_error, database_error_types, unexpected_error
from qala.api.paths import TrailingSlashOptional
from qala.api.security import SecurityHeaders
from qala.core.errors import (
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    QalaError,
    UnavailableError,
    ValidationError,
)
from qala.registry import COMPONENTS, prepare, start_components
from qala.runtime import Context
from qala.settings import Settings, tile_origin

_STATUS = {
    NotFoundError: 404,
    ConflictError: 409,
    PermissionDeniedError: 403,
    ValidationError: 422,
    UnavailableError: 503,
}


async def qala_error(_request: Request, exc: QalaError) -> JSONResponse:
    """A domain error as JSON: its kind picks the status, a validation error lists its problems."""
    status = next((code for kind, code in _STATUS.items() if isinstance(exc, kind)), 400)
    if isinstance(exc, ValidationError):
        # The 422 shape FastAPI publishes for every operation: ``detail`` a list of located items.
        body: dict[str, Any] = {
            "detail": exc.details(),
            "message": str(exc),
            "problems": [p.as_dict() for p in exc.problems],
        }
    else:
        body = {"detail": str(exc)}
        if exc.message is not None:  # the same reason as a catalogue id, for pages to translate
            body["reason"] = exc.message.as_dict()
    return JSONResponse(body, status_code=status)


def create_app(
    settings: Settings | None = None, *, context: Context | None = None, migrate: bool = True
) -> FastAPI:
    """The whole platform as one ASGI app. Tests pass settings with their own database."""
    context = context or Context.from_settings(settings or Settings())
    if migrate:
        prepare(context)
    else:
        start_components(context)
    app = FastAPI(
        title="Qala",
        version=__version__,
        description="Open smart-city platform for Kazakhstan's cities: measure, operate, participate.",
        max_body_size=context.settings.max_request_bytes,
        telemetry={
            "tracing": context.settings.opentelemetry,
            "metrics": context.settings.opentelemetry,
            "logs": context.settings.opentelemetry,
        },
    )
    app.state.context = context

    app.exception_handler(QalaError)(qala_error)
    app.exception_handler(Exception)(unexpected_error)
    for error_type in database_error_types():
        app.exception_handler(error_type)(database_error)
    app.add_api_route("/healthz", operations.healthz, methods=["GET"], tags=["platform"])
    app.add_api_route("/readyz", operations.readyz, methods=["GET"], tags=["platform"])
    app.add_api_route(
        "/metrics", operations.metrics, methods=["GET"], tags=["platform"], include_in_schema=False
    )

    for component in sorted(COMPONENTS, key=lambda c: -c.route_priority):
        if component.api_router is not None:
            app.include_router(component.api_router(context))

    app.include_router(sem.router)

    from qala.web import mount_web

    mount_web(app, context)
    # Components' answering middleware innermost: inside the security headers and metrics.
    for component in COMPONENTS:
        if component.api_middleware is not None:
            app.add_middleware(component.api_middleware())
    tiles = context.settings.tile_url
    app.add_middleware(
        SecurityHeaders,
        tls_always=context.settings.secure_cookies,
        connect=(context.settings.ncalayer_url.rstrip("/"),),
        tile_origin=tile_origin(tiles) if tiles else None,
    )
    app.add_middleware(operations.RequestMetrics, context=context)
    app.add_middleware(TrailingSlashOptional, prefixes=("/ngsi-ld/v1/",))
    return app
