"""The NGSI-LD API subset mounted at ``/ngsi-ld/v1/`` (ETSI GS CIM 009).

Reads are open (city context data); writes need an operator or administrator (``Authorization:
Bearer <token>``). Errors are ProblemDetails ``{type, title, detail}`` with the NGSI-LD error URIs.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from qala.components.accounts.deps import (
    DATA_SET_BODY,
    CallerFirstRoute,
    ContextDep,
    context_of,
    require_roles,
)
from qala.components.accounts.models import User
from qala.components.operate import broker, csources, jsonld
from qala.components.operate.broker import BatchOutcome, Representation
from qala.components.operate.entities import EntityQuery
from qala.components.operate.linked import parse_join
from qala.components.operate.ngsi import (
    CORE_CONTEXT,
    NgsiError,
    Projection,
    canonical_q,
    check_attribute_name,
    check_entity_id,
    check_ids,
    names_of,
    parse_entity,
    parse_fragment,
    parse_geo_query,
    parse_options,
    parse_q,
    parse_type_selection,
    split_list,
)
from qala.components.operate.ordering import parse_order_by
from qala.components.operate.temporal import (
    Aggregation,
    HistoryWindow,
    TemporalAnswer,
    check_time_property,
    time_window,
)
from qala.components.operate.tenancy import (
    TENANT_HEADER,
    TenantWriter,
    tenant_places,
    tenant_writer,
)
from qala.core.errors import PermissionDeniedError, QalaError
from qala.core.jsontext import load_json
from qala.runtime import Context

PREFIX = "/ngsi-ld/v1"
LD_JSON = "application/ld+json"
CONTEXT_REL = "http://www.w3.org/ns/json-ld#context"


StaffWriter = Annotated[User, Depends(require_roles("operator", "administrator"))]


async def scoped_writer(request: Request, user: StaffWriter) -> TenantWriter:
    """The writer under the ``NGSILD-Tenant`` the request names; an entity named in the path
    must be of that tenant's city."""
    context = context_of(request)
    with context.database.session() as session:
        writer = tenant_writer(session, user, request.headers.get(TENANT_HEADER))
        entity_id = request.path_params.get("entity_id")
        if isinstance(entity_id, str):
            writer.require_stored(session, entity_id)
    return writer


Writer = Annotated[TenantWriter, Depends(scoped_writer)]
"""Writes need an operator or administrator, acting within their city's tenant."""


def read_tenant(request: Request) -> frozenset[str] | None:
    """The place codes a read under the request's ``NGSILD-Tenant`` sees (None: no header,
    every city; an unknown tenant is answered 404 NonexistentTenant)."""
    if not (request.headers.get(TENANT_HEADER) or "").strip():
        return None  # the national view needs no look-up
    with context_of(request).database.session() as session:
        return tenant_places(session, request.headers.get(TENANT_HEADER))


Tenant = Annotated[frozenset[str] | None, Depends(read_tenant)]
"""Reads see the entities of the tenant's city and its districts, or all without a tenant."""


async def known_tenant_writer(writer: Writer, _places: Tenant) -> TenantWriter:
    """The writer, under a tenant that exists (an unknown one is 404 NonexistentTenant)."""
    return writer


TenantReader = Annotated[TenantWriter, Depends(known_tenant_writer)]
"""Subscriptions are read and changed by staff within the tenant they were made under."""


def _guard(context: Context, check: Callable[[Session], None]) -> None:
    with context.database.session() as session:
        check(session)


Running = ContextDep

# Bounds of what a request names (the OpenAPI states them): ids are URIs, queries a few KiB.
EntityIdPath = Annotated[str, Path(max_length=2048)]
AttrPath = Annotated[str, Path(max_length=512)]
QueryText = Annotated[str | None, Query(max_length=8000)]
MAX_OFFSET = 10_000_000
"""Beyond any stored row count; larger numbers overflowed the database's integers (500)."""
"""The platform the app runs (a coroutine dependency: no thread-pool hop per sensor write)."""


def problem_response(error: NgsiError) -> JSONResponse:
    return JSONResponse(error.problem(), status_code=error.status)


# Parameters of the specification a route may be sent without using them (one tenant; the
# routes that honour lang, scopeQ, join, orderBy and distributed operations declare them — the
# rest listed in docs/ngsi-ld-conformance.md); any other unknown parameter is the client's
# mistake, answered 400 InvalidRequest (clause 6.3.20).
TOLERATED_PARAMETERS = frozenset(
    {
        "local",
        "lang",
        "scopeQ",
        "csf",
        "details",
        "join",
        "joinLevel",
        "containedBy",
        "entityMap",
        "orderBy",
        "collation",
    }
)
GEO_JSON = "application/geo+json"
FORWARDED_HEADERS = frozenset({"accept", "link", "ngsild-tenant"})
"""Headers a distributed query passes on to the registered sources."""
MEDIA_CHOICES = ("application/json", LD_JSON, GEO_JSON)
GEO_ROUTES = frozenset({f"{PREFIX}/entities", f"{PREFIX}/entities/{{entity_id}}"})
"""Only entities are answered as GeoJSON (clause 6.3.4); elsewhere geo+json is 406."""


def negotiate(accept: str | None) -> str | None:
    """The answer's media type for an ``Accept`` header (None: nothing acceptable → 406).

    The highest ``q`` wins, then the more specific range, then the one listed first; within
    one range plain JSON is chosen (clause 6.3.4: ``*/*`` means application/json).
    """
    if not accept or not accept.strip():
        return "application/json"
    ranked: list[tuple[float, int, int, int, str]] = []
    for position, part in enumerate(accept.split(",")):
        media, *params = (piece.strip() for piece in part.split(";"))
        media = media.lower()
        quality = 1.0
        for param in params:
            key, _, number = param.partition("=")
            if key.strip() == "q":
                try:
                    quality = float(number)
                except ValueError:
                    quality = 0.0
        if quality <= 0:
            continue
        for preference, choice in enumerate(MEDIA_CHOICES):
            if media == choice:
                specificity = 2
            elif media == "application/*" and choice != GEO_JSON:
                specificity = 1
            elif media == "*/*" and choice != GEO_JSON:
                specificity = 0
            else:
                continue
            ranked.append((quality, specificity, -position, -preference, choice))
    return max(ranked)[4] if ranked else None


