"""Build the FastAPI application from settings; nothing is created at import time."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from qala import __version__
from qala.api import sem
from qala.api.failures import unexpected_error
from qala.api.paths import TrailingSlashOptional
from qala.api.security import SecurityHeaders
from qala.components.accounts.deps import ContextDep
from qala.core.errors import (
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    QalaError,
    ValidationError,
)
from qala.registry import COMPONENTS, prepare, start_components
from qala.runtime import Context
from qala.settings import Settings

_STATUS = {NotFoundError: 404, ConflictError: 409, PermissionDeniedError: 403, ValidationError: 422}


async def qala_error(_request: Request, exc: QalaError) -> JSONResponse:
    """A domain error as JSON: its kind picks the status, a validation error lists its problems."""
    status = next((code for kind, code in _STATUS.items() if isinstance(exc, kind)), 400)
    body: dict[str, Any] = {"detail": str(exc)}
    if isinstance(exc, ValidationError):
        body["problems"] = [p.as_dict() for p in exc.problems]
    return JSONResponse(body, status_code=status)


# What load balancers poll (no docstring: it would become the OpenAPI description).
def healthz(context: ContextDep) -> dict[str, str]:
    return {"status": "ok", "version": __version__, "database": context.database.backend}


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
    )
    app.state.context = context

    app.exception_handler(QalaError)(qala_error)
    app.exception_handler(Exception)(unexpected_error)
    app.add_api_route("/healthz", healthz, methods=["GET"], tags=["platform"])

    for component in sorted(COMPONENTS, key=lambda c: -c.route_priority):
        if component.api_router is not None:
            app.include_router(component.api_router(context))

    app.include_router(sem.router)

    from qala.web import mount_web

    mount_web(app, context)
    app.add_middleware(SecurityHeaders, tls_always=context.settings.secure_cookies)
    app.add_middleware(TrailingSlashOptional, prefixes=("/ngsi-ld/v1/",))
    return app
