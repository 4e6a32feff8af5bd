"""What the assessment does for a place: balance, readiness, maturity, gaps and roadmap, mentors;
and for the country: the rating under stakeholder groups' weights.

The assessment does not import the rating component (components never import each other). It
shares the rating's *method*: it reads the same spec file, ``qala/components/rating/data/
national.yaml``, as package data and runs the index engine itself; the structure is the
catalogue framework that file names, and the data are the stored catalogue values.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from qala.components.assessment import (
    balance as balance_mod,
    maturity as maturity_mod,
    peers as peers_mod,
    readiness as readiness_mod,
    roadmap as roadmap_mod,
    stakeholders as stakeholders_mod,
)
from qala.components.assessment.models import ReadinessAnswer, ReadinessResponse
from qala.components.assessment.panel import ECONOMY_INDICATORS, Panel, cached_panel
from qala.components.catalog.frameworks import load_catalogue
from qala.components.catalog.models import Place
from qala.components.catalog.services import get_place, import_frame, values_frame
from qala.core.errors import NotFoundError, ValidationError
from qala.core.yamltext import load_yaml
from qala.engines.index import Framework, IndexSpec, framework_from_tree
from qala.events import Event, EventBus
from qala.store.database import Database

DATA = resources.files("qala.components.assessment") / "data"
METHOD_PACKAGE = "qala.components.rating"
METHOD_FILE = ("data", "national.yaml")
DEFAULT_BUDGET = 3000.0
"""Million KZT: the default roadmap budget (about ten S-class or two L-class projects)."""

SAMPLE_QUESTIONNAIRE = "bundled sample questionnaire (ILLUSTRATIVE)"
"""The source named on readiness answers Qala generates (shown translated on pages)."""


# ---------------------------------------------------------------------------------------------
# The national method, shared with the rating through its spec file


@dataclass(frozen=True)
class Method:
    text: str
    spec: IndexSpec
    framework: Framework
    framework_id: str


def national_method(text: str | None = None) -> Method:
    """The national rating's method: its spec file (read as package data) and the catalogue
    framework it names; or the method of the spec ``text`` given."""
    if text is None:
        return _shipped_method()
    return _method_of(text)


@lru_cache(maxsize=1)
def _shipped_method() -> Method:
    return _method_of(None)


def _method_of(text: str | None) -> Method:
    if text is None:
        try:
            text = (
                resources.files(METHOD_PACKAGE).joinpath(*METHOD_FILE).read_text(encoding="utf-8")
            )
        except (ModuleNotFoundError, FileNotFoundError) as exc:
            raise NotFoundError(
                f"the national rating's spec file ({METHOD_PACKAGE}/{'/'.join(METHOD_FILE)}) is "
                "not installed; pass a spec text"
            ) from exc
    raw = load_yaml(text) or {}
    framework_id = str((raw.get("store") or {}).get("framework", "kz_smart_city"))
    spec = IndexSpec.from_text(text)
    framework = framework_from_tree(load_catalogue().index_tree(framework_id))
    return Method(text, spec, framework, framework_id)


def engine_table(panel: Panel, framework: Framework) -> pd.DataFrame:
    """The panel's raw values as the engine's wide table (``place``, ``year`` + indicators)."""
    cols = [c for c in framework.indicators if c in panel.values.columns]
    table = panel.values[cols].reset_index()
    table = table[table["year"] <= panel.year]
    table["name"] = table["place"].map(panel.places["name_en"])
    table["region"] = table["place"].map(panel.places["region"])
    return table


def area_profile(panel: Panel, year: int | None = None) -> pd.DataFrame:
    """Places × areas: the mean 0–100 score of each area's indicators."""
    scores = panel.year_scores(year)
    cols = [c for c in scores.columns if c in panel.areas]
    long = scores[cols].T
    long["area"] = [panel.areas[c] for c in cols]
    out = long.groupby("area").mean().T
    order = [a for a in panel.area_names if a in out.columns]
    return out[order]


# ---------------------------------------------------------------------------------------------
# Readiness


def sample_sheet() -> readiness_mod.AnswerSheet:
    """The bundled ILLUSTRATIVE questionnaire (Astana, 2025)."""
    text = (DATA / "sample_readiness.yaml").read_text(encoding="utf-8")
    return readiness_mod.parse_answers(text, file="sample_readiness.yaml")


