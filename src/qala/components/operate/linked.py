"""Linked-entity retrieval (ETSI GS CIM 009 clause 4.5.23): ``join=flat|inline`` and ``joinLevel``.

With ``join=inline`` the entity a relationship points to is placed inside the relationship (as
its ``entity`` member; in key-values the relationship's value becomes that entity). With
``join=flat`` the linked entities follow the entities asked for in the answer, each once.
``joinLevel`` says how many relationships deep to follow (1 by default). What a linked entity
shows is chosen by ``pick``/``omit`` braces, ``rel{name,…}`` (:class:`Projection.linked`).

Pure rendering: entities are found through a ``lookup`` callable, so the same code serves
retrieval, queries and subscription notifications.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from qala.components.operate.models import Entity
from qala.components.operate.ngsi import NgsiError, Projection, default_instance

JOIN_MODES = ("flat", "inline", "@none")
MAX_JOIN_LEVEL = 16
"""Deeper than any city model; bounds the work one request can ask for."""

Lookup = Callable[[str], Entity | None]
Render = Callable[[Entity, Projection], dict[str, Any]]


@dataclass(frozen=True)
class Join:
    """How linked entities are retrieved: ``flat`` or ``inline``, ``level`` relationships deep."""

    mode: str
    level: int = 1

    @property
    def flat(self) -> bool:
        return self.mode == "flat"


def parse_join(join: Any, join_level: Any = None) -> Join | None:
    """The ``join``/``joinLevel`` parameters (query string or Query body); None: no join.

    Raises ``BadRequestData`` for a mode other than flat, inline, @none or a level that is not
    a positive integer.
    """
    if join is None or join == "":
        return None
    if join not in JOIN_MODES:
        raise NgsiError("BadRequestData", f"join {join!r} is not one of {', '.join(JOIN_MODES)}")
    if join == "@none":
        return None
    level = 1
    if join_level not in (None, ""):
        try:
            level = int(join_level)
        except (TypeError, ValueError):
            level = 0
        if isinstance(join_level, bool) or level < 1:
            raise NgsiError("BadRequestData", f"joinLevel {join_level!r} is not a positive integer")
    return Join(join, min(level, MAX_JOIN_LEVEL))


def linked_id(attribute: Any) -> str | None:
    """The entity id a stored attribute links to (a Relationship's ``object``), else None."""
    instance = default_instance(attribute)
    if not isinstance(instance, dict) or instance.get("type") != "Relationship":
        return None
    target = instance.get("object")
    return target if isinstance(target, str) else None


def join_entities(
    primaries: Sequence[tuple[Entity, dict[str, Any]]],
    join: Join,
    projection: Projection,
    *,
    lookup: Lookup,
    render: Render,
    key_values: bool = False,
) -> list[dict[str, Any]]:
    """The answer for ``primaries`` (each entity with its rendering) under ``join``.

    Inline: the renderings, their relationships holding the linked entities. Flat: the
    renderings followed by every linked entity found (once each, in the order met).
    """
    flat: dict[str, dict[str, Any]] = {}
    met = {entity.id for entity, _ in primaries}
    cache: dict[str, Entity | None] = {}

    def find(entity_id: str) -> Entity | None:
        if entity_id not in cache:
            cache[entity_id] = lookup(entity_id)
        return cache[entity_id]

    def follow(entity: Entity, rendered: dict[str, Any], shown: Projection, depth: int) -> None:
        for name, attribute in entity.attrs.items():
            if name not in rendered:
                continue
            target_id = linked_id(attribute)
            if target_id is None:
                continue
            if join.flat and target_id in met:
                continue
            target = find(target_id)
            if target is None:
                continue
            inner = shown.of_linked(name)
            target_rendered = render(target, inner)
            if join.flat:
                met.add(target_id)
                flat[target_id] = target_rendered
            elif key_values:
                rendered[name] = target_rendered
            elif isinstance(rendered[name], dict):
                rendered[name] = {**rendered[name], "entity": target_rendered}
            if depth > 1:
                follow(target, target_rendered, inner, depth - 1)

    for entity, rendered in primaries:
        follow(entity, rendered, projection, join.level)
    return [rendered for _, rendered in primaries] + list(flat.values())