class NgsiRoute(CallerFirstRoute):
    """Answers every failure of an NGSI-LD route as ProblemDetails, after the checks every
    operation shares: an acceptable ``Accept`` (406), only known query parameters (400
    InvalidRequest), an entity id in the path that is a URI (400 BadRequestData)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        known = _query_names(self.dependant)
        known |= TOLERATED_PARAMETERS
        geo = self.path in GEO_ROUTES

        async def route(request: Request) -> Response:
            try:
                _check_common(request, known, geo=geo)
                return await handler(request)
            except NgsiError as exc:
                return problem_response(exc)
            except RequestValidationError as exc:
                details = "; ".join(
                    f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}"
                    for e in exc.errors()
                )
                return problem_response(NgsiError("BadRequestData", details))
            except HTTPException as exc:
                kind = {401: "Unauthorized", 403: "Forbidden", 404: "ResourceNotFound"}.get(
                    exc.status_code, "BadRequestData"
                )
                response = problem_response(NgsiError(kind, str(exc.detail)))
                response.status_code = exc.status_code
                if exc.headers:
                    response.headers.update(exc.headers)
                return response
            except PermissionDeniedError as exc:  # another city's tenant or entity
                response = problem_response(NgsiError("Forbidden", str(exc)))
                response.status_code = 403
                return response
            except QalaError as exc:
                return problem_response(NgsiError("BadRequestData", str(exc)))

        return route


def _query_names(dependant: Dependant) -> set[str]:
    names = {p.alias for p in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names


def _check_common(request: Request, known: set[str], *, geo: bool) -> None:
    jsonld.configure_from(context_of(request).settings)
    media = negotiate(request.headers.get("accept"))
    if request.method == "GET" and (media is None or (media == GEO_JSON and not geo)):
        raise NgsiError(
            "NotAcceptable",
            f"Accept {request.headers.get('accept')!r}: this API answers application/json or "
            f"{LD_JSON}",
        )
    unknown = sorted(set(request.query_params) - known)
    if unknown:
        raise NgsiError(
            "InvalidRequest",
            f"unknown query parameter(s) {', '.join(unknown)}; this operation takes "
            f"{', '.join(sorted(known - TOLERATED_PARAMETERS)) or 'none'}",
        )
    for key in ("entity_id", "subscription_id"):
        if key in request.path_params:
            check_entity_id(request.path_params[key])


def _reader(request: Request) -> jsonld.Names:
    """The names of the request's ``@context`` (its Link header; none: the core context)."""
    return names_of(_link_context(request))


def _answer_context(link: str | None, written: Any = None) -> Any:
    """The @context of an entity in an answer: the reader's (its Link context, else the core
    context), in the form the entity was written with when that names the same context (a URL
    or a one-element list), else as a one-element list for a context that holds the core
    context too and as a URL for one that does not."""
    if link:
        if _as_list(written) == [link]:
            return written
        return [link] if jsonld.includes_core(link) else link
    return written if jsonld.is_core_context(written) else CORE_CONTEXT


def _as_list(context: Any) -> list[Any]:
    return context if isinstance(context, list) else [context]


def _settle_contexts(request: Request, content: Any) -> Any:
    """Rendered entities that carry their written @context (``Representation.written_context``)
    with the @context to answer instead (see ``_answer_context``)."""
    link = _link_context(request)
    for item in content if isinstance(content, list) else [content]:
        if isinstance(item, dict):
            item["@context"] = _answer_context(link, item.pop("@context", None))
    return content


def _compact(content: Any, names: jsonld.Names) -> Any:
    """Rendered entities (one or a list) named as the reader's context names them."""
    if isinstance(content, list):
        return [jsonld.compact_entity(e, names) if isinstance(e, dict) else e for e in content]
    return jsonld.compact_entity(content, names) if isinstance(content, dict) else content


def _link_context(request: Request) -> Any:
    link = request.headers.get("link")
    if not link:
        return None
    match = re.search(r"<([^>]+)>\s*;[^,]*rel=\"?" + re.escape(CONTEXT_REL), link)
    return match.group(1) if match else None


def _content_type(request: Request) -> str:
    return request.headers.get("content-type", "application/json").split(";")[0].strip().lower()


async def _body(request: Request, *, batch: bool = False) -> tuple[Any, Any]:
    """Decoded JSON body and the @context it brings (in the body or a Link header).

    ``batch``: the body is an array of entities whose own @context is checked one by one
    (``_batch_body``), so that one wrong entity fails alone."""
    content_type = _content_type(request)
    if content_type not in ("application/json", LD_JSON, "application/merge-patch+json"):
        raise NgsiError(
            "UnsupportedMediaType",
            f"Content-Type {content_type!r}; use application/json or {LD_JSON}",
        )
    raw = await request.body()
    try:
        body = load_json(raw) if raw else None
    except ValueError as exc:
        raise NgsiError("InvalidRequest", f"the body is not valid JSON: {exc}") from None
    if content_type == LD_JSON:
        if _link_context(request) is not None:  # clause 6.3.5: one @context, not two
            raise NgsiError(
                "BadRequestData",
                "an application/ld+json body carries its @context; drop the JSON-LD Link header",
            )
        if batch:
            return body, None
        items = body if isinstance(body, list) else [body]
        for item in items:
            if isinstance(item, dict) and "@context" not in item:
                raise NgsiError("BadRequestData", _NO_CONTEXT_IN_LD)
        return body, None
    if isinstance(body, dict) and "@context" in body:
        raise NgsiError("BadRequestData", _CONTEXT_IN_JSON)
    return body, _link_context(request)


