"""The rating's services: index specs kept in the store, and ratings built from stored values.

A spec file has three blocks: ``store`` (where the data come from: a catalogue framework whose
tree is the structure, the level of places ranked, the coverage a place needs), ``index`` (the
recipe the index engine runs, see :class:`qala.engines.index.IndexSpec`) and ``uncertainty``
(assumptions for the Monte Carlo that gives each place's rank interval). The index engine reads
the same file in file mode (it unwraps ``index:`` and reads ``uncertainty:``), so one file
documents the method whatever the data source.

Every result records the spec text that made it and whether any input value was illustrative; a
rating computed on illustrative values says so wherever it is shown.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session

from qala.components.catalog.frameworks import load_catalogue
from qala.components.catalog.models import Place
from qala.components.catalog.services import population, single_industry_codes, values_frame
from qala.components.rating.models import RatingEntry, RatingRun, RatingSpec
from qala.core.errors import ConflictError, NotFoundError, Problem, ValidationError
from qala.core.messages import msg
from qala.core.yamltext import load_yaml
from qala.engines.index import (
    Framework,
    IndexResult,
    IndexSpec,
    UncertaintyResult,
    assumptions_from_config,
    build_index,
    framework_from_tree,
    run_uncertainty,
    wide_from_long,
)
from qala.events import Event, EventBus
from qala.store.base import utcnow
from qala.store.database import Database

HERE = Path(__file__).parent
NATIONAL_SPEC = HERE / "data" / "national.yaml"
"""The default spec of the national rating, shipped in the package."""
REGIONAL_SPEC = HERE / "data" / "regional_official.yaml"
"""The regional rating on official statistics (regions and cities of republican significance)."""
REGIONAL_LEVEL = "region_or_republican_city"
"""The ``store.level`` of a regional rating: the regions and the cities of republican
significance (Astana, Almaty, Shymkent), which BNS tables print beside the regions."""

KINDS = ("city", "single_industry")
"""Filters by kind: ``single_industry`` = on the single-industry (monotown) list that year,
``city`` = every other city."""

SIZE_CLASSES = ((500_000, "500k+"), (100_000, "100k–500k"), (50_000, "50k–100k"), (0, "<50k"))


# ---------------------------------------------------------------------------------------------
# Spec files


@dataclass(frozen=True)
class StoreSource:
    """Where a store-mode index takes its data from."""

    framework: str = "kz_smart_city"
    level: str = "city"
    min_coverage: float = 0.5
    official_only: bool = False
    """Use only official values (published statistics and values computed from them only)."""


@dataclass(frozen=True)
class SpecFile:
    """A parsed spec file: its text, the engine recipe, the store block and uncertainty block."""

    text: str
    spec: IndexSpec
    store: StoreSource
    uncertainty: dict[str, Any] | None

    @property
    def name(self) -> str:
        return self.spec.name


def read_spec_text(text: str, *, file: str | None = None) -> SpecFile:
    """Parse a spec file's text (YAML or JSON); problems name the file and field."""
    try:
        raw = load_yaml(text)
    except yaml.YAMLError as exc:
        raise ValidationError.single(f"spec is not valid YAML/JSON: {exc}", file=file) from exc
    if not isinstance(raw, dict):
        raise ValidationError.single("a spec file must be a mapping", file=file)
    store_raw = raw.get("store") or {}
    if not isinstance(store_raw, dict):
        raise ValidationError.single("`store` must be a mapping", file=file, column="store")
    allowed = {"framework", "level", "min_coverage", "official_only"}
    unknown = sorted(set(store_raw) - allowed)
    if unknown:
        raise ValidationError.single(
            f"unknown field(s) {unknown} in `store`; allowed: {sorted(allowed)}",
            file=file,
            column=f"store.{unknown[0]}",
        )
    coverage = float(store_raw.get("min_coverage", 0.5))
    if not 0 <= coverage <= 1:
        raise ValidationError.single(
            "`store.min_coverage` must be a share between 0 and 1",
            file=file,
            column="store.min_coverage",
            value=coverage,
        )
    store = StoreSource(
        framework=str(store_raw.get("framework", "kz_smart_city")),
        level=str(store_raw.get("level", "city")),
        min_coverage=coverage,
        official_only=bool(store_raw.get("official_only", False)),
    )
    body = raw["index"] if "index" in raw and "steps" not in raw else raw
    body = {k: v for k, v in body.items() if k not in ("store", "uncertainty")}
    try:
        spec = IndexSpec.from_dict(body)
    except ValidationError as exc:
        raise ValidationError([_with_file(p, file) for p in exc.problems], exc.summary) from None
    block = raw.get("uncertainty")
    if block is not None and not isinstance(block, dict):
        raise ValidationError.single(
            "`uncertainty` must be a mapping", file=file, column="uncertainty"
        )
    return SpecFile(text=text, spec=spec, store=store, uncertainty=block)


