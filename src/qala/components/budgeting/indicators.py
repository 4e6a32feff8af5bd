"""Participation and delivery indicators, written back to the catalogue.

Per place (the process's or project's city or district) and year:

- ``kz_sc.pb.turnout`` — percent of eligible residents who voted, over processes whose voting
  closed that year: voters / eligible, summed over the place's processes. Eligible residents are
  the process's ``eligible_voters`` when set, else the catalogue population of the place (which
  counts children too, so the figure is then a lower bound; the note says which).
- ``kz_sc.pb.proposals_per_1000`` — proposals submitted (whatever their review) per 1,000
  residents (catalogue population), processes grouped by the year their voting closed.
- ``kz_sc.pb.share_of_budget_decided`` — percent of the place's capital budget put to the vote:
  Σ process budgets / the capital budget recorded on the processes (written only when recorded).
- ``kz_sc.projects.on_time_share`` — percent of projects delivered that year (``actual_end``) no
  later than their planned end.
- ``kz_sc.projects.on_budget_share`` — percent of those whose payments add up to no more than
  their budget.
- ``kz_sc.projects.satisfaction`` — mean of residents' 1–5 ratings of those projects.

Rows built from illustrative data are written as illustrative.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from qala.components.budgeting.core import utc
from qala.components.budgeting.models import Payment, Process, Project, Proposal, Rating, Voter
from qala.store.database import Database

INDICATORS = {
    "turnout": "kz_sc.pb.turnout",
    "proposals_per_1000": "kz_sc.pb.proposals_per_1000",
    "share_of_budget_decided": "kz_sc.pb.share_of_budget_decided",
    "on_time_share": "kz_sc.projects.on_time_share",
    "on_budget_share": "kz_sc.projects.on_budget_share",
    "satisfaction": "kz_sc.projects.satisfaction",
}
SOURCE = "Qala budgeting: computed from participatory budgeting processes and tracked projects"
COUNTED_PHASES = ("results", "implementation", "closed")
COLUMNS = ["place", "indicator", "year", "value", "source", "note", "illustrative"]


@dataclass
class BudgetingIndicators:
    """One row per place, indicator and year (with the counts behind each value in ``note``)."""

    rows: pd.DataFrame

    def long_frame(self, *, illustrative: bool | None = None) -> pd.DataFrame:
        """Rows for the catalogue's ``import_frame`` (optionally only (non-)illustrative ones)."""
        frame = self.rows
        if illustrative is not None:
            frame = frame[frame["illustrative"] == illustrative]
        return frame.drop(columns="illustrative").reset_index(drop=True)

    def records(self) -> list[dict[str, Any]]:
        """The rows as plain Python values (numpy's become ints, floats and bools), for JSON."""
        return [
            {k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}
            for row in self.rows.to_dict(orient="records")
        ]


def _population(session: Session, place_code: str, year: int) -> int | None:
    from qala.components.catalog.services import get_place, population
    from qala.core.errors import NotFoundError

    try:
        place = get_place(session, place_code)
    except NotFoundError:
        return None
    return population(session, place.id, year)


Row = tuple[str, str, int, float, str, str, bool]
"""One value in the order of :data:`COLUMNS`."""


def _row(place: str, indicator: str, year: int, value: float, note: str, illustrative: bool) -> Row:
    return (place, INDICATORS[indicator], year, value, SOURCE, note, illustrative)


def compute_indicators(session: Session) -> BudgetingIndicators:
    """Every indicator the stored processes and projects support."""
    rows = _participation_rows(session) + _delivery_rows(session)
    return BudgetingIndicators(pd.DataFrame(rows, columns=COLUMNS))


def _participation_rows(session: Session) -> list[Row]:
    """Turnout, proposals per 1,000 and share of budget decided, per place and year of voting."""
    groups: dict[tuple[str, int], list[Process]] = defaultdict(list)
    for process in session.scalars(select(Process).where(Process.phase.in_(COUNTED_PHASES))):
        groups[(process.place_code, utc(process.voting_close_at).year)].append(process)
    rows: list[Row] = []
    for (place, year), processes in sorted(groups.items()):
        rows.extend(_participation(session, place, year, processes))
    return rows