_CONTEXT_IN_JSON = "application/json bodies give @context in a Link header, not in the body"
_NO_CONTEXT_IN_LD = "an application/ld+json body must carry @context"


def created(location: str) -> Response:
    """201 Created naming the new resource. Starlette writes header names in lower case, which
    HTTP allows (RFC 9110 clause 5.1: names are case-insensitive); ``Location`` goes out in its
    registered spelling for clients that look it up case-sensitively, as ETSI's suite does
    (``'Location' in ${response.headers}``)."""
    response = Response(status_code=201)
    response.raw_headers.append((b"Location", location.encode("latin-1")))
    return response


def _wants_ld(request: Request) -> bool:
    return negotiate(request.headers.get("accept")) == LD_JSON


def _feature(entity: dict[str, Any], geometry_property: str) -> dict[str, Any]:
    """An entity as a GeoJSON Feature (clause 4.5.16): its geometry from ``geometry_property``."""
    attribute = entity.get(geometry_property)
    geometry = (
        attribute.get("value")
        if isinstance(attribute, dict) and "value" in attribute
        else attribute
    )
    properties = {k: v for k, v in entity.items() if k not in ("id", "@context")}
    return {
        "id": entity.get("id"),
        "type": "Feature",
        "geometry": geometry if isinstance(geometry, dict) else None,
        "properties": properties,
    }


def _respond_geo(request: Request, content: Any, geometry_property: str, context: Any) -> Response:
    if isinstance(content, list):
        body: dict[str, Any] = {
            "type": "FeatureCollection",
            "features": [_feature(e, geometry_property) for e in content],
        }
    else:
        body = _feature(content, geometry_property)
    body["@context"] = context or _link_context(request) or CORE_CONTEXT
    return Response(json.dumps(body, ensure_ascii=False), media_type=GEO_JSON)


def _respond(
    request: Request,
    content: Any,
    *,
    status: int = 200,
    context: Any = None,
    headers: dict[str, str] | None = None,
) -> Response:
    headers = dict(headers or {})
    if negotiate(request.headers.get("accept")) == GEO_JSON:
        geometry_property = request.query_params.get("geometryProperty") or "location"
        response = _respond_geo(request, content, geometry_property, context)
        response.headers.update(headers)
        return response
    context = context or _answer_context(_link_context(request))
    if _wants_ld(request):
        if isinstance(content, list):
            for item in content:
                item.setdefault("@context", context)
        elif isinstance(content, dict):
            content.setdefault("@context", context)
        media = LD_JSON
    else:
        for item in content if isinstance(content, list) else [content]:
            if isinstance(item, dict):
                item.pop("@context", None)
        named = context[0] if isinstance(context, list) and len(context) == 1 else context
        if isinstance(named, str):
            # Beside, not instead of, the paging links a list may carry.
            link = f'<{named}>; rel="{CONTEXT_REL}"; type="application/ld+json"'
            headers["Link"] = f"{headers['Link']},{link}" if headers.get("Link") else link
        media = "application/json"
    return Response(
        json.dumps(content, ensure_ascii=False),
        status_code=status,
        media_type=media,
        headers=headers,
    )


async def _batch_body(request: Request) -> tuple[list[Any], Any, list[dict[str, Any]]]:
    """The entities of a batch body, its Link @context, and the errors of the entities refused
    for their @context (clause 6.3.5, each alone: in a body of application/json type an entity
    with @context, in application/ld+json one without)."""
    body, link = await _body(request, batch=True)
    if not isinstance(body, list) or not body:
        raise NgsiError("BadRequestData", "a batch operation takes a non-empty JSON array")
    ld = _content_type(request) == LD_JSON
    items, refused = [], []
    for item in body:
        if isinstance(item, dict) and ("@context" in item) != ld:
            error = NgsiError("BadRequestData", _NO_CONTEXT_IN_LD if ld else _CONTEXT_IN_JSON)
            refused.append({"entityId": item.get("id"), "error": error.problem()})
        else:
            items.append(item)
    return items, link, refused


def _batch_answer(
    outcome: BatchOutcome, refused: list[dict[str, Any]], *, created: list[str] | None = None
) -> Response:
    """207 with the errors when any item failed or was ``refused`` before it was tried; else
    201 with ``created`` if given, else 204."""
    outcome.errors[:0] = refused
    if outcome.errors:
        return JSONResponse({"success": outcome.success, "errors": outcome.errors}, status_code=207)
    if created is not None:
        return JSONResponse(created, status_code=201)
    return Response(status_code=204)


def _partial_answer(
    done: list[str], skipped: list[str], reason: str, names: jsonld.Names
) -> Response:
    """204, or 207 naming (by their full IRIs) the attributes not written and why."""
    if not skipped:
        return Response(status_code=204)
    expand = names.core.expand
    not_updated = [{"attributeName": expand(name), "reason": reason} for name in skipped]
    return JSONResponse(
        {"updated": [expand(name) for name in done], "notUpdated": not_updated}, status_code=207
    )


def page_links(request: Request, *, limit: int, offset: int, total: int) -> str:
    """``Link`` header with the previous and next pages (clause 6.3.15), typed as the
    csource lists' are (``type="application/ld+json"``)."""
    links = []
    path = request.url.path
    if offset > 0 and limit > 0:
        links.append(
            f'<{path}?limit={limit}&offset={max(0, offset - limit)}>;rel="prev";'
            'type="application/ld+json"'
        )
    if limit > 0 and offset + limit < total:
        links.append(
            f'<{path}?limit={limit}&offset={offset + limit}>;rel="next";type="application/ld+json"'
        )
    return ",".join(links)


def _count_header(total: int, count: bool) -> dict[str, str] | None:
    return {"NGSILD-Results-Count": str(total)} if count else None


# NGSI-LD answers refusals as ProblemDetails (clause 5.5.2), 422 included (OperationNotSupported);
# published in place of FastAPI's default 422 document, which these routes never send.
PROBLEM_DETAILS = {
    "type": "object",
    "required": ["type", "title"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "detail": {"type": "string"},
    },
}
PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    422: {
        "description": "NGSI-LD ProblemDetails (e.g. OperationNotSupported)",
        "content": {"application/json": {"schema": PROBLEM_DETAILS}},
    }
}

