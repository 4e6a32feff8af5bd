"""The regional rating on official statistics and its comparison with an outside ranking.

The rating ranks the 17 regions and 3 cities of republican significance on BNS series only
(``data/regional_official.yaml``, framework ``kz_regional``) with the same engine, rank intervals and
sensitivity as the national rating. The comparison sets it beside the volunteer ranking of
open-data-kazakhstan (``data/odk_final_rating.csv``, an exact copy of ``data/final_rating.csv`` of
open-data-kazakhstan/city-ranking-main @4a0a90b3, PDDL 1.0): Spearman's and Kendall's rank
correlations, and for each place the rank difference and where our areas put it.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from importlib import resources
from typing import Any

import pandas as pd
from sqlalchemy.orm import Session

from qala.components.catalog.frameworks import load_catalogue
from qala.components.rating.services import (
    RatingOutcome,
    SpecFile,
    build_rating,
    latest_run,
    regional_spec,
    run_entries,
    store_framework,
)
from qala.core.errors import NotFoundError
from qala.core.messages import msg
from qala.events import EventBus
from qala.store.database import Database

REGIONAL_RUN = "kz_regional_official"
REGIONAL_YEAR = 2022
REFERENCE = {
    "name": "open-data-kazakhstan city-ranking-main: final_rating.csv (Total_Score)",
    "url": "https://github.com/open-data-kazakhstan/city-ranking-main",
    "commit": "4a0a90b3fac9ca9b8e61f2ad15b56143c72194e5",
    "licence": "ODC PDDL 1.0 (BNS attribution for the underlying statistics)",
    "note": (
        "a volunteer ranking on 16 BNS inputs of mixed years (mostly 2022), KNN-imputed, "
        "min-max scaled with equal weights; not the official Smart City rating"
    ),
}
# Inputs the volunteer ranking weighs that the official rating here has no BNS series for.
REFERENCE_ONLY_INPUTS = (
    "average salary",
    "household spending",
    "crime and clearance rate",
    "higher and postgraduate education",
    "cars per 1 000",
    "population size",
    "public transport (2022 bus stock, suspect in the BNS source)",
)


def _data(name: str) -> str:
    return (resources.files("qala.components.rating") / "data" / name).read_text(encoding="utf-8")


def reference_ranking() -> pd.DataFrame:
    """The volunteer ranking, indexed by Qala place code: score and rank (1 = best)."""
    codes = {
        row["printed"]: row["code"] for row in csv.DictReader(io.StringIO(_data("odk_places.csv")))
    }
    rows = list(csv.DictReader(io.StringIO(_data("odk_final_rating.csv"))))
    frame = pd.DataFrame(
        {
            "place": [codes[row["Region"]] for row in rows],
            "printed": [row["Region"] for row in rows],
            "score": [float(row["Total_Score"]) for row in rows],
        }
    ).set_index("place")
    frame["rank"] = frame["score"].rank(ascending=False, method="min").astype(int)
    return frame.sort_values("rank")


@dataclass
class RankComparison:
    """Our ranking beside the reference: rank correlations and one row per place in both."""

    spearman: float
    kendall: float
    places: int
    rows: list[dict[str, Any]]
    """place, ours, theirs, difference (theirs − ours: positive = we rank it higher), our
    strongest and weakest area, sorted by the size of the difference."""

    def largest(self, n: int = 5) -> list[dict[str, Any]]:
        return self.rows[:n]

    def as_dict(self) -> dict[str, Any]:
        return {
            "reference": REFERENCE,
            "spearman": round(self.spearman, 4),
            "kendall": round(self.kendall, 4),
            "places": self.places,
            "rows": self.rows,
            "reference_only_inputs": list(REFERENCE_ONLY_INPUTS),
        }


def compare_ranks(
    ours: pd.Series, areas: pd.DataFrame | None = None, reference: pd.DataFrame | None = None
) -> RankComparison:
    """Compare ``ours`` (rank per place code) with the reference ranking on the places in both.

    ``areas`` (area scores per place, one column per area code) names each place's strongest and
    weakest area in our rating: where a disagreement comes from on our side."""
    from scipy.stats import kendalltau, spearmanr

    reference = reference_ranking() if reference is None else reference
    common = [code for code in reference.index if code in ours.index]
    if len(common) < 3:
        raise NotFoundError("fewer than three places in both rankings: nothing to compare")
    theirs = reference.loc[common, "rank"].astype(float)
    mine = ours.loc[common].astype(float)
    rho = float(spearmanr(mine, theirs).statistic)
    tau = float(kendalltau(mine, theirs).statistic)
    rows = []
    for code in common:
        row: dict[str, Any] = {
            "place": code,
            "ours": int(mine[code]),
            "theirs": int(theirs[code]),
            "difference": int(theirs[code] - mine[code]),
        }
        if areas is not None and code in areas.index:
            scores = areas.loc[code].dropna()
            row["strongest_area"] = str(scores.idxmax())
            row["weakest_area"] = str(scores.idxmin())
        rows.append(row)
    rows.sort(key=lambda r: (-abs(r["difference"]), r["ours"]))
    return RankComparison(rho, tau, len(common), rows)


def build_regional(
    database: Database,
    *,
    year: int = REGIONAL_YEAR,
    replications: int | None = None,
    save: bool = True,
    progress: Any = None,
    bus: EventBus | None = None,
) -> tuple[RatingOutcome, RankComparison]:
    """Build (and store) the regional rating on the newest published release that holds every
    indicator of its framework for ``year`` (the official statistics' release, which
    ``load_official`` publishes), naming it, and compare it with the reference ranking."""
    spec = regional_spec()
    release = regional_release(database, spec, year)
    outcome = build_rating(
        database,
        spec,
        release=release,
        year=year,
        replications=replications,
        save=save,
        progress=progress,
        bus=bus,
    )
    ranking = outcome.ranking()
    scores = outcome.result.scores
    areas = scores[[c for c in area_codes() if c in scores.columns]]
    return outcome, compare_ranks(ranking["rank"], areas)


def regional_release(database: Database, spec: SpecFile, year: int) -> int:
    """The number of the newest published release covering the spec's framework in ``year``."""
    from qala.components.catalog.calls import release_covering

    indicators = store_framework(spec.store.framework).indicators
    with database.session() as session:
        release = release_covering(session, indicators, year, official=spec.store.official_only)
    if release is None:
        raise NotFoundError(
            f"no published release holds the {spec.store.framework} indicators for {year}; "
            "load the official statistics (`qala data load-official`), which publishes them as "
            "a release, or publish a data call asking them (`qala releases publish`)"
        ).with_message(
            msg("regional.refused_no_release", framework=spec.store.framework, year=year)
        )
    return release.number


