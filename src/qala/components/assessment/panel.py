"""The data every assessment method reads: stored values of a framework for the cities, by year,
put on a common 0–100 scale with fixed goalposts.

Goalposts (not min–max over the places) because the research's claim is absolute — systems are
installed while services and participation lag — and relative scaling would hide it: on min–max
every category has a best city at 100. The goalposts of an indicator are its unit's bounds when
the unit has both (percent 0–100, boolean 0–1, 1–5 scales), else the catalogue's typical span for
Kazakh cities, else the lowest and highest value observed over all places and years. They stay
the same across years, so growth shows in the trend. Values beyond the goalposts are clipped.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from qala.components.catalog.frameworks import Catalogue, load_catalogue
from qala.components.catalog.models import Place
from qala.components.catalog.services import (
    data_version,
    population,
    single_industry_codes,
    values_frame,
)
from qala.core.errors import NotFoundError

ECONOMY_INDICATORS = (
    "iso37120.5.1",  # unemployment rate (lower is better)
    "iso37120.5.4",  # persons in full-time employment
    "iso37120.5.6",  # businesses per 100 000
    "iso37120.5.8",  # average household income
)
"""The economy profile used to match peers (ISO 37120 economy theme)."""


@dataclass(frozen=True)
class Goalposts:
    """Per indicator: ``low`` and ``high`` of the 0–100 scale and ``direction`` (+1 / −1)."""

    table: pd.DataFrame

    def score(self, values: pd.DataFrame) -> pd.DataFrame:
        """0–100 scores (100 = best end of the goalposts), NaN where the value is missing."""
        cols = [c for c in values.columns if c in self.table.index]
        posts = self.table.loc[cols]
        low = posts["low"].to_numpy(dtype=float)
        high = posts["high"].to_numpy(dtype=float)
        direction = posts["direction"].to_numpy(dtype=float)
        x = values[cols].to_numpy(dtype=float)
        span = np.where(high > low, high - low, np.nan)
        share = np.clip((x - low) / span, 0.0, 1.0)
        share = np.where(direction > 0, share, 1.0 - share)
        return pd.DataFrame(100.0 * share, index=values.index, columns=cols)

    def span(self, indicator: str) -> float:
        row = self.table.loc[indicator]
        return float(row["high"] - row["low"])


def goalposts_for(
    indicators: Sequence[str], observed: pd.DataFrame, catalogue: Catalogue | None = None
) -> Goalposts:
    """Goalposts of ``indicators``: unit bounds, else typical span, else observed range."""
    catalogue = catalogue or load_catalogue()
    rows = []
    for code in indicators:
        ind = catalogue.indicators[code]
        unit = catalogue.units.get(ind.unit)
        if unit is not None and unit.min is not None and unit.max is not None:
            low, high, source = unit.min, unit.max, "unit bounds"
        elif ind.typical is not None:
            (low, high), source = ind.typical, "typical span"
        elif code in observed.columns and observed[code].notna().any():
            low, high = float(observed[code].min()), float(observed[code].max())
            source = "observed range"
        else:
            low, high, source = np.nan, np.nan, "no values"
        rows.append(
            {
                "indicator": code,
                "low": float(low),
                "high": float(high),
                "direction": ind.direction,
                "category": ind.category,
                "source": source,
            }
        )
    return Goalposts(pd.DataFrame(rows).set_index("indicator"))


@dataclass
class Panel:
    """Stored values of a framework's indicators for the cities over the years.

    Attributes
    ----------
    values
        Raw values: rows (place, year), one column per indicator (NaN = not stored).
    scores
        The same on the 0–100 goalpost scale.
    places
        Per place code: names, region, population, size_class and ``single_industry`` (in
        ``year``).
    areas
        Indicator → its top-level area in the framework.
    illustrative_share
        Share of the values in ``year`` that were generated sample data.
    """

    framework: str
    year: int
    values: pd.DataFrame
    scores: pd.DataFrame
    goalposts: Goalposts
    places: pd.DataFrame
    areas: dict[str, str]
    area_names: dict[str, dict[str, str]]
    categories: dict[str, str]
    illustrative_share: float

    def year_scores(self, year: int | None = None) -> pd.DataFrame:
        """Places × indicators, 0–100, of one year (default: the panel's year)."""
        year = self.year if year is None else year
        frame = self.scores.xs(year, level="year")
        return frame

    def year_values(self, year: int | None = None) -> pd.DataFrame:
        year = self.year if year is None else year
        return self.values.xs(year, level="year")

    @property
    def years(self) -> list[int]:
        return sorted({int(y) for y in self.values.index.get_level_values("year")})

    @property
    def illustrative(self) -> bool:
        return self.illustrative_share > 0


def framework_areas(framework_id: str, catalogue: Catalogue | None = None) -> dict[str, str]:
    """Indicator id → the code of its top-level area (sub-areas fold into their area)."""
    catalogue = catalogue or load_catalogue()
    out: dict[str, str] = {}
    for area in catalogue.framework(framework_id).areas():
        for leaf in area.leaves():
            if leaf.indicator:
                out.setdefault(leaf.indicator, area.code)
    return out


def load_panel(
    session: Session,
    *,
    framework: str = "kz_smart_city",
    year: int | None = None,
    extra_indicators: Iterable[str] = ECONOMY_INDICATORS,
    level: str = "city",
    min_coverage: float = 0.5,
) -> Panel:
    """Read the panel from the store (cities with values for ``min_coverage`` of the
    framework's indicators in ``year``; ``year`` defaults to the latest such year)."""
    catalogue = load_catalogue()
    areas = framework_areas(framework, catalogue)
    indicators = list(areas)
    extra = [i for i in extra_indicators if i not in areas and i in catalogue.indicators]
    long = values_frame(session, indicators=[*indicators, *extra])
    places = {p.code: p for p in session.scalars(select(Place).where(Place.level == level))}
    long = long[long["place"].isin(places)]
    if long.empty:
        raise NotFoundError(
            f"no stored values of `{framework}` for the places of level `{level}`; "
            "import data or load the demo (`qala demo load`)"
        )
    main = long[long["indicator"].isin(indicators)]
    coverage = main.groupby(["year", "place"])["value"].count() / len(indicators)
    enough = coverage[coverage >= min_coverage]
    usable = sorted({int(y) for y in enough.index.get_level_values(0)})
    if not usable:
        raise NotFoundError(f"no year in which a city has {min_coverage:.0%} of `{framework}`")
    if year is None:
        year = usable[-1]
    elif year not in usable:
        raise NotFoundError(
            f"no city has {min_coverage:.0%} of the `{framework}` values in {year}; years with "
            "enough values: " + ", ".join(map(str, usable))
        )
    kept = sorted({p for (y, p) in enough.index if y == year})
    long = long[long["place"].isin(kept)]
    wide = long.pivot_table(index=["place", "year"], columns="indicator", values="value")
    for code in [*indicators, *extra]:
        if code not in wide.columns:
            wide[code] = np.nan
    wide = wide[[*indicators, *extra]]
    wide.columns.name = None
    posts = goalposts_for([*indicators, *extra], wide, catalogue)
    current = long[long["year"] == year]
    share = float(current["illustrative"].mean()) if len(current) else 0.0
    monotowns = single_industry_codes(session, year)
    codes = {p.id: p.code for p in session.scalars(select(Place))}
    rows = []
    for code in kept:
        place = places[code]
        people = population(session, place.id, year)
        rows.append(
            {
                "place": code,
                "name_en": place.name_en,
                "name_ru": place.name_ru,
                "name_kk": place.name_kk,
                "region": codes.get(place.parent_id) if place.parent_id else None,
                "population": people,
                "single_industry": code in monotowns,
            }
        )
    info = pd.DataFrame(rows).set_index("place")
    fw = catalogue.framework(framework)
    return Panel(
        framework=framework,
        year=year,
        values=wide,
        scores=posts.score(wide),
        goalposts=posts,
        places=info,
        areas=areas,
        area_names={a.code: a.names for a in fw.areas()},
        categories={i: catalogue.indicators[i].category for i in indicators},
        illustrative_share=share,
    )


MAX_CACHED_PANELS = 16
_panels: OrderedDict[tuple[Any, ...], Panel] = OrderedDict()
_panels_lock = threading.Lock()


def cached_panel(
    session: Session,
    *,
    framework: str = "kz_smart_city",
    year: int | None = None,
    extra_indicators: Iterable[str] = ECONOMY_INDICATORS,
    level: str = "city",
    min_coverage: float = 0.5,
) -> Panel:
    """``load_panel``, kept per store and arguments until the stored data change
    (``data_version``). Building a panel reads every value of the framework (0.2 s on the demo
    data) and the city page, the readiness page and the API ask for the same one on every
    request. Callers get their own copy of the frames."""
    extra = tuple(extra_indicators)
    key = (
        session.connection().engine.url.render_as_string(hide_password=True),
        data_version(session),
        framework,
        year,
        extra,
        level,
        min_coverage,
    )
    with _panels_lock:
        found = _panels.get(key)
        if found is not None:
            _panels.move_to_end(key)
    if found is None:
        found = load_panel(
            session,
            framework=framework,
            year=year,
            extra_indicators=extra,
            level=level,
            min_coverage=min_coverage,
        )
        with _panels_lock:
            _panels[key] = found
            while len(_panels) > MAX_CACHED_PANELS:
                _panels.popitem(last=False)
    return replace(
        found,
        values=found.values.copy(),
        scores=found.scores.copy(),
        places=found.places.copy(),
        areas=dict(found.areas),
        area_names={k: dict(v) for k, v in found.area_names.items()},
        categories=dict(found.categories),
    )