def _participation(session: Session, place: str, year: int, processes: list[Process]) -> list[Row]:
    ids = [p.id for p in processes]
    illustrative = any(p.illustrative for p in processes)
    voted = int(
        session.scalar(
            select(func.count())
            .select_from(Voter)
            .where(Voter.process_id.in_(ids), Voter.has_voted.is_(True))
        )
        or 0
    )
    proposals = int(
        session.scalar(
            select(func.count()).select_from(Proposal).where(Proposal.process_id.in_(ids))
        )
        or 0
    )
    residents = _population(session, place, year)
    eligible = 0
    from_population = False
    for p in processes:
        if p.eligible_voters:
            eligible += p.eligible_voters
        elif residents:
            eligible += residents
            from_population = True
    rows: list[Row] = []
    if eligible:
        basis = "catalogue population" if from_population else "eligible residents"
        note = f"{voted} voters of {eligible} ({basis}), {len(processes)} process(es)"
        rows.append(_row(place, "turnout", year, 100.0 * voted / eligible, note, illustrative))
    if residents:
        note = f"{proposals} proposals, population {residents}"
        per_1000 = 1000.0 * proposals / residents
        rows.append(_row(place, "proposals_per_1000", year, per_1000, note, illustrative))
    capital = max((p.capital_budget or 0) for p in processes)
    if capital:
        decided = sum(p.budget for p in processes)
        note = f"{decided} of {capital} tenge of capital budget"
        share = 100.0 * decided / capital
        rows.append(_row(place, "share_of_budget_decided", year, share, note, illustrative))
    return rows


def _delivery_rows(session: Session) -> list[Row]:
    """On-time and on-budget shares and satisfaction, per place and year of delivery."""
    delivered: dict[tuple[str, int], list[Project]] = defaultdict(list)
    for project in session.scalars(
        select(Project).where(Project.status == "delivered", Project.actual_end.is_not(None))
    ):
        assert project.actual_end is not None
        delivered[(project.place_code, project.actual_end.year)].append(project)
    rows: list[Row] = []
    for (place, year), projects in sorted(delivered.items()):
        rows.extend(_delivery(session, place, year, projects))
    return rows


def _delivery(session: Session, place: str, year: int, projects: list[Project]) -> list[Row]:
    ids = [p.id for p in projects]
    illustrative = any(p.illustrative for p in projects)
    paid = dict(
        session.execute(
            select(Payment.project_id, func.sum(Payment.amount))
            .where(Payment.project_id.in_(ids))
            .group_by(Payment.project_id)
        ).all()
    )
    on_time = sum(1 for p in projects if p.actual_end is not None and p.actual_end <= p.planned_end)
    on_budget = sum(1 for p in projects if int(paid.get(p.id) or 0) <= p.budget)
    n = len(projects)
    rows = [
        _row(
            place,
            "on_time_share",
            year,
            100.0 * on_time / n,
            f"{on_time} of {n} delivered projects on time",
            illustrative,
        ),
        _row(
            place,
            "on_budget_share",
            year,
            100.0 * on_budget / n,
            f"{on_budget} of {n} delivered projects within budget",
            illustrative,
        ),
    ]
    mean, count = session.execute(
        select(func.avg(Rating.stars), func.count(Rating.id)).where(Rating.project_id.in_(ids))
    ).one()
    any_illustrative = session.scalar(
        select(func.count())
        .select_from(Rating)
        .where(Rating.project_id.in_(ids), Rating.illustrative.is_(True))
    )
    if count:
        note = f"{count} ratings of {n} delivered projects"
        flag = illustrative or bool(any_illustrative)
        rows.append(_row(place, "satisfaction", year, float(mean), note, flag))
    return rows


def write_indicators(
    database: Database, result: BudgetingIndicators, *, imported_by: str | None = None
) -> int:
    """Write the values to the catalogue (illustrative rows marked so); returns rows written."""
    from qala.components.catalog.services import import_frame

    written = 0
    for illustrative in (False, True):
        frame = result.long_frame(illustrative=illustrative)
        if frame.empty:
            continue
        report = import_frame(
            database,
            frame,
            file="budgeting:indicators",
            illustrative=illustrative,
            imported_by=imported_by,
        )
        written += report.rows_written
    return written


def publish_indicators(database: Database, *, imported_by: str | None = None) -> int:
    """Compute the indicators from what is stored now and write them to the catalogue.

    Returns the rows written.
    """
    with database.session() as session:
        result = compute_indicators(session)
    return write_indicators(database, result, imported_by=imported_by)
