"""The NGSI-LD context broker's operations as whole units of work (the ``/ngsi-ld/v1`` routes are
thin calls to these).

A write runs in one transaction (a batch operation: one per entity, so that one bad entity does
not sink the others, answered 207). When a write fails the rules runner forgets its in-memory
state, which it reloads from the store; after the commit the subscriptions watching the changed
entities are notified and the incidents the write opened are announced on the bus. Reads come
back rendered as NGSI-LD (see ``ngsi.render_entity``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace as replace_field
from typing import Any

from sqlalchemy.orm import Session

from qala.components.operate import jsonld, subscriptions as subscription_services
from qala.components.operate.attribute_history import TEMPORAL_WRITE
from qala.components.operate.entities import (
    EntityQuery,
    WriteResult,
    create_entity,
    delete_attribute,
    delete_entity,
    delete_history,
    entity_types,
    get_entity,
    merge_attributes,
    observe_instances,
    query_entities,
    replace_entity,
    type_statistics,
    upsert_entity,
    visible,
    with_types,
)
from qala.components.operate.ingest import (
    RulesRunner,
    after_commit,
    now_us,
    runner_for,
    stage_notifications,
)
from qala.components.operate.languages import localise, parse_lang
from qala.components.operate.linked import Join, join_entities
from qala.components.operate.models import Entity
from qala.components.operate.ngsi import (
    RESERVED,
    SCOPE,
    EntityInput,
    NgsiError,
    Projection,
    canonical_q,
    check_attribute_name,
    check_entity_id,
    check_ids,
    compile_pattern,
    instances_of,
    is_null,
    names_of,
    normalise_attribute,
    parse_entity,
    parse_fragment,
    parse_geo_query,
    parse_q,
    parse_scope_query,
    render_entity,
    split_list,
)
from qala.components.operate.ordering import OrderKey, order_entities
from qala.components.operate.temporal import (
    HistoryWindow,
    TemporalAnswer,
    delete_instances,
    delete_one_instance,
    find_instance,
    has_history,
    modify_instance,
    record_deletion,
    record_instances,
    record_scope_deletion,
    temporal_entities,
)
from qala.core.errors import QalaError
from qala.runtime import Context

MAX_LIMIT = 1000
"""The largest page a query answers (``TooManyResults`` above it)."""


def check_limit(limit: int) -> None:
    if limit > MAX_LIMIT:
        raise NgsiError("TooManyResults", f"limit {limit} is above the maximum {MAX_LIMIT}")


def check_id_pattern(pattern: str | None) -> str | None:
    """``pattern`` when RE2 runs it (or None), else ``BadRequestData`` (see ``compile_pattern``)."""
    if pattern:
        compile_pattern(pattern, what="idPattern")
    return pattern


def require_filter(spec: EntityQuery, *, local: bool) -> None:
    """A query must narrow the entities (clause 5.7.2: type, id, idPattern, attrs, q or a
    geo-query), unless ``local=true`` asks for everything this broker holds."""
    if local:
        return
    narrowed = spec.types or spec.attrs or spec.q or spec.geo or spec.scope_q
    if not narrowed and spec.concept is None:
        raise NgsiError(
            "BadRequestData",
            "a query needs type, attrs, q or a geo-query (ids alone are not enough; or local=true)",
        )


# ---------------------------------------------------------------------------------------------
# Writes


def stage_changes(session: Session, result: WriteResult) -> None:
    """Stage what the write changed in the notification outbox, before its transaction commits."""
    result.ingest.changed_entities = list(dict.fromkeys(result.changed))
    stage_notifications(session, result.ingest)


def announce(context: Context, result: WriteResult) -> None:
    """After a write committed: wake the notifier of the subscriptions, announce incidents."""
    after_commit(context, result.ingest)


@contextmanager
def writing(context: Context) -> Iterator[tuple[Session, RulesRunner, WriteResult]]:
    """One write: a transaction, the rules runner and the result to fill; announced on success."""
    runner = runner_for(context)
    result = WriteResult()
    try:
        with context.database.transaction() as session:
            yield session, runner, result
            stage_changes(session, result)  # committed with the write
    except BaseException:
        runner.invalidate()
        raise
    announce(context, result)


def create(context: Context, data: EntityInput) -> None:
    """Create an entity (``AlreadyExists`` when its id is taken)."""
    with writing(context) as (session, runner, result):
        create_entity(session, data, runner=runner, result=result)


def replace(context: Context, data: EntityInput) -> None:
    """Replace every attribute of an existing entity."""
    with writing(context) as (session, runner, result):
        replace_entity(session, data, runner=runner, result=result)


def merge(
    context: Context,
    entity_id: str,
    attrs: dict[str, dict[str, Any]],
    *,
    update: bool = False,
    no_overwrite: bool = False,
) -> tuple[list[str], list[str]]:
    """Update (``update``) or append attributes; returns the names (written, not written)."""
    with writing(context) as (session, runner, result):
        _result, done, skipped = merge_attributes(
            session,
            entity_id,
            attrs,
            runner=runner,
            update=update,
            no_overwrite=no_overwrite,
            result=result,
        )
    return done, skipped


def temporal_upsert(context: Context, body: Any, link: Any) -> bool:
    """``POST /temporal/entities``: an entity whose attributes are arrays of instances with
    ``observedAt``. The newest instance of each attribute becomes the entity's current value,
    and every numeric instance enters the observation history. True when the entity is new."""
    if not isinstance(body, dict):
        raise NgsiError("InvalidRequest", "a temporal entity is a JSON object")
    given_context = body.get("@context", link)
    body = jsonld.canonical_entity(body, names_of(given_context))
    instances: dict[str, list[dict[str, Any]]] = {}
    for name, raw in body.items():
        if name in ("id", "type", "@context", "scope", "createdAt", "modifiedAt"):
            continue
        items = raw if isinstance(raw, list) else [raw]
        if not items:
            raise NgsiError("BadRequestData", f"attribute `{name}` has no instance")
        normalised = [parse_fragment({name: item})[name] for item in items]
        instances[name] = [i for n in normalised for i in instances_of(n)]
    latest = {
        name: max(values, key=lambda i: str(i.get("observedAt", "")))
        for name, values in instances.items()
    }
    data = parse_entity({**{k: v for k, v in body.items() if k in ("id", "type", SCOPE)}, **latest})
    data.context = given_context
    with writing(context) as (session, runner, result):
        session.info[TEMPORAL_WRITE] = True  # the instances are recorded below, each once
        created = session.get(Entity, data.id) is None
        if created:
            create_entity(session, data, runner=runner, result=result)
        else:
            merge_attributes(session, data.id, data.attrs, runner=runner, result=result)
        entity = get_entity(session, data.id)
        observe_instances(session, entity, instances, runner=runner, result=result)
        record_instances(session, data.id, instances, now_us())
        session.info.pop(TEMPORAL_WRITE, None)
    return created


def temporal_append(context: Context, entity_id: str, body: Any, link: Any) -> None:
    """``POST /temporal/entities/{id}/attrs``: more instances for an existing entity."""
    if body is None:
        raise NgsiError("InvalidRequest", "the request has no body")
    if not isinstance(body, dict) or not [k for k in body if k != "@context"]:
        raise NgsiError("BadRequestData", "the fragment must be a JSON object with attributes")
    with context.database.session() as session:
        entity_type = get_entity(session, entity_id).type
    fragment = {k: v for k, v in body.items() if k not in ("id", "type")}
    temporal_upsert(context, {**fragment, "id": entity_id, "type": entity_type}, link)


def temporal_delete_attr(
    context: Context,
    entity_id: str,
    name: str,
    *,
    dataset_id: str | None = None,
    delete_all: bool = False,
) -> None:
    """``DELETE /temporal/entities/{id}/attrs/{attr}``: the attribute's history (every
    instance with ``deleteAll``, else those of ``datasetId`` or of the default instance) and the
    attribute itself."""
    with writing(context) as (session, _runner, result):
        entity = get_entity(session, entity_id)
        if not has_history(session, entity_id, name) and name not in entity.attrs:
            raise NgsiError("ResourceNotFound", f"entity {entity_id} has no attribute `{name}`")
        removed = delete_instances(
            session, entity_id, name, dataset_id=dataset_id, every_dataset=delete_all
        )
        if delete_all or dataset_id is None:
            removed += delete_history(session, entity_id, quantity=name)
        if name in entity.attrs:
            try:
                delete_attribute(
                    session,
                    entity_id,
                    name,
                    dataset_id=dataset_id,
                    delete_all=delete_all,
                    result=result,
                )
            except NgsiError:
                if not removed:
                    raise
        elif not removed:
            raise NgsiError("ResourceNotFound", f"entity {entity_id} has no attribute `{name}`")


def temporal_delete(context: Context, entity_id: str) -> None:
    """``DELETE /temporal/entities/{id}``: the entity and its history."""
    with writing(context) as (session, _runner, result):
        delete_entity(session, entity_id, result=result)
        delete_history(session, entity_id)
        delete_instances(session, entity_id)


def temporal_delete_instance(context: Context, entity_id: str, name: str, instance_id: str) -> None:
    """``DELETE /temporal/entities/{id}/attrs/{attr}/{instanceId}``: one instance."""
    with context.database.transaction() as session:
        get_entity(session, entity_id)
        delete_one_instance(session, entity_id, name, instance_id)


def require_entity(session: Session, entity_id: str) -> None:
    """``ResourceNotFound`` unless the entity exists."""
    get_entity(session, entity_id)


def require_instance(session: Session, entity_id: str, name: str, instance_id: str) -> None:
    """``ResourceNotFound`` unless the entity has that instance of the attribute."""
    get_entity(session, entity_id)
    find_instance(session, entity_id, name, instance_id)


def temporal_modify_instance(
    context: Context, entity_id: str, name: str, instance_id: str, body: Any
) -> None:
    """``PATCH /temporal/entities/{id}/attrs/{attr}/{instanceId}``: the fragment names the
    attribute with the members to replace in that instance."""
    if not isinstance(body, dict):
        raise NgsiError("BadRequestData", "the fragment must be a JSON object")
    # The instance itself, or a fragment naming the attribute (``{name: instance}``).
    raw = body.get(name) if name in body else {k: v for k, v in body.items() if k != "@context"}
    if isinstance(raw, list):
        raw = raw[0] if len(raw) == 1 else None
    if not isinstance(raw, dict):
        raise NgsiError("BadRequestData", f"the fragment must hold one instance of `{name}`")
    change = instances_of(parse_fragment({name: raw})[name])[0]
    with context.database.transaction() as session:
        get_entity(session, entity_id)
        modify_instance(session, entity_id, name, instance_id, change, now_us())


def merge_entity(context: Context, entity_id: str, body: Any, link: Any = None) -> None:
    """Merge-patch an entity (``PATCH /entities/{id}``, clause 5.6.17): new attributes added,
    existing ones merged member by member, ``urn:ngsi-ld:null`` deleting."""
    if not isinstance(body, dict):
        raise NgsiError("BadRequestData", "a merge takes an entity fragment (a JSON object)")
    if body.get("id") not in (None, entity_id):
        raise NgsiError("BadRequestData", f"the fragment's id {body['id']!r} is not {entity_id}")
    attrs = parse_fragment(body, context=link)
    with writing(context) as (session, runner, result):
        merge_attributes(session, entity_id, attrs, runner=runner, merge=True, result=result)
        if entity_id not in result.updated:
            result.updated.append(entity_id)


def update_attribute(context: Context, entity_id: str, name: str, body: dict[str, Any]) -> None:
    """Update one existing attribute. A partial attribute (``{"value": …}`` without ``type``)
    keeps the attribute's type and sub-attributes."""
    with writing(context) as (session, runner, result):
        current = get_entity(session, entity_id).attrs.get(name)
        if current is None:
            raise NgsiError("ResourceNotFound", f"entity {entity_id} has no attribute `{name}`")
        dataset = body.get("datasetId")
        instance = next((i for i in instances_of(current) if i.get("datasetId") == dataset), None)
        if instance is None:
            which = f"datasetId {dataset}" if dataset else "a default instance"
            raise NgsiError("ResourceNotFound", f"attribute `{name}` has no {which}")
        if "type" in body and body["type"] != instance.get("type"):
            raise NgsiError(
                "BadRequestData",
                f"`{name}` is a {instance.get('type')}; a partial update cannot make it a "
                f"{body['type']} (replace it with PUT)",
            )
        merged = body if "type" in body else {**instance, **body}
        merge_attributes(
            session,
            entity_id,
            parse_fragment({name: merged}),
            runner=runner,
            update=True,
            result=result,
        )


