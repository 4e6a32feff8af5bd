"""Context entities in the Qala store: create, read, update, delete, batch operations and queries.

Entities whose properties carry an observation time (``observedAt``, or Smart Data Models'
``dateObserved``) also feed ingestion: each numeric property becomes a reading of the entity (as
its own sensor), so an AirQualityObserved upsert is stored in the history, evaluated by the rules
and answered by temporal queries, exactly like an MQTT reading.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Select, Text, cast, delete, or_, select
from sqlalchemy.orm import Session

from qala.components.operate import changes
from qala.components.operate.attribute_history import record_changes
from qala.components.operate.ingest import IngestReport, RulesRunner, ingest_in_session, now_us
from qala.components.operate.models import Entity, Observation, Sensor
from qala.components.operate.ngsi import (
    SCOPE,
    TYPES,
    EntityInput,
    GeoQuery,
    NgsiError,
    QNode,
    QTerm,
    box_of,
    compile_pattern,
    geo_matches,
    instances_of,
    is_null,
    merge_instances,
    pas182_concept,
    place_code_of,
    point_of,
    q_matches,
    scope_matches,
    types_of,
)
from qala.components.operate.ordering import OrderKey, order_entities
from qala.components.operate.readings import reading_problems, readings_from_entity
from qala.components.operate.sysattrs import stamp as stamp_attributes
from qala.core.clock import utc_now


@dataclass
class WriteResult:
    """Entities created/changed by a write, and the ingestion it triggered."""

    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    errors: list[tuple[str, NgsiError]] = field(default_factory=list)
    ingest: IngestReport = field(default_factory=IngestReport)

    @property
    def changed(self) -> list[str]:
        return self.created + self.updated

    def merge(self, other: WriteResult) -> None:
        """Add another write's entities and ingestion to this one (errors stay apart)."""
        self.created += other.created
        self.updated += other.updated
        self.ingest.merge(other.ingest)


def get_entity(session: Session, entity_id: str, places: frozenset[str] | None = None) -> Entity:
    """The entity ``entity_id``; under a tenant (``places``: its place codes) one of another
    city is as absent as one never written."""
    entity = session.get(Entity, entity_id)
    if entity is None or not visible(entity, places):
        raise NgsiError("ResourceNotFound", f"entity {entity_id} does not exist")
    return entity


def visible(entity: Entity, places: frozenset[str] | None) -> bool:
    """Whether a read under a tenant's ``places`` sees ``entity`` (every entity when None)."""
    return places is None or entity.place_code in places


def _place_fields(entity: Entity) -> None:
    point = point_of(entity.attrs)
    entity.lat, entity.lon = point if point else (None, None)
    box = box_of(entity.attrs)
    entity.lat_min, entity.lat_max, entity.lon_min, entity.lon_max = (
        box if box else (None, None, None, None)
    )
    place = place_code_of(entity.attrs)
    if place is not None:
        entity.place_code = place


def _observe(session: Session, entity: Entity, runner: RulesRunner, result: WriteResult) -> None:
    readings = readings_from_entity(entity.id, entity.attrs)
    if not readings:
        return
    for reading in readings:  # the same checks as every other channel (readings.reading_problems)
        problems = reading_problems(reading)
        if problems:
            reasons = "; ".join(reason for _field, reason in problems)
            raise NgsiError("BadRequestData", f"attribute `{reading.quantity}`: {reasons}")
    sensor = session.get(Sensor, entity.id)
    if sensor is None:
        sensor = Sensor(id=entity.id, entity_id=entity.id, name=entity.type, status="active")
        session.add(sensor)
    sensor.lat, sensor.lon = entity.lat, entity.lon
    if entity.place_code:
        sensor.place_code = entity.place_code
    session.flush()
    result.ingest.merge(ingest_in_session(session, readings, runner=runner, refresh_entities=False))


def observe_instances(
    session: Session,
    entity: Entity,
    instances: dict[str, list[dict[str, Any]]],
    *,
    runner: RulesRunner,
    result: WriteResult,
) -> None:
    """Store attribute instances given with their ``observedAt`` in the observation history
    (the temporal API's writes): each numeric one becomes a reading of the entity's sensor."""
    for name, values in instances.items():
        for instance in values:
            probe = Entity(id=entity.id, type=entity.type, attrs={name: instance})
            probe.lat, probe.lon, probe.place_code = entity.lat, entity.lon, entity.place_code
            _observe(session, probe, runner, result)