def area_codes() -> list[str]:
    return [node.code for node in load_catalogue().framework("kz_regional").areas()]


@dataclass
class RegionalBoard:
    """What the rating page shows of the regional rating: the latest stored run, its entries and
    the comparison."""

    run: Any
    entries: list[Any]
    comparison: RankComparison
    sources: list[dict[str, str]]


def regional_board(session: Session) -> RegionalBoard | None:
    """The newest stored regional rating on official data, or None when none was built."""
    try:
        run = latest_run(session, name=REGIONAL_RUN)
    except NotFoundError:
        return None
    entries = run_entries(session, run)
    ours = pd.Series({e.place: e.rank for e in entries if e.rank is not None})
    wanted = area_codes()
    areas = pd.DataFrame(
        {e.place: {k: v.get("score") for k, v in e.areas.items() if k in wanted} for e in entries}
    ).T
    return RegionalBoard(run, entries, compare_ranks(ours, areas), rating_sources(session))


def rating_sources(session: Session) -> list[dict[str, str]]:
    """Publisher, table and release of each series the regional rating reads."""
    from sqlalchemy import select

    from qala.components.catalog.models import OfficialSeries

    ids = load_catalogue().framework("kz_regional").indicator_ids()
    rows = session.scalars(
        select(OfficialSeries)
        .where(OfficialSeries.indicator_id.in_(ids))
        .order_by(OfficialSeries.key)
    )
    return [
        {
            "indicator": row.indicator_id or "",
            "publisher": row.publisher,
            "table": row.table_ref,
            "release": row.release,
        }
        for row in rows
    ]