def parse_replacement(name: str, body: Any, link: Any = None) -> tuple[str, dict[str, Any]]:
    """The attribute a ``PUT …/attrs/{name}`` body gives, normalised, and its name; both named
    in canonical form with the request's @context (the body's, else ``link``).

    Raises ``BadRequestData`` when ``name`` cannot name an attribute (``scope``, ``@…``,
    forbidden characters) or the body is no attribute object."""
    check_attribute_name(name)
    if name in RESERVED or name.startswith("@"):
        raise NgsiError("BadRequestData", f"`{name}` is not an attribute that can be replaced")
    names = names_of(body.get("@context", link) if isinstance(body, dict) else link)
    if isinstance(body, dict):
        body = {k: v for k, v in body.items() if k != "@context"}
    if not isinstance(body, dict) or not isinstance(body.get("type"), str):
        raise NgsiError("BadRequestData", f"the new `{name}` must be an attribute with a `type`")
    stored = names.canonical(name)
    attribute = normalise_attribute(name, jsonld.canonical_entity({stored: body}, names)[stored])
    if isinstance(attribute, list) or is_null(attribute):
        raise NgsiError("BadRequestData", f"the new `{name}` must be one attribute instance")
    return stored, attribute


def replace_attribute(
    context: Context, entity_id: str, name: str, attribute: dict[str, Any]
) -> None:
    """Replace the instance of attribute ``name`` with ``attribute``'s ``datasetId`` (none: the
    default instance); ``ResourceNotFound`` when the entity, the attribute or that instance is
    missing."""
    with writing(context) as (session, runner, result):
        current = get_entity(session, entity_id).attrs.get(name)
        if current is None:
            raise NgsiError("ResourceNotFound", f"entity {entity_id} has no attribute `{name}`")
        dataset = attribute.get("datasetId")
        if not any(i.get("datasetId") == dataset for i in instances_of(current)):
            which = f"datasetId {dataset}" if dataset else "a default instance"
            raise NgsiError("ResourceNotFound", f"attribute `{name}` has no {which}")
        merge_attributes(session, entity_id, {name: attribute}, runner=runner, result=result)