def delete_history(session: Session, entity_id: str, *, quantity: str | None = None) -> int:
    """Delete an entity's sensor history (``DELETE /temporal/entities/{id}``), or only that of
    one ``quantity`` (attribute); returns how many observations went."""
    sensors = list(session.scalars(select(Sensor).where(Sensor.entity_id == entity_id)))
    ids = [s.id for s in sensors]
    if not ids:
        return 0
    statement = delete(Observation).where(Observation.sensor.in_(ids))
    if quantity is not None:
        statement = statement.where(Observation.quantity == quantity)
    removed = session.execute(statement).rowcount or 0  # type: ignore[attr-defined]
    if quantity is None:
        for sensor in sensors:
            session.delete(sensor)
    return int(removed)


def create_entity(
    session: Session, data: EntityInput, *, runner: RulesRunner, result: WriteResult | None = None
) -> WriteResult:
    """Create an entity; ``AlreadyExists`` when the id is taken."""
    result = result or WriteResult()
    if session.get(Entity, data.id) is not None:
        raise NgsiError("AlreadyExists", f"entity {data.id} already exists")
    stamp = utc_now()
    attrs = dict(data.attrs)
    stamp_attributes(attrs, {}, list(attrs), stamp)
    entity = Entity(
        id=data.id,
        type=data.type,
        concept=pas182_concept(data.type),
        attrs=attrs,
        context=data.context,
        created_at=stamp,
        modified_at=stamp,
    )
    _place_fields(entity)
    session.add(entity)
    session.flush()
    record_changes(session, entity.id, {}, entity.attrs, now_us())
    result.created.append(entity.id)
    result.ingest.note(changes.created(entity.id, entity.attrs))
    _observe(session, entity, runner, result)
    return result


def replace_entity(
    session: Session, data: EntityInput, *, runner: RulesRunner, result: WriteResult | None = None
) -> WriteResult:
    """Replace every attribute of an existing entity (PUT, and upsert with ``options=replace``)."""
    result = result or WriteResult()
    entity = get_entity(session, data.id)
    record_changes(session, entity.id, entity.attrs, data.attrs, now_us())
    entity.type = data.type
    entity.concept = pas182_concept(data.type)
    attrs = dict(data.attrs)
    moment = utc_now()
    stamp_attributes(attrs, entity.attrs, list(attrs), moment)
    written = [*entity.attrs, *attrs]
    result.ingest.note(changes.describe(entity.id, entity.attrs, attrs, written, at=moment))
    entity.attrs = attrs
    if data.context is not None:
        entity.context = data.context
    entity.modified_at = moment
    _place_fields(entity)
    result.updated.append(entity.id)
    _observe(session, entity, runner, result)
    return result