def _with_file(problem: Problem, file: str | None) -> Problem:
    if file is None or problem.file:
        return problem
    return Problem(
        problem.reason,
        file=file,
        row=problem.row,
        column=problem.column,
        value=problem.value,
        code=problem.code,
    )


def read_spec_file(path: Path | str) -> SpecFile:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValidationError.single(f"cannot read spec: {exc}", file=str(path)) from exc
    return read_spec_text(text, file=str(path))


def national_spec() -> SpecFile:
    """The national rating's default spec (``data/national.yaml``)."""
    return read_spec_file(NATIONAL_SPEC)


def save_spec(session: Session, text: str, *, name: str | None = None) -> RatingSpec:
    """Store (or replace) a named spec; the text is checked first."""
    parsed = read_spec_text(text, file=name)
    name = name or parsed.name
    row = session.scalar(select(RatingSpec).where(RatingSpec.name == name))
    if row is None:
        row = RatingSpec(name=name, text=text)
        session.add(row)
    row.text = text
    row.description = parsed.spec.description or None
    row.updated_at = utcnow()
    session.flush()
    return row


def list_specs(session: Session) -> list[RatingSpec]:
    return list(session.scalars(select(RatingSpec).order_by(RatingSpec.name)))


def get_spec(session: Session, name: str) -> RatingSpec:
    row = session.scalar(select(RatingSpec).where(RatingSpec.name == name))
    if row is None:
        known = ", ".join(s.name for s in list_specs(session)) or "none"
        raise NotFoundError(f"no stored spec `{name}`; stored: {known}")
    return row


def stored_spec_file(session: Session, name: str) -> SpecFile:
    """The spec stored under ``name``, read and checked like a spec file."""
    return read_spec_text(get_spec(session, name).text, file=name)


# ---------------------------------------------------------------------------------------------
# Data from the store


@dataclass
class StoreTable:
    """The wide table the engine takes, built from stored values, with what it is made of."""

    data: pd.DataFrame
    framework: Framework
    year: int
    places: pd.DataFrame
    """Per place code: name, region, kind, population, size_class, coverage, illustrative_share."""
    excluded: dict[str, str] = field(default_factory=dict)
    """Places left out and why."""

    @property
    def illustrative_share(self) -> float:
        kept = self.places[self.places["ranked"]]
        return float(kept["illustrative_share"].mean()) if len(kept) else 0.0


def size_class(people: int | None) -> str:
    if people is None:
        return "unknown"
    return next(label for bound, label in SIZE_CLASSES if people >= bound)


def store_framework(framework_id: str) -> Framework:
    """The catalogue framework's tree as the engine's structure (catalogue weights, polarity)."""
    return framework_from_tree(load_catalogue().index_tree(framework_id))


