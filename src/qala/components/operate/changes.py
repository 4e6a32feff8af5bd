"""What a write did to one entity, as its subscriptions need to know it (clause 5.8.6): the
entity created or deleted, its attributes created, updated or deleted, and what each changed
attribute held before (``showChanges``).

A change is described inside the write's transaction, from the entity before and after, and
handed to the notifier after the commit; a deleted entity travels as a snapshot, since nothing
of it is left in the store to read.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from qala.components.operate.ngsi import MEMBERS, instances_of


@dataclass
class DeletedEntity:
    """What a deleted entity was: its attributes and system times."""

    type: str
    attrs: dict[str, Any]
    created_at: datetime
    modified_at: datetime
    deleted_at: datetime


@dataclass
class EntityChange:
    """One entity's change. ``known`` false: the attributes changed are not told (readings
    ingested from sensors), every attribute counts as updated."""

    entity_id: str
    created: bool = False
    deleted: DeletedEntity | None = None
    known: bool = True
    attributes_created: set[str] = field(default_factory=set)
    attributes_updated: set[str] = field(default_factory=set)
    deleted_instances: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    """Per attribute, the instances the write removed (all of them when it is gone)."""
    previous: dict[str, Any] = field(default_factory=dict)
    """Per changed attribute that existed before, what it held then."""
    deleted_at: datetime | None = None

    @property
    def attributes_deleted(self) -> set[str]:
        return set(self.deleted_instances)

    def merge(self, later: EntityChange) -> None:
        """Fold a later change of the same entity into this one (a notification not yet sent
        tells both; the earliest previous value is the one before either)."""
        if later.deleted is not None:
            self.deleted = later.deleted
        elif self.deleted is not None:  # deleted, then created again
            self.deleted = None
            self.created = True
        self.created = self.created or later.created
        self.known = self.known and later.known
        self.attributes_created |= later.attributes_created - self.attributes_deleted
        self.attributes_updated |= later.attributes_updated
        for name, instances in later.deleted_instances.items():
            self.deleted_instances.setdefault(name, []).extend(instances)
        for name, value in later.previous.items():
            self.previous.setdefault(name, value)
        self.deleted_at = later.deleted_at or self.deleted_at


def _member(name: str) -> bool:
    return name in MEMBERS


def describe(
    entity_id: str,
    before: Mapping[str, Any],
    after: Mapping[str, Any],
    written: Iterable[str],
    *,
    at: datetime | None = None,
) -> EntityChange:
    """The change of the attributes ``written`` from ``before`` to ``after``: created where
    they were absent, deleted where they are gone (or lost instances), updated otherwise."""
    change = EntityChange(entity_id)
    for name in dict.fromkeys(written):
        if _member(name):
            continue
        old, new = before.get(name), after.get(name)
        if old is None and new is None:
            continue
        if old is None:
            change.attributes_created.add(name)
            continue
        change.previous[name] = old
        kept = {i.get("datasetId") for i in instances_of(new)}
        gone = [i for i in instances_of(old) if i.get("datasetId") not in kept]
        if gone:
            change.deleted_instances[name] = gone
        elif new is not None:
            change.attributes_updated.add(name)
    if change.deleted_instances:
        change.deleted_at = at
    return change


def created(entity_id: str, attrs: Mapping[str, Any]) -> EntityChange:
    """An entity created with ``attrs``: each of them is created."""
    return EntityChange(
        entity_id,
        created=True,
        attributes_created={name for name in attrs if not _member(name)},
    )


def deleted(entity_id: str, snapshot: DeletedEntity) -> EntityChange:
    """An entity deleted: it and each of its attributes."""
    return EntityChange(
        entity_id,
        deleted=snapshot,
        deleted_instances={
            name: instances_of(value) for name, value in snapshot.attrs.items() if not _member(name)
        },
        previous={name: value for name, value in snapshot.attrs.items() if not _member(name)},
        deleted_at=snapshot.deleted_at,
    )


VALUE_KEYS = {
    "Relationship": "object",
    "LanguageProperty": "languageMap",
    "JsonProperty": "json",
    "VocabProperty": "vocab",
    "ListProperty": "valueList",
    "ListRelationship": "objectList",
}
"""The member holding an attribute's value, by attribute type (others: ``value``)."""