def merge_attributes(
    session: Session,
    entity_id: str,
    attrs: dict[str, dict[str, Any]],
    *,
    runner: RulesRunner,
    update: bool = False,
    no_overwrite: bool = False,
    merge: bool = False,
    result: WriteResult | None = None,
) -> tuple[WriteResult, list[str], list[str]]:
    """Update (``update``, clause 5.6.2) or append attributes; returns (result, updated, not
    updated).

    Both add the attributes the entity lacks and the instances of a datasetId it lacks (an
    update "appends non-existing ones" in clause 5.6.2 of GS CIM 009 V1.9.1; NGSI-LD 1.0–1.2
    left them out). An update
    changes scopes only where the entity has some, and reports a ``urn:ngsi-ld:null`` that
    names no instance as not updated. An attribute given as ``urn:ngsi-ld:null`` is deleted.
    ``merge`` (merge-patch, clause 5.6.17) keeps the members and sub-attributes of an existing
    attribute that the new one does not give.
    """
    result = result or WriteResult()
    entity = get_entity(session, entity_id)
    current = dict(entity.attrs)
    done: list[str] = []
    skipped: list[str] = []
    for name, attribute in attrs.items():
        if name == SCOPE:
            changed = merge_scope(current, attribute, update, no_overwrite)
            (done if changed else skipped).append(name)
            continue
        if name == TYPES:
            # Types are only ever added (clause 4.16); those the entity has stay.
            had = types_of(entity.type, current)
            types = list(dict.fromkeys([*had, *attribute]))
            if types != had:
                current[TYPES] = types
                done.append(name)
            continue
        if no_overwrite and name in current:
            # noOverwrite keeps the instances the entity has; one with a new datasetId is new
            # (clause 4.5.5) and is appended.
            held = {i.get("datasetId") for i in instances_of(current[name])}
            fresh = [i for i in instances_of(attribute) if i.get("datasetId") not in held]
            if len(fresh) < len(instances_of(attribute)):
                skipped.append(name)
            if not fresh:
                continue
            if len(fresh) > 1:
                current[name] = merge_instances(current[name], fresh)
                done.append(name)
                continue
            attribute = fresh[0]
        if is_null(attribute):
            # The marker deletes the instance it names by datasetId (none: the default one).
            instances = instances_of(current.get(name))
            dataset = attribute.get("datasetId")
            kept = [i for i in instances if i.get("datasetId") != dataset]
            if len(kept) < len(instances):
                if kept:
                    current[name] = kept[0] if len(kept) == 1 else kept
                else:
                    del current[name]
                done.append(name)
            elif update:
                skipped.append(name)
            continue
        existing = current.get(name)
        if isinstance(existing, list) or isinstance(attribute, list):
            current[name] = merge_instances(existing, attribute)
            done.append(name)
            continue
        if isinstance(existing, dict) and existing.get("datasetId") != attribute.get("datasetId"):
            current[name] = merge_instances(existing, attribute)
            done.append(name)
            continue
        same_type = isinstance(existing, dict) and attribute.get("type") == existing.get("type")
        if same_type and (merge or (update and attribute.get("type") == "Property")):
            merged = dict(existing or {})
            merged.update(attribute)
            attribute = {k: v for k, v in merged.items() if not is_null(v)}
        current[name] = attribute
        done.append(name)
    if done:
        moment = utc_now()
        stamp_attributes(current, entity.attrs, done, moment)
        record_changes(session, entity.id, entity.attrs, current, now_us())
        result.ingest.note(changes.describe(entity.id, entity.attrs, current, done, at=moment))
        entity.attrs = current
        entity.modified_at = moment
        _place_fields(entity)
        if entity.id not in result.created:
            result.ingest.changed_attributes.setdefault(entity.id, []).extend(done)
        result.updated.append(entity.id)
        _observe(session, entity, runner, result)
    return result, done, skipped


def merge_scope(current: dict[str, Any], scope: Any, update: bool, no_overwrite: bool) -> bool:
    """Write an entity's scopes into ``current`` (its attributes): replaced, joined to those it
    has (``no_overwrite``), deleted by ``urn:ngsi-ld:null``; an ``update`` only changes scopes
    the entity has (clause 5.6.2). Whether anything was written."""
    present = isinstance(current.get(SCOPE), list)
    if update and not present:
        return False
    if is_null(scope):
        return current.pop(SCOPE, None) is not None
    if no_overwrite and present:
        current[SCOPE] = list(dict.fromkeys([*current[SCOPE], *scope]))
    else:
        current[SCOPE] = list(scope)
    return True


def with_types(data: EntityInput) -> dict[str, Any]:
    """``data``'s attributes with its types, for a write that merges them into an existing
    entity (its types are added to the entity's: clause 4.16)."""
    return {**data.attrs, TYPES: types_of(data.type, data.attrs)}


def upsert_entity(
    session: Session,
    data: EntityInput,
    *,
    runner: RulesRunner,
    replace: bool = False,
    result: WriteResult | None = None,
) -> WriteResult:
    """Create the entity, or merge its attributes into the existing one (``replace``: overwrite all)."""
    result = result or WriteResult()
    if session.get(Entity, data.id) is None:
        return create_entity(session, data, runner=runner, result=result)
    if replace:
        return replace_entity(session, data, runner=runner, result=result)
    entity = get_entity(session, data.id)
    if data.context is not None:
        entity.context = data.context
    merge_attributes(session, data.id, with_types(data), runner=runner, result=result)
    if data.id not in result.updated:
        result.updated.append(data.id)
    return result