def delete(context: Context, entity_id: str) -> None:
    with writing(context) as (session, _runner, result):
        delete_entity(session, entity_id, result=result)


def delete_attr(
    context: Context,
    entity_id: str,
    name: str,
    *,
    dataset_id: str | None = None,
    delete_all: bool = False,
) -> None:
    with writing(context) as (session, _runner, result):
        before = instances_of(get_entity(session, entity_id).attrs.get(name))
        delete_attribute(
            session,
            entity_id,
            name,
            dataset_id=dataset_id,
            delete_all=delete_all,
            result=result,
        )
        if name == SCOPE:
            record_scope_deletion(session, entity_id, now_us())
            return
        deleted = [i for i in before if delete_all or i.get("datasetId") == dataset_id]
        record_deletion(session, entity_id, name, deleted, now_us())


# ---------------------------------------------------------------------------------------------
# Batch operations


@dataclass
class BatchOutcome:
    """Ids written, errors per entity (``{entityId, error: ProblemDetails}``), ids created."""

    success: list[str] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    created: list[str] = field(default_factory=list)


BatchStep = Callable[[Session, RulesRunner, Any], WriteResult | None]
"""Writes one item of a batch inside its transaction."""


def write_each(context: Context, items: Sequence[Any], step: BatchStep) -> BatchOutcome:
    """Each item in its own transaction; all that committed are announced together at the end."""
    outcome = BatchOutcome()
    written = WriteResult()
    runner = runner_for(context)
    for item in items:
        entity_id = item.get("id") if isinstance(item, dict) else item
        try:
            with context.database.transaction() as session:
                result = step(session, runner, item)
                if result is not None:
                    stage_changes(session, result)
        except (NgsiError, QalaError) as exc:
            runner.invalidate()
            error = exc if isinstance(exc, NgsiError) else NgsiError("BadRequestData", str(exc))
            outcome.errors.append({"entityId": entity_id, "error": error.problem()})
            continue
        outcome.success.append(str(entity_id))
        if result is not None:
            written.merge(result)
    announce(context, written)
    outcome.created = written.created
    return outcome


