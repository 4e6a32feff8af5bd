"""``orderBy`` for entity queries (ETSI GS CIM 009 clause 4.22 in 1.9: ``orderBy=path[;asc|;desc],…``).

A path is ``id``, ``type``, ``createdAt``, ``modifiedAt``, an attribute name (its value, a
relationship's object, a language property's first text) or ``attribute.sub`` (a
sub-attribute's value); ``attribute.createdAt``/``attribute.modifiedAt`` are the attribute's
own (the entity's for attributes written before they were kept). Entities without the
member come last whatever the direction; numbers sort before texts.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from qala.components.operate import jsonld
from qala.components.operate.models import Entity
from qala.components.operate.ngsi import NgsiError, default_instance, types_of
from qala.components.operate.sysattrs import timestamp

_PATH = re.compile(r"^[A-Za-z@][A-Za-z0-9_:#/@-]*(?:\.[A-Za-z@][A-Za-z0-9_:#/@-]*)*$")
SYSTEM = ("createdAt", "modifiedAt")


@dataclass(frozen=True)
class OrderKey:
    """One ``orderBy`` item: a member path and its direction."""

    path: tuple[str, ...]
    descending: bool = False


def parse_order_by(text: str | None, names: jsonld.Names | None = None) -> tuple[OrderKey, ...]:
    """The items of an ``orderBy`` parameter, attribute names in canonical form as the
    reader's ``names`` give them (clause 5.5.7); ``BadRequestData`` for a malformed one."""
    if text is None or not text.strip():
        return ()
    keys = []
    for item in text.split(","):
        path, _, direction = item.strip().partition(";")
        direction = direction.strip().lower() or "asc"
        if not _PATH.match(path.strip()) or direction not in ("asc", "desc"):
            raise NgsiError(
                "BadRequestData", f"orderBy: {item.strip()!r} is not `member[;asc|;desc]`"
            )
        parts = tuple(path.strip().split("."))
        if names is not None:
            parts = tuple(_canonical(part, names, first=i == 0) for i, part in enumerate(parts))
        keys.append(OrderKey(parts, direction == "desc"))
    return tuple(keys)


def _canonical(part: str, names: jsonld.Names, *, first: bool) -> str:
    """A path member as stored: ``id``/``type`` and the system members stay, names are mapped."""
    if part in SYSTEM or (first and part in ("id", "type")):
        return part
    return names.canonical(part)


_MISSING = object()


def member_value(entity: Entity, path: tuple[str, ...]) -> Any:
    """The value ``path`` names in ``entity`` (``_MISSING`` when it has none)."""
    head = path[0]
    if len(path) == 1 and head == "id":
        return entity.id
    if len(path) == 1 and head == "type":
        return types_of(entity.type, entity.attrs)[0]
    current: Any = default_instance(entity.attrs.get(head))
    if path[-1] in SYSTEM and (len(path) == 1 or (len(path) == 2 and current is not None)):
        kept = current.get(path[-1]) if isinstance(current, Mapping) and len(path) == 2 else None
        if isinstance(kept, str):
            return kept
        moment = entity.created_at if path[-1] == "createdAt" else entity.modified_at
        return timestamp(moment) if moment is not None else _MISSING
    for part in path[1:]:
        if not isinstance(current, Mapping) or part not in current:
            return _MISSING
        current = default_instance(current[part])
    return _plain(current)


def _plain(attribute: Any) -> Any:
    if not isinstance(attribute, Mapping):
        return _MISSING if attribute is None else attribute
    kind = attribute.get("type")
    if kind == "Relationship":
        return attribute.get("object", _MISSING)
    if kind == "LanguageProperty":
        texts = attribute.get("languageMap")
        return next(iter(texts.values()), _MISSING) if isinstance(texts, Mapping) else _MISSING
    return attribute.get("value", _MISSING)


def _rank(value: Any) -> tuple[int, Any]:
    if isinstance(value, bool):
        return (1, int(value))
    if isinstance(value, int | float):
        return (0, float(value))
    if isinstance(value, str):
        return (2, value)
    return (3, str(value))


def order_entities(entities: Sequence[Entity], keys: Sequence[OrderKey]) -> list[Entity]:
    """``entities`` sorted by ``keys`` (the first key first; ties keep their order)."""
    ordered = list(entities)
    for key in reversed(keys):
        present = [(member_value(e, key.path), e) for e in ordered]
        found = [(v, e) for v, e in present if v is not _MISSING]
        missing = [e for v, e in present if v is _MISSING]
        found.sort(key=lambda pair: _rank(pair[0]), reverse=key.descending)
        ordered = [e for _v, e in found] + missing
    return ordered