def _places_ranked(level: str) -> Any:
    if level == REGIONAL_LEVEL:
        return select(Place).where(
            (Place.level == "region")
            | ((Place.level == "city") & (Place.significance == "republican"))
        )
    return select(Place).where(Place.level == level)


def regional_spec() -> SpecFile:
    """The regional rating on official statistics (``data/regional_official.yaml``)."""
    return read_spec_file(REGIONAL_SPEC)


def store_table(
    session: Session,
    source: StoreSource,
    *,
    year: int | None = None,
    kind: str | None = None,
    region: str | None = None,
    values: pd.DataFrame | None = None,
) -> StoreTable:
    """Stored values of the framework's indicators for the places of ``source.level``
    (``values``: these long-layout values instead of the store's, e.g. a published release's).

    The table holds ``year`` and the earlier years (the engine's previous-year imputation reads
    them). Places are kept when they have values for at least ``source.min_coverage`` of the
    indicators in ``year`` and match the ``kind`` and ``region`` filters.
    """
    if kind is not None and kind not in KINDS:
        raise ValidationError.single(
            f"unknown kind `{kind}`; expected one of {', '.join(KINDS)}", column="kind", value=kind
        )
    framework = store_framework(source.framework)
    indicators = framework.indicators
    if values is None:
        long = values_frame(session, framework=source.framework)
    else:
        long = values[values["indicator"].isin(indicators)]
    if source.official_only:
        long = long[long["official"]]
    places = {p.code: p for p in session.scalars(_places_ranked(source.level))}
    long = long[long["place"].isin(places)]
    if long.empty:
        raise NotFoundError(
            f"no stored values of `{source.framework}` for places of level `{source.level}`; "
            "import data (`qala data import`) or load the demo (`qala demo load`)"
        )
    years = sorted(int(y) for y in long["year"].unique())
    if year is None:
        # the latest year in which at least two places have enough values: a component that
        # wrote this year's first few indicators must not empty the national rating
        per_year = long.groupby(["year", "place"])["value"].count() / len(indicators)
        enough = per_year[per_year >= source.min_coverage].groupby(level=0).size()
        usable = [int(y) for y, n in enough.items() if n >= 2]
        year = max(usable) if usable else years[-1]
    elif year not in years:
        raise NotFoundError(
            f"no stored values of `{source.framework}` for {year}; years with values: "
            + ", ".join(map(str, years))
        )
    long = long[long["year"] <= year]
    monotowns = single_industry_codes(session, year)
    parents = {p.id: p.code for p in session.scalars(select(Place))}
    current = long[long["year"] == year]
    counts = current.groupby("place")["value"].count()
    illustrative = current.groupby("place")["illustrative"].mean()
    rows = []
    excluded: dict[str, str] = {}
    for code, place in sorted(places.items()):
        people = population(session, place.id, year)
        place_kind = "single_industry" if code in monotowns else "city"
        place_region = parents.get(place.parent_id) if place.parent_id else None
        coverage = float(counts.get(code, 0)) / len(indicators)
        ranked = True
        if code not in counts.index:
            ranked = False  # no values that year: not a candidate, not worth a warning
        elif (kind is not None and place_kind != kind) or (
            region is not None and place_region != region and code != region
        ):
            ranked = False
        elif coverage < source.min_coverage:
            ranked = False
            excluded[code] = f"values for {coverage:.0%} of the indicators in {year}"
        rows.append(
            {
                "place": code,
                "name": place.name_en,
                "region": place_region,
                "kind": place_kind,
                "population": people,
                "size_class": size_class(people),
                "coverage": coverage,
                "illustrative_share": float(illustrative.get(code, 0.0)),
                "ranked": ranked,
            }
        )
    info = pd.DataFrame(rows).set_index("place")
    chosen = info.index[info["ranked"]]
    if len(chosen) < 2:
        raise ValidationError.single(
            f"fewer than two places to rank in {year} with these filters "
            f"(kind={kind}, region={region})",
            column="kind" if kind else "region",
        )
    long = long[long["place"].isin(chosen) & long["indicator"].isin(indicators)]
    extra = info.loc[chosen, ["name", "region", "kind", "size_class"]]
    wide = wide_from_long(
        long,
        unit="place",
        indicator="indicator",
        value="value",
        time="year",
        unit_column="place",
        time_column="year",
        extra=extra,
    )
    for code in indicators:  # indicators with no stored value at all are empty columns
        if code not in wide.columns:
            wide[code] = np.nan
    return StoreTable(data=wide, framework=framework, year=year, places=info, excluded=excluded)