def create_each(context: Context, items: Sequence[Any], link: Any) -> BatchOutcome:
    """``entityOperations/create``; ``link`` is the @context of a Link header."""

    def step(session: Session, runner: RulesRunner, item: Any) -> WriteResult:
        return create_entity(session, parse_entity(item, context=link), runner=runner)

    return write_each(context, items, step)


def upsert_each(
    context: Context, items: Sequence[Any], link: Any, *, replace_all: bool
) -> BatchOutcome:
    """``entityOperations/upsert`` (``replace_all``: existing entities are replaced, not merged)."""

    def step(session: Session, runner: RulesRunner, item: Any) -> WriteResult:
        data = parse_entity(item, context=link)
        return upsert_entity(session, data, runner=runner, replace=replace_all)

    return write_each(context, items, step)


def update_each(
    context: Context, items: Sequence[Any], link: Any, *, no_overwrite: bool
) -> BatchOutcome:
    """``entityOperations/update``: merge each item's attributes into the existing entity.

    Under ``no_overwrite`` an entity some of whose attributes were kept as they were is
    reported among the errors (``AlreadyExists``, naming them; the others were written), as
    appending to one entity answers 207 with them (clause 5.6.3)."""
    kept: dict[str, list[str]] = {}

    def step(session: Session, runner: RulesRunner, item: Any) -> WriteResult:
        data = parse_entity(item, context=link)
        result, _done, skipped = merge_attributes(
            session, data.id, with_types(data), runner=runner, no_overwrite=no_overwrite
        )
        if no_overwrite and skipped:
            kept[data.id] = skipped
        return result

    outcome = write_each(context, items, step)
    for entity_id, names in kept.items():
        outcome.success.remove(entity_id)
        error = NgsiError(
            "AlreadyExists",
            f"attribute(s) {', '.join(names)} exist and were kept as they are (noOverwrite)",
        )
        outcome.errors.append({"entityId": entity_id, "error": error.problem()})
    return outcome