# Shared with the sibling NGSI-LD routers (csources_api).
read_body = _body
respond = _respond
count_header = _count_header


router = APIRouter(
    prefix=PREFIX, tags=["ngsi-ld"], route_class=NgsiRoute, responses=PROBLEM_RESPONSES
)

# ---- entities -----------------------------------------------------------------------------------


@router.post("/entities", status_code=201)
async def create(request: Request, writer: Writer, context: Running) -> Response:
    body, link = await _body(request)
    if not isinstance(body, dict):
        raise NgsiError("InvalidRequest", "an entity is a JSON object")
    data = parse_entity(body, context=link)
    writer.require_attrs(data.id, data.attrs)
    await run_in_threadpool(broker.create, context, data)
    return created(f"{PREFIX}/entities/{data.id}")


@router.get("/entities")
def query(
    request: Request,
    context: Running,
    places: Tenant,
    type: QueryText = None,
    id: QueryText = None,
    idPattern: QueryText = None,
    q: QueryText = None,
    attrs: QueryText = None,
    pick: QueryText = None,
    omit: QueryText = None,
    georel: QueryText = None,
    geometry: QueryText = None,
    coordinates: QueryText = None,
    geoproperty: QueryText = None,
    limit: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 20,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    count: bool = False,
    options: QueryText = None,
    format: QueryText = None,
    concept: QueryText = None,
    local: bool = False,
    geometryProperty: QueryText = None,
    join: QueryText = None,
    joinLevel: QueryText = None,
    scopeQ: QueryText = None,
    lang: QueryText = None,
    orderBy: QueryText = None,
    datasetId: QueryText = None,
) -> Response:
    broker.check_limit(limit)
    names = _reader(request)
    type_groups = tuple(
        tuple(names.canonical(name) for name in group) for group in parse_type_selection(type)
    )
    spec = EntityQuery(
        types=tuple(dict.fromkeys(name for group in type_groups for name in group)),
        type_groups=type_groups,
        ids=check_ids(split_list(id)),
        id_pattern=broker.check_id_pattern(idPattern),
        q=canonical_q(parse_q(q), names) if q else None,
        attrs=names.canonical_list(split_list(attrs)),
        geo=parse_geo_query(
            georel, geometry, coordinates, names.canonical(geoproperty) if geoproperty else None
        ),
        concept=concept,
        scope_q=broker.check_scope_query(scopeQ),
        order_by=parse_order_by(orderBy, names),
        places=places,
    )
    broker.require_filter(spec, local=local)
    projection = Projection.of(attrs, pick, omit, names)
    shown = Representation.of(parse_options(options, format), projection, lang, datasetId)
    shown = dataclasses.replace(shown, written_context=True, reader=names)
    content, total = broker.query(
        context, spec, limit=limit, offset=offset, shown=shown, join=parse_join(join, joinLevel)
    )
    content = _compact(content, names)
    headers = None
    if not local:  # distributed query (clause 5.7.2): registered sources asked as well
        content, total, headers = _federated(request, context, content, total, [spec], limit)
    content = _settle_contexts(request, content)
    return _respond(
        request, content, headers={**(headers or {}), **(_count_header(total, count) or {})}
    )


def _forwarded_request(request: Request) -> tuple[list[tuple[str, str]], dict[str, str]]:
    """The query and the headers a registered source is asked with."""
    headers = {k: v for k, v in request.headers.items() if k.lower() in FORWARDED_HEADERS}
    return list(request.query_params.multi_items()), headers


def _federated(
    request: Request,
    context: Context,
    content: list[dict[str, Any]],
    total: int,
    specs: list[EntityQuery],
    limit: int,
    body: Any = None,
) -> tuple[list[dict[str, Any]], int, dict[str, str] | None]:
    params, headers = _forwarded_request(request)
    content, total, warnings = csources.federated_query(
        context,
        content,
        total,
        params=params,
        headers=headers,
        types=[t for spec in specs for t in spec.types],
        attrs=[a for spec in specs for a in spec.attrs],
        limit=limit,
        tenant=request.headers.get(TENANT_HEADER),
        body=body,
    )
    return content, total, ({"NGSILD-Warning": ", ".join(warnings)} if warnings else None)


def _federated_read(
    request: Request, context: Context, entity_id: str, local: dict[str, Any] | NgsiError
) -> tuple[dict[str, Any], dict[str, str] | None]:
    """The entity completed by the registered sources; ``local`` is what this broker found
    (or why it found nothing: raised when no source has the entity either)."""
    if request.query_params.get("local") == "true":  # asked by another broker: no forwarding
        if isinstance(local, NgsiError):
            raise local
        return local, None
    params, headers = _forwarded_request(request)
    found, warnings = csources.federated_read(
        context,
        entity_id,
        None if isinstance(local, NgsiError) else local,
        params=params,
        headers=headers,
        tenant=request.headers.get(TENANT_HEADER),
    )
    if found is None:
        raise local if isinstance(local, NgsiError) else NgsiError("ResourceNotFound", entity_id)
    return found, ({"NGSILD-Warning": ", ".join(warnings)} if warnings else None)


@router.get("/entities/{entity_id}")
def read(
    request: Request,
    entity_id: EntityIdPath,
    context: Running,
    places: Tenant,
    attrs: QueryText = None,
    pick: QueryText = None,
    omit: QueryText = None,
    options: QueryText = None,
    format: QueryText = None,
    geometryProperty: QueryText = None,
    join: QueryText = None,
    joinLevel: QueryText = None,
    lang: QueryText = None,
    datasetId: QueryText = None,
) -> Response:
    names = _reader(request)
    projection = Projection.of(attrs, pick, omit, names)
    shown = Representation.of(parse_options(options, format), projection, lang, datasetId)
    shown = dataclasses.replace(shown, reader=names)
    content: dict[str, Any] | list[dict[str, Any]] | NgsiError
    written = None
    try:
        joined = parse_join(join, joinLevel)
        local, written = broker.read(context, entity_id, shown, joined, places)
        content = _compact(local, names)
    except NgsiError as exc:  # perhaps held by a registered source only
        if exc.kind != "ResourceNotFound":
            raise
        content = exc
    if isinstance(content, list):  # join=flat: the entity and those it links to, held here
        return _respond(request, content, context=_answer_context(_link_context(request), written))
    found, headers = _federated_read(request, context, entity_id, content)
    answer_context = _answer_context(_link_context(request), written)
    return _respond(request, found, context=answer_context, headers=headers)