def delete_entity(session: Session, entity_id: str, *, result: WriteResult | None = None) -> None:
    """Delete an entity; ``result`` learns what it was (its subscriptions are told)."""
    entity = get_entity(session, entity_id)
    if result is not None:
        snapshot = changes.DeletedEntity(
            type=entity.type,
            attrs=dict(entity.attrs),
            created_at=entity.created_at,
            modified_at=entity.modified_at,
            deleted_at=utc_now(),
        )
        result.ingest.note(changes.deleted(entity.id, snapshot))
    session.delete(entity)


def delete_attribute(
    session: Session,
    entity_id: str,
    name: str,
    *,
    dataset_id: str | None = None,
    delete_all: bool = False,
    result: WriteResult | None = None,
) -> None:
    """Delete an attribute's default instance, the instance ``dataset_id``, or (``delete_all``)
    every instance; ``result`` learns what went."""
    entity = get_entity(session, entity_id)
    if name not in entity.attrs:
        raise NgsiError("ResourceNotFound", f"entity {entity_id} has no attribute `{name}`")
    attrs = dict(entity.attrs)
    if name == SCOPE:
        del attrs[SCOPE]
        entity.attrs = attrs
        entity.modified_at = utc_now()
        return
    instances = instances_of(attrs[name])
    kept = [] if delete_all else [i for i in instances if i.get("datasetId") != dataset_id]
    if len(kept) == len(instances):
        which = f"datasetId {dataset_id}" if dataset_id else "a default instance"
        raise NgsiError("ResourceNotFound", f"attribute `{name}` of {entity_id} has no {which}")
    if kept:
        attrs[name] = kept[0] if len(kept) == 1 else kept
    else:
        del attrs[name]
    moment = utc_now()
    if result is not None:
        result.ingest.note(changes.describe(entity.id, entity.attrs, attrs, [name], at=moment))
        result.updated.append(entity.id)
    entity.attrs = attrs
    entity.modified_at = moment
    _place_fields(entity)


def delete_all(session: Session, entity_ids: Sequence[str]) -> None:  # pragma: no cover - helper
    session.execute(delete(Entity).where(Entity.id.in_(list(entity_ids))))


# ---------------------------------------------------------------------------------------------
# Queries


@dataclass(frozen=True)
class EntityQuery:
    """The filters of ``GET /entities`` (each optional; together they AND)."""

    types: tuple[str, ...] = ()
    type_groups: tuple[tuple[str, ...], ...] = ()
    """A type selection with ``;`` (and): alternatives each naming types an entity must all
    have (``types`` then lists every name, for the SQL pre-filter)."""
    ids: tuple[str, ...] = ()
    id_pattern: str | None = None
    q: QNode | QTerm | None = None
    attrs: tuple[str, ...] = ()
    geo: GeoQuery | None = None
    concept: str | None = None
    scope_q: str | None = None
    order_by: tuple[OrderKey, ...] = ()
    places: frozenset[str] | None = None
    """The place codes of the tenant read under (``NGSILD-Tenant``); None: every city."""


def query_entities(
    session: Session, query: EntityQuery, *, limit: int, offset: int
) -> tuple[list[Entity], int]:
    """Matching entities ordered by id (or ``orderBy``), one page of them, and the total
    count."""
    statement = select(Entity).order_by(Entity.id)
    if query.types:
        # Entities of several types keep them in their attributes (ngsi.TYPES): the SQL
        # pre-filter lets those through and the exact test is below.
        serialised = cast(Entity.attrs, Text)
        statement = statement.where(
            or_(
                Entity.type.in_(query.types),
                serialised.like('%"type": [%'),
                serialised.like('%"type":[%'),
            )
        )
    if query.ids:
        statement = statement.where(Entity.id.in_(query.ids))
    if query.concept:
        statement = statement.where(Entity.concept == query.concept)
    if query.places is not None:
        statement = statement.where(Entity.place_code.in_(sorted(query.places)))
    if query.geo is not None and query.geo.attribute == "location":
        statement = _within_geo_box(statement, query.geo)
    pattern = compile_pattern(query.id_pattern, what="idPattern") if query.id_pattern else None
    matched: list[Entity] = []
    for entity in session.scalars(statement):
        if pattern is not None and not pattern.fullmatch(entity.id):
            continue
        if query.types and not _of_types(query, types_of(entity.type, entity.attrs)):
            continue
        if query.attrs and not any(name in entity.attrs for name in query.attrs):
            continue
        if query.q is not None and not q_matches(query.q, entity.attrs):
            continue
        if query.scope_q is not None and not scope_matches(query.scope_q, entity.attrs):
            continue
        if query.geo is not None and not geo_matches(query.geo, entity.attrs):
            continue
        matched.append(entity)
    if query.order_by:
        matched = order_entities(matched, query.order_by)
    return matched[offset : offset + limit], len(matched)