def merge_each(context: Context, items: Sequence[Any], link: Any) -> BatchOutcome:
    """``entityOperations/merge``: merge-patch each item into its existing entity."""

    def step(session: Session, runner: RulesRunner, item: Any) -> WriteResult:
        data = parse_entity(item, context=link)
        return merge_attributes(session, data.id, with_types(data), runner=runner, merge=True)[0]

    return write_each(context, items, step)


def purge(context: Context, spec: EntityQuery) -> int:
    """Delete every entity the query matches (``DELETE /entities``); returns how many."""
    with writing(context) as (session, _runner, result):
        rows, _total = query_entities(session, spec, limit=10_000_000, offset=0)
        for entity in rows:
            delete_entity(session, entity.id, result=result)
    return len(rows)


def delete_each(context: Context, items: Sequence[Any]) -> BatchOutcome:
    """``entityOperations/delete``: the items are entity ids."""

    def step(session: Session, _runner: RulesRunner, item: Any) -> WriteResult:
        if not isinstance(item, str):
            raise NgsiError(
                "BadRequestData", "entityOperations/delete takes an array of entity ids"
            )
        result = WriteResult()
        delete_entity(session, item, result=result)
        return result

    return write_each(context, items, step)


# ---------------------------------------------------------------------------------------------
# Reads


@dataclass(frozen=True)
class Representation:
    """How entities are answered: key-values, concise or normalised, which members (``attrs``,
    ``pick``, ``omit``), system attributes."""

    key_values: bool = False
    projection: Projection = field(default_factory=Projection)
    system: bool = False
    concise: bool = False
    written_context: bool = False
    """Whether each rendered entity carries the @context it was written with (``@context``), for
    the API to answer with that form of it (see ``ngsi_api._settle_contexts``)."""
    lang: tuple[str, ...] | None = None
    """The languages LanguageProperties are answered in (``lang=``; None: all of them)."""
    datasets: frozenset[str] | None = None
    """The attribute instances shown, by ``datasetId`` (``@none``: the default instance;
    None: all)."""
    reader: jsonld.Names | None = None
    """The reader's names, for the entities a ``join=inline`` answer places inside
    relationships: the API names the entities of the answer's top level itself."""

    @classmethod
    def of(
        cls,
        options: set[str],
        projection: Projection | None = None,
        lang: str | None = None,
        datasets: str | None = None,
    ) -> Representation:
        """From the chosen ``options``/``format`` values, the members asked for (if any), the
        ``lang`` and ``datasetId`` parameters."""
        chosen = None
        if datasets is not None:
            chosen = frozenset(split_list(datasets))
            for dataset in chosen - {"@none"}:
                check_entity_id(dataset)
        return cls(
            key_values=bool(options & {"keyValues", "simplified"}),
            projection=projection or Projection(),
            system="sysAttrs" in options,
            concise="concise" in options,
            lang=parse_lang(lang),
            datasets=chosen,
        )

    def render(self, entity: Entity) -> dict[str, Any]:
        system = None
        if self.system:
            system = {
                "createdAt": entity.created_at.isoformat(),
                "modifiedAt": entity.modified_at.isoformat(),
            }
        attrs = entity.attrs
        if self.datasets is not None:
            attrs = instances_among(attrs, self.datasets)
        rendered = render_entity(
            entity.id,
            entity.type,
            attrs,
            key_values=self.key_values,
            system=system,
            projection=self.projection,
            concise=self.concise,
        )
        if self.written_context and entity.context is not None:
            rendered["@context"] = entity.context
        if self.lang is not None:
            localise(rendered, entity.attrs, self.lang, key_values=self.key_values)
        return rendered


def instances_among(attrs: dict[str, Any], datasets: frozenset[str]) -> dict[str, Any]:
    """``attrs`` with only the attribute instances whose ``datasetId`` is one of ``datasets``
    (``@none``: the default instance); attributes left with none are left out."""
    kept: dict[str, Any] = {}
    for name, attribute in attrs.items():
        instances = instances_of(attribute)
        if not instances or not all("type" in i for i in instances):
            kept[name] = attribute  # scope, types: entity members, not attributes
            continue
        chosen = [i for i in instances if i.get("datasetId", "@none") in datasets]
        if chosen:
            kept[name] = chosen[0] if len(chosen) == 1 else chosen
    return kept


