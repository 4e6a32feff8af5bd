"""Every city a jurisdiction: the national template of services (``data/national.yaml``) made
into each city's and single-industry town's catalogue, with what the city's own file
(``data/cities/<code>.yaml``) overrides, its centre and the radius it takes reports within.

A city's file may override, by code, a department's or a service's fields (names, department,
SLA, questions), drop a service (``active: false``), add departments and services, and give its
districts, routing rules and boundary.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from typing import Any

from sqlalchemy.orm import Session

from qala.components.catalog.places import Gazetteer, PlaceRecord, load_gazetteer
from qala.components.requests311.catalogue import CityCatalogue, catalogue_of, read_yaml
from qala.components.requests311.jurisdictions import (
    JurisdictionInfo,
    load_jurisdictions,
    store_catalogue,
)
from qala.core.errors import NotFoundError
from qala.engines.geo.area import radius_for_population

TEMPLATE_FILE = "national.yaml"
CITY_FOLDER = "cities"
AREA_KEYS = ("lat", "lon", "radius_km", "boundary")


def _data_text(*parts: str) -> str | None:
    entry = resources.files("qala.components.requests311").joinpath("data", *parts)
    return entry.read_text(encoding="utf-8") if entry.is_file() else None


def national_template() -> dict[str, Any]:
    """The template as data (services and departments every city starts from)."""
    text = _data_text(TEMPLATE_FILE)
    assert text is not None, "the national template ships with the package"
    data = read_yaml(text, file=TEMPLATE_FILE)
    assert isinstance(data, dict)
    return data


def city_overrides(code: str) -> dict[str, Any]:
    """What the city's own file changes (empty when it has none)."""
    name = f"{code}.yaml"
    text = _data_text(CITY_FOLDER, name)
    if text is None:
        return {}
    data = read_yaml(text, file=f"{CITY_FOLDER}/{name}")
    return data if isinstance(data, dict) else {}


def _merged_by_code(
    base: list[dict[str, Any]], changes: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """``base`` entries updated by the ``changes`` of the same code (new codes appended; an entry
    changed to ``active: false`` dropped)."""
    merged = {str(entry.get("code")): dict(entry) for entry in base}
    for change in changes:
        code = str(change.get("code"))
        merged[code] = {**merged.get(code, {}), **change}
    return [entry for entry in merged.values() if entry.get("active", True) is not False]


def merge_city(
    template: dict[str, Any], overrides: dict[str, Any], head: dict[str, Any]
) -> dict[str, Any]:
    """The catalogue data of one city: the template, then the place's ``head`` (code, names,
    area), then the city's own file."""
    jurisdiction = {
        **(template.get("jurisdiction") or {}),
        **head,
        **(overrides.get("jurisdiction") or {}),
    }
    if any(key in (overrides.get("jurisdiction") or {}) for key in ("lat", "lon")):
        # A city that moves its centre without a radius keeps the population-sized one.
        jurisdiction.setdefault("radius_km", head.get("radius_km"))
    return {
        "jurisdiction": jurisdiction,
        "districts": list(overrides.get("districts") or []),
        "departments": _merged_by_code(
            list(template.get("departments") or []), list(overrides.get("departments") or [])
        ),
        "services": _merged_by_code(
            list(template.get("services") or []), list(overrides.get("services") or [])
        ),
        "routing": list(overrides.get("routing") or []),
    }


def _head(place: PlaceRecord, gazetteer: Gazetteer, year: int) -> dict[str, Any]:
    head: dict[str, Any] = {"code": place.code, "name": dict(place.names)}
    if place.lat is not None and place.lon is not None:
        head.update(
            lat=place.lat,
            lon=place.lon,
            radius_km=round(radius_for_population(gazetteer.population(place.code, year)), 1),
        )
    return head


def jurisdiction_places(gazetteer: Gazetteer) -> list[PlaceRecord]:
    """The places that take requests: every city and town (single-industry towns among them)."""
    towns = {r.code for r in gazetteer.single_industry}
    return [p for p in gazetteer.places if p.level == "city" or p.code in towns]


def city_catalogue(
    code: str, *, year: int = 2026, gazetteer: Gazetteer | None = None
) -> CityCatalogue:
    """The catalogue of the city ``code`` (a place code), from the template and its overrides."""
    gazetteer = gazetteer or load_gazetteer()
    place = next((p for p in jurisdiction_places(gazetteer) if p.code == code), None)
    if place is None:
        raise NotFoundError(f"no city or town `{code[:80]}` in the places catalogue")
    data = merge_city(national_template(), city_overrides(code), _head(place, gazetteer, year))
    return catalogue_of(data, file=f"{CITY_FOLDER}/{code}.yaml")


def national_catalogues(*, year: int = 2026) -> list[CityCatalogue]:
    """Every city's and town's catalogue, in the places catalogue's order."""
    gazetteer = load_gazetteer()
    return [
        city_catalogue(p.code, year=year, gazetteer=gazetteer)
        for p in jurisdiction_places(gazetteer)
    ]


@dataclass(frozen=True)
class LoadedCities:
    jurisdictions: list[JurisdictionInfo]

    @property
    def services(self) -> int:
        return sum(len(j.services) for j in self.jurisdictions)


def load_city_catalogues(session: Session, *, year: int = 2026) -> LoadedCities:
    """Create or update every city's jurisdiction from the national template (idempotent)."""
    catalogues = national_catalogues(year=year)
    for catalogue in catalogues:
        store_catalogue(session, catalogue)
    known = load_jurisdictions(session)
    return LoadedCities([known[c.code] for c in catalogues])
