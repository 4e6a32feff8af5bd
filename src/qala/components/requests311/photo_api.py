"""Residents' photos over HTTP: each file at ``/media/requests311/{name}`` (the public sees it
unless an operator hid it; staff of the request's city and department always), and the staff
API's hide and show (``/api/v1/requests/{id}/photos/{photo_id}/hide|show``)."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path
from fastapi.responses import Response
from pydantic import BaseModel, Field
from sqlalchemy import select

from qala.components.accounts.deps import CallerFirstRoute, ContextDep, OperatorUser, OptionalUser
from qala.components.accounts.models import User
from qala.components.requests311.access import scoped_requests
from qala.components.requests311.jurisdictions import catalogue_cache
from qala.components.requests311.models import Request
from qala.components.requests311.photo_files import NAME_PATTERN
from qala.components.requests311.photos import (
    MAX_HIDE_REASON,
    MEDIA_PATH,
    PhotoView,
    photo_store,
    set_photo_hidden,
    stored_photo,
)
from qala.core.errors import NotFoundError, PermissionDeniedError, UnavailableError
from qala.runtime import Context

MAX_ID = 2**31 - 1
PhotoName = Annotated[str, Path(max_length=60, description="The photo's file name.")]
PHOTO_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Disposition": "inline",
    # Even opened on its own, the file can run nothing and load nothing.
    "Content-Security-Policy": "default-src 'none'; sandbox",
    "Cross-Origin-Resource-Policy": "same-site",
}

router = APIRouter(route_class=CallerFirstRoute, tags=["requests311"])


class HideBody(BaseModel):
    reason: str = Field(
        ...,
        min_length=1,
        max_length=MAX_HIDE_REASON,
        description="Why (personal data, faces, number plates…); kept in the audit trail.",
    )


def _city_code(known: dict[str, Any], jurisdiction_id: int | None) -> str | None:
    return next((j.code for j in known.values() if j.id == jurisdiction_id), None)


def _staff_sees(context: Context, user: User | None, jurisdiction_id: int, request_id: int) -> bool:
    """Whether ``user`` works on the request (its city and department)."""
    if user is None or user.role not in ("operator", "administrator"):
        return False
    known = catalogue_cache(context).get()
    code = _city_code(known, jurisdiction_id)
    try:
        with context.database.session() as session:
            scoped_requests(session, known, user, code, now=context.clock()).load(request_id)
    except (NotFoundError, PermissionDeniedError):
        return False
    return True


def photo_file(context: Context, user: User | None, name: str) -> tuple[bytes, str, bool]:
    """The bytes and type of the photo file ``name`` for ``user``, and whether it is hidden
    (then only its staff see it); NotFoundError otherwise."""
    if not NAME_PATTERN.match(name):
        raise NotFoundError("no such photo")
    with context.database.session() as session:
        found = stored_photo(session, name)
    if found.hidden and not _staff_sees(context, user, found.jurisdiction_id, found.request_id):
        raise NotFoundError("no such photo")
    return photo_store(context).get(name), found.content_type, found.hidden


@router.get(f"{MEDIA_PATH}/{{name}}", summary="A resident's photo (or its thumbnail)")
async def photo(name: PhotoName, context: ContextDep, user: OptionalUser) -> Response:
    try:
        data, content_type, hidden = await asyncio.to_thread(photo_file, context, user, name)
    except NotFoundError:
        raise HTTPException(404, "no such photo") from None
    except UnavailableError:  # the storage failed: try again, keep nothing cached
        headers = {"Retry-After": "30", "Cache-Control": "no-store"}
        detail = "the photo storage is unavailable; try again shortly"
        raise HTTPException(503, detail, headers=headers) from None
    headers = {
        **PHOTO_HEADERS,
        # A hidden photo must not stay in a shared cache; a public one may be kept a while.
        "Cache-Control": "private, no-store" if hidden else "public, max-age=300",
    }
    return Response(data, media_type=content_type, headers=headers)


def _set_hidden(
    context: Context,
    user: User,
    request_id: int,
    photo_id: int,
    reason: str,
    *,
    hidden: bool,
) -> PhotoView:
    with context.database.transaction() as session:
        known = catalogue_cache(context).get()
        owner = session.scalar(select(Request.jurisdiction_id).where(Request.id == request_id))
        if owner is None:
            raise HTTPException(404, f"no service request {request_id}")
        code = _city_code(known, owner)
        staff = scoped_requests(session, known, user, code, now=context.clock(), bus=context.bus)
        return set_photo_hidden(
            staff,
            request_id,
            photo_id,
            hidden=hidden,
            reason=reason,
            base_url=context.settings.public_base_url,
        )


RequestId = Annotated[int, Path(ge=1, le=MAX_ID, description="The request's id.")]
PhotoId = Annotated[int, Path(ge=1, le=MAX_ID, description="The photo's id.")]


@router.post(
    "/api/v1/requests/{request_id}/photos/{photo_id}/hide",
    summary="Hide a photo from the public, with a reason (audited)",
)
def hide(
    request_id: RequestId,
    photo_id: PhotoId,
    body: HideBody,
    user: OperatorUser,
    context: ContextDep,
) -> Any:
    return _set_hidden(context, user, request_id, photo_id, body.reason, hidden=True)


@router.post(
    "/api/v1/requests/{request_id}/photos/{photo_id}/show",
    summary="Show a hidden photo to the public again, with a reason (audited)",
)
def show(
    request_id: RequestId,
    photo_id: PhotoId,
    body: HideBody,
    user: OperatorUser,
    context: ContextDep,
) -> Any:
    return _set_hidden(context, user, request_id, photo_id, body.reason, hidden=False)
