"""The history of attribute instances that entity writes leave (NGSI-LD clause 4.5.7).

The entity API (create, replace, update, merge, upsert, batches) records each attribute instance
it writes that differs from the one it replaces, so that the temporal API answers the evolution
of text, relationships, language maps and geometries too. Numeric properties with an
observation time are sensor readings: they go to the observation history only (the high-rate
path), never here, and neither does Smart Data Models' ``dateObserved``, their time. The temporal API's own writes record their instances themselves (see
``temporal.record_instances``) and mark the session so that nothing is recorded twice.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from qala.components.operate.models import AttributeInstance
from qala.components.operate.ngsi import NgsiError, instances_of
from qala.components.operate.readings import parse_time_us

INSTANCE_PREFIX = "urn:ngsi-ld:attribute:instance:"
TEMPORAL_WRITE = "qala.operate.temporal_write"
"""``session.info`` key set while the temporal API writes (it records its own instances)."""


def new_instance_id() -> str:
    return f"{INSTANCE_PREFIX}{uuid.uuid4()}"


def fresh_instance(
    entity_id: str,
    name: str,
    body: dict[str, Any],
    now: int,
    *,
    observed: int | None = None,
    deleted: bool = False,
) -> AttributeInstance:
    """A new history instance of attribute ``name``, created (and, ``deleted``, deleted) at
    ``now`` microseconds, of the datasetId its body names."""
    return AttributeInstance(
        instance_id=new_instance_id(),
        entity_id=entity_id,
        attr=name,
        dataset_id=body.get("datasetId"),
        observed_us=observed,
        created_us=now,
        modified_us=now,
        deleted_us=now if deleted else None,
        body=body,
    )


def observed_us(instance: Mapping[str, Any]) -> int | None:
    raw = instance.get("observedAt")
    if raw is None:
        return None
    try:
        return parse_time_us(raw)
    except (ValueError, TypeError) as exc:
        raise NgsiError("BadRequestData", f"observedAt {raw!r}: {exc}") from None


def _is_reading(instance: Mapping[str, Any], attrs: Mapping[str, Any]) -> bool:
    value = instance.get("value")
    numeric = isinstance(value, int | float) and not isinstance(value, bool)
    timed = "observedAt" in instance or "dateObserved" in attrs
    return numeric and instance.get("type", "Property") == "Property" and timed


_SYSTEM_TIMES = ("createdAt", "modifiedAt")


def _content(instance: Any) -> Any:
    """An instance without the times the entity API stamps on every write: a rewrite of the
    same value is no change."""
    if not isinstance(instance, Mapping):
        return instance
    return {k: v for k, v in instance.items() if k not in _SYSTEM_TIMES}


def record_changes(
    session: Session,
    entity_id: str,
    before: Mapping[str, Any],
    after: Mapping[str, Any],
    now: int,
) -> None:
    """Record the instances of ``after`` that are new or changed since ``before``."""
    if session.info.get(TEMPORAL_WRITE):
        return
    for name, attribute in after.items():
        if name == "dateObserved":  # the time of the readings, which carry it as observedAt
            continue
        old = {i.get("datasetId"): _content(i) for i in instances_of(before.get(name))}
        for instance in instances_of(attribute):
            if _is_reading(instance, after) or old.get(instance.get("datasetId")) == _content(
                instance
            ):
                continue
            body = {k: v for k, v in instance.items() if k != "instanceId"}
            try:
                observed = observed_us(body)
            except NgsiError:  # the entity API's own checks decide on it; history keeps no time
                observed = None
            session.add(fresh_instance(entity_id, name, body, now, observed=observed))