NULL = "urn:ngsi-ld:null"


def value_key(instance: Mapping[str, Any]) -> str:
    return VALUE_KEYS.get(str(instance.get("type")), "value")


def previous_key(instance: Mapping[str, Any]) -> str:
    """``previousValue``, ``previousObject``, ``previousLanguageMap``… (clause 5.2.12
    ``showChanges``)."""
    key = value_key(instance)
    return "previous" + key[0].upper() + key[1:]


def null_value(instance: Mapping[str, Any]) -> Any:
    """The NGSI-LD Null of the instance's kind: what a deleted attribute is notified with
    (clause 5.2.1: the URI as value or object, ``{"@none": …}`` as a languageMap)."""
    return {"@none": NULL} if value_key(instance) == "languageMap" else NULL


def deleted_instance(
    instance: Mapping[str, Any], *, show_changes: bool, deleted_at: str | None
) -> dict[str, Any]:
    """A deleted attribute instance as notified: its type (and datasetId) with the NGSI-LD
    Null for value, what it held as ``previous…`` (``show_changes``), its system times and
    ``deletedAt`` (when given: ``sysAttrs``)."""
    shown: dict[str, Any] = {"type": instance.get("type", "Property")}
    if instance.get("datasetId") is not None:
        shown["datasetId"] = instance["datasetId"]
    shown[value_key(instance)] = null_value(instance)
    if show_changes and value_key(instance) in instance:
        shown[previous_key(instance)] = instance[value_key(instance)]
    if deleted_at is not None:
        for key in ("createdAt", "modifiedAt"):
            if key in instance:
                shown[key] = instance[key]
        shown["deletedAt"] = deleted_at
    return shown


def with_previous(attribute: Any, before: Any) -> Any:
    """``attribute`` with each instance's ``previous…`` member from the instance of the same
    datasetId in ``before`` (none where there was no such instance)."""
    earlier = {i.get("datasetId"): i for i in instances_of(before)}
    shown = []
    for instance in instances_of(attribute):
        old = earlier.get(instance.get("datasetId"))
        if old is not None and value_key(old) in old:
            instance = {**instance, previous_key(instance): old[value_key(old)]}
        shown.append(instance)
    return shown if isinstance(attribute, list) else shown[0] if shown else attribute


def _moment(raw: str | None) -> datetime | None:
    return datetime.fromisoformat(raw) if raw else None


def to_record(change: EntityChange) -> dict[str, Any]:
    """The change as JSON, to be kept in the notification outbox until it is notified."""
    gone = change.deleted
    return {
        "created": change.created,
        "known": change.known,
        "attributes_created": sorted(change.attributes_created),
        "attributes_updated": sorted(change.attributes_updated),
        "deleted_instances": change.deleted_instances,
        "previous": change.previous,
        "deleted_at": change.deleted_at.isoformat() if change.deleted_at else None,
        "deleted": None
        if gone is None
        else {
            "type": gone.type,
            "attrs": gone.attrs,
            "created_at": gone.created_at.isoformat(),
            "modified_at": gone.modified_at.isoformat(),
            "deleted_at": gone.deleted_at.isoformat(),
        },
    }


def from_record(entity_id: str, record: Mapping[str, Any]) -> EntityChange:
    """The change :func:`to_record` kept."""
    gone = record.get("deleted")
    snapshot = None
    if gone is not None:
        snapshot = DeletedEntity(
            type=gone["type"],
            attrs=dict(gone["attrs"]),
            created_at=datetime.fromisoformat(gone["created_at"]),
            modified_at=datetime.fromisoformat(gone["modified_at"]),
            deleted_at=datetime.fromisoformat(gone["deleted_at"]),
        )
    return EntityChange(
        entity_id,
        created=bool(record.get("created")),
        deleted=snapshot,
        known=bool(record.get("known", True)),
        attributes_created=set(record.get("attributes_created") or ()),
        attributes_updated=set(record.get("attributes_updated") or ()),
        deleted_instances={k: list(v) for k, v in (record.get("deleted_instances") or {}).items()},
        previous=dict(record.get("previous") or {}),
        deleted_at=_moment(record.get("deleted_at")),
    )