def submit_readiness(
    database: Database,
    sheet: readiness_mod.AnswerSheet,
    *,
    place: str | None = None,
    year: int | None = None,
    submitted_by: str | None = None,
    write_values: bool = True,
    bus: EventBus | None = None,
) -> int:
    """Store a filled-in questionnaire; with ``write_values`` its mean 1–5 answers also become
    the place's ``chourabi2012`` indicator values in the catalogue; with ``bus`` it is announced
    as ``Event("assessment.readiness_submitted", {response_id, place, year})``. Returns the
    response id."""
    code = place or sheet.place
    when = year or sheet.year
    if code is None or when is None:
        raise ValidationError.single(
            "a readiness response needs a place and a year (in the file or given)",
            column="place" if code is None else "year",
        )
    grouped: dict[str, list[readiness_mod.Answer]] = {}
    for a in sheet.answers:
        grouped.setdefault(a.item, []).append(a)
    with database.transaction() as session:
        place_row = get_place(session, code)
        response = ReadinessResponse(
            place_id=place_row.id,
            year=int(when),
            respondent=sheet.respondent or None,
            source=sheet.source or None,
            illustrative=sheet.illustrative,
            submitted_by=submitted_by,
        )
        session.add(response)
        session.flush()
        means: dict[str, float] = {}
        for item, answers in grouped.items():
            given = [a.score for a in answers if a.score is not None]
            score = sum(given) / len(given) if given else None
            if score is not None:
                means[item] = score
            notes = [a.evidence for a in answers if a.evidence]
            session.add(
                ReadinessAnswer(
                    response_id=response.id,
                    item=item,
                    score=score,
                    evidence="\n".join(notes) or None,
                )
            )
        response_id = response.id
        place_code = place_row.code
    if write_values and means:
        frame = pd.DataFrame(
            {
                "place": place_code,
                "indicator": list(means),
                "year": int(when),
                "value": list(means.values()),
                "source": f"readiness questionnaire #{response_id}",
                "note": sheet.respondent or "",
            }
        )
        import_frame(
            database,
            frame,
            file=f"assessment:readiness#{response_id}",
            illustrative=sheet.illustrative,
            imported_by=submitted_by,
        )
    if bus is not None:
        bus.publish(
            Event(
                "assessment.readiness_submitted",
                {"response_id": response_id, "place": place_code, "year": int(when)},
            )
        )
    return response_id


def stored_sheet(session: Session, place: str, year: int) -> readiness_mod.AnswerSheet | None:
    """The newest stored questionnaire of a place for ``year``."""
    place_row = get_place(session, place)
    response = session.scalars(
        select(ReadinessResponse)
        .where(ReadinessResponse.place_id == place_row.id, ReadinessResponse.year == year)
        .order_by(ReadinessResponse.id.desc())
    ).first()
    if response is None:
        return None
    return readiness_mod.AnswerSheet(
        [readiness_mod.Answer(a.item, a.score, a.evidence or "") for a in response.answers],
        place=place_row.code,
        year=year,
        respondent=response.respondent or "",
        illustrative=response.illustrative,
        source=f"questionnaire #{response.id} ({response.source or 'stored'})",
    )


def catalogue_sheet(session: Session, place: str, year: int) -> readiness_mod.AnswerSheet | None:
    """The place's stored ``chourabi2012`` indicator values (1–5) for ``year`` as answers."""
    frame = values_frame(session, places=[place], years=[year], framework="chourabi2012")
    if frame.empty:
        return None
    return readiness_mod.sheet_from_values(
        dict(zip(frame["indicator"], frame["value"], strict=True)),
        source=f"catalogue values chourabi2012 {year}",
        illustrative=bool(frame["illustrative"].any()),
    )


def readiness_for(
    session: Session,
    place: str,
    year: int,
    sheet: readiness_mod.AnswerSheet | None = None,
) -> readiness_mod.Readiness:
    """Readiness from, in this order: the given sheet, the newest stored questionnaire, the
    catalogue values of the Chourabi statements, the bundled sample questionnaire."""
    chosen = sheet or stored_sheet(session, place, year) or catalogue_sheet(session, place, year)
    if chosen is None:
        chosen = sample_sheet()
        chosen.source = SAMPLE_QUESTIONNAIRE
    return readiness_mod.score_readiness(chosen)


# ---------------------------------------------------------------------------------------------
# One place


