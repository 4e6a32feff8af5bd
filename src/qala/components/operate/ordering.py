"""``orderBy`` (ETSI GS CIM 009 clause 4.23): entities ordered by id, type, createdAt,
modifiedAt, an attribute's value, a sub-attribute's value or an attribute's createdAt/modifiedAt,
each ascending (``;asc``, the default) or descending (``;desc``), several separated by commas.

Entities that lack a member come after those that have it, whichever the direction. The times
of an attribute come from its recorded history (``operate_attribute_instance``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from qala.components.operate.models import AttributeInstance, Entity
from qala.components.operate.ngsi import NgsiError, default_instance

_TIMES = ("createdAt", "modifiedAt")


@dataclass(frozen=True)
class OrderKey:
    path: tuple[str, ...]
    descending: bool


def parse_order_by(text: str | None) -> tuple[OrderKey, ...]:
    keys = []
    for item in (text or "").split(","):
        if not item.strip():
            continue
        member, _, direction = item.strip().partition(";")
        direction = direction.strip() or "asc"
        path = tuple(part.strip() for part in member.split("."))
        if direction not in ("asc", "desc") or not all(path) or len(path) > 2:
            raise NgsiError(
                "BadRequestData", f"orderBy {item.strip()!r}: use member[.sub][;asc|;desc]"
            )
        keys.append(OrderKey(path, direction == "desc"))
    return tuple(keys)


def _comparable(value: Any) -> tuple[int, Any]:
    if isinstance(value, bool):
        return (1, int(value))
    if isinstance(value, int | float):
        return (0, value)
    if isinstance(value, str):
        return (2, value)
    return (3, json.dumps(value, sort_keys=True, ensure_ascii=False))


def _attribute_times(
    session: Session, entities: Sequence[Entity], keys: Sequence[OrderKey]
) -> dict[tuple[str, str, str], int]:
    wanted = {k.path[0] for k in keys if len(k.path) == 2 and k.path[1] in _TIMES}
    if not wanted:
        return {}
    rows = session.execute(
        select(
            AttributeInstance.entity_id,
            AttributeInstance.attr,
            func.min(AttributeInstance.created_us),
            func.max(AttributeInstance.modified_us),
        )
        .where(
            AttributeInstance.entity_id.in_([e.id for e in entities]),
            AttributeInstance.attr.in_(sorted(wanted)),
            AttributeInstance.deleted_us.is_(None),
        )
        .group_by(AttributeInstance.entity_id, AttributeInstance.attr)
    )
    times: dict[tuple[str, str, str], int] = {}
    for entity_id, attr, created, modified in rows:
        times[(entity_id, attr, "createdAt")] = created
        times[(entity_id, attr, "modifiedAt")] = modified
    return times


def _member(entity: Entity, key: OrderKey, times: dict[tuple[str, str, str], int]) -> Any:
    head = key.path[0]
    if len(key.path) == 1:
        if head == "id":
            return entity.id
        if head == "type":
            return entity.type
        if head == "createdAt":
            return entity.created_at.timestamp()
        if head == "modifiedAt":
            return entity.modified_at.timestamp()
    attribute = default_instance(entity.attrs.get(head))
    if not isinstance(attribute, dict):
        return None
    if len(key.path) == 2:
        sub = key.path[1]
        if sub in _TIMES:
            return times.get((entity.id, head, sub))
        attribute = attribute.get(sub)
        if not isinstance(attribute, dict):
            return None
    for member in ("value", "object", "languageMap", "json", "vocab", "valueList", "objectList"):
        if member in attribute:
            return attribute[member]
    return None


def order_entities(
    session: Session, entities: Sequence[Entity], keys: Sequence[OrderKey]
) -> list[Entity]:
    """``entities`` in the order ``keys`` give (the first key the most significant)."""
    ordered = list(entities)
    times = _attribute_times(session, ordered, keys)
    for key in reversed(keys):  # stable sorts, least significant first

        def sort_key(entity: Entity, key: OrderKey = key) -> tuple[Any, ...]:
            value = _member(entity, key, times)
            if value is None:
                return (0,) if key.descending else (1,)
            return (1 if key.descending else 0, *_comparable(value))

        ordered.sort(key=sort_key, reverse=key.descending)
    return ordered