def query(
    context: Context,
    spec: EntityQuery,
    *,
    limit: int,
    offset: int,
    shown: Representation,
    join: Join | None = None,
) -> tuple[list[dict[str, Any]], int]:
    """One page of the matching entities, rendered (with the entities they link to under
    ``join``), and how many match in all."""
    with context.database.session() as session:
        rows, total = query_entities(session, spec, limit=limit, offset=offset)
        return _joined(session, rows, shown, join, spec.places), total


def _joined(
    session: Session,
    rows: Sequence[Entity],
    shown: Representation,
    join: Join | None,
    places: frozenset[str] | None = None,
) -> list[dict[str, Any]]:
    """``rows`` rendered, leaving out those ``pick``/``omit`` leave nothing of (clause 4.21);
    under ``join`` with their linked entities (clause 4.5.23), those the tenant's ``places``
    see."""
    pairs = [(e, shown.render(e)) for e in rows]
    pairs = [(e, r) for e, r in pairs if set(r) - {"@context"}]
    if join is None:
        return [r for _e, r in pairs]

    def render_linked(entity: Entity, projection: Projection) -> dict[str, Any]:
        if join.flat:  # answered beside the others, at the answer's top level
            return replace_field(shown, projection=projection).render(entity)
        # Inside a relationship the entity is part of its linking entity's document: no
        # @context of its own, its names given by the reader's context like the rest.
        inner = replace_field(shown, projection=projection, written_context=False)
        rendered = inner.render(entity)
        return jsonld.compact_entity(rendered, shown.reader) if shown.reader else rendered

    def lookup(entity_id: str) -> Entity | None:
        entity = session.get(Entity, entity_id)
        return entity if entity is not None and visible(entity, places) else None

    return join_entities(
        pairs,
        join,
        shown.projection,
        lookup=lookup,
        render=render_linked,
        key_values=shown.key_values,
    )


def parse_query_body(
    body: Any, link: Any = None
) -> tuple[list[EntityQuery], Projection, jsonld.Names]:
    """The selectors and projection of a ``POST /entityOperations/query`` body (a Query), and
    the names of its @context (the body's, else ``link``)."""
    if not isinstance(body, dict) or body.get("type", "Query") != "Query":
        raise NgsiError("BadRequestData", "the body must be a Query object")
    names = names_of(body.get("@context", link))
    geo_q = body.get("geoQ") or {}
    if not isinstance(geo_q, dict):
        raise NgsiError("BadRequestData", "`geoQ` must be an object")
    coordinates = geo_q.get("coordinates")
    geo = parse_geo_query(
        geo_q.get("georel"),
        geo_q.get("geometry"),
        json.dumps(coordinates) if coordinates is not None else None,
        names.canonical(geo_q["geoproperty"]) if geo_q.get("geoproperty") else None,
    )
    attrs = body.get("attrs") or []
    if not isinstance(attrs, list) or not all(isinstance(a, str) for a in attrs):
        raise NgsiError("BadRequestData", "`attrs` must be an array of attribute names")
    q = canonical_q(parse_q(str(body["q"])), names) if body.get("q") else None
    selectors = body.get("entities") or [{}]
    if not isinstance(selectors, list):
        raise NgsiError("BadRequestData", "`entities` must be an array of selectors")
    specs = []
    for selector in selectors:
        if not isinstance(selector, dict):
            raise NgsiError("BadRequestData", "each `entities` item must be an object")
        types = selector.get("type")
        ids = selector.get("id")
        spec = EntityQuery(
            types=names.canonical_list(split_list(types)) if isinstance(types, str) else (),
            ids=check_ids(split_list(ids)) if isinstance(ids, str) else (),
            id_pattern=check_id_pattern(selector.get("idPattern")),
            q=q,
            attrs=names.canonical_list(attrs),
            geo=geo,
            scope_q=check_scope_query(body.get("scopeQ")),
        )
        require_filter(spec, local=bool(body.get("local")))
        specs.append(spec)
    projection = Projection.of(",".join(attrs) if attrs else None, None, None, names)
    return specs, projection, names


def check_scope_query(text: Any) -> str | None:
    """A ``scopeQ`` checked (None when not given)."""
    if text is None or text == "":
        return None
    if not isinstance(text, str):
        raise NgsiError("BadRequestData", "`scopeQ` must be a text such as /Madrid/#")
    parse_scope_query(text)
    return text


def query_selectors(
    context: Context,
    specs: Sequence[EntityQuery],
    *,
    limit: int,
    offset: int,
    shown: Representation,
    join: Join | None = None,
) -> tuple[list[dict[str, Any]], int]:
    """``POST /entityOperations/query``: the union of the entities each selector matches, by id."""
    with context.database.session() as session:
        found: dict[str, Entity] = {}
        for spec in specs:
            rows, _total = query_entities(session, spec, limit=10_000_000, offset=0)
            found.update((e.id, e) for e in rows)
        ordered = [found[key] for key in sorted(found)]
        page = ordered[offset : offset + limit]
        places = specs[0].places if specs else None  # the route gives each the request's tenant
        return _joined(session, page, shown, join, places), len(ordered)