@dataclass
class PlaceAssessment:
    place: str
    names: dict[str, str]
    year: int
    illustrative: bool
    single_industry: bool
    population: int | None
    balance: balance_mod.Balance
    readiness: readiness_mod.Readiness
    maturity: list[maturity_mod.DomainMaturity]
    generation: maturity_mod.Generation
    gaps: list[roadmap_mod.Gap]
    roadmap: roadmap_mod.Roadmap
    mentors: peers_mod.MentorReport
    area_names: dict[str, dict[str, str]] = field(default_factory=dict)

    def area_name(self, code: str, language: str = "en") -> str:
        names = self.area_names.get(code) or {}
        return names.get(language) or names.get("en") or code

    def as_dict(self) -> dict[str, Any]:
        return {
            "place": self.place,
            "name": self.names,
            "year": self.year,
            "illustrative": self.illustrative,
            "single_industry": self.single_industry,
            "population": self.population,
            "balance": {
                "rows": [r.as_dict() for r in self.balance.rows],
                "trend": self.balance.trend,
                "flag": balance_mod.FLAG,
            },
            "readiness": self.readiness.as_dict(),
            "maturity": [m.as_dict() for m in self.maturity],
            "generation": self.generation.as_dict(),
            "gaps": [g.__dict__ for g in self.gaps if g.points > 0],
            "roadmap": self.roadmap.as_dict(),
            "mentors": self.mentors.as_dict(),
        }


def load_norms() -> dict[str, float]:
    raw = load_yaml((DATA / "norms.yaml").read_text(encoding="utf-8")) or {}
    return {str(n["indicator"]): float(n["target"]) for n in raw.get("norms") or []}


def _features(panel: Panel, profile: pd.DataFrame) -> peers_mod.Features:
    scores = panel.year_scores()
    economy = scores[[c for c in ECONOMY_INDICATORS if c in scores.columns]]
    return peers_mod.Features.build(
        population=panel.places["population"],
        single_industry=panel.places["single_industry"],
        economy=economy,
        profile=profile,
    )


def assess_place(
    database: Database,
    place: str,
    *,
    year: int | None = None,
    sheet: readiness_mod.AnswerSheet | None = None,
    budget: float = DEFAULT_BUDGET,
    goals: Mapping[str, float] | None = None,
    use_norms: bool = True,
    done: tuple[str, ...] = (),
    n_mentors: int = 3,
    n_weak: int = 3,
    language: str = "en",
    method: Method | None = None,
) -> PlaceAssessment:
    """Balance, readiness, maturity and generation, gaps and roadmap, peers and mentors."""
    method = method or national_method()
    with database.session() as session:
        place_row = get_place(session, place)
        code = place_row.code
        panel = cached_panel(session, framework=method.framework_id, year=year)
        if code not in panel.places.index:
            raise NotFoundError(
                f"`{code}` has too few stored `{method.framework_id}` values in {panel.year} to "
                "be assessed"
            )
        readiness = readiness_for(session, code, panel.year, sheet)
        names = {"kk": place_row.name_kk, "ru": place_row.name_ru, "en": place_row.name_en}
    area_order = list(panel.area_names)
    scores_now = panel.year_scores().loc[code]
    balance = balance_mod.diagnose(
        code, panel.year, scores_now, panel.categories, panel.areas, area_order=area_order
    )
    past = panel.scores[panel.scores.index.get_level_values("year") <= panel.year]
    balance = balance_mod.with_trend(
        balance, past, panel.categories, panel.areas, area_order=area_order
    )
    overall = balance.overall
    maturity = [
        maturity_mod.domain_maturity(r, readiness, city_participation=overall.participation)
        for r in balance.rows
        if r.area != balance_mod.OVERALL
    ]
    generation = maturity_mod.generation(overall, readiness)
    profile = area_profile(panel)
    features = _features(panel, profile)
    area_names_en = {a: n.get(language) or n.get("en") or a for a, n in panel.area_names.items()}
    mentors = peers_mod.find_mentors(
        code,
        features,
        profile,
        population=panel.places["population"],
        single_industry=panel.places["single_industry"],
        area_names=area_names_en,
        n_mentors=n_mentors,
        n_weak=n_weak,
    )
    # gaps against the median of the ten most similar places
    near = [p for p, _ in peers_mod.distances(features, code).head(10).items()]
    values_now = panel.year_values()
    indicators = [c for c in method.framework.indicators if c in values_now.columns]
    peer_median = values_now.loc[near, indicators].median()
    posts = panel.goalposts.table
    spans = {c: float(posts.at[c, "high"] - posts.at[c, "low"]) for c in indicators}
    gaps = roadmap_mod.gap_analysis(
        values_now.loc[code, indicators].to_dict(),
        directions={c: int(posts.at[c, "direction"]) for c in indicators},
        spans=spans,
        peer_medians=peer_median.to_dict(),
        norms=load_norms() if use_norms else None,
        goals=goals,
    )
    plan = roadmap_mod.plan_roadmap(
        roadmap_mod.load_actions(),
        gaps,
        weights=method.framework.effective_weights(),
        spans=spans,
        budget=budget,
        done=done,
        language=language,
    )
    info = panel.places.loc[code]
    people = info["population"]
    return PlaceAssessment(
        place=code,
        names=names,
        year=panel.year,
        illustrative=panel.illustrative or readiness.illustrative,
        single_industry=bool(info["single_industry"]),
        population=None if pd.isna(people) else int(people),
        balance=balance,
        readiness=readiness,
        maturity=maturity,
        generation=generation,
        gaps=gaps,
        roadmap=plan,
        mentors=mentors,
        area_names=panel.area_names,
    )


