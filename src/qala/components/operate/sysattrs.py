"""System attributes of attributes (ETSI GS CIM 009 clause 4.8): every attribute instance keeps
its own ``createdAt`` and ``modifiedAt``, shown only with ``options=sysAttrs``.

They are stored inside the instance (the members a client sends under those names are replaced:
the broker sets them). Writes call :func:`stamp` with the attributes before and after; answers
drop them unless ``sysAttrs`` was asked for (``ngsi.without_system``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any


def timestamp(moment: datetime) -> str:
    """NGSI-LD's DateTime text (UTC, ``Z``)."""
    return moment.isoformat().replace("+00:00", "Z")


def stamp(
    current: dict[str, Any],
    previous: Mapping[str, Any],
    names: Iterable[str],
    moment: datetime,
) -> None:
    """Set ``createdAt``/``modifiedAt`` on the instances of attributes ``names`` in ``current``:
    an instance that existed before (same name and ``datasetId`` in ``previous``) keeps its
    ``createdAt``; ``modifiedAt`` is ``moment``. Other attributes are left as they are."""
    now = timestamp(moment)
    for name in names:
        attribute = current.get(name)
        if attribute is None or not _is_attribute(attribute):
            continue
        before = {
            instance.get("datasetId"): instance.get("createdAt")
            for instance in _instances(previous.get(name))
        }
        stamped = [
            {
                **instance,
                "createdAt": before.get(instance.get("datasetId")) or now,
                "modifiedAt": now,
            }
            for instance in _instances(attribute)
        ]
        current[name] = stamped if isinstance(attribute, list) else stamped[0]


def _instances(attribute: Any) -> list[dict[str, Any]]:
    if isinstance(attribute, list):
        return [a for a in attribute if isinstance(a, dict)]
    return [attribute] if isinstance(attribute, dict) else []


def _is_attribute(attribute: Any) -> bool:
    instances = _instances(attribute)
    return bool(instances) and all("type" in instance for instance in instances)