# ---------------------------------------------------------------------------------------------
# Building


@dataclass
class RatingOutcome:
    """A rating built from the store: the engine's result, its uncertainty, what went in."""

    spec_file: SpecFile
    table: StoreTable
    result: IndexResult
    uncertainty: UncertaintyResult | None
    kind: str | None = None
    region: str | None = None
    run_id: int | None = None
    release: int | None = None
    """The published release the run read (None: the store's values)."""
    preview: int | None = None
    """The data call whose unpublished values a preview read (never stored)."""

    @property
    def illustrative(self) -> bool:
        return self.table.illustrative_share > 0

    source: dict[str, Any] | None = None
    """What the run read, as :func:`run_source` tells it (set by :func:`build_rating`)."""

    @property
    def year(self) -> int:
        return self.table.year

    def ranking(self) -> pd.DataFrame:
        """One row per ranked place, best first: score, rank, rank interval, kind, region."""
        root = self.result.root
        frame = pd.DataFrame(
            {
                "score": self.result.scores[root],
                "rank": self.result.ranks[root],
            }
        )
        if self.uncertainty is not None:
            stats = self.uncertainty.rank_stats
            frame["rank_median"] = stats["median"]
            frame["rank_q05"] = stats["q05"]
            frame["rank_q95"] = stats["q95"]
        else:
            frame["rank_median"] = np.nan
            frame["rank_q05"] = np.nan
            frame["rank_q95"] = np.nan
        info = self.table.places
        frame["name"] = info.loc[frame.index, "name"]
        frame["kind"] = info.loc[frame.index, "kind"]
        frame["region"] = info.loc[frame.index, "region"]
        frame["illustrative_share"] = info.loc[frame.index, "illustrative_share"]
        frame["imputed"] = self.result.imputed.sum(axis=1).reindex(frame.index).fillna(0)
        frame.index.name = "place"
        return frame.sort_values(["rank", "score"], ascending=[True, False])

    def to_json_dict(self, *, decimals: int | None = 4) -> dict[str, Any]:
        """``{"scores", "ranks"}`` as the engine prints them, plus rank intervals and provenance."""
        payload = self.result.to_json_dict(decimals=decimals)
        intervals: dict[str, Any] = {}
        if self.uncertainty is not None:
            for unit, row in self.uncertainty.rank_stats.iterrows():
                intervals[str(unit)] = {
                    "nominal": _num(row["nominal"]),
                    "median": _num(row["median"]),
                    "q05": _num(row["q05"]),
                    "q95": _num(row["q95"]),
                }
        return {
            "scores": payload["scores"],
            "ranks": payload["ranks"],
            "rank_intervals": intervals,
            "name": self.spec_file.name,
            "framework": self.spec_file.store.framework,
            "year": self.year,
            "kind": self.kind,
            "region": self.region,
            "illustrative": self.illustrative,
            "illustrative_share": round(self.table.illustrative_share, 4),
            "replications": 0 if self.uncertainty is None else self.uncertainty.runs,
            "excluded": self.table.excluded,
            "run_id": self.run_id,
            "release": self.release,
            "source": self.source,
            "preview": self.preview,
            "warnings": self.warnings,
        }

    @property
    def warnings(self) -> list[str]:
        out = list(self.result.warnings)
        if self.uncertainty is not None:
            out.extend(self.uncertainty.warnings)
        if self.preview is not None:
            out.insert(
                0,
                f"PREVIEW: draft values of data call {self.preview}, not a published release; "
                "not stored and not to be cited",
            )
        if self.illustrative:
            out.insert(
                0,
                f"ILLUSTRATIVE: {self.table.illustrative_share:.0%} of the input values are "
                "generated sample data, not official statistics; so is this rating"
                + ("" if self.release is not None else "; not a published release"),
            )
        return out