@router.delete("/entities/{entity_id}", status_code=204)
def remove(entity_id: EntityIdPath, _user: Writer, context: Running) -> Response:
    broker.delete(context, entity_id)
    return Response(status_code=204)


@router.put("/entities/{entity_id}", status_code=204)
async def replace(
    request: Request, entity_id: EntityIdPath, writer: Writer, context: Running
) -> Response:
    body, link = await _body(request)
    data = parse_entity(body, context=link, require_id=False, entity_id=entity_id)
    writer.require_attrs(entity_id, data.attrs)
    data.id = entity_id
    await run_in_threadpool(broker.replace, context, data)
    return Response(status_code=204)


@router.patch("/entities/{entity_id}", status_code=204)
async def merge(
    request: Request, entity_id: EntityIdPath, writer: Writer, context: Running
) -> Response:
    body, link = await _body(request)
    if isinstance(body, dict):
        writer.require_fragment(entity_id, body)
    await run_in_threadpool(broker.merge_entity, context, entity_id, body, link)
    return Response(status_code=204)


@router.delete("/entities", status_code=204)
def purge(
    request: Request,
    context: Running,
    writer: Writer,
    type: QueryText = None,
    id: QueryText = None,
    idPattern: QueryText = None,
    q: QueryText = None,
) -> Response:
    names = _reader(request)
    spec = EntityQuery(
        types=names.canonical_list(split_list(type)),
        ids=check_ids(split_list(id)),
        id_pattern=broker.check_id_pattern(idPattern),
        q=canonical_q(parse_q(q), names) if q else None,
    )
    broker.require_filter(spec, local=False)
    if writer.places is not None:  # a purge selects across cities: national writers only
        raise PermissionDeniedError("purging entities needs an account of the national level")
    broker.purge(context, spec)
    return Response(status_code=204)


@router.patch("/entities/{entity_id}/attrs")
async def update_attrs(
    request: Request, entity_id: EntityIdPath, writer: Writer, context: Running
) -> Response:
    body, link = await _body(request)
    attrs = parse_fragment(body, require_some=True, context=link)
    writer.require_fragment(entity_id, attrs)
    done, skipped = await run_in_threadpool(broker.merge, context, entity_id, attrs, update=True)
    return _partial_answer(
        done, skipped, "the entity has no such scope or instance", names_of(None)
    )


@router.post("/entities/{entity_id}/attrs")
async def append_attrs(
    request: Request,
    entity_id: EntityIdPath,
    writer: Writer,
    context: Running,
    options: QueryText = None,
) -> Response:
    body, link = await _body(request)
    attrs = parse_fragment(body, require_some=True, context=link)
    writer.require_fragment(entity_id, attrs)
    no_overwrite = "noOverwrite" in parse_options(options)
    done, skipped = await run_in_threadpool(
        broker.merge, context, entity_id, attrs, no_overwrite=no_overwrite
    )
    return _partial_answer(done, skipped, "attribute exists (noOverwrite)", names_of(None))


@router.patch("/entities/{entity_id}/attrs/{attr}", status_code=204)
async def update_attr(
    request: Request, entity_id: EntityIdPath, attr: AttrPath, writer: Writer, context: Running
) -> Response:
    body, link = await _body(request)
    names = names_of(body.get("@context", link) if isinstance(body, dict) else link)
    attr = names.canonical(attr)
    if isinstance(body, dict):
        body = {k: v for k, v in body.items() if k != "@context"}
        body = jsonld.canonical_entity({attr: body}, names)[attr]
    if not isinstance(body, dict) or not body:
        raise NgsiError("BadRequestData", f"the new value of `{attr}` must be a JSON object")
    writer.require_fragment(entity_id, {attr: body})
    await run_in_threadpool(broker.update_attribute, context, entity_id, attr, body)
    return Response(status_code=204)


@router.put("/entities/{entity_id}/attrs/{attr}", status_code=204)
async def replace_attr(
    request: Request, entity_id: EntityIdPath, attr: AttrPath, writer: Writer, context: Running
) -> Response:
    """Replace one attribute (clause 5.6.19): the instance with the body's ``datasetId`` (none:
    the default instance) becomes the body, members and sub-attributes not given are gone."""
    body, link = await _body(request)
    attr, attribute = broker.parse_replacement(attr, body, link)
    writer.require_fragment(entity_id, {attr: attribute})
    await run_in_threadpool(broker.replace_attribute, context, entity_id, attr, attribute)
    return Response(status_code=204)


@router.api_route("/entities", methods=["PATCH", "PUT"], include_in_schema=False)
@router.api_route("/entities//attrs", methods=["POST", "PATCH"], include_in_schema=False)
@router.api_route(
    "/entities//attrs/{attr}", methods=["PATCH", "PUT", "DELETE"], include_in_schema=False
)
def no_entity_id() -> Response:
    """An entity operation whose path names no entity (``/entities//attrs``; PATCH or PUT on
    the collection): the id is missing from the request, 400 as the specification's tests
    expect rather than 404/405."""
    raise NgsiError("BadRequestData", "the path names no entity id (/entities/{entityId}/…)")


