"""Public pages: home, national rating, city profile, indicator explorer, map."""

from __future__ import annotations

import math
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from qala.components.accounts.deps import CallerFirstRoute, ContextDep, DatabaseDep
from qala.components.catalog.frameworks import CATEGORIES, Catalogue, load_catalogue
from qala.components.catalog.models import Place
from qala.components.catalog.services import (
    list_places,
    population,
    single_industry_codes,
    value_sources,
    values_frame,
)
from qala.core.errors import NotFoundError, QalaError
from qala.runtime import Context
from qala.web import data
from qala.web.cache import cached_city_profile
from qala.web.charts import RankRow, bar_chart, line_chart, radar_chart, rank_interval_chart
from qala.web.city_markers import city_page_map
from qala.web.deps import SEES_USER, TranslatorDep, UIDep
from qala.web.geo import BOUNDARY_SOURCE, MapPoint, national_map_svg
from qala.web.i18n import Translator

router = APIRouter(route_class=CallerFirstRoute, include_in_schema=False, dependencies=[SEES_USER])


@router.get("/")
async def home(request: Request, ui: UIDep, t: TranslatorDep, context: ContextDep) -> Response:
    with context.database.session() as session:
        overview = data.overview(session, context, t)
    return ui.render(request, "home.html", overview=overview)


# -- rating -------------------------------------------------------------------------------
@router.get("/rating")
async def rating(
    request: Request,
    ui: UIDep,
    t: TranslatorDep,
    database: DatabaseDep,
    kind: str | None = None,
    region: str | None = None,
    year: int | None = None,
) -> Response:
    kind = kind or None
    region = region or None
    with database.session() as session:
        regions = sorted(
            ((p.code, t.name(p)) for p in list_places(session, level="region")),
            key=lambda item: item[1],
        )
        board = data.rating_board(session, t, kind=kind, region=region, year=year)
        regional = data.regional_rating(session, t)
        releases = data.open_data_releases(session)
    chart = _rank_chart(board, t) if board.entries else None
    return ui.render(
        request,
        "rating.html",
        board=board,
        chart=chart,
        regions=regions,
        kind=kind,
        region=region,
        regional=regional,
        releases=releases,
    )


# -- city profile -------------------------------------------------------------------------
@router.get("/cities/{code}")
async def city(
    request: Request, code: str, ui: UIDep, t: TranslatorDep, context: ContextDep
) -> Response:
    try:
        profile = cached_city_profile(context, code, t)
    except NotFoundError as exc:
        raise HTTPException(404, str(exc)) from None
    return ui.render(
        request,
        "city.html",
        profile=profile,
        radar=_city_radar(profile, t),
        trend=_city_trend(profile, t),
        city_map=city_page_map(context, profile.code, t),
    )


# -- indicators ---------------------------------------------------------------------------
@router.get("/indicators")
async def indicators(
    request: Request,
    ui: UIDep,
    t: TranslatorDep,
    framework: str | None = None,
    category: str | None = None,
    q: str | None = None,
) -> Response:
    catalogue = load_catalogue()
    framework = framework or None
    category = category or None
    rows = _indicator_rows(catalogue, framework, category, q)
    return ui.render(
        request,
        "indicators.html",
        catalogue=catalogue,
        rows=rows[:400],
        total=len(rows),
        counts={c: sum(1 for i in rows if i.category == c) for c in CATEGORIES},
        categories=CATEGORIES,
        framework=framework,
        category=category,
        q=q or "",
        tree=catalogue.framework(framework) if framework and not q and not category else None,
        area_names=data.area_names(catalogue),
        t_name=t.name,
    )