def read(
    context: Context,
    entity_id: str,
    shown: Representation,
    join: Join | None = None,
    places: frozenset[str] | None = None,
) -> tuple[dict[str, Any] | list[dict[str, Any]], Any]:
    """The entity rendered, and the @context it was written with (None if none); under a
    tenant (``places``) only one of its city.

    Under ``join=flat`` the answer is the entity followed by those it links to (the entity
    alone when it links to none found); under ``join=inline`` they sit in its relationships."""
    with context.database.session() as session:
        entity = get_entity(session, entity_id, places)
        stored_context = entity.context
        wanted = shown.projection.attributes
        if wanted and not set(wanted) & set(entity.attrs):
            raise NgsiError(
                "ResourceNotFound", f"entity {entity_id} has none of the attributes {list(wanted)}"
            )
        rendered = shown.render(entity)
        if not rendered:
            raise NgsiError("ResourceNotFound", f"nothing of entity {entity_id} is left to show")
        answer: dict[str, Any] | list[dict[str, Any]] = rendered
        if join is not None:
            joined = _joined(session, [entity], shown, join, places)
            answer = joined if len(joined) > 1 else joined[0]
        return answer, stored_context


def type_list(
    context: Context, names: jsonld.Names | None = None, places: frozenset[str] | None = None
) -> dict[str, Any]:
    """The entity types present (of the tenant's ``places``), as an NGSI-LD EntityTypeList
    (named for ``names``' reader)."""
    names = names or names_of(None)
    with context.database.session() as session:
        found = entity_types(session, places)
    return {
        "id": "urn:ngsi-ld:EntityTypeList:qala",
        "type": "EntityTypeList",
        "typeList": sorted({names.to_reader(name) for name, _n in found}),
    }


def type_details(
    context: Context, names: jsonld.Names, places: frozenset[str] | None = None
) -> list[dict[str, Any]]:
    """``GET /types?details=true``: each type with the names of its attributes (EntityType)."""
    with context.database.session() as session:
        stats = type_statistics(session, places)
    return [
        {
            "id": names.core.expand(stored),
            "type": "EntityType",
            "typeName": names.to_reader(stored),
            "attributeNames": [names.to_reader(a) for a in sorted(found.attributes)],
        }
        for stored, found in sorted(stats.items())
    ]


def type_info(
    context: Context, names: jsonld.Names, requested: str, places: frozenset[str] | None = None
) -> dict[str, Any]:
    """``GET /types/{type}``: one type's entity count and attributes (EntityTypeInfo)."""
    stored = names.canonical(requested)
    with context.database.session() as session:
        found = type_statistics(session, places).get(stored)
    if found is None:
        raise NgsiError("ResourceNotFound", f"no entity of type {requested} is held here")
    return {
        "id": names.core.expand(stored),
        "type": "EntityTypeInfo",
        "typeName": names.to_reader(stored),
        "entityCount": found.entities,
        "attributeDetails": [
            {
                "id": names.core.expand(name),
                "type": "Attribute",
                "attributeName": names.to_reader(name),
                "attributeTypes": sorted(kinds),
            }
            for name, kinds in sorted(found.attributes.items())
        ],
    }


def _attributes(
    session: Session, places: frozenset[str] | None = None
) -> dict[str, tuple[int, set[str], set[str]]]:
    """Attribute name → (entities having it, attribute types, entity types)."""
    found: dict[str, tuple[int, set[str], set[str]]] = {}
    for entity_type, stats in type_statistics(session, places).items():
        for name, kinds in stats.attributes.items():
            count, all_kinds, types = found.get(name, (0, set(), set()))
            found[name] = (
                count + stats.attribute_counts.get(name, 0),
                all_kinds | kinds,
                types | {entity_type},
            )
    return found


def attribute_list(
    context: Context, names: jsonld.Names, places: frozenset[str] | None = None
) -> dict[str, Any]:
    """``GET /attributes``: the attribute names present (AttributeList)."""
    with context.database.session() as session:
        found = _attributes(session, places)
    return {
        "id": "urn:ngsi-ld:AttributeList:qala",
        "type": "AttributeList",
        "attributeList": sorted({names.to_reader(name) for name in found}),
    }


def attribute_details(
    context: Context, names: jsonld.Names, places: frozenset[str] | None = None
) -> list[dict[str, Any]]:
    """``GET /attributes?details=true``: each attribute with the types that have it."""
    with context.database.session() as session:
        found = _attributes(session, places)
    return [
        {
            "id": names.core.expand(name),
            "type": "Attribute",
            "attributeName": names.to_reader(name),
            "typeNames": sorted(names.to_reader(t) for t in types),
        }
        for name, (_count, _kinds, types) in sorted(found.items())
    ]


