"""Kazakhstan's places shipped with Qala (CSV files in ``data/places``), and questions about them."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources

from qala.core.errors import Problem, raise_if_problems

LEVELS = ("country", "region", "city", "district")


@dataclass(frozen=True)
class PlaceRecord:
    code: str
    parent_code: str | None
    level: str
    kind: str
    significance: str | None
    names: dict[str, str]
    lat: float | None
    lon: float | None
    geonames_id: int | None
    source: str | None


@dataclass(frozen=True)
class PopulationRecord:
    code: str
    year: int
    population: int
    source: str | None


@dataclass(frozen=True)
class SingleIndustryRecord:
    code: str
    from_year: int
    to_year: int | None
    source: str | None
    note: str | None


@dataclass
class Gazetteer:
    places: list[PlaceRecord]
    populations: list[PopulationRecord] = field(default_factory=list)
    single_industry: list[SingleIndustryRecord] = field(default_factory=list)

    def by_code(self) -> dict[str, PlaceRecord]:
        return {p.code: p for p in self.places}

    def single_industry_towns(self, year: int) -> set[str]:
        """Codes of towns on the single-industry list in ``year``."""
        return {
            r.code
            for r in self.single_industry
            if r.from_year <= year and (r.to_year is None or year <= r.to_year)
        }

    def population(self, code: str, year: int) -> int | None:
        """Population in ``year``, else the nearest earlier year, else the nearest later year."""
        known = sorted((r.year, r.population) for r in self.populations if r.code == code)
        if not known:
            return None
        earlier = [p for y, p in known if y <= year]
        return earlier[-1] if earlier else known[0][1]


def _rows(text: str, file: str) -> list[tuple[int, dict[str, str]]]:
    reader = csv.DictReader(io.StringIO(text))
    return [
        (i + 2, {k: (v or "").strip() for k, v in row.items() if k}) for i, row in enumerate(reader)
    ]


def _optional_float(value: str) -> float | None:
    return float(value) if value else None


def parse_gazetteer(
    places_text: str, population_text: str = "", single_industry_text: str = ""
) -> Gazetteer:
    problems: list[Problem] = []
    places: list[PlaceRecord] = []
    for row_number, row in _rows(places_text, "places.csv"):
        try:
            places.append(
                PlaceRecord(
                    code=row["code"],
                    parent_code=row.get("parent_code") or None,
                    level=row["level"],
                    kind=row.get("kind") or row["level"],
                    significance=row.get("significance") or None,
                    names={lang: row.get(f"name_{lang}", "") for lang in ("kk", "ru", "en")},
                    lat=_optional_float(row.get("lat", "")),
                    lon=_optional_float(row.get("lon", "")),
                    geonames_id=int(row["geonames_id"]) if row.get("geonames_id") else None,
                    source=row.get("source") or None,
                )
            )
        except (KeyError, ValueError) as exc:
            problems.append(
                Problem(f"unreadable place row: {exc}", file="places.csv", row=row_number)
            )
    codes = {p.code for p in places}
    for p in places:
        if p.level not in LEVELS:
            problems.append(
                Problem(f"unknown level {p.level!r}", file="places.csv", column="level")
            )
        if p.parent_code and p.parent_code not in codes:
            problems.append(
                Problem(f"parent `{p.parent_code}` of `{p.code}` is not a place", file="places.csv")
            )
    populations = []
    for row_number, row in _rows(population_text, "population.csv"):
        try:
            populations.append(
                PopulationRecord(
                    row["code"],
                    int(row["year"]),
                    int(float(row["population"])),
                    row.get("source") or None,
                )
            )
        except (KeyError, ValueError) as exc:
            problems.append(
                Problem(f"unreadable row: {exc}", file="population.csv", row=row_number)
            )
    single = []
    for row_number, row in _rows(single_industry_text, "single_industry_towns.csv"):
        try:
            single.append(
                SingleIndustryRecord(
                    row["code"],
                    int(row["from_year"]),
                    int(row["to_year"]) if row.get("to_year") else None,
                    row.get("source") or None,
                    row.get("note") or None,
                )
            )
        except (KeyError, ValueError) as exc:
            problems.append(
                Problem(f"unreadable row: {exc}", file="single_industry_towns.csv", row=row_number)
            )
    for code in [r.code for r in populations] + [r.code for r in single]:
        if code not in codes:
            problems.append(Problem(f"`{code}` is not in places.csv", file="places data"))
    raise_if_problems(problems, "the bundled places data is invalid")
    return Gazetteer(places, populations, single)


@lru_cache(maxsize=1)
def load_gazetteer() -> Gazetteer:
    """The places shipped with Qala."""
    folder = resources.files("qala.components.catalog") / "data" / "places"

    def read(name: str) -> str:
        entry = folder / name
        return entry.read_text(encoding="utf-8") if entry.is_file() else ""

    return parse_gazetteer(
        read("places.csv"), read("population.csv"), read("single_industry_towns.csv")
    )