@router.delete("/entities/{entity_id}/attrs/{attr}", status_code=204)
def delete_attr(
    request: Request,
    entity_id: EntityIdPath,
    attr: AttrPath,
    _user: Writer,
    context: Running,
    datasetId: QueryText = None,
    deleteAll: bool = False,
) -> Response:
    if datasetId is not None:
        check_entity_id(datasetId)
    attr = _reader(request).canonical(attr)
    broker.delete_attr(context, entity_id, attr, dataset_id=datasetId, delete_all=deleteAll)
    return Response(status_code=204)


@router.get("/types")
def types(request: Request, context: Running, places: Tenant, details: bool = False) -> Response:
    names = _reader(request)
    if details:
        return _respond(request, broker.type_details(context, names, places))
    return _respond(request, broker.type_list(context, names, places))


@router.get("/types/{entity_type:path}")
def entity_type(
    request: Request, entity_type: AttrPath, context: Running, places: Tenant
) -> Response:
    return _respond(request, broker.type_info(context, _reader(request), entity_type, places))


@router.get("/attributes")
def attributes(
    request: Request, context: Running, places: Tenant, details: bool = False
) -> Response:
    names = _reader(request)
    if details:
        return _respond(request, broker.attribute_details(context, names, places))
    return _respond(request, broker.attribute_list(context, names, places))


@router.get("/attributes/{attribute:path}")
def attribute(request: Request, attribute: AttrPath, context: Running, places: Tenant) -> Response:
    return _respond(request, broker.attribute_info(context, _reader(request), attribute, places))


# ---- batch operations ---------------------------------------------------------------------------


@router.post("/entityOperations/create", max_body_size=DATA_SET_BODY)
async def batch_create(request: Request, writer: Writer, context: Running) -> Response:
    items, link, refused = await _batch_body(request)
    _guard(context, lambda session: writer.require_batch(session, items, new=True))
    outcome = await run_in_threadpool(broker.create_each, context, items, link)
    return _batch_answer(outcome, refused, created=outcome.success)


@router.post("/entityOperations/upsert", max_body_size=DATA_SET_BODY)
async def batch_upsert(
    request: Request, writer: Writer, context: Running, options: QueryText = None
) -> Response:
    items, link, refused = await _batch_body(request)
    _guard(context, lambda session: writer.require_batch(session, items, new=True))
    replace_all = "replace" in parse_options(options)
    outcome = await run_in_threadpool(
        broker.upsert_each, context, items, link, replace_all=replace_all
    )
    return _batch_answer(outcome, refused, created=outcome.created or None)


@router.post("/entityOperations/update", max_body_size=DATA_SET_BODY)
async def batch_update(
    request: Request, writer: Writer, context: Running, options: QueryText = None
) -> Response:
    items, link, refused = await _batch_body(request)
    _guard(context, lambda session: writer.require_batch(session, items, new=False))
    no_overwrite = "noOverwrite" in parse_options(options)
    outcome = await run_in_threadpool(
        broker.update_each, context, items, link, no_overwrite=no_overwrite
    )
    return _batch_answer(outcome, refused)


@router.post("/entityOperations/merge", max_body_size=DATA_SET_BODY)
async def batch_merge(request: Request, writer: Writer, context: Running) -> Response:
    items, link, refused = await _batch_body(request)
    _guard(context, lambda session: writer.require_batch(session, items, new=False))
    outcome = await run_in_threadpool(broker.merge_each, context, items, link)
    return _batch_answer(outcome, refused)


@router.post("/entityOperations/query")
async def query_post(
    request: Request,
    context: Running,
    places: Tenant,
    limit: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 20,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    count: bool = False,
    options: QueryText = None,
    format: QueryText = None,
    lang: QueryText = None,
) -> Response:
    broker.check_limit(limit)
    body, _link = await _body(request)
    specs, projection, names = broker.parse_query_body(body, _link)
    body_lang = body.get("lang") if isinstance(body.get("lang"), str) else None
    shown = Representation.of(parse_options(options, format), projection, lang or body_lang)
    shown = dataclasses.replace(shown, written_context=True, reader=names)
    joined = parse_join(body.get("join"), body.get("joinLevel"))  # a Query body (checked above)
    content, total = await run_in_threadpool(
        broker.query_selectors,
        context,
        [dataclasses.replace(spec, places=places) for spec in specs],
        limit=limit,
        offset=offset,
        shown=shown,
        join=joined,
    )
    content = _compact(content, names)
    headers = None
    if not body.get("local"):  # distributed query: registered sources asked as well
        content, total, headers = await run_in_threadpool(
            _federated, request, context, content, total, specs, limit, body
        )
    content = _settle_contexts(request, content)
    return _respond(
        request, content, headers={**(headers or {}), **(_count_header(total, count) or {})}
    )


@router.post("/entityOperations/delete", max_body_size=DATA_SET_BODY)
async def batch_delete(request: Request, writer: Writer, context: Running) -> Response:
    items, _link, refused = await _batch_body(request)
    _guard(context, lambda session: writer.require_batch(session, items, new=False))
    outcome = await run_in_threadpool(broker.delete_each, context, items)
    return _batch_answer(outcome, refused)


# ---- temporal -----------------------------------------------------------------------------------


def _history_window(
    context: Context,
    attrs: str | None,
    timerel: str | None,
    time_at: str | None,
    end_time_at: str | None,
    last_n: int | None,
    options: set[str],
    *,
    timeproperty: str = "observedAt",
    dataset_id: str | None = None,
    aggr_methods: str | None = None,
    aggr_period: str | None = None,
) -> HistoryWindow:
    start, end = time_window(timerel, time_at, end_time_at)
    aggregated = "aggregatedValues" in options
    return HistoryWindow(
        attrs=split_list(attrs) or None,
        start_us=start,
        end_us=end,
        last_n=last_n,
        temporal_values="temporalValues" in options,
        time_property=check_time_property(timeproperty),
        dataset_ids=split_list(dataset_id) or None,
        aggregation=Aggregation.parse(aggr_methods, aggr_period) if aggregated else None,
        sys_attrs="sysAttrs" in options,
        instance_limit=context.settings.operate_temporal_instances,
    )