def attribute_info(
    context: Context, names: jsonld.Names, requested: str, places: frozenset[str] | None = None
) -> dict[str, Any]:
    """``GET /attributes/{attr}``: how many entities have it, its types, the entity types."""
    stored = names.canonical(requested)
    with context.database.session() as session:
        found = _attributes(session, places).get(stored)
    if found is None:
        raise NgsiError("ResourceNotFound", f"no entity has an attribute {requested}")
    count, kinds, types = found
    return {
        "id": names.core.expand(stored),
        "type": "Attribute",
        "attributeName": names.to_reader(stored),
        "attributeCount": count,
        "attributeTypes": sorted(kinds),
        "typeNames": sorted(names.to_reader(t) for t in types),
    }


def temporal_query(
    context: Context,
    spec: EntityQuery,
    *,
    limit: int,
    offset: int,
    window: HistoryWindow,
    order_by: Sequence[OrderKey] = (),
) -> tuple[TemporalAnswer, int]:
    """One page of the matching entities with their history, and how many match in all."""
    with context.database.session() as session:
        if order_by:
            every, total = query_entities(session, spec, limit=10_000_000, offset=0)
            rows = order_entities(every, order_by)[offset : offset + limit]
        else:
            rows, total = query_entities(session, spec, limit=limit, offset=offset)
        return temporal_entities(session, rows, window, query=True), total


def temporal_read(
    context: Context,
    entity_id: str,
    window: HistoryWindow,
    places: frozenset[str] | None = None,
) -> TemporalAnswer:
    """One entity with its history (``ResourceNotFound`` when none of ``attrs`` was ever held,
    or when it is not of the tenant's ``places``)."""
    with context.database.session() as session:
        entity = get_entity(session, entity_id, places)
        if window.attrs and not any(
            name in entity.attrs or has_history(session, entity_id, name) for name in window.attrs
        ):
            raise NgsiError(
                "ResourceNotFound", f"entity {entity_id} has none of the attributes {window.attrs}"
            )
        return temporal_entities(session, [entity], window)


def temporal_query_selectors(
    context: Context,
    specs: Sequence[EntityQuery],
    *,
    limit: int,
    offset: int,
    window: HistoryWindow,
) -> tuple[TemporalAnswer, int]:
    """``POST /temporal/entityOperations/query``: the union of what each selector matches."""
    with context.database.session() as session:
        found: dict[str, Entity] = {}
        for spec in specs:
            rows, _total = query_entities(session, spec, limit=10_000_000, offset=0)
            found.update((e.id, e) for e in rows)
        ordered = [found[key] for key in sorted(found)]
        answer = temporal_entities(session, ordered[offset : offset + limit], window, query=True)
        return answer, len(ordered)


# ---------------------------------------------------------------------------------------------
# Subscriptions


def subscribe(context: Context, body: Any, tenant: str | None = None) -> str:
    """Store a subscription made under ``tenant``; returns its id."""
    with context.database.transaction() as session:
        record = subscription_services.create_subscription(session, body, tenant)
        subscription_id, periodic = record.id, record.periodic_due_at is not None
    if periodic:
        subscription_services.notifier_for(context).wake_periodic()
    return subscription_id


def subscriptions(
    context: Context, *, limit: int, offset: int, tenant: str | None = None
) -> tuple[list[dict[str, Any]], int]:
    """One page of the subscriptions seen under ``tenant`` (all when None), oldest first,
    rendered, and how many there are."""
    with context.database.session() as session:
        rows = subscription_services.list_subscriptions(
            session, limit=limit, offset=offset, tenant=tenant
        )
        total = subscription_services.count_subscriptions(session, tenant)
        return [subscription_services.render_subscription(r) for r in rows], total


def subscription(
    context: Context, subscription_id: str, tenant: str | None = None
) -> dict[str, Any]:
    with context.database.session() as session:
        record = subscription_services.get_subscription(session, subscription_id, tenant)
        return subscription_services.render_subscription(record)


def update_subscription(
    context: Context, subscription_id: str, patch: Any, tenant: str | None = None
) -> None:
    with context.database.transaction() as session:
        record = subscription_services.update_subscription(session, subscription_id, patch, tenant)
        periodic = record.periodic_due_at is not None
    if periodic:
        subscription_services.notifier_for(context).wake_periodic()


def unsubscribe(context: Context, subscription_id: str, tenant: str | None = None) -> None:
    with context.database.transaction() as session:
        subscription_services.delete_subscription(session, subscription_id, tenant)