def balance_overview(
    database: Database, *, year: int | None = None, framework: str = "kz_smart_city"
) -> tuple[int, pd.DataFrame]:
    """Every city's overall balance in one table (for maps and lists): year and the rows."""
    with database.session() as session:
        panel = cached_panel(session, framework=framework, year=year)
    rows = []
    for code in panel.places.index:
        b = balance_mod.diagnose(
            code, panel.year, panel.year_scores().loc[code], panel.categories, panel.areas
        )
        flagged = [r.area for r in b.rows if r.flag and r.area != balance_mod.OVERALL]
        rows.append({"place": code, **b.overall.as_dict(), "flagged_areas": len(flagged)})
    return panel.year, pd.DataFrame(rows).drop(columns="area").set_index("place")


# ---------------------------------------------------------------------------------------------
# Stakeholders


@dataclass
class StakeholderView:
    year: int
    illustrative: bool
    comparison: stakeholders_mod.StakeholderComparison
    area_names: dict[str, dict[str, str]]
    place_names: dict[str, str]

    def as_dict(self) -> dict[str, Any]:
        return {
            "year": self.year,
            "illustrative": self.illustrative,
            **self.comparison.as_dict(),
        }


def sample_allocations_text() -> str:
    """The bundled ILLUSTRATIVE allocations of three groups (officials, businesses, residents)."""
    return (DATA / "stakeholder_weights.csv").read_text(encoding="utf-8")


def stakeholder_view(
    database: Database,
    allocations_text: str | None = None,
    *,
    year: int | None = None,
    file: str | None = None,
    method: Method | None = None,
) -> StakeholderView:
    """The national index under each group's weights (default: the bundled sample)."""
    method = method or national_method()
    illustrative_weights = allocations_text is None
    text = allocations_text if allocations_text is not None else sample_allocations_text()
    areas = list(method.framework.children(method.framework.root))
    allocations = stakeholders_mod.parse_allocations(
        text,
        areas=areas,
        file=file or ("stakeholder_weights.csv" if illustrative_weights else None),
    )
    with database.session() as session:
        panel = cached_panel(session, framework=method.framework_id, year=year)
        names = {p.code: p.name_en for p in session.scalars(select(Place))}
    comparison = stakeholders_mod.compare_groups(
        method.spec, engine_table(panel, method.framework), method.framework, allocations
    )
    return StakeholderView(
        year=panel.year,
        illustrative=panel.illustrative or illustrative_weights,
        comparison=comparison,
        area_names=panel.area_names,
        place_names=names,
    )


def stakeholder_presets(method: Method | None = None) -> dict[str, dict[str, float]]:
    """Each group's area weights (percent) from the bundled ILLUSTRATIVE allocations: the
    presets of the what-if rating (``official`` is not among them; it is the framework's)."""
    method = method or national_method()
    areas = list(method.framework.children(method.framework.root))
    allocations = stakeholders_mod.parse_allocations(
        sample_allocations_text(), areas=areas, file="stakeholder_weights.csv"
    )
    weights = stakeholders_mod.group_weights(allocations, areas)
    return {
        str(group): {a: round(float(weights.at[a, group]), 2) for a in areas}
        for group in weights.columns
    }