def _temporal_headers(answer: TemporalAnswer, extra: dict[str, str] | None) -> dict[str, str]:
    headers = dict(extra or {})
    if answer.content_range:
        headers["Content-Range"] = answer.content_range
    return headers


@router.post("/temporal/entities")
async def temporal_create(request: Request, writer: Writer, context: Running) -> Response:
    body, link = await _body(request)
    if isinstance(body, dict):
        _guard(context, lambda session: writer.require_batch(session, [body], new=True))
    is_new = await run_in_threadpool(broker.temporal_upsert, context, body, link)
    if not is_new:
        return Response(status_code=204)
    return created(f"{PREFIX}/temporal/entities/{body['id']}")


@router.post("/temporal/entities/{entity_id}/attrs", status_code=204)
async def temporal_append(
    request: Request, entity_id: EntityIdPath, _user: Writer, context: Running
) -> Response:
    _guard(context, lambda session: broker.require_entity(session, entity_id))  # 404 first
    body, link = await _body(request)
    await run_in_threadpool(broker.temporal_append, context, entity_id, body, link)
    return Response(status_code=204)


@router.delete("/temporal/entities/{entity_id}/attrs/{attr}", status_code=204)
def temporal_delete_attr(
    request: Request,
    entity_id: EntityIdPath,
    attr: AttrPath,
    _user: Writer,
    context: Running,
    datasetId: QueryText = None,
    deleteAll: bool = False,
) -> Response:
    check_attribute_name(attr)
    if datasetId is not None:
        check_entity_id(datasetId)
    broker.temporal_delete_attr(
        context,
        entity_id,
        _reader(request).canonical(attr),
        dataset_id=datasetId,
        delete_all=deleteAll,
    )
    return Response(status_code=204)


@router.delete("/temporal/entities/{entity_id}/attrs/{attr}/{instance_id}", status_code=204)
def temporal_delete_instance(
    request: Request,
    entity_id: EntityIdPath,
    attr: AttrPath,
    instance_id: EntityIdPath,
    _user: Writer,
    context: Running,
) -> Response:
    check_attribute_name(attr)
    check_ids((instance_id,))
    name = _reader(request).canonical(attr)
    broker.temporal_delete_instance(context, entity_id, name, instance_id)
    return Response(status_code=204)


@router.patch("/temporal/entities/{entity_id}/attrs/{attr}/{instance_id}", status_code=204)
async def temporal_modify_instance(
    request: Request,
    entity_id: EntityIdPath,
    attr: AttrPath,
    instance_id: EntityIdPath,
    _user: Writer,
    context: Running,
) -> Response:
    check_attribute_name(attr)
    check_ids((instance_id,))
    name = _reader(request).canonical(attr)
    # What the path names is looked up first: 404 before any complaint about the body.
    _guard(context, lambda session: broker.require_instance(session, entity_id, name, instance_id))
    body, _link = await _body(request)
    await run_in_threadpool(
        broker.temporal_modify_instance, context, entity_id, name, instance_id, body
    )
    return Response(status_code=204)


@router.delete("/temporal/entities/{entity_id}", status_code=204)
def temporal_delete(entity_id: EntityIdPath, _user: Writer, context: Running) -> Response:
    broker.temporal_delete(context, entity_id)
    return Response(status_code=204)


# Refusals of malformed paths, not operations: left out of the OpenAPI document (one function on
# several paths and methods also gave it duplicate operation ids there).
@router.api_route("/temporal/entities//attrs", methods=["POST"], include_in_schema=False)
@router.api_route("/temporal/entities//attrs/{attr}", methods=["DELETE"], include_in_schema=False)
@router.api_route(
    "/temporal/entities//attrs/{attr}/{instance_id}",
    methods=["PATCH", "DELETE"],
    include_in_schema=False,
)
@router.api_route(
    "/temporal/entities/{entity_id}/attrs//{instance_id}",
    methods=["DELETE"],
    include_in_schema=False,
)
def temporal_without_id(datasetId: QueryText = None, deleteAll: bool = False) -> Response:
    """A path whose entity id or attribute name is empty (the specification's 400)."""
    del datasetId, deleteAll  # taken so that they are not refused as unknown parameters
    raise NgsiError("BadRequestData", "the path names no entity id or attribute")


@router.get("/temporal/entities")
def temporal_query(
    request: Request,
    context: Running,
    places: Tenant,
    type: QueryText = None,
    id: QueryText = None,
    idPattern: QueryText = None,
    attrs: QueryText = None,
    pick: QueryText = None,
    omit: QueryText = None,
    q: QueryText = None,
    georel: QueryText = None,
    geometry: QueryText = None,
    coordinates: QueryText = None,
    geoproperty: QueryText = None,
    timerel: QueryText = None,
    timeAt: QueryText = None,
    endTimeAt: QueryText = None,
    lastN: Annotated[int | None, Query(ge=1, le=MAX_OFFSET)] = None,
    timeproperty: Annotated[str, Query(max_length=100)] = "observedAt",
    datasetId: QueryText = None,
    aggrMethods: QueryText = None,
    aggrPeriodDuration: QueryText = None,
    limit: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 20,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    count: bool = False,
    options: QueryText = None,
    format: QueryText = None,
    local: bool = False,
    orderBy: QueryText = None,
) -> Response:
    broker.check_limit(limit)
    names = _reader(request)
    window = _history_window(
        context,
        ",".join(names.canonical_list(split_list(attrs))) if attrs else None,
        timerel,
        timeAt,
        endTimeAt,
        lastN,
        parse_options(options, format),
        timeproperty=timeproperty,
        dataset_id=datasetId,
        aggr_methods=aggrMethods,
        aggr_period=aggrPeriodDuration,
    )
    spec = EntityQuery(
        types=names.canonical_list(split_list(type)),
        ids=check_ids(split_list(id)),
        id_pattern=broker.check_id_pattern(idPattern),
        q=canonical_q(parse_q(q), names) if q else None,
        geo=parse_geo_query(
            georel, geometry, coordinates, names.canonical(geoproperty) if geoproperty else None
        ),
        places=places,
    )
    # attrs narrow a query (clause 5.7.4) but select the history, not the current attributes
    broker.require_filter(
        dataclasses.replace(spec, attrs=names.canonical_list(split_list(attrs))), local=local
    )
    answer, total = broker.temporal_query(
        context,
        spec,
        limit=limit,
        offset=offset,
        window=window,
        order_by=parse_order_by(orderBy, names),
    )
    shown = Projection.of(attrs, pick, omit, names)
    return _temporal_answer(request, answer, shown, names, _count_header(total, count))


