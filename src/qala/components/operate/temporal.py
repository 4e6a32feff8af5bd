"""Temporal representation of entities (ETSI GS CIM 009, clauses 4.5.7, 4.5.19 and 6.3.10).

An entity's history has two sources: the attribute instances the temporal API writes (every kind
of attribute, each with its ``instanceId``, in ``operate_attribute_instance``) and the numeric
readings of its sensors (the partitioned observation history, which the high-rate ingestion
fills). A temporal answer joins both; an instance written through the temporal API hides the
reading stored with it (same attribute and time), since a numeric instance also enters the
observation history so that rules and indicators see it.

Answers come normalised (arrays of instances), as ``temporalValues`` (pairs of value and time,
one group per ``datasetId``) or as ``aggregatedValues`` (``aggrMethods`` per
``aggrPeriodDuration``). At most ``instance_limit`` instances per attribute are returned: when an
attribute holds more, the answer is cut at one time for every attribute (so that no instance
before the cut is missing) and the caller answers 206 with a ``Content-Range``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from qala.components.operate.attribute_history import (
    INSTANCE_PREFIX,
    fresh_instance,
    observed_us,
)
from qala.components.operate.entities import observed_sensor_ids
from qala.components.operate.models import AttributeInstance, Entity, Observation
from qala.components.operate.ngsi import NgsiError
from qala.components.operate.readings import UNIT_CODES, parse_time_us
from qala.engines.detect import from_epoch_us

_CODES = {unit: code for code, unit in UNIT_CODES.items()}

READING_PREFIX = INSTANCE_PREFIX + "reading:"
"""Readings of the observation history have no row of their own: their instanceId names the
time, which with the entity and attribute is their key."""

TIME_PROPERTIES = ("observedAt", "createdAt", "modifiedAt", "deletedAt")
AGGREGATION_METHODS = (
    "totalCount",
    "distinctCount",
    "sum",
    "avg",
    "min",
    "max",
    "stddev",
    "sumsq",
)
DEFAULT_DATASET = "@none"

# Members of the simplified temporal representation per attribute type (clause 4.5.9).
_SIMPLIFIED = {
    "Property": ("values", "value", None),
    "GeoProperty": ("values", "value", None),
    "Relationship": ("objects", "object", None),
    "LanguageProperty": ("languageMaps", "languageMap", "languageMap"),
    "JsonProperty": ("jsons", "json", "json"),
    "VocabProperty": ("vocabs", "vocab", "vocab"),
    "ListProperty": ("valueLists", "valueList", "valueList"),
    "ListRelationship": ("objectLists", "objectList", "objectList"),
}


def iso(time_us: int) -> str:
    text = from_epoch_us(time_us).isoformat().replace("+00:00", "Z")
    return text.replace(".000000Z", "Z")


def _number(value: float) -> float | int:
    """A stored value as it was sent: history keeps floats, a whole number was most likely an
    integer (``80``, not ``80.0``)."""
    return int(value) if value.is_integer() and abs(value) < 2**53 else value


def time_window(
    timerel: str | None, time_at: str | None, end_time_at: str | None
) -> tuple[int | None, int | None]:
    """[start, end) in epoch µs from ``timerel`` (before, after, between) and its times."""
    if timerel is None:
        return None, None
    try:
        at = parse_time_us(time_at) if time_at else None
        end = parse_time_us(end_time_at) if end_time_at else None
    except (ValueError, TypeError) as exc:
        raise NgsiError(
            "BadRequestData", f"timeAt/endTimeAt must be ISO 8601 with an offset: {exc}"
        ) from None
    if at is None:
        raise NgsiError("BadRequestData", "timerel needs timeAt")
    if timerel == "before":
        return None, at
    if timerel == "after":
        return at, None
    if timerel == "between":
        if end is None:
            raise NgsiError("BadRequestData", "timerel=between needs endTimeAt")
        if end <= at:
            raise NgsiError("BadRequestData", "endTimeAt must be after timeAt")
        return at, end
    raise NgsiError("BadRequestData", f"timerel {timerel!r} is not before, after or between")


def check_time_property(name: str) -> str:
    if name not in TIME_PROPERTIES:
        raise NgsiError(
            "BadRequestData",
            f"timeproperty {name!r} is not observedAt, createdAt, modifiedAt or deletedAt",
        )
    return name


_DURATION = re.compile(
    r"^P(?!$)(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?"
    r"(?:T(?=\d)(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$"
)
_DURATION_US = (
    365 * 86_400_000_000,  # a year of 365 days
    30 * 86_400_000_000,  # a month of 30 days
    7 * 86_400_000_000,
    86_400_000_000,
    3_600_000_000,
    60_000_000,
)


def parse_duration_us(text: str) -> int:
    """Microseconds of an ISO 8601 duration (``PT1H``, ``P1D``, ``P1Y2M``); years count 365 days
    and months 30 (aggregation periods). ``PT0S`` is 0: the whole time range."""
    match = _DURATION.match(text.strip())
    if match is None:
        raise NgsiError(
            "BadRequestData", f"aggrPeriodDuration {text!r} is not an ISO 8601 duration"
        )
    *whole, seconds = match.groups()
    total = sum(int(n) * unit for n, unit in zip(whole, _DURATION_US, strict=True) if n)
    if seconds:
        total += round(float(seconds) * 1_000_000)
    if total > 1000 * _DURATION_US[0]:
        raise NgsiError("BadRequestData", f"aggrPeriodDuration {text!r} is over 1000 years")
    return total


@dataclass(frozen=True)
class Aggregation:
    methods: tuple[str, ...]
    period_us: int

    @classmethod
    def parse(cls, methods: str | None, period: str | None) -> Aggregation:
        names = tuple(m.strip() for m in (methods or "").split(",") if m.strip())
        if not names:
            raise NgsiError("BadRequestData", "aggregatedValues needs aggrMethods")
        for name in names:
            if name not in AGGREGATION_METHODS:
                raise NgsiError(
                    "BadRequestData",
                    f"aggrMethods {name!r} is not one of {', '.join(AGGREGATION_METHODS)}",
                )
        return cls(names, parse_duration_us(period) if period else 0)


@dataclass(frozen=True)
class HistoryWindow:
    """Which instances a temporal answer holds, and in which form."""

    attrs: tuple[str, ...] | None
    start_us: int | None
    end_us: int | None
    last_n: int | None
    temporal_values: bool
    time_property: str = "observedAt"
    dataset_ids: tuple[str, ...] | None = None
    aggregation: Aggregation | None = None
    sys_attrs: bool = False
    instance_limit: int | None = None

    def render(self, session: Session, entities: Sequence[Entity]) -> list[dict[str, Any]]:
        return temporal_entities(session, entities, self).entities


_TIME_COLUMNS = {
    "observedAt": AttributeInstance.observed_us,
    "createdAt": AttributeInstance.created_us,
    "modifiedAt": AttributeInstance.modified_us,
    "deletedAt": AttributeInstance.deleted_us,
}


@dataclass
class _Instance:
    time_us: int
    dataset_id: str | None
    body: dict[str, Any]


@dataclass
class TemporalAnswer:
    entities: list[dict[str, Any]]
    content_range: str | None = None
    """``date-time <start>-<end>/<size>`` when the answer was cut (206)."""


@dataclass
class _Gathered:
    entity: Entity
    attrs: dict[str, list[_Instance]] = field(default_factory=dict)
    kinds: dict[str, str] = field(default_factory=dict)
    """The type of each attribute, kept for those a page cut left empty."""


def _instance_body(row: AttributeInstance, window: HistoryWindow) -> dict[str, Any]:
    body = dict(row.body)
    body["instanceId"] = row.instance_id
    if window.sys_attrs or window.time_property == "createdAt":
        body["createdAt"] = iso(row.created_us)
    if window.sys_attrs or window.time_property == "modifiedAt":
        body["modifiedAt"] = iso(row.modified_us)
    if row.deleted_us is not None:
        body["deletedAt"] = iso(row.deleted_us)
    return body


def _reading_body(
    time_us: int, value: float, unit: str, received_us: int, window: HistoryWindow
) -> dict[str, Any]:
    body: dict[str, Any] = {"type": "Property", "value": _number(value), "observedAt": iso(time_us)}
    if unit in _CODES:
        body["unitCode"] = _CODES[unit]
    body["instanceId"] = f"{READING_PREFIX}{time_us}"
    if window.sys_attrs or window.time_property != "observedAt":
        body["createdAt"] = body["modifiedAt"] = iso(received_us)
    return body


def _wanted_dataset(dataset_id: str | None, window: HistoryWindow) -> bool:
    if window.dataset_ids is None:
        return True
    return (dataset_id or DEFAULT_DATASET) in window.dataset_ids


def _gather(session: Session, entities: Sequence[Entity], window: HistoryWindow) -> list[_Gathered]:
    ids = [e.id for e in entities]
    gathered = {e.id: _Gathered(e) for e in entities}
    covered: set[tuple[str, str, int]] = set()
    column = _TIME_COLUMNS[window.time_property]
    if ids:
        # The instances written with a time: they hide the readings stored with them.
        times = select(
            AttributeInstance.entity_id, AttributeInstance.attr, AttributeInstance.observed_us
        ).where(AttributeInstance.entity_id.in_(ids), AttributeInstance.observed_us.is_not(None))
        if window.attrs:
            times = times.where(AttributeInstance.attr.in_(list(window.attrs)))
        covered = {(e, a, t) for e, a, t in session.execute(times) if t is not None}
        statement = select(AttributeInstance).where(
            AttributeInstance.entity_id.in_(ids), column.is_not(None)
        )
        if window.time_property != "deletedAt":  # deletions are seen by deletedAt only
            statement = statement.where(AttributeInstance.deleted_us.is_(None))
        if window.attrs:
            statement = statement.where(AttributeInstance.attr.in_(list(window.attrs)))
        if window.start_us is not None:
            statement = statement.where(column >= window.start_us)
        if window.end_us is not None:
            statement = statement.where(column < window.end_us)
        for row in session.scalars(statement):
            if not _wanted_dataset(row.dataset_id, window):
                continue
            time_us = getattr(row, column.key)
            gathered[row.entity_id].attrs.setdefault(row.attr, []).append(
                _Instance(time_us, row.dataset_id, _instance_body(row, window))
            )
    sensors = observed_sensor_ids(session, ids)
    owner = {sensor: entity for entity, found in sensors.items() for sensor in found}
    if owner and _wanted_dataset(None, window) and window.time_property != "deletedAt":
        time_column = (
            Observation.time_us if window.time_property == "observedAt" else Observation.received_us
        )
        readings = select(
            Observation.sensor,
            Observation.quantity,
            Observation.time_us,
            Observation.value,
            Observation.unit,
            Observation.received_us,
        ).where(Observation.sensor.in_(list(owner)))
        if window.attrs:
            readings = readings.where(Observation.quantity.in_(list(window.attrs)))
        if window.start_us is not None:
            readings = readings.where(time_column >= window.start_us)
        if window.end_us is not None:
            readings = readings.where(time_column < window.end_us)
        for sensor, quantity, time_us, value, unit, received_us in session.execute(readings):
            entity_id = owner[sensor]
            if (entity_id, quantity, time_us) in covered:
                continue
            at = time_us if window.time_property == "observedAt" else received_us
            gathered[entity_id].attrs.setdefault(quantity, []).append(
                _Instance(at, None, _reading_body(time_us, value, unit, received_us, window))
            )
    for item in gathered.values():
        for instances in item.attrs.values():
            instances.sort(key=lambda i: i.time_us)
    return [gathered[e.id] for e in entities]


def _paginate(items: list[_Gathered], window: HistoryWindow) -> str | None:
    """Keep ``lastN`` and at most ``instance_limit`` instances per attribute; when an attribute
    had more, cut every attribute at the same time and return the Content-Range."""
    limit = window.instance_limit
    last_n = window.last_n
    descending = last_n is not None
    keep = min(x for x in (limit, last_n) if x is not None) if (limit or last_n) else None
    cut: int | None = None
    for item in items:
        for name, instances in item.attrs.items():
            if keep is None or len(instances) <= keep:
                continue
            kept = instances[-keep:] if descending else instances[:keep]
            item.attrs[name] = kept
            if limit is not None and (last_n is None or limit < last_n):
                edge = kept[0].time_us if descending else kept[-1].time_us
                if cut is not None:
                    edge = max(cut, edge) if descending else min(cut, edge)
                cut = edge
    if cut is None:
        return None
    for item in items:
        for name, instances in item.attrs.items():
            if instances:
                item.kinds[name] = str(instances[0].body.get("type", "Property"))
            item.attrs[name] = [
                i for i in instances if (i.time_us >= cut if descending else i.time_us <= cut)
            ]
    times = [i.time_us for item in items for v in item.attrs.values() for i in v]
    if not times:
        return None
    if descending:
        start = window.end_us if window.end_us is not None else max(times)
        end = min(times)
    else:
        start = window.start_us if window.start_us is not None else min(times)
        end = max(times)
    size = str(last_n) if last_n is not None else "*"
    return f"date-time {iso(start)}-{iso(end)}/{size}"


def _simplified(instances: list[_Instance]) -> dict[str, Any] | list[dict[str, Any]]:
    groups: dict[str | None, list[_Instance]] = {}
    for instance in instances:
        groups.setdefault(instance.dataset_id, []).append(instance)
    out = []
    for dataset_id, members in groups.items():
        kind = str(members[0].body.get("type", "Property"))
        key, member, wrap = _SIMPLIFIED.get(kind, _SIMPLIFIED["Property"])
        group: dict[str, Any] = {"type": kind}
        if dataset_id is not None:
            group["datasetId"] = dataset_id
        pairs = []
        for instance in members:
            value = instance.body.get(member)
            pairs.append([{wrap: value} if wrap else value, iso(instance.time_us)])
        group[key] = pairs
        out.append(group)
    return out[0] if len(out) == 1 else out


def _empty(item: _Gathered, name: str) -> dict[str, Any]:
    kind = item.kinds.get(name, "Property")
    return {"type": kind, _SIMPLIFIED.get(kind, _SIMPLIFIED["Property"])[0]: []}


def _aggregate_values(method: str, values: list[Any]) -> Any:
    if method == "totalCount":
        return len(values)
    if method == "distinctCount":
        return len({repr(v) for v in values})
    numbers = [float(v) for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
    if method in ("min", "max"):
        if numbers:
            return min(numbers) if method == "min" else max(numbers)
        texts = [v for v in values if isinstance(v, str)]
        if not texts:
            return None
        return min(texts) if method == "min" else max(texts)
    if not numbers:
        return None
    if method == "sum":
        return sum(numbers)
    if method == "avg":
        return sum(numbers) / len(numbers)
    if method == "sumsq":
        return sum(n * n for n in numbers)
    # stddev: the sample standard deviation (0 for one value)
    if len(numbers) < 2:
        return 0.0
    mean = sum(numbers) / len(numbers)
    return math.sqrt(sum((n - mean) ** 2 for n in numbers) / (len(numbers) - 1))


def _aggregated(
    instances: list[_Instance], aggregation: Aggregation, origin: int, window: HistoryWindow
) -> dict[str, Any] | list[dict[str, Any]]:
    groups: dict[str | None, list[_Instance]] = {}
    for instance in instances:
        groups.setdefault(instance.dataset_id, []).append(instance)
    out = []
    for dataset_id, members in groups.items():
        kind = str(members[0].body.get("type", "Property"))
        _key, member, _wrap = _SIMPLIFIED.get(kind, _SIMPLIFIED["Property"])
        buckets: dict[int, list[Any]] = {}
        period = aggregation.period_us
        for instance in members:
            index = (instance.time_us - origin) // period if period else 0
            buckets.setdefault(index, []).append(instance.body.get(member))
        group: dict[str, Any] = {"type": kind}
        if dataset_id is not None:
            group["datasetId"] = dataset_id
        last = max(i.time_us for i in members)
        for method in aggregation.methods:
            series = []
            for index in sorted(buckets):
                value = _aggregate_values(method, buckets[index])
                if period:
                    start, end = origin + index * period, origin + (index + 1) * period
                else:
                    start = origin
                    end = window.end_us if window.end_us is not None else last
                series.append([value, iso(start), iso(end)])
            group[method] = series
        out.append(group)
    return out[0] if len(out) == 1 else out


def temporal_entities(
    session: Session, entities: Sequence[Entity], window: HistoryWindow, *, query: bool = False
) -> TemporalAnswer:
    """Each entity with its attributes as arrays of instances (or values, or aggregates).

    With ``attrs`` or ``datasetId``, only the entities holding instances of them are answered;
    a query (``query``) with a time range answers only the entities with instances in it."""
    items = _gather(session, entities, window)
    narrowed = window.start_us is not None or window.end_us is not None
    if (query and narrowed) or window.attrs or window.dataset_ids is not None:
        items = [item for item in items if item.attrs]
    content_range = _paginate(items, window) if window.aggregation is None else None
    out = []
    for item in items:
        record: dict[str, Any] = {"id": item.entity.id, "type": item.entity.type}
        if window.aggregation is not None:
            times = [i.time_us for v in item.attrs.values() for i in v]
            origin = window.start_us if window.start_us is not None else min(times, default=0)
        for name, instances in item.attrs.items():
            if not instances and content_range is None:
                continue
            if window.aggregation is not None:
                if instances:
                    record[name] = _aggregated(instances, window.aggregation, origin, window)
            elif window.temporal_values:
                record[name] = _simplified(instances) if instances else _empty(item, name)
            else:
                record[name] = [i.body for i in instances]
        out.append(record)
    return TemporalAnswer(out, content_range)


# ---------------------------------------------------------------------------------------------
# Writes


def record_instances(
    session: Session, entity_id: str, instances: dict[str, list[dict[str, Any]]], now: int
) -> None:
    """Store the instances the temporal API was given, each with a new instanceId; an instance
    of the same attribute, datasetId and observedAt as a stored one replaces it (keeping its
    instanceId), as creating a temporal entity again does (clause 5.6.11)."""
    for name, values in instances.items():
        for instance in values:
            body = {k: v for k, v in instance.items() if k != "instanceId"}
            observed = observed_us(body)
            dataset_id = body.get("datasetId")
            row = None
            if observed is not None:
                row = session.scalars(
                    select(AttributeInstance).where(
                        AttributeInstance.entity_id == entity_id,
                        AttributeInstance.attr == name,
                        AttributeInstance.observed_us == observed,
                        AttributeInstance.dataset_id == dataset_id
                        if dataset_id is not None
                        else AttributeInstance.dataset_id.is_(None),
                    )
                ).first()
            if row is not None:
                row.body = body
                row.modified_us = now
                _sync_reading(session, entity_id, name, observed, body)
                continue
            session.add(fresh_instance(entity_id, name, body, now, observed=observed))
            session.flush()
    session.flush()


_NULL_MEMBER: dict[str, tuple[str, Any]] = {
    "Relationship": ("object", "urn:ngsi-ld:null"),
    "ListRelationship": ("objectList", ["urn:ngsi-ld:null"]),
    "LanguageProperty": ("languageMap", {"@none": "urn:ngsi-ld:null"}),
    "JsonProperty": ("json", "urn:ngsi-ld:null"),
    "VocabProperty": ("vocab", "urn:ngsi-ld:null"),
    "ListProperty": ("valueList", ["urn:ngsi-ld:null"]),
}


def record_deletion(
    session: Session, entity_id: str, name: str, deleted: list[dict[str, Any]], now: int
) -> None:
    """The attribute instances an entity write deleted, as instances with ``deletedAt``."""
    for instance in deleted:
        kind = str(instance.get("type", "Property"))
        member, null = _NULL_MEMBER.get(kind, ("value", "urn:ngsi-ld:null"))
        body: dict[str, Any] = {"type": kind, member: null}
        if instance.get("datasetId") is not None:
            body["datasetId"] = instance["datasetId"]
        _add_deleted(session, entity_id, name, body, now)


def record_scope_deletion(session: Session, entity_id: str, now: int) -> None:
    """An entity's scopes deleted (``DELETE …/attrs/scope``), kept as an instance of ``scope``
    with ``deletedAt``. A scope is no attribute and has no NGSI-LD Null; the deleted state is
    no scope at all, a Property whose value is ``[]`` (what ETSI's 020_19 and 020_20 read back)."""
    _add_deleted(session, entity_id, "scope", {"type": "Property", "value": []}, now)


def _add_deleted(
    session: Session, entity_id: str, name: str, body: dict[str, Any], now: int
) -> None:
    session.add(fresh_instance(entity_id, name, body, now, deleted=True))


def _sync_reading(
    session: Session, entity_id: str, attr: str, observed: int | None, body: dict[str, Any]
) -> None:
    """The reading stored with a numeric instance takes the instance's new value."""
    value = body.get("value")
    if observed is None or not isinstance(value, int | float) or isinstance(value, bool):
        return
    sensor_clause, quantity_clause = _readings_of(session, entity_id, attr)
    session.execute(
        update(Observation)
        .where(sensor_clause, quantity_clause, Observation.time_us == observed)
        .values(value=float(value))
    )


def _readings_of(session: Session, entity_id: str, attr: str) -> Any:
    sensors = observed_sensor_ids(session, [entity_id]).get(entity_id, [])
    return Observation.sensor.in_(sensors), Observation.quantity == attr


def delete_instances(
    session: Session,
    entity_id: str,
    attr: str | None = None,
    *,
    dataset_id: str | None = None,
    every_dataset: bool = True,
) -> int:
    """Delete an entity's instances (of one attribute; of one datasetId, the default instance
    being ``dataset_id=None`` with ``every_dataset=False``); returns how many went."""
    statement = select(AttributeInstance).where(AttributeInstance.entity_id == entity_id)
    if attr is not None:
        statement = statement.where(AttributeInstance.attr == attr)
    if not every_dataset:
        statement = statement.where(
            AttributeInstance.dataset_id == dataset_id
            if dataset_id is not None
            else AttributeInstance.dataset_id.is_(None)
        )
    rows = list(session.scalars(statement))
    for row in rows:
        session.delete(row)
    session.flush()
    for row in rows:  # the readings stored with numeric instances, unless another keeps them
        if row.observed_us is not None and not _shares_time(
            session, entity_id, row.attr, row.observed_us
        ):
            _delete_reading(session, entity_id, row.attr, row.observed_us)
    return len(rows)


def _find_instance(
    session: Session, entity_id: str, attr: str, instance_id: str
) -> AttributeInstance | None:
    return session.scalars(
        select(AttributeInstance).where(
            AttributeInstance.instance_id == instance_id,
            AttributeInstance.entity_id == entity_id,
            AttributeInstance.attr == attr,
        )
    ).first()


def _reading_time(instance_id: str) -> int | None:
    if not instance_id.startswith(READING_PREFIX):
        return None
    try:
        return int(instance_id[len(READING_PREFIX) :])
    except ValueError:
        return None


def find_instance(session: Session, entity_id: str, attr: str, instance_id: str) -> None:
    """``ResourceNotFound`` unless the instance (a row, or a reading) exists."""
    if _find_instance(session, entity_id, attr, instance_id) is not None:
        return
    time_us = _reading_time(instance_id)
    if time_us is not None:
        sensor_clause, quantity_clause = _readings_of(session, entity_id, attr)
        found = session.scalars(
            select(Observation.id).where(
                sensor_clause, quantity_clause, Observation.time_us == time_us
            )
        ).first()
        if found is not None:
            return
    raise _not_found(entity_id, attr, instance_id)


def _not_found(entity_id: str, attr: str, instance_id: str) -> NgsiError:
    return NgsiError(
        "ResourceNotFound", f"attribute `{attr}` of {entity_id} has no instance {instance_id}"
    )


def has_history(session: Session, entity_id: str, attr: str) -> bool:
    found = session.scalars(
        select(AttributeInstance.id).where(
            AttributeInstance.entity_id == entity_id, AttributeInstance.attr == attr
        )
    ).first()
    if found is not None:
        return True
    sensor_clause, quantity_clause = _readings_of(session, entity_id, attr)
    return (
        session.scalars(select(Observation.id).where(sensor_clause, quantity_clause)).first()
        is not None
    )


def delete_one_instance(session: Session, entity_id: str, attr: str, instance_id: str) -> None:
    """``DELETE /temporal/entities/{id}/attrs/{attr}/{instanceId}``."""
    row = _find_instance(session, entity_id, attr, instance_id)
    if row is not None:
        observed = row.observed_us
        session.delete(row)
        session.flush()
        if observed is not None and not _shares_time(session, entity_id, attr, observed):
            _delete_reading(session, entity_id, attr, observed)
        return
    time_us = _reading_time(instance_id)
    if time_us is None or not _delete_reading(session, entity_id, attr, time_us):
        raise _not_found(entity_id, attr, instance_id)


def _shares_time(session: Session, entity_id: str, attr: str, observed: int) -> bool:
    return (
        session.scalars(
            select(AttributeInstance.id).where(
                AttributeInstance.entity_id == entity_id,
                AttributeInstance.attr == attr,
                AttributeInstance.observed_us == observed,
            )
        ).first()
        is not None
    )


def _delete_reading(session: Session, entity_id: str, attr: str, time_us: int) -> bool:
    sensor_clause, quantity_clause = _readings_of(session, entity_id, attr)
    statement = delete(Observation).where(
        sensor_clause, quantity_clause, Observation.time_us == time_us
    )
    return bool(session.execute(statement).rowcount)  # type: ignore[attr-defined]


def modify_instance(
    session: Session,
    entity_id: str,
    attr: str,
    instance_id: str,
    change: dict[str, Any],
    now: int,
) -> None:
    """``PATCH /temporal/entities/{id}/attrs/{attr}/{instanceId}``: the instance's members are
    replaced by those given (its instanceId stays)."""
    row = _find_instance(session, entity_id, attr, instance_id)
    if row is None:
        time_us = _reading_time(instance_id)
        value = change.get("value")
        if time_us is None or not isinstance(value, int | float) or isinstance(value, bool):
            raise _not_found(entity_id, attr, instance_id)
        sensor_clause, quantity_clause = _readings_of(session, entity_id, attr)
        result = session.execute(
            update(Observation)
            .where(sensor_clause, quantity_clause, Observation.time_us == time_us)
            .values(value=float(value))
        )
        if not result.rowcount:  # type: ignore[attr-defined]
            raise _not_found(entity_id, attr, instance_id)
        return
    before = row.observed_us
    body = {**row.body, **{k: v for k, v in change.items() if k != "instanceId"}}
    row.body = body
    row.observed_us = observed_us(body)
    row.dataset_id = body.get("datasetId")
    row.modified_us = now
    session.flush()
    if before is not None and before != row.observed_us:
        # The reading stored at the former time goes (unless another instance keeps it).
        if not _shares_time(session, entity_id, attr, before):
            _delete_reading(session, entity_id, attr, before)
    else:
        _sync_reading(session, entity_id, attr, before, body)
