"""The NGSI-LD API subset mounted at ``/ngsi-ld/v1/`` (ETSI GS CIM 009).

Reads are open (city context data); writes need an operator or administrator (``Authorization:
Bearer <token>``). Errors are ProblemDetails ``{type, title, detail}`` with the NGSI-LD error URIs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool

from qala.components.accounts.deps import require_roles
from qala.components.accounts.models import User
from qala.components.operate import entities as entity_services
from qala.components.operate import subscriptions as subscription_services
from qala.components.operate.ingest import after_commit, runner_for
from qala.components.operate.ngsi import (
    CORE_CONTEXT,
    NgsiError,
    parse_entity,
    parse_fragment,
    parse_geo_query,
    parse_q,
    render_entity,
)
from qala.components.operate.temporal import temporal_entities, time_window
from qala.core.errors import QalaError
from qala.runtime import Context

PREFIX = "/ngsi-ld/v1"
MAX_LIMIT = 1000
LD_JSON = "application/ld+json"
CONTEXT_REL = "http://www.w3.org/ns/json-ld#context"


Writer = Annotated[User, Depends(require_roles("operator", "administrator"))]
"""Writes need an operator or administrator."""


def problem_response(error: NgsiError) -> JSONResponse:
    return JSONResponse(error.problem(), status_code=error.status)


class NgsiRoute(APIRoute):
    """Answers every failure of an NGSI-LD route as ProblemDetails."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
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
            except QalaError as exc:
                return problem_response(NgsiError("BadRequestData", str(exc)))

        return route


def _link_context(request: Request) -> Any:
    link = request.headers.get("link")
    if not link:
        return None
    match = re.search(r"<([^>]+)>\s*;[^,]*rel=\"?" + re.escape(CONTEXT_REL), link)
    return match.group(1) if match else None


async def _body(request: Request) -> tuple[Any, Any]:
    """Decoded JSON body and the @context it brings (in the body or a Link header)."""
    content_type = (
        request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    )
    if content_type not in ("application/json", LD_JSON, "application/merge-patch+json"):
        raise NgsiError(
            "UnsupportedMediaType",
            f"Content-Type {content_type!r}; use application/json or {LD_JSON}",
        )
    raw = await request.body()
    try:
        body = json.loads(raw) if raw else None
    except ValueError as exc:
        raise NgsiError("InvalidRequest", f"the body is not valid JSON: {exc}") from None
    if content_type == LD_JSON:
        items = body if isinstance(body, list) else [body]
        for item in items:
            if isinstance(item, dict) and "@context" not in item:
                raise NgsiError("BadRequestData", "an application/ld+json body must carry @context")
        return body, None
    if isinstance(body, dict) and "@context" in body:
        raise NgsiError(
            "BadRequestData",
            "application/json bodies give @context in a Link header, not in the body",
        )
    return body, _link_context(request)


def _wants_ld(request: Request) -> bool:
    return LD_JSON in request.headers.get("accept", "")


def _respond(
    request: Request,
    content: Any,
    *,
    status: int = 200,
    context: Any = None,
    headers: dict[str, str] | None = None,
) -> Response:
    headers = dict(headers or {})
    context = context or _link_context(request) or CORE_CONTEXT
    if _wants_ld(request):
        if isinstance(content, list):
            for item in content:
                item.setdefault("@context", context)
        elif isinstance(content, dict):
            content.setdefault("@context", context)
        media = LD_JSON
    else:
        if isinstance(context, str):
            headers["Link"] = f'<{context}>; rel="{CONTEXT_REL}"; type="application/ld+json"'
        media = "application/json"
    return Response(
        json.dumps(content, ensure_ascii=False),
        status_code=status,
        media_type=media,
        headers=headers,
    )


def _options(options: str | None, format_: str | None = None) -> set[str]:
    chosen = {o.strip() for o in (options or "").split(",") if o.strip()}
    if format_:
        chosen.add(format_)
    return chosen


def _split(text: str | None) -> tuple[str, ...]:
    return tuple(x.strip() for x in (text or "").split(",") if x.strip())