def _temporal_answer(
    request: Request,
    answer: TemporalAnswer,
    shown: Projection,
    names: jsonld.Names,
    headers: dict[str, str] | None,
) -> Response:
    return _respond(
        request,
        _compact([shown.apply(e) for e in answer.entities], names),
        status=206 if answer.content_range else 200,
        headers=_temporal_headers(answer, headers),
    )


@router.post("/temporal/entityOperations/query")
async def temporal_query_post(
    request: Request,
    context: Running,
    places: Tenant,
    limit: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 20,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    count: bool = False,
    options: QueryText = None,
    format: QueryText = None,
) -> Response:
    broker.check_limit(limit)
    body, link = await _body(request)
    specs, projection, names = broker.parse_query_body(body, link)
    temporal_q = body.get("temporalQ") or {}
    if not isinstance(temporal_q, dict):
        raise NgsiError("BadRequestData", "`temporalQ` must be an object")
    last_n = temporal_q.get("lastN")
    if last_n is not None and (not isinstance(last_n, int) or last_n < 1):
        raise NgsiError("BadRequestData", "`temporalQ.lastN` must be a positive integer")
    attrs = body.get("attrs")
    window = _history_window(
        context,
        ",".join(names.canonical_list(attrs)) if attrs else None,
        temporal_q.get("timerel"),
        temporal_q.get("timeAt"),
        temporal_q.get("endTimeAt"),
        last_n,
        parse_options(options, format),
        timeproperty=str(temporal_q.get("timeproperty") or "observedAt"),
        dataset_id=None,
        aggr_methods=request.query_params.get("aggrMethods"),
        aggr_period=request.query_params.get("aggrPeriodDuration"),
    )
    answer, total = await run_in_threadpool(
        broker.temporal_query_selectors,
        context,
        [dataclasses.replace(spec, attrs=(), places=places) for spec in specs],
        limit=limit,
        offset=offset,
        window=window,
    )
    return _temporal_answer(request, answer, projection, names, _count_header(total, count))


@router.get("/temporal/entities/{entity_id}")
def temporal_read(
    request: Request,
    entity_id: EntityIdPath,
    context: Running,
    places: Tenant,
    attrs: QueryText = None,
    pick: QueryText = None,
    omit: QueryText = None,
    timerel: QueryText = None,
    timeAt: QueryText = None,
    endTimeAt: QueryText = None,
    lastN: Annotated[int | None, Query(ge=1, le=MAX_OFFSET)] = None,
    timeproperty: Annotated[str, Query(max_length=100)] = "observedAt",
    datasetId: QueryText = None,
    aggrMethods: QueryText = None,
    aggrPeriodDuration: QueryText = None,
    options: QueryText = None,
    format: QueryText = None,
) -> Response:
    names = _reader(request)
    window = _history_window(
        context,
        ",".join(names.canonical_list(split_list(attrs))) if attrs else None,
        timerel,
        timeAt,
        endTimeAt,
        lastN,
        parse_options(options, format),
        timeproperty=timeproperty,
        dataset_id=datasetId,
        aggr_methods=aggrMethods,
        aggr_period=aggrPeriodDuration,
    )
    shown = Projection.of(attrs, pick, omit, names)
    answer = broker.temporal_read(context, entity_id, window, places)
    content = shown.apply(answer.entities[0])
    if not content:
        raise NgsiError("ResourceNotFound", f"pick/omit leave nothing of {entity_id}")
    return _respond(
        request,
        _compact(content, names),
        status=206 if answer.content_range else 200,
        headers=_temporal_headers(answer, None),
    )


# ---- subscriptions ------------------------------------------------------------------------------


@router.post("/subscriptions", status_code=201)
async def subscribe(request: Request, writer: Writer, context: Running) -> Response:
    body, link = await _body(request)
    if link is not None and isinstance(body, dict):
        body = {**body, "@context": link}
    subscription_id = await run_in_threadpool(broker.subscribe, context, body, writer.tenant)
    return created(f"{PREFIX}/subscriptions/{subscription_id}")


@router.get("/subscriptions")
def subscriptions(
    request: Request,
    writer: TenantReader,
    context: Running,
    limit: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 20,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    count: bool = False,
) -> Response:
    broker.check_limit(limit)
    page, total = broker.subscriptions(context, limit=limit, offset=offset, tenant=writer.tenant)
    headers = _count_header(total, count) or {}
    links = page_links(request, limit=limit, offset=offset, total=total)
    if links:
        headers["Link"] = links
    return _respond(request, page, headers=headers)


@router.get("/subscriptions/{subscription_id}")
def subscription(
    request: Request, subscription_id: EntityIdPath, writer: TenantReader, context: Running
) -> Response:
    return _respond(request, broker.subscription(context, subscription_id, writer.tenant))


@router.patch("/subscriptions/{subscription_id}", status_code=204)
async def update_subscription(
    request: Request, subscription_id: EntityIdPath, writer: TenantReader, context: Running
) -> Response:
    body, _link = await _body(request)
    await run_in_threadpool(
        broker.update_subscription, context, subscription_id, body, writer.tenant
    )
    return Response(status_code=204)


@router.delete("/subscriptions/{subscription_id}", status_code=204)
def unsubscribe(subscription_id: EntityIdPath, writer: TenantReader, context: Running) -> Response:
    broker.unsubscribe(context, subscription_id, writer.tenant)
    return Response(status_code=204)