def _num(value: Any) -> float | None:
    return None if value is None or pd.isna(value) else float(value)


Progress = Callable[[int, int], None]


def build_rating(
    database: Database,
    spec_file: SpecFile | None = None,
    *,
    year: int | None = None,
    kind: str | None = None,
    region: str | None = None,
    replications: int | None = None,
    seed: int | None = None,
    save: bool = True,
    spec_name: str | None = None,
    progress: Progress | None = None,
    bus: EventBus | None = None,
    release: int | None = None,
    draft_call: int | None = None,
) -> RatingOutcome:
    """Build a rating from the store (default: the national rating) and optionally save it.

    Parameters
    ----------
    spec_file
        The spec (default :func:`national_spec`).
    year
        Year to rank (default: the latest with values).
    kind, region
        Rank only single-industry towns (``single_industry``) or only the other cities
        (``city``); only the cities of a region (its code, e.g. ``karaganda-region``).
    replications
        Monte Carlo replications for the rank intervals (default: the spec's ``uncertainty``
        block; 0 = none).
    save
        Store the result with the spec text that made it (``run_id`` tells which).
    bus
        When given, a saved rating is announced as ``Event("rating.built", {run_id, name, year,
        kind, region, illustrative})``.
    release
        Read only this published release's values (the run names it) instead of the store's.
    draft_call
        Read the unpublished values of this data call: a preview, labelled as such in its
        warnings and never saved.
    """
    spec_file = spec_file or national_spec()
    if release is not None and draft_call is not None:
        raise ValidationError.single(
            "a run reads one published release or previews one call's drafts, not both",
            column="draft_call",
        )
    save = save and draft_call is None
    with database.session() as session:
        values = _chosen_values(session, release, draft_call)
        table = store_table(
            session, spec_file.store, year=year, kind=kind, region=region, values=values
        )
        source = run_source(
            session,
            release=release,
            illustrative=table.illustrative_share > 0,
            preview=draft_call,
        )
    if save:  # refused before the Monte Carlo, not after it
        _must_name_a_release(spec_file.name, table.year, release, table.illustrative_share > 0)
    spec = spec_file.spec
    result = build_index(spec, table.data, table.framework)
    uncertainty = None
    block = spec_file.uncertainty or {}
    n = int(replications if replications is not None else block.get("replications", 0) or 0)
    if n > 0:
        if not block.get("assumptions"):
            raise ValidationError.single(
                "rank intervals need an `uncertainty:` block with `assumptions` in the spec",
                column="uncertainty",
            )
        uncertainty = run_uncertainty(
            spec,
            table.data,
            table.framework,
            assumptions_from_config(block),
            n=n,
            method="mc",
            seed=int(seed if seed is not None else block.get("seed", 0)),
            progress=progress,
        )
    outcome = RatingOutcome(
        spec_file,
        table,
        result,
        uncertainty,
        kind=kind,
        region=region,
        release=release,
        preview=draft_call,
        source=source,
    )
    if save:
        with database.transaction() as session:
            outcome.run_id = save_outcome(session, outcome, spec_name=spec_name)
        if bus is not None:
            bus.publish(
                Event(
                    "rating.built",
                    {
                        "run_id": outcome.run_id,
                        "name": spec_file.name,
                        "year": outcome.year,
                        "kind": kind,
                        "region": region,
                        "illustrative": outcome.illustrative,
                    },
                )
            )
    return outcome


