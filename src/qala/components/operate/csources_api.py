"""The NGSI-LD context source routes at ``/ngsi-ld/v1``: ``csourceRegistrations`` (clauses 5.9,
5.10) and ``csourceSubscriptions`` (clause 5.11). Thin calls to ``csources``; the same rules as the
entity routes (``ngsi_api.NgsiRoute``): ProblemDetails, known parameters only, writes by staff
under their ``NGSILD-Tenant``; reads of registrations are open and take the tenant header.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from qala.components.operate import csources
from qala.components.operate.ngsi import NgsiError, check_entity_id, split_list
from qala.components.operate.ngsi_api import (
    MAX_OFFSET,
    PREFIX,
    PROBLEM_RESPONSES,
    EntityIdPath,
    NgsiRoute,
    QueryText,
    Running,
    Writer,
    count_header,
    created,
    read_body,
    respond,
)
from qala.components.operate.tenancy import TENANT_HEADER

router = APIRouter(
    prefix=PREFIX, tags=["ngsi-ld"], route_class=NgsiRoute, responses=PROBLEM_RESPONSES
)

Limit = Annotated[int, Query(ge=1, le=MAX_OFFSET)]
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET)]


def _tenant(request: Request) -> str | None:
    return request.headers.get(TENANT_HEADER)


def _page_links(request: Request, *, limit: int, offset: int, total: int) -> str:
    """``Link`` with the previous and next pages, the other query parameters kept."""
    kept = [(k, v) for k, v in request.query_params.multi_items() if k not in ("limit", "offset")]
    base = request.url.path + "?" + "".join(f"{k}={v}&" for k, v in kept)
    links = []
    if offset > 0:
        links.append(
            f'<{base}limit={limit}&offset={max(0, offset - limit)}>;rel="prev";'
            'type="application/ld+json"'
        )
    if offset + limit < total:
        links.append(
            f'<{base}limit={limit}&offset={offset + limit}>;rel="next";type="application/ld+json"'
        )
    return ",".join(links)


def _paged(
    request: Request,
    items: list[dict[str, Any]],
    *,
    limit: int,
    offset: int,
    total: int,
    count: bool,
) -> Response:
    response = respond(request, items, headers=count_header(total, count))
    links = _page_links(request, limit=limit, offset=offset, total=total)
    if links:  # the pages only (clause 6.3.15 as the suites read it), not the @context too
        response.headers["Link"] = links
    return response


# ---- registrations ------------------------------------------------------------------------------


@router.post("/csourceRegistrations", status_code=201)
async def register(request: Request, writer: Writer, context: Running) -> Response:
    body, link = await read_body(request)
    if (
        link is None
        and request.headers.get("link")
        and "ld+json" in (request.headers.get("content-type") or "")
    ):
        raise NgsiError(
            "BadRequestData", "an application/ld+json body gives @context in the body, not a Link"
        )
    registration_id = await run_in_threadpool(csources.register, context, body, link, writer.tenant)
    return created(f"{PREFIX}/csourceRegistrations/{registration_id}")


@router.get("/csourceRegistrations")
def discover(
    request: Request,
    context: Running,
    id: QueryText = None,
    type: QueryText = None,
    idPattern: QueryText = None,
    attrs: QueryText = None,
    q: QueryText = None,
    csf: QueryText = None,
    georel: QueryText = None,
    geometry: QueryText = None,
    coordinates: QueryText = None,
    geoproperty: QueryText = None,
    timerel: QueryText = None,
    timeAt: QueryText = None,
    endTimeAt: QueryText = None,
    timeproperty: QueryText = None,
    limit: Limit = 20,
    offset: Offset = 0,
    count: bool = False,
    options: QueryText = None,
) -> Response:
    query = csources.parse_discovery(
        ids=split_list(id),
        types=split_list(type),
        id_pattern=idPattern,
        attrs=split_list(attrs),
        q=q,
        csf=csf,
        geo=(georel, geometry, coordinates, geoproperty),
        time=(timerel, timeAt, endTimeAt, timeproperty),
    )
    system = "sysAttrs" in split_list(options)
    page, total = csources.discover(
        context, query, limit=limit, offset=offset, tenant=_tenant(request), system=system
    )
    return _paged(request, page, limit=limit, offset=offset, total=total, count=count)


@router.get("/csourceRegistrations/{registration_id}")
def registration(
    request: Request,
    registration_id: EntityIdPath,
    context: Running,
    options: QueryText = None,
) -> Response:
    check_entity_id(registration_id)
    system = "sysAttrs" in split_list(options)
    content, stored_context = csources.registration(
        context, registration_id, tenant=_tenant(request), system=system
    )
    return respond(request, content, context=stored_context)


@router.patch("/csourceRegistrations/{registration_id}", status_code=204)
async def update_registration(
    request: Request, registration_id: EntityIdPath, writer: Writer, context: Running
) -> Response:
    check_entity_id(registration_id)
    body, _link = await read_body(request)
    await run_in_threadpool(csources.update, context, registration_id, body, writer.tenant)
    return Response(status_code=204)


@router.delete("/csourceRegistrations/{registration_id}", status_code=204)
def delete_registration(
    registration_id: EntityIdPath, writer: Writer, context: Running
) -> Response:
    check_entity_id(registration_id)
    csources.unregister(context, registration_id, writer.tenant)
    return Response(status_code=204)


# ---- subscriptions to registrations -------------------------------------------------------------


@router.post("/csourceSubscriptions", status_code=201)
async def subscribe(request: Request, writer: Writer, context: Running) -> Response:
    body, link = await read_body(request)
    if link is not None and isinstance(body, dict):
        body = {**body, "@context": link}
    subscription_id = await run_in_threadpool(csources.subscribe, context, body, writer.tenant)
    return created(f"{PREFIX}/csourceSubscriptions/{subscription_id}")


@router.get("/csourceSubscriptions")
def subscriptions(
    request: Request,
    writer: Writer,
    context: Running,
    limit: Limit = 20,
    offset: Offset = 0,
    count: bool = False,
) -> Response:
    page, total = csources.subscriptions(context, limit=limit, offset=offset, tenant=writer.tenant)
    return _paged(request, page, limit=limit, offset=offset, total=total, count=count)


@router.get("/csourceSubscriptions/{subscription_id}")
def subscription(
    request: Request, subscription_id: EntityIdPath, writer: Writer, context: Running
) -> Response:
    return respond(request, csources.subscription(context, subscription_id, writer.tenant))


@router.patch("/csourceSubscriptions/{subscription_id}", status_code=204)
async def update_subscription(
    request: Request, subscription_id: EntityIdPath, writer: Writer, context: Running
) -> Response:
    body, _link = await read_body(request)
    await run_in_threadpool(
        csources.change_subscription, context, subscription_id, body, writer.tenant
    )
    return Response(status_code=204)


@router.delete("/csourceSubscriptions/{subscription_id}", status_code=204)
def unsubscribe(subscription_id: EntityIdPath, writer: Writer, context: Running) -> Response:
    csources.unsubscribe(context, subscription_id, writer.tenant)
    return Response(status_code=204)