def _within_geo_box(statement: Select[Entity], geo: GeoQuery) -> Select[Entity]:
    """Narrow to entities whose box (``ngsi.box_of``) can hold a match, as
    ``GeoQuery.box_test`` says; shapely decides on those that are left."""
    box = geo.bounding_box()
    if box is None:
        return statement
    lat_min, lat_max, lon_min, lon_max = box
    if geo.box_test == "inside":
        return statement.where(
            Entity.lat_min >= lat_min,
            Entity.lat_max <= lat_max,
            Entity.lon_min >= lon_min,
            Entity.lon_max <= lon_max,
        )
    if geo.box_test == "around":
        return statement.where(
            Entity.lat_min <= lat_min,
            Entity.lat_max >= lat_max,
            Entity.lon_min <= lon_min,
            Entity.lon_max >= lon_max,
        )
    return statement.where(
        Entity.lat_min <= lat_max,
        Entity.lat_max >= lat_min,
        Entity.lon_min <= lon_max,
        Entity.lon_max >= lon_min,
    )


def _of_types(query: EntityQuery, types: list[str]) -> bool:
    if query.type_groups:
        return any(all(name in types for name in group) for group in query.type_groups)
    return bool(set(query.types) & set(types))


def entity_types(session: Session, places: frozenset[str] | None = None) -> list[tuple[str, int]]:
    """Entity types present (of the tenant's ``places``, when given), with how many entities
    each."""
    from sqlalchemy import func

    statement = select(Entity.type, func.count()).group_by(Entity.type).order_by(Entity.type)
    if places is not None:
        statement = statement.where(Entity.place_code.in_(sorted(places)))
    rows = session.execute(statement)
    return [(t, int(n)) for t, n in rows]


@dataclass
class TypeStats:
    """What the store holds of one entity type: how many entities, and per attribute name the
    attribute types met (Property, Relationship…) and how many entities have it."""

    entities: int = 0
    attributes: dict[str, set[str]] = field(default_factory=dict)
    attribute_counts: dict[str, int] = field(default_factory=dict)


def type_statistics(session: Session, places: frozenset[str] | None = None) -> dict[str, TypeStats]:
    """Entity type → ``TypeStats`` over every stored entity, or those of the tenant's
    ``places`` (the discovery endpoints)."""
    stats: dict[str, TypeStats] = {}
    statement = select(Entity.type, Entity.attrs)
    if places is not None:
        statement = statement.where(Entity.place_code.in_(sorted(places)))
    for entity_type, attrs in session.execute(statement):
        found = stats.setdefault(entity_type, TypeStats())
        found.entities += 1
        for name, attribute in (attrs or {}).items():
            kinds = found.attributes.setdefault(name, set())
            found.attribute_counts[name] = found.attribute_counts.get(name, 0) + 1
            for instance in instances_of(attribute):
                if isinstance(instance.get("type"), str):
                    kinds.add(instance["type"])
    return stats


def list_by_concept(session: Session, concept: str) -> list[Entity]:
    """Entities of one PAS 182 concept (organisation, place, item, observation…)."""
    return list(
        session.scalars(select(Entity).where(Entity.concept == concept).order_by(Entity.id))
    )


def observed_sensor_ids(session: Session, entity_ids: Iterable[str]) -> dict[str, list[str]]:
    """Entity id → ids of the sensors whose readings form its history."""
    mapping: dict[str, list[str]] = {}
    for sensor_id, entity_id in session.execute(
        select(Sensor.id, Sensor.entity_id).where(Sensor.entity_id.in_(list(entity_ids)))
    ):
        mapping.setdefault(entity_id, []).append(sensor_id)
    return mapping


_ = now_us