@router.get("/indicators/{indicator_id}")
async def indicator(
    request: Request,
    indicator_id: str,
    ui: UIDep,
    t: TranslatorDep,
    context: ContextDep,
    year: int | None = None,
) -> Response:
    catalogue = load_catalogue()
    try:
        definition = catalogue.indicator(indicator_id)
    except NotFoundError as exc:
        raise HTTPException(404, str(exc)) from None
    with context.database.session() as session:
        years, chosen, rows = _indicator_values(session, context, definition, year, t)
        coordinates = {p.code: (p.lon, p.lat) for p in list_places(session, level="city")}
    higher = definition.polarity == "higher"
    rows.sort(key=lambda r: r["value"], reverse=higher)
    return ui.render(
        request,
        "indicator.html",
        ind=definition,
        unit=catalogue.units.get(definition.unit),
        rows=rows,
        years=years,
        year=chosen,
        chart=_indicator_chart(rows, definition, t),
        map_svg=ui.markup(_value_map(rows, coordinates, higher, t)),
        illustrative=any(r["illustrative"] for r in rows),
        framework=catalogue.frameworks.get(definition.framework),
        area_names=data.area_names(catalogue),
    )


# -- map ----------------------------------------------------------------------------------
@router.get("/map")
async def national_map(
    request: Request, ui: UIDep, t: TranslatorDep, context: ContextDep, show: str = "all"
) -> Response:
    with context.database.session() as session:
        places = list_places(session)
        monotowns = single_industry_codes(session, context.clock().year)
        ranks = data.latest_ranks(session)
        points = _map_points(session, places, monotowns, ranks, t, show)
    svg, has_boundary = national_map_svg(
        points, title=t("map.title"), no_boundary_note=t("map.no_boundary")
    )
    listed = sorted(
        (p for p in places if p.level == "city" and p.lat is not None), key=lambda p: t.name(p)
    )
    return ui.render(
        request,
        "map.html",
        svg=ui.markup(svg),
        has_boundary=has_boundary,
        boundary_source=BOUNDARY_SOURCE,
        listed=listed,
        monotowns=monotowns,
        ranks=ranks,
        show=show,
    )


# -- what the handlers draw and look up -----------------------------------------------------
def _rank_chart(board: data.RatingBoard, t: Translator) -> Any:
    """The top 60 places with their national ranks and Monte Carlo intervals (one basis: in a
    filtered view too, the dot is the national rank its interval belongs to)."""
    return rank_interval_chart(
        [
            RankRow(
                e.name,
                float(e.rank_all or 0),
                float(e.rank_q05 if e.rank_q05 is not None else e.rank_all or 0),
                float(e.rank_q95 if e.rank_q95 is not None else e.rank_all or 0),
            )
            for e in board.entries[:60]
        ],
        label=t("rating.chart_label"),
        axis_label=t("rating.axis_rank"),
    )


def _city_radar(profile: data.CityProfile, t: Translator) -> Any:
    """The city's area scores against the national median (needs three areas to be a shape)."""
    if not profile.areas or len(profile.areas) < 3:
        return None
    series: list[tuple[str, list[float | None]]] = [
        (profile.name, [a.score for a in profile.areas])
    ]
    if any(a.median is not None for a in profile.areas):
        series.append((t("city.national_median"), [a.median for a in profile.areas]))
    return radar_chart(
        [a.name for a in profile.areas], series, label=t("city.radar_label", city=profile.name)
    )


def _city_trend(profile: data.CityProfile, t: Translator) -> Any:
    if not profile.history:
        return None
    points = [(h["year"], h["score"]) for h in profile.history if h["score"] is not None]
    return line_chart(
        [(t("city.score"), points)],
        label=t("city.trend_label", city=profile.name),
        y_label=t("city.score"),
    )


def _indicator_rows(
    catalogue: Catalogue, framework: str | None, category: str | None, q: str | None
) -> list[Any]:
    """Indicators matching the search and filters, by framework, area and id."""
    found = catalogue.search(q) if q else list(catalogue.indicators.values())
    rows = [
        i
        for i in found
        if (framework is None or i.framework == framework)
        and (category is None or i.category == category)
    ]
    rows.sort(key=lambda i: (i.framework, i.area, i.id))
    return rows