def run_source(
    session: Session, *, release: int | None, illustrative: bool, preview: int | None = None
) -> dict[str, Any]:
    """What a run read, for the pages and the API: ``kind`` is ``release`` (with its number,
    publication date and data package), ``preview`` (a call's drafts, never stored),
    ``illustrative`` (the store's live values, generated sample values among them: not a
    published release) or ``live`` (live values, from before runs had to name a release)."""
    from qala.components.catalog.calls import get_release

    if release is not None:
        row = get_release(session, release)
        return {
            "kind": "release",
            "release": release,
            "published_at": row.published_at.isoformat(),
            "published_by": row.published_by,
            "datapackage": f"/api/v1/releases/{release}/datapackage.json",
        }
    if preview is not None:
        return {"kind": "preview", "release": None, "call": preview}
    if illustrative:
        return {
            "kind": "illustrative",
            "release": None,
            "note": "illustrative sample values, not a published release",
        }
    return {
        "kind": "live",
        "release": None,
        "note": "the store's live values, not a published release",
    }


def _must_name_a_release(name: str, year: int, release: int | None, illustrative: bool) -> None:
    """A stored run names the published release it read; only a run on illustrative sample
    values (labelled so) is stored without one."""
    if release is None and not illustrative:
        raise ConflictError(
            f"a stored rating run names the published release it read, and `{name}` for {year} "
            "reads the store's live values, none of them illustrative: publish the values first "
            "(a data call, `qala releases publish`; official statistics are published by "
            "`qala data load-official`) and build on the release (`--release N`), or preview "
            "without storing (`--no-save`)"
        ).with_message(msg("rating.refused_unpublished", name=name, year=year))


def _chosen_values(
    session: Session, release: int | None, draft_call: int | None
) -> pd.DataFrame | None:
    """The values a run reads when it does not read the store: a release's, or a call's drafts."""
    from qala.components.catalog.calls import draft_frame, release_frame

    if release is not None:
        return release_frame(session, release)
    if draft_call is not None:
        return draft_frame(session, draft_call)
    return None


def save_outcome(session: Session, outcome: RatingOutcome, *, spec_name: str | None = None) -> int:
    """Store a built rating and its entries; returns the run id. A run that names no published
    release is stored only when its inputs include illustrative values."""
    if outcome.preview is not None:
        raise ValidationError.single(
            "a preview of unpublished values is never stored", column="draft_call"
        )
    _must_name_a_release(
        outcome.spec_file.name, outcome.year, outcome.release, outcome.illustrative
    )
    spec_row = None
    if spec_name is not None:
        spec_row = get_spec(session, spec_name)
    result = outcome.result
    codes = {
        str(level): result.level_codes(level)
        for level in sorted(result.framework.levels)
        if level > 1
    }
    names = {
        code: result.framework[code].name or code for level in codes.values() for code in level
    }
    run = RatingRun(
        spec_id=None if spec_row is None else spec_row.id,
        name=outcome.spec_file.name,
        spec_text=outcome.spec_file.text,
        framework=outcome.spec_file.store.framework,
        catalogue_version=load_catalogue().version,
        year=outcome.year,
        kind=outcome.kind,
        region=outcome.region,
        places=len(result.scores),
        indicators=len(result.framework.indicators),
        illustrative=outcome.illustrative,
        illustrative_share=outcome.table.illustrative_share,
        replications=0 if outcome.uncertainty is None else outcome.uncertainty.runs,
        seconds=0.0 if outcome.uncertainty is None else outcome.uncertainty.seconds,
        warnings=outcome.warnings,
        levels={"codes": codes, "names": names},
        release=outcome.release,
    )
    session.add(run)
    session.flush()
    ids = {code: pid for pid, code in session.execute(select(Place.id, Place.code))}
    aggregates = [c for level in codes.values() for c in level]
    for place, row in outcome.ranking().iterrows():
        areas = {
            code: {
                "score": _num(result.scores.at[place, code]),
                "rank": _num(result.ranks.at[place, code]),
            }
            for code in aggregates
        }
        session.add(
            RatingEntry(
                run_id=run.id,
                place_id=ids[str(place)],
                score=_num(row["score"]),
                rank=None if pd.isna(row["rank"]) else int(row["rank"]),
                rank_median=_num(row["rank_median"]),
                rank_q05=_num(row["rank_q05"]),
                rank_q95=_num(row["rank_q95"]),
                single_industry=row["kind"] == "single_industry",
                region=row["region"],
                imputed=int(row["imputed"]),
                illustrative_share=float(row["illustrative_share"]),
                areas=areas,
            )
        )
    session.flush()
    return run.id


