"""The one place that reads norm tables (YAML package data shipped inside ``detect/norms/``).

Norms are data, versioned with the code: each table names its document, version and how far its
values were checked (``status``), and every finding built from it cites ``norm_id``/``version``.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import numpy as np

from qala.core.errors import SpecificationError
from qala.core.yamltext import load_yaml

AVERAGINGS = ("instant", "hour", "8h", "day", "year")


@dataclass(frozen=True)
class NormLimit:
    """One limit value: ``quantity`` averaged over ``averaging`` must not exceed ``value``."""

    norm_id: str
    version: str
    quantity: str
    averaging: str
    value: float
    unit: str
    legal_force: str
    citation: str

    @property
    def label(self) -> str:
        return f"{self.norm_id} {self.quantity} {self.averaging} {self.value:g} {self.unit}"


@dataclass(frozen=True)
class NormTable:
    """A versioned table of limits from one document."""

    norm_id: str
    version: str
    title: str
    document: str
    url: str
    legal_force: str
    status: str
    limits: tuple[NormLimit, ...]
    summation_groups: tuple[tuple[str, ...], ...] = ()
    summation_dominance: tuple[tuple[int, float], ...] = ()

    def limit(self, quantity: str, averaging: str) -> NormLimit:
        for candidate in self.limits:
            if candidate.quantity == quantity and candidate.averaging == averaging:
                return candidate
        raise SpecificationError(
            f"norm `{self.norm_id}` has no {averaging} limit for `{quantity}`; "
            f"it has {[(x.quantity, x.averaging) for x in self.limits]}"
        )


@dataclass(frozen=True)
class BandScale:
    """Ordered named ranges: ``labels[i]`` covers ``[edges[i-1], edges[i])``."""

    scale_id: str
    quantity: str
    averaging: str
    edges: tuple[float, ...]
    labels: tuple[str, ...]
    source: str

    def band_of(self, value: float) -> str:
        return self.labels[bisect_right(self.edges, value)]


@dataclass(frozen=True)
class OperatingRange:
    quantity: str
    unit: str
    low: float
    high: float
    label: str


@dataclass(frozen=True)
class HeatingSchedule:
    """Supply/return water temperature against outdoor temperature, linear between points."""

    name: str
    outdoor: tuple[float, ...]
    supply: tuple[float, ...]
    return_: tuple[float, ...]
    supply_tolerance_fraction: float
    return_excess_tolerance: float
    citation: str

    def supply_at(self, outdoor_temperature: float) -> float:
        # np.interp needs increasing x; the YAML lists points from warm to cold.
        return float(np.interp(outdoor_temperature, self.outdoor[::-1], self.supply[::-1]))

    def return_at(self, outdoor_temperature: float) -> float:
        return float(np.interp(outdoor_temperature, self.outdoor[::-1], self.return_[::-1]))


@dataclass(frozen=True)
class HeatingNorms:
    version: str
    schedule: HeatingSchedule
    ranges: tuple[OperatingRange, ...]
    citation: str


def _read(name: str) -> dict[str, Any]:
    text = resources.files("qala.engines.detect.norms").joinpath(name).read_text(encoding="utf-8")
    loaded = load_yaml(text)
    if not isinstance(loaded, dict):
        raise SpecificationError(f"norm file `{name}` does not hold a mapping")
    return loaded


@cache
def load_norm_table(name: str) -> NormTable:
    """Load a limit table by file stem: ``"air_kz_dsm70"`` or ``"air_who_2021"``."""
    raw = _read(f"{name}.yaml")
    unit = str(raw["unit"])
    citation = f"{raw['document'].strip()} ({raw['url']})"
    limits = []
    for index, entry in enumerate(raw["limits"]):
        if entry["averaging"] not in AVERAGINGS:
            raise SpecificationError(
                f"norm file `{name}.yaml`, limit {index + 1}: averaging `{entry['averaging']}` "
                f"is not one of {AVERAGINGS}"
            )
        limits.append(
            NormLimit(
                norm_id=str(raw["id"]),
                version=str(raw["version"]),
                quantity=str(entry["quantity"]),
                averaging=str(entry["averaging"]),
                value=float(entry["value"]),
                unit=str(entry.get("unit", unit)),
                legal_force=str(raw["legal_force"]),
                citation=citation,
            )
        )
    summation = raw.get("summation") or {}
    return NormTable(
        summation_groups=tuple(
            tuple(str(q) for q in group) for group in summation.get("groups", [])
        ),
        summation_dominance=tuple(
            sorted((int(k), float(v)) for k, v in summation.get("dominance", {}).items())
        ),
        norm_id=str(raw["id"]),
        version=str(raw["version"]),
        title=" ".join(str(raw["title"]).split()),
        document=" ".join(str(raw["document"]).split()),
        url=str(raw["url"]),
        legal_force=str(raw["legal_force"]),
        status=" ".join(str(raw["status"]).split()),
        limits=tuple(limits),
    )


@cache
def load_band_scales() -> tuple[BandScale, ...]:
    """All AQI-style band scales (WHO interim targets, US EPA PM2.5 AQI, KazHydroMet СИ)."""
    raw = _read("air_bands.yaml")
    scales = []
    for family in raw["bands"]:
        for scale in family["scales"]:
            edges = tuple(float(x) for x in scale["edges"])
            labels = tuple(str(x) for x in scale["labels"])
            if len(labels) != len(edges) + 1 or list(edges) != sorted(edges):
                raise SpecificationError(
                    f"band scale `{family['id']}` for `{scale['quantity']}`: needs increasing edges "
                    "and one label more than edges"
                )
            scales.append(
                BandScale(
                    scale_id=str(family["id"]),
                    quantity=str(scale["quantity"]),
                    averaging=str(scale["averaging"]),
                    edges=edges,
                    labels=labels,
                    source=" ".join(str(family["source"]).split()),
                )
            )
    return tuple(scales)


def band_of(
    value: float, *, quantity: str, averaging: str, scale_id: str = "who-2021-interim-targets"
) -> str:
    """Name of the band ``value`` falls into on scale ``scale_id``."""
    for scale in load_band_scales():
        if (
            scale.scale_id == scale_id
            and scale.quantity in (quantity, "any")
            and scale.averaging == averaging
        ):
            return scale.band_of(value)
    raise SpecificationError(
        f"no band scale `{scale_id}` for `{quantity}` averaged over `{averaging}`"
    )


@cache
def load_heating_norms() -> HeatingNorms:
    """Supply-temperature schedule and operating ranges of water heating networks."""
    raw = _read("heating_networks.yaml")
    citation = f"{' '.join(str(raw['document']).split())} ({raw['url']})"
    schedule = raw["schedule"]
    points = schedule["points"]
    outdoor = tuple(float(p["outdoor"]) for p in points)
    if list(outdoor) != sorted(outdoor, reverse=True):
        raise SpecificationError(
            "heating schedule points must go from warm to cold outdoor temperature"
        )
    return HeatingNorms(
        version=str(raw["version"]),
        schedule=HeatingSchedule(
            name=str(schedule["name"]),
            outdoor=outdoor,
            supply=tuple(float(p["supply"]) for p in points),
            return_=tuple(float(p["return"]) for p in points),
            supply_tolerance_fraction=float(schedule["supply_tolerance_fraction"]),
            return_excess_tolerance=float(schedule["return_excess_tolerance"]),
            citation=citation,
        ),
        ranges=tuple(
            OperatingRange(
                quantity=str(r["quantity"]),
                unit=str(r["unit"]),
                low=float(r["low"]),
                high=float(r["high"]),
                label=str(r["label"]),
            )
            for r in raw["ranges"]
        ),
        citation=citation,
    )