def _indicator_values(
    session: Session, context: Context, definition: Any, year: int | None, t: Translator
) -> tuple[list[int], int | None, list[dict[str, Any]]]:
    """The years with values, the year shown (asked for, else the fullest recent one) and its
    values per place."""
    values = values_frame(session, indicators=[definition.id])
    sources = value_sources(session, indicators=[definition.id])
    years = sorted({int(y) for y in values["year"]}) if not values.empty else []
    chosen = year if year in years else _fullest_recent_year(values)
    names = {p.code: p for p in list_places(session)}
    monotowns = single_industry_codes(session, chosen or context.clock().year)
    rows: list[dict[str, Any]] = []
    if chosen is None:
        return years, chosen, rows
    for record in values[values["year"] == chosen].itertuples(index=False):
        place = names.get(str(record.place))
        rows.append(
            {
                "code": record.place,
                "name": t.name(place) if place else record.place,
                "level": place.level if place else "",
                "kind": place.kind if place else "",
                "monotown": record.place in monotowns,
                "value": float(record.value),
                "source": record.source,
                "note": record.note,
                "illustrative": bool(record.illustrative),
                **data.value_label(record, sources),
            }
        )
    return years, chosen, rows


def _indicator_chart(rows: list[dict[str, Any]], definition: Any, t: Translator) -> Any:
    return bar_chart(
        [
            (r["name"], r["value"], "illustrative" if r["illustrative"] else "")
            for r in rows
            if r["level"] == "city"
        ][:30],
        label=t("indicator.chart_label", name=definition.name(t.language)),
        unit=data.unit_name(definition.unit, t.language),
    )


def _map_points(
    session: Session,
    places: list[Place],
    monotowns: set[str],
    ranks: dict[str, int],
    t: Translator,
    show: str,
) -> list[MapPoint]:
    points: list[MapPoint] = []
    year = 2024
    for p in places:
        if p.lat is None or p.lon is None or p.level not in ("city", "region"):
            continue
        if p.level == "region":
            if show in ("all", "regions"):
                points.append(
                    MapPoint(t.name(p), p.lon, p.lat, "pt region", radius=3.0, title=t.name(p))
                )
            continue
        is_mono = p.code in monotowns
        if show == "monotowns" and not is_mono:
            continue
        people = population(session, p.id, year) or 20_000
        radius = max(3.0, min(11.0, math.sqrt(people) / 90))
        css = "pt monotown" if is_mono else ("pt town" if p.kind == "town" else "pt")
        rank = ranks.get(p.code)
        title = t.name(p) + (f" — {t('rating.rank')} {rank}" if rank else "")
        points.append(
            MapPoint(
                t.name(p),
                p.lon,
                p.lat,
                css,
                href=f"/cities/{p.code}",
                radius=radius,
                title=title,
                show_label=people >= 300_000,
            )
        )
    points.sort(key=lambda m: -m.radius)
    return points


def _fullest_recent_year(values: Any) -> int | None:
    """The latest year with at least half as many places as the best-covered year."""
    if values.empty:
        return None
    per_year = values.groupby("year").size()
    return int(per_year[per_year >= 0.5 * per_year.max()].index.max())


def _value_map(
    rows: list[dict[str, Any]],
    coordinates: dict[str, tuple[float | None, float | None]],
    higher_is_better: bool,
    t: Translator,
) -> str:
    """Cities coloured by quintile of the indicator (q5 = best), for the indicator page."""
    located = [
        r
        for r in rows
        if r["level"] == "city" and None not in coordinates.get(r["code"], (None, None))
    ]
    if len(located) < 5:
        return ""
    ordered = sorted(located, key=lambda r: r["value"], reverse=not higher_is_better)
    points = []
    for position, r in enumerate(ordered):
        quintile = 1 + position * 5 // len(ordered)
        lon, lat = coordinates[r["code"]]
        assert lon is not None and lat is not None
        points.append(
            MapPoint(
                r["name"],
                lon,
                lat,
                f"pt q{quintile}",
                href=f"/cities/{r['code']}",
                radius=5.5,
                title=f"{r['name']}: {r['value']:.4g}",
            )
        )
    svg, _ = national_map_svg(
        points, title=t("indicator.map_label"), no_boundary_note=t("map.no_boundary")
    )
    return svg


__all__ = ["QalaError", "router"]