# ---------------------------------------------------------------------------------------------
# Reading stored results (for the API, the CLI and the dashboard)


@dataclass(frozen=True)
class RunSummary:
    id: int
    name: str
    framework: str
    year: int
    kind: str | None
    region: str | None
    places: int
    indicators: int
    illustrative: bool
    illustrative_share: float
    replications: int
    created_at: str
    warnings: list[str]
    release: int | None = None
    """The published release the run read (None: the store's values)."""
    source: dict[str, Any] | None = None
    """What the run read (:func:`run_source`); filled when read with a session."""

    @classmethod
    def of(cls, run: RatingRun, session: Session | None = None) -> RunSummary:
        source = (
            None
            if session is None
            else run_source(session, release=run.release, illustrative=run.illustrative)
        )
        return cls(
            id=run.id,
            name=run.name,
            framework=run.framework,
            year=run.year,
            kind=run.kind,
            region=run.region,
            places=run.places,
            indicators=run.indicators,
            illustrative=run.illustrative,
            illustrative_share=run.illustrative_share,
            replications=run.replications,
            created_at=run.created_at.isoformat(),
            warnings=list(run.warnings or []),
            release=run.release,
            source=source,
        )


@dataclass(frozen=True)
class EntryView:
    """One place in a stored rating, as pages and the API show it."""

    place: str
    name: dict[str, str]
    score: float | None
    rank: int | None
    rank_median: float | None
    rank_q05: float | None
    rank_q95: float | None
    rank_in_selection: int
    single_industry: bool
    region: str | None
    imputed: int
    illustrative_share: float
    areas: dict[str, Any]


def list_runs(
    session: Session, *, name: str | None = None, year: int | None = None
) -> list[RunSummary]:
    query = select(RatingRun).order_by(RatingRun.id.desc())
    if name is not None:
        query = query.where(RatingRun.name == name)
    if year is not None:
        query = query.where(RatingRun.year == year)
    return [RunSummary.of(r, session) for r in session.scalars(query)]


def get_run(session: Session, run_id: int) -> RatingRun:
    run = session.get(RatingRun, run_id)
    if run is None:
        raise NotFoundError(f"no rating run {run_id}; see `qala rating runs`")
    return run


def latest_run(
    session: Session, *, name: str = "kz_smart_city", year: int | None = None
) -> RatingRun:
    """The newest stored national rating (whole country, no filters) for ``year`` or any year."""
    query = (
        select(RatingRun)
        .where(RatingRun.name == name, RatingRun.kind.is_(None), RatingRun.region.is_(None))
        .order_by(RatingRun.year.desc() if year is None else RatingRun.id.desc())
        .order_by(RatingRun.id.desc())
    )
    if year is not None:
        query = query.where(RatingRun.year == year)
    run = session.scalars(query).first()
    if run is None:
        raise NotFoundError(
            f"no stored `{name}` rating"
            + (f" for {year}" if year else "")
            + "; build one with `qala rating build`"
        )
    return run