def build_router(context: Context) -> APIRouter:
    router = APIRouter(prefix=PREFIX, tags=["ngsi-ld"], route_class=NgsiRoute)

    def commit_hook(result: entity_services.WriteResult) -> None:
        result.ingest.changed_entities = list(dict.fromkeys(result.changed))
        after_commit(context, result.ingest)

    def write(action: Callable[[Any], entity_services.WriteResult]) -> entity_services.WriteResult:
        runner = runner_for(context)
        try:
            with context.database.transaction() as session:
                result = action(session)
        except BaseException:
            runner.invalidate()
            raise
        commit_hook(result)
        return result

    # ---- entities -----------------------------------------------------------------------------

    @router.post("/entities", status_code=201)
    async def create(request: Request, _user: Writer) -> Response:
        body, link = await _body(request)
        data = parse_entity(body, context=link)
        await run_in_threadpool(
            write, lambda s: entity_services.create_entity(s, data, runner=runner_for(context))
        )
        return Response(status_code=201, headers={"Location": f"{PREFIX}/entities/{data.id}"})

    @router.get("/entities")
    def query(
        request: Request,
        type: str | None = None,
        id: str | None = None,
        idPattern: str | None = None,
        q: str | None = None,
        attrs: str | None = None,
        pick: str | None = None,
        georel: str | None = None,
        geometry: str | None = None,
        coordinates: str | None = None,
        geoproperty: str | None = None,
        limit: Annotated[int, Query(ge=0)] = 20,
        offset: Annotated[int, Query(ge=0)] = 0,
        count: bool = False,
        options: str | None = None,
        format: str | None = None,
        concept: str | None = None,
    ) -> Response:
        if limit > MAX_LIMIT:
            raise NgsiError("TooManyResults", f"limit {limit} is above the maximum {MAX_LIMIT}")
        if idPattern:
            try:
                re.compile(idPattern)
            except re.error as exc:
                raise NgsiError(
                    "BadRequestData", f"idPattern is not a regular expression: {exc}"
                ) from None
        spec = entity_services.EntityQuery(
            types=_split(type),
            ids=_split(id),
            id_pattern=idPattern,
            q=parse_q(q) if q else None,
            attrs=_split(attrs),
            geo=parse_geo_query(georel, geometry, coordinates, geoproperty),
            concept=concept,
        )
        chosen = _options(options, format)
        key_values = bool(chosen & {"keyValues", "simplified"})
        with context.database.session() as session:
            rows, total = entity_services.query_entities(session, spec, limit=limit, offset=offset)
            picked = _split(pick) or spec.attrs or None
            content = [
                render_entity(
                    e.id,
                    e.type,
                    e.attrs,
                    key_values=key_values,
                    pick=picked,
                    system=_system(e, chosen),
                )
                for e in rows
            ]
        headers = {"NGSILD-Results-Count": str(total)} if count else {}
        return _respond(request, content, headers=headers)

    @router.get("/entities/{entity_id}")
    def read(
        request: Request,
        entity_id: str,
        attrs: str | None = None,
        pick: str | None = None,
        options: str | None = None,
        format: str | None = None,
    ) -> Response:
        chosen = _options(options, format)
        with context.database.session() as session:
            entity = entity_services.get_entity(session, entity_id)
            content = render_entity(
                entity.id,
                entity.type,
                entity.attrs,
                key_values=bool(chosen & {"keyValues", "simplified"}),
                pick=_split(pick) or _split(attrs) or None,
                system=_system(entity, chosen),
            )
            stored_context = entity.context
        return _respond(
            request, content, context=stored_context if isinstance(stored_context, str) else None
        )

    @router.delete("/entities/{entity_id}", status_code=204)
    def remove(entity_id: str, _user: Writer) -> Response:
        with context.database.transaction() as session:
            entity_services.delete_entity(session, entity_id)
        return Response(status_code=204)

    @router.put("/entities/{entity_id}", status_code=204)
    async def replace(request: Request, entity_id: str, _user: Writer) -> Response:
        body, link = await _body(request)
        data = parse_entity(body, context=link, require_id=False, entity_id=entity_id)
        data.id = entity_id
        await run_in_threadpool(
            write, lambda s: entity_services.replace_entity(s, data, runner=runner_for(context))
        )
        return Response(status_code=204)

    @router.patch("/entities/{entity_id}/attrs")
    async def update_attrs(request: Request, entity_id: str, _user: Writer) -> Response:
        body, _link = await _body(request)
        attrs = parse_fragment(body)
        outcome: dict[str, Any] = {}

        def action(session: Any) -> entity_services.WriteResult:
            result, done, skipped = entity_services.merge_attributes(
                session, entity_id, attrs, runner=runner_for(context), only_existing=True
            )
            outcome["done"], outcome["skipped"] = done, skipped
            return result

        await run_in_threadpool(write, action)
        if outcome["skipped"]:
            return JSONResponse(
                {
                    "updated": outcome["done"],
                    "notUpdated": [
                        {"attributeName": n, "reason": "attribute does not exist"}
                        for n in outcome["skipped"]
                    ],
                },
                status_code=207,
            )
        return Response(status_code=204)

    @router.post("/entities/{entity_id}/attrs")
    async def append_attrs(
        request: Request, entity_id: str, _user: Writer, options: str | None = None
    ) -> Response:
        body, _link = await _body(request)
        attrs = parse_fragment(body)
        no_overwrite = "noOverwrite" in _options(options)
        outcome: dict[str, Any] = {}

        def action(session: Any) -> entity_services.WriteResult:
            result, done, skipped = entity_services.merge_attributes(
                session, entity_id, attrs, runner=runner_for(context), no_overwrite=no_overwrite
            )
            outcome["done"], outcome["skipped"] = done, skipped
            return result

        await run_in_threadpool(write, action)
        if outcome["skipped"]:
            return JSONResponse(
                {
                    "updated": outcome["done"],
                    "notUpdated": [
                        {"attributeName": n, "reason": "attribute exists (noOverwrite)"}
                        for n in outcome["skipped"]
                    ],
                },
                status_code=207,
            )
        return Response(status_code=204)

    @router.patch("/entities/{entity_id}/attrs/{attr}", status_code=204)
    async def update_attr(request: Request, entity_id: str, attr: str, _user: Writer) -> Response:
        body, _link = await _body(request)
        if not isinstance(body, dict):
            raise NgsiError("BadRequestData", f"the new value of `{attr}` must be a JSON object")

        def action(session: Any) -> entity_services.WriteResult:
            current = entity_services.get_entity(session, entity_id).attrs.get(attr)
            if current is None:
                raise NgsiError("ResourceNotFound", f"entity {entity_id} has no attribute `{attr}`")
            # A partial attribute ({"value": …} without type) keeps the type and sub-attributes.
            merged = body if "type" in body else {**current, **body}
            fragment = parse_fragment({attr: merged})
            result, _done, _skipped = entity_services.merge_attributes(
                session, entity_id, fragment, runner=runner_for(context), only_existing=True
            )
            return result

        await run_in_threadpool(write, action)
        return Response(status_code=204)

    @router.delete("/entities/{entity_id}/attrs/{attr}", status_code=204)
    def delete_attr(entity_id: str, attr: str, _user: Writer) -> Response:
        with context.database.transaction() as session:
            entity_services.delete_attribute(session, entity_id, attr)
        return Response(status_code=204)

    @router.get("/types")
    def types(request: Request) -> Response:
        with context.database.session() as session:
            found = entity_services.entity_types(session)
        content = {
            "id": "urn:ngsi-ld:EntityTypeList:qala",
            "type": "EntityTypeList",
            "typeList": [name for name, _n in found],
        }
        return _respond(request, content)

    # ---- batch operations ---------------------------------------------------------------------

    async def _batch_body(request: Request) -> tuple[list[Any], Any]:
        body, link = await _body(request)
        if not isinstance(body, list):
            raise NgsiError("BadRequestData", "a batch operation takes a JSON array")
        return body, link

    def _batch(
        items: list[Any], operation: Callable[[Any, Any], None]
    ) -> tuple[list[str], list[dict[str, Any]]]:
        """Each item in its own transaction: one bad entity does not sink the others (207)."""
        success: list[str] = []
        errors: list[dict[str, Any]] = []
        runner = runner_for(context)
        for item in items:
            entity_id = item.get("id") if isinstance(item, dict) else item
            try:
                with context.database.transaction() as session:
                    operation(session, item)
                success.append(str(entity_id))
            except NgsiError as exc:
                runner.invalidate()
                errors.append({"entityId": entity_id, "error": exc.problem()})
            except QalaError as exc:
                runner.invalidate()
                errors.append(
                    {
                        "entityId": entity_id,
                        "error": NgsiError("BadRequestData", str(exc)).problem(),
                    }
                )
        return success, errors

    def _batch_answer(
        success: list[str], errors: list[dict[str, Any]], *, created: list[str] | None = None
    ) -> Response:
        if errors:
            return JSONResponse({"success": success, "errors": errors}, status_code=207)
        if created:
            return JSONResponse(created, status_code=201)
        return Response(status_code=204)

    @router.post("/entityOperations/create")
    async def batch_create(request: Request, _user: Writer) -> Response:
        items, link = await _batch_body(request)
        results: list[entity_services.WriteResult] = []

        def operation(session: Any, item: Any) -> None:
            data = parse_entity(item, context=link)
            results.append(entity_services.create_entity(session, data, runner=runner_for(context)))

        success, errors = await run_in_threadpool(_batch, items, operation)
        _notify(results)
        if errors:
            return _batch_answer(success, errors)
        return JSONResponse(success, status_code=201)

    @router.post("/entityOperations/upsert")
    async def batch_upsert(request: Request, _user: Writer, options: str | None = None) -> Response:
        items, link = await _batch_body(request)
        replace_all = "replace" in _options(options)
        results: list[entity_services.WriteResult] = []

        def operation(session: Any, item: Any) -> None:
            data = parse_entity(item, context=link)
            results.append(
                entity_services.upsert_entity(
                    session, data, runner=runner_for(context), replace=replace_all
                )
            )

        success, errors = await run_in_threadpool(_batch, items, operation)
        _notify(results)
        created = [i for r in results for i in r.created]
        if errors:
            return _batch_answer(success, errors)
        return JSONResponse(created, status_code=201) if created else Response(status_code=204)

    @router.post("/entityOperations/update")
    async def batch_update(request: Request, _user: Writer, options: str | None = None) -> Response:
        items, link = await _batch_body(request)
        no_overwrite = "noOverwrite" in _options(options)
        results: list[entity_services.WriteResult] = []

        def operation(session: Any, item: Any) -> None:
            data = parse_entity(item, context=link)
            result, _done, _skipped = entity_services.merge_attributes(
                session, data.id, data.attrs, runner=runner_for(context), no_overwrite=no_overwrite
            )
            results.append(result)

        success, errors = await run_in_threadpool(_batch, items, operation)
        _notify(results)
        return _batch_answer(success, errors)

    @router.post("/entityOperations/delete")
    async def batch_delete(request: Request, _user: Writer) -> Response:
        items, _link = await _batch_body(request)

        def operation(session: Any, item: Any) -> None:
            if not isinstance(item, str):
                raise NgsiError(
                    "BadRequestData", "entityOperations/delete takes an array of entity ids"
                )
            entity_services.delete_entity(session, item)

        success, errors = await run_in_threadpool(_batch, items, operation)
        return _batch_answer(success, errors)

    def _notify(results: list[entity_services.WriteResult]) -> None:
        merged = entity_services.WriteResult()
        for result in results:
            merged.created += result.created
            merged.updated += result.updated
            merged.ingest.merge(result.ingest)
        commit_hook(merged)

    # ---- temporal -----------------------------------------------------------------------------

    @router.get("/temporal/entities")
    def temporal_query(
        request: Request,
        type: str | None = None,
        id: str | None = None,
        idPattern: str | None = None,
        attrs: str | None = None,
        q: str | None = None,
        timerel: str | None = None,
        timeAt: str | None = None,
        endTimeAt: str | None = None,
        lastN: Annotated[int | None, Query(ge=1)] = None,
        limit: Annotated[int, Query(ge=0)] = 20,
        offset: Annotated[int, Query(ge=0)] = 0,
        count: bool = False,
        options: str | None = None,
        format: str | None = None,
    ) -> Response:
        if limit > MAX_LIMIT:
            raise NgsiError("TooManyResults", f"limit {limit} is above the maximum {MAX_LIMIT}")
        start, end = time_window(timerel, timeAt, endTimeAt)
        spec = entity_services.EntityQuery(
            types=_split(type), ids=_split(id), id_pattern=idPattern, q=parse_q(q) if q else None
        )
        with context.database.session() as session:
            rows, total = entity_services.query_entities(session, spec, limit=limit, offset=offset)
            content = temporal_entities(
                session,
                rows,
                attrs=_split(attrs) or None,
                start_us=start,
                end_us=end,
                last_n=lastN,
                temporal_values="temporalValues" in _options(options, format),
            )
        return _respond(
            request, content, headers={"NGSILD-Results-Count": str(total)} if count else None
        )

    @router.get("/temporal/entities/{entity_id}")
    def temporal_read(
        request: Request,
        entity_id: str,
        attrs: str | None = None,
        timerel: str | None = None,
        timeAt: str | None = None,
        endTimeAt: str | None = None,
        lastN: Annotated[int | None, Query(ge=1)] = None,
        options: str | None = None,
        format: str | None = None,
    ) -> Response:
        start, end = time_window(timerel, timeAt, endTimeAt)
        with context.database.session() as session:
            entity = entity_services.get_entity(session, entity_id)
            content = temporal_entities(
                session,
                [entity],
                attrs=_split(attrs) or None,
                start_us=start,
                end_us=end,
                last_n=lastN,
                temporal_values="temporalValues" in _options(options, format),
            )[0]
        return _respond(request, content)

    # ---- subscriptions ------------------------------------------------------------------------

    @router.post("/subscriptions", status_code=201)
    async def subscribe(request: Request, _user: Writer) -> Response:
        body, _link = await _body(request)

        def store() -> str:
            with context.database.transaction() as session:
                return subscription_services.create_subscription(session, body).id

        subscription_id = await run_in_threadpool(store)
        return Response(
            status_code=201, headers={"Location": f"{PREFIX}/subscriptions/{subscription_id}"}
        )

    @router.get("/subscriptions")
    def subscriptions(
        request: Request, _user: Writer, limit: int = 20, offset: int = 0
    ) -> Response:
        from sqlalchemy import select

        from qala.components.operate.models import Subscription

        with context.database.session() as session:
            rows = session.scalars(
                select(Subscription).order_by(Subscription.created_at).limit(limit).offset(offset)
            )
            content = [subscription_services.render_subscription(r) for r in rows]
        return _respond(request, content)

    @router.get("/subscriptions/{subscription_id}")
    def subscription(request: Request, subscription_id: str, _user: Writer) -> Response:
        with context.database.session() as session:
            content = subscription_services.render_subscription(
                subscription_services.get_subscription(session, subscription_id)
            )
        return _respond(request, content)

    @router.patch("/subscriptions/{subscription_id}", status_code=204)
    async def update_subscription(
        request: Request, subscription_id: str, _user: Writer
    ) -> Response:
        body, _link = await _body(request)

        def store() -> None:
            with context.database.transaction() as session:
                subscription_services.update_subscription(session, subscription_id, body)

        await run_in_threadpool(store)
        return Response(status_code=204)

    @router.delete("/subscriptions/{subscription_id}", status_code=204)
    def unsubscribe(subscription_id: str, _user: Writer) -> Response:
        with context.database.transaction() as session:
            session.delete(subscription_services.get_subscription(session, subscription_id))
        return Response(status_code=204)

    return router


def _system(entity: Any, chosen: set[str]) -> dict[str, str] | None:
    if "sysAttrs" not in chosen:
        return None
    return {
        "createdAt": entity.created_at.isoformat(),
        "modifiedAt": entity.modified_at.isoformat(),
    }
