"""The bundled sample: ILLUSTRATIVE indicator values for Kazakhstan's real places.

No official statistics are bundled for most indicators, so the demo generates values from a small
latent model and marks every one ``illustrative`` with a source that says so. The model encodes the
pattern the research describes — infrastructure grows faster than services and participation, and
single-industry towns lag — so the dashboard and the balance diagnosis have something true to the
domain to show, without passing anything off as real figures.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import pandas as pd

from qala.components.catalog.frameworks import Catalogue, IndicatorDef, load_catalogue
from qala.components.catalog.places import Gazetteer, load_gazetteer
from qala.components.catalog.services import ImportReport, import_frame
from qala.store.database import Database

DEMO_YEARS = range(2022, 2026)
SAMPLE_SOURCE = "Qala illustrative sample (generated; not official statistics)"
SAMPLE_FRAMEWORKS = (
    "kz_smart_city",
    "iso37120",
    "iso37122",
    "iso37123",
    "adoption_factors",
    "chourabi2012",
)

# Plausible spans for units whose catalogue entry has no upper bound.
TYPICAL_SPAN: dict[str, tuple[float, float]] = {
    "per_1000": (0, 60),
    "per_100000": (0, 800),
    "per_capita": (0, 5),
    "per_km2": (0, 3000),
    "per_customer_year": (0, 10),
    "ratio": (0, 3),
    "percent_change": (-10, 15),
    "count": (0, 150),
    "persons": (0, 5000),
    "kzt": (1e6, 5e9),
    "kzt_per_capita": (50_000, 2_000_000),
    "usd": (1e4, 1e7),
    "usd_per_capita": (500, 20_000),
    "years": (55, 80),
    "days": (0, 60),
    "hours": (1, 120),
    "minutes": (5, 90),
    "times_per_year": (0, 20),
    "km": (0, 500),
    "km_per_100000": (0, 100),
    "hectares": (0, 5000),
    "ha_per_100000": (0, 300),
    "m2_per_capita": (5, 40),
    "kwh_per_capita_year": (500, 6000),
    "gj_per_capita_year": (5, 60),
    "gj_per_m2_year": (0.2, 1.5),
    "litres_per_capita_day": (80, 300),
    "tonnes_per_capita_year": (0.2, 0.6),
    "tco2e_per_capita_year": (3, 20),
    "ug_m3": (5, 120),
    "mbps": (5, 200),
}

# Category → (level, effect of city capacity, yearly trend) on the logit of "how good".
CATEGORY_MODEL: dict[str, tuple[float, float, float]] = {
    "infrastructure": (0.3, 1.0, 0.18),
    "service": (-0.3, 0.5, 0.05),
    "participation": (-0.9, 0.3, 0.03),
    "outcome": (0.0, 0.6, 0.05),
}


def _span(catalogue: Catalogue, indicator: IndicatorDef) -> tuple[float, float]:
    if indicator.typical is not None:
        return indicator.typical
    unit_id = indicator.unit
    unit = catalogue.units[unit_id]
    low, high = TYPICAL_SPAN.get(unit_id, (0.0, 100.0))
    if unit.min is not None and unit.max is not None:
        return unit.min, unit.max
    if unit.min is not None:
        low = max(low, unit.min)
    return low, high


def generate_sample(
    *,
    years: Iterable[int],
    seed: int = 37120,
    catalogue: Catalogue | None = None,
    gazetteer: Gazetteer | None = None,
    frameworks: Iterable[str] = SAMPLE_FRAMEWORKS,
) -> pd.DataFrame:
    """Long-format illustrative values (place, indicator, year, value, source, note, illustrative)."""
    catalogue = catalogue or load_catalogue()
    gazetteer = gazetteer or load_gazetteer()
    years = list(years)
    rng = np.random.default_rng(seed)
    cities = [p for p in gazetteer.places if p.level == "city"]
    indicator_ids: list[str] = []
    for framework_id in frameworks:
        if framework_id in catalogue.frameworks:
            indicator_ids.extend(
                i
                for i in catalogue.frameworks[framework_id].indicator_ids()
                if i not in indicator_ids
            )
    indicators = [catalogue.indicators[i] for i in indicator_ids]
    sizes = np.array([math.log(gazetteer.population(p.code, years[-1]) or 50_000) for p in cities])
    size_z = (sizes - sizes.mean()) / (sizes.std() or 1.0)
    monotowns = gazetteer.single_industry_towns(years[-1])
    capacity = (
        0.6 * size_z
        + rng.normal(0, 0.5, len(cities))
        - 0.4 * np.array([p.code in monotowns for p in cities])
    )
    indicator_effect = rng.normal(0, 0.6, len(indicators))
    rows: list[tuple[str, str, int, float]] = []
    for ci, place in enumerate(cities):
        for ii, ind in enumerate(indicators):
            level, slope, trend = CATEGORY_MODEL[ind.category]
            low, high = _span(catalogue, ind)
            integer = catalogue.units[ind.unit].integer
            for ti, year in enumerate(years):
                logit = (
                    level
                    + slope * capacity[ci]
                    + trend * ti
                    + indicator_effect[ii]
                    + rng.normal(0, 0.25)
                )
                good = 1.0 / (1.0 + math.exp(-logit))
                share = good if ind.polarity == "higher" else 1.0 - good
                value = low + share * (high - low)
                value = float(round(value)) if integer else round(value, 2)
                rows.append((place.code, ind.id, year, value))
    frame = pd.DataFrame(rows, columns=["place", "indicator", "year", "value"])
    frame["source"] = SAMPLE_SOURCE
    frame["note"] = f"generated with seed {seed}"
    frame["illustrative"] = True
    return frame


def load_sample_data(
    database: Database, *, years: Iterable[int], seed: int = 37120
) -> ImportReport:
    """Generate the sample and import it as one batch marked illustrative."""
    frame = generate_sample(years=years, seed=seed)
    return import_frame(
        database, frame, file="qala-illustrative-sample", illustrative=True, imported_by="qala"
    )