def run_entries(
    session: Session,
    run: RatingRun,
    *,
    kind: str | None = None,
    region: str | None = None,
    places: Iterable[str] | None = None,
) -> list[EntryView]:
    """Entries of a stored run, best first, filtered by kind and region.

    ``rank_in_selection`` is the rank among the filtered places (ties share the best rank);
    ``rank`` stays the rank in the whole run.
    """
    if kind is not None and kind not in KINDS:
        raise ValidationError.single(
            f"unknown kind `{kind}`; expected one of {', '.join(KINDS)}", column="kind", value=kind
        )
    wanted = None if places is None else {p.lower() for p in places}
    rows = session.execute(
        select(RatingEntry, Place)
        .join(Place, Place.id == RatingEntry.place_id)
        .where(RatingEntry.run_id == run.id)
    ).all()
    chosen = []
    for entry, place in rows:
        if kind == "single_industry" and not entry.single_industry:
            continue
        if kind == "city" and entry.single_industry:
            continue
        if region is not None and entry.region != region:
            continue
        if wanted is not None and place.code not in wanted:
            continue
        chosen.append((entry, place))
    chosen.sort(key=lambda ep: (ep[0].rank is None, ep[0].rank or 0, ep[1].code))
    out: list[EntryView] = []
    scores = [e.score for e, _ in chosen]
    for entry, place in chosen:
        better = sum(
            1 for s in scores if s is not None and entry.score is not None and s > entry.score
        )
        out.append(
            EntryView(
                place=place.code,
                name={"kk": place.name_kk, "ru": place.name_ru, "en": place.name_en},
                score=entry.score,
                rank=entry.rank,
                rank_median=entry.rank_median,
                rank_q05=entry.rank_q05,
                rank_q95=entry.rank_q95,
                rank_in_selection=better + 1,
                single_industry=entry.single_industry,
                region=entry.region,
                imputed=entry.imputed,
                illustrative_share=entry.illustrative_share,
                areas=dict(entry.areas or {}),
            )
        )
    return out


def place_history(
    session: Session, code: str, *, name: str = "kz_smart_city"
) -> list[dict[str, Any]]:
    """A place's score and rank in each stored whole-country run of ``name``, oldest year first
    (the newest run per year)."""
    place = session.scalar(select(Place).where(Place.code == code.lower()))
    if place is None:
        raise NotFoundError(f"no place `{code}`; see `qala places list`")
    rows = session.execute(
        select(RatingRun, RatingEntry)
        .join(RatingEntry, RatingEntry.run_id == RatingRun.id)
        .where(
            RatingRun.name == name,
            RatingRun.kind.is_(None),
            RatingRun.region.is_(None),
            RatingEntry.place_id == place.id,
        )
        .order_by(RatingRun.year, RatingRun.id)
    ).all()
    by_year: dict[int, dict[str, Any]] = {}
    for run, entry in rows:
        by_year[run.year] = {
            "year": run.year,
            "run_id": run.id,
            "places": run.places,
            "score": entry.score,
            "rank": entry.rank,
            "rank_q05": entry.rank_q05,
            "rank_q95": entry.rank_q95,
            "illustrative": run.illustrative,
        }
    return [by_year[y] for y in sorted(by_year)]


def rebuild_run(
    database: Database, run_id: int, *, replications: int | None = None
) -> RatingOutcome:
    """Build a stored run again from its spec text, year and filters on the values it read (its
    release, else the store's live values) to get every step's data set, which runs do not keep;
    nothing is saved. On live values, values imported since the run make the rebuild differ."""
    with database.session() as session:
        run = get_run(session, run_id)
        text, year, kind, region, reps, release = (
            run.spec_text,
            run.year,
            run.kind,
            run.region,
            run.replications,
            run.release,
        )
    spec_file = read_spec_text(text, file=f"run {run_id}")
    return build_rating(
        database,
        spec_file,
        year=year,
        kind=kind,
        region=region,
        replications=reps if replications is None else replications,
        save=False,
        release=release,
    )
