"""Participatory budgeting processes: their calendar, proposals, feasibility review and phases.

A process of a city or district moves ``proposals → review → voting → results → implementation →
closed``, one step at a time, each step checked against its calendar and its preconditions
(:func:`advance`). Every function takes a ``Session`` (the caller owns the transaction), an explicit
``now`` and the acting user's name, and returns plain dataclasses.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from qala.components.budgeting.core import (
    CODE,
    as_utc,
    check_key,
    clean_text3,
    clean_title_and_description,
    load_process,
    text_in,
    utc,
)
from qala.components.budgeting.iin import key_fingerprint
from qala.components.budgeting.ledger import append
from qala.components.budgeting.models import (
    BALLOT_KINDS,
    PHASES,
    VERIFIERS,
    Ballot,
    PhaseChange,
    Process,
    Project,
    Proposal,
    Voter,
)
from qala.components.budgeting.projects import projects_from_results
from qala.components.budgeting.voters import require_verified
from qala.core.errors import (
    ConflictError,
    NotFoundError,
    Problem,
    ValidationError,
    raise_if_problems,
)

# ---------------------------------------------------------------------------------------------
# Processes


@dataclass
class NewProcess:
    """What an official gives to open a process."""

    code: str
    place_code: str
    title: Mapping[str, str] | str
    budget: int
    proposals_open_at: datetime
    proposals_close_at: datetime
    review_close_at: datetime
    voting_open_at: datetime
    voting_close_at: datetime
    description: Mapping[str, str] | str | None = None
    ballot_kind: str = "approval"
    min_choices: int | None = None
    max_choices: int | None = None
    points_total: int | None = None
    max_points_per_project: int | None = None
    rule: str = "mes"
    completion: str = "add1"
    min_voter_age: int | None = 16
    eligible_voters: int | None = None
    capital_budget: int | None = None
    verifier: str = "declared"
    """How residents show who they are: ``declared`` (demos and trainings; results are labelled
    unverified) or ``signature`` (an NCA-style electronic signature)."""


@dataclass
class ProcessInfo:
    code: str
    place_code: str
    title: dict[str, str]
    description: dict[str, str]
    budget: int
    currency: str
    phase: str
    proposals_open_at: datetime
    proposals_close_at: datetime
    review_close_at: datetime
    voting_open_at: datetime
    voting_close_at: datetime
    ballot_kind: str
    min_choices: int | None
    max_choices: int | None
    points_total: int | None
    max_points_per_project: int | None
    rule: str
    completion: str
    min_voter_age: int | None
    eligible_voters: int | None
    capital_budget: int | None
    illustrative: bool
    verifier: str = "declared"
    proposals: int = 0
    feasible_proposals: int = 0
    voters_registered: int = 0
    ballots_cast: int = 0
    next_phase: str | None = None
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def unverified(self) -> bool:
        """Whether residents only typed their IIN in (nobody checked it was theirs)."""
        return self.verifier == "declared"

    @property
    def rule_label(self) -> str:
        return self.rule + (f"+{self.completion}" if self.rule == "mes" else "")


def _info(session: Session, process: Process, *, history: bool = False) -> ProcessInfo:
    counts = dict(
        session.execute(
            select(Proposal.status, func.count())
            .where(Proposal.process_id == process.id)
            .group_by(Proposal.status)
        ).all()
    )
    voters = session.scalar(
        select(func.count()).select_from(Voter).where(Voter.process_id == process.id)
    )
    ballots = session.scalar(
        select(func.count()).select_from(Ballot).where(Ballot.process_id == process.id)
    )
    position = PHASES.index(process.phase)
    info = ProcessInfo(
        code=process.code,
        place_code=process.place_code,
        title=dict(process.title),
        description=dict(process.description or {}),
        budget=process.budget,
        currency=process.currency,
        phase=process.phase,
        proposals_open_at=utc(process.proposals_open_at),
        proposals_close_at=utc(process.proposals_close_at),
        review_close_at=utc(process.review_close_at),
        voting_open_at=utc(process.voting_open_at),
        voting_close_at=utc(process.voting_close_at),
        ballot_kind=process.ballot_kind,
        min_choices=process.min_choices,
        max_choices=process.max_choices,
        points_total=process.points_total,
        max_points_per_project=process.max_points_per_project,
        rule=process.rule,
        completion=process.completion,
        min_voter_age=process.min_voter_age,
        eligible_voters=process.eligible_voters,
        capital_budget=process.capital_budget,
        illustrative=process.illustrative,
        verifier=process.verifier,
        proposals=sum(int(n) for n in counts.values()),
        feasible_proposals=int(counts.get("feasible", 0)),
        voters_registered=int(voters or 0),
        ballots_cast=int(ballots or 0),
        next_phase=PHASES[position + 1] if position + 1 < len(PHASES) else None,
    )
    if history:
        info.history = [
            {
                "from": change.from_phase,
                "to": change.to_phase,
                "at": utc(change.at).isoformat(),
                "actor": change.actor,
                "note": change.note,
            }
            for change in session.scalars(
                select(PhaseChange)
                .where(PhaseChange.process_id == process.id)
                .order_by(PhaseChange.id)
            )
        ]
    return info


def _check_new_process(session: Session, new: NewProcess) -> tuple[list[Problem], dict[str, Any]]:
    """Every problem with ``new`` at once, and its cleaned code, place, texts and completion."""
    problems: list[Problem] = []
    code = _check_code(new.code, problems)
    place_code = _check_place(session, new.place_code, problems)
    title, description = clean_title_and_description(new.title, new.description, problems)
    if not isinstance(new.budget, int) or new.budget <= 0:
        problems.append(
            Problem("a positive whole number of tenge", column="budget", value=new.budget)
        )
    _check_calendar(new, problems)
    _check_ballot(new, problems)
    completion = _check_rule(new, problems)
    _check_electorate(new, problems)
    if session.scalar(select(Process.id).where(Process.code == code)) is not None:
        problems.append(
            Problem("a process with this code exists", column="code", value=code, code="conflict")
        )
    return problems, {
        "code": code,
        "place_code": place_code,
        "title": title,
        "description": description,
        "completion": completion,
    }


def _check_code(given: str, problems: list[Problem]) -> str:
    code = given.strip().lower()
    if not CODE.match(code):
        problems.append(
            Problem(
                "2–80 characters of a–z, 0–9, _ . - (starting with a letter or digit)",
                column="code",
                value=given,
            )
        )
    return code


def _check_place(session: Session, given: str, problems: list[Problem]) -> str:
    """The catalogue's code of the city or district ``given`` names (else ``given`` itself)."""
    from qala.components.catalog.services import get_place

    try:
        place = get_place(session, given)
    except NotFoundError:
        problems.append(
            Problem(
                "no such place in the catalogue (see `qala places list`)",
                column="place_code",
                value=given,
            )
        )
        return given
    if place.level not in ("city", "district"):
        problems.append(
            Problem(
                f"a process belongs to a city or a district, not a {place.level}",
                column="place_code",
                value=given,
            )
        )
    return place.code


def _check_calendar(new: NewProcess, problems: list[Problem]) -> None:
    """Aware times, in order: voting and proposals open strictly before they close."""
    calendar = [
        ("proposals_open_at", new.proposals_open_at),
        ("proposals_close_at", new.proposals_close_at),
        ("review_close_at", new.review_close_at),
        ("voting_open_at", new.voting_open_at),
        ("voting_close_at", new.voting_close_at),
    ]
    naive = [name for name, moment in calendar if moment.tzinfo is None]
    for name in naive:
        problems.append(Problem("give a time zone (e.g. +05:00 for Astana)", column=name))
    if naive:
        return
    for (first, a), (second, b) in itertools.pairwise(calendar):
        strict = first in ("proposals_open_at", "voting_open_at")
        if (a >= b) if strict else (a > b):
            problems.append(
                Problem(
                    f"`{second}` must come {'after' if strict else 'no earlier than'} `{first}`",
                    column=second,
                    value=b.isoformat(),
                )
            )


def _check_ballot(new: NewProcess, problems: list[Problem]) -> None:
    """The ballot's kind and its limits on choices and points."""
    if new.ballot_kind not in BALLOT_KINDS:
        problems.append(
            Problem(
                f"one of {', '.join(BALLOT_KINDS)}", column="ballot_kind", value=new.ballot_kind
            )
        )
    for name in ("min_choices", "max_choices", "points_total", "max_points_per_project"):
        value = getattr(new, name)
        if value is not None and (not isinstance(value, int) or value < 1):
            problems.append(Problem("a whole number of at least 1", column=name, value=value))
    if (
        new.min_choices is not None
        and new.max_choices is not None
        and new.min_choices > new.max_choices
    ):
        problems.append(
            Problem(
                "`min_choices` exceeds `max_choices`", column="min_choices", value=new.min_choices
            )
        )
    if new.ballot_kind == "cumulative" and new.points_total is None:
        problems.append(
            Problem(
                "cumulative ballots need `points_total` (points each voter hands out)",
                column="points_total",
            )
        )
    if new.ballot_kind != "cumulative" and (new.points_total or new.max_points_per_project):
        problems.append(Problem("points apply to cumulative ballots only", column="points_total"))


def _check_rule(new: NewProcess, problems: list[Problem]) -> str:
    """The counting rule fits the ballot; returns the completion kept (``none`` but for MES)."""
    from qala.engines.pb import COMPLETIONS, RULES

    if new.rule not in RULES:
        problems.append(Problem(f"one of {', '.join(RULES)}", column="rule", value=new.rule))
    elif new.rule == "phragmen" and new.ballot_kind != "approval":
        problems.append(
            Problem(
                "sequential Phragmén counts approval ballots only", column="rule", value=new.rule
            )
        )
    completion = new.completion if new.rule == "mes" else "none"
    if completion not in COMPLETIONS:
        problems.append(
            Problem(f"one of {', '.join(COMPLETIONS)}", column="completion", value=new.completion)
        )
    return completion


def _check_electorate(new: NewProcess, problems: list[Problem]) -> None:
    """The verifier, and the minimum voting age, the eligible residents and the capital budget
    when given."""
    if new.min_voter_age is not None and not 0 <= new.min_voter_age <= 30:
        problems.append(
            Problem("between 0 and 30 years", column="min_voter_age", value=new.min_voter_age)
        )
    if new.verifier not in VERIFIERS:
        problems.append(
            Problem(f"one of {', '.join(VERIFIERS)}", column="verifier", value=new.verifier)
        )
    for name in ("eligible_voters", "capital_budget"):
        value = getattr(new, name)
        if value is not None and (not isinstance(value, int) or value <= 0):
            problems.append(Problem("a positive whole number", column=name, value=value))


def create_process(
    session: Session,
    new: NewProcess,
    *,
    actor: str,
    now: datetime,
    secret_key: str,
    illustrative: bool = False,
) -> ProcessInfo:
    """Open a process in its proposals phase; every problem with the input is reported together."""
    problems, clean = _check_new_process(session, new)
    raise_if_problems(problems, "cannot create the process")
    process = Process(
        code=clean["code"],
        place_code=clean["place_code"],
        title=clean["title"],
        description=clean["description"],
        budget=new.budget,
        phase="proposals",
        proposals_open_at=new.proposals_open_at,
        proposals_close_at=new.proposals_close_at,
        review_close_at=new.review_close_at,
        voting_open_at=new.voting_open_at,
        voting_close_at=new.voting_close_at,
        ballot_kind=new.ballot_kind,
        min_choices=new.min_choices,
        max_choices=new.max_choices,
        points_total=new.points_total,
        max_points_per_project=new.max_points_per_project,
        rule=new.rule,
        completion=clean["completion"],
        min_voter_age=new.min_voter_age,
        eligible_voters=new.eligible_voters,
        capital_budget=new.capital_budget,
        verifier=new.verifier,
        key_check=key_fingerprint(secret_key),
        illustrative=illustrative,
        created_at=now,
    )
    session.add(process)
    session.flush()
    append(
        session,
        actor=actor,
        kind="process.created",
        subject=process.code,
        data={
            "place_code": process.place_code,
            "budget": process.budget,
            "rule": process.rule,
            "completion": process.completion,
            "ballot_kind": process.ballot_kind,
            "voting_close_at": utc(process.voting_close_at).isoformat(),
        },
        now=now,
    )
    return _info(session, process)


def get_process(session: Session, code: str) -> ProcessInfo:
    """One process with its counts and phase history."""
    return _info(session, load_process(session, code), history=True)


def list_processes(
    session: Session, *, place_code: str | None = None, phase: str | None = None
) -> list[ProcessInfo]:
    """Every process (newest voting first), optionally of one place or phase."""
    query = select(Process).order_by(Process.voting_close_at.desc(), Process.code)
    if place_code:
        query = query.where(Process.place_code == place_code)
    if phase:
        query = query.where(Process.phase == phase)
    return [_info(session, p) for p in session.scalars(query)]


# ---------------------------------------------------------------------------------------------
# Proposals


@dataclass
class NewProposal:
    title: Mapping[str, str] | str
    estimated_cost: int
    description: Mapping[str, str] | str | None = None
    category: str = ""
    district: str | None = None


@dataclass
class ProposalInfo:
    id: int
    process: str
    code: str
    title: dict[str, str]
    description: dict[str, str]
    category: str
    district: str | None
    estimated_cost: int
    cost: int | None
    status: str
    review_reason: str | None
    reviewed_at: datetime | None
    selected: bool
    illustrative: bool
    author: str | None = None
    """Shown to officials only (public listings leave it out)."""


def _proposal_info(process: Process, row: Proposal, *, with_author: bool) -> ProposalInfo:
    return ProposalInfo(
        id=row.id,
        process=process.code,
        code=row.code,
        title=dict(row.title),
        description=dict(row.description or {}),
        category=row.category,
        district=row.district,
        estimated_cost=row.estimated_cost,
        cost=row.cost,
        status=row.status,
        review_reason=row.review_reason,
        reviewed_at=as_utc(row.reviewed_at),
        selected=row.selected,
        illustrative=row.illustrative,
        author=row.author if with_author else None,
    )


def _within(now: datetime, start: datetime, end: datetime) -> bool:
    return utc(start) <= utc(now) < utc(end)


def submit_proposal(
    session: Session,
    process_code: str,
    new: NewProposal,
    *,
    author: str,
    now: datetime,
    illustrative: bool = False,
    account_id: int | None = None,
) -> ProposalInfo:
    """A resident's proposal, accepted while the process takes proposals.

    With ``account_id``, only from an account verified the process's way
    (``voters.require_verified``); None for the demo and the city's own imports.
    """
    process = load_process(session, process_code, for_update=True)
    if process.phase != "proposals" or not _within(
        now, process.proposals_open_at, process.proposals_close_at
    ):
        raise ConflictError(
            f"process `{process.code}` takes proposals from "
            f"{utc(process.proposals_open_at):%Y-%m-%d %H:%M} to "
            f"{utc(process.proposals_close_at):%Y-%m-%d %H:%M} UTC; it is now in its "
            f"{process.phase} phase"
        )
    if account_id is not None:
        require_verified(session, process, account_id)
    problems: list[Problem] = []
    title, description = clean_title_and_description(new.title, new.description, problems)
    if not isinstance(new.estimated_cost, int) or new.estimated_cost <= 0:
        problems.append(
            Problem(
                "a positive whole number of tenge",
                column="estimated_cost",
                value=new.estimated_cost,
            )
        )
    elif new.estimated_cost > process.budget:
        problems.append(
            Problem(
                f"more than the whole budget of the process ({process.budget:,} tenge)",
                column="estimated_cost",
                value=new.estimated_cost,
            )
        )
    if len(new.category) > 80:
        problems.append(Problem("at most 80 characters", column="category"))
    raise_if_problems(problems, "cannot submit the proposal")
    count = session.scalar(
        select(func.count()).select_from(Proposal).where(Proposal.process_id == process.id)
    )
    row = Proposal(
        process_id=process.id,
        code=f"P{int(count or 0) + 1:02d}",
        title=title,
        description=description,
        category=new.category.strip(),
        district=new.district,
        estimated_cost=new.estimated_cost,
        author=author,
        submitted_at=now,
        illustrative=illustrative,
    )
    session.add(row)
    session.flush()
    return _proposal_info(process, row, with_author=True)


def list_proposals(
    session: Session, process_code: str, *, with_author: bool = False, status: str | None = None
) -> list[ProposalInfo]:
    process = load_process(session, process_code)
    query = select(Proposal).where(Proposal.process_id == process.id).order_by(Proposal.code)
    if status:
        query = query.where(Proposal.status == status)
    return [_proposal_info(process, r, with_author=with_author) for r in session.scalars(query)]


def _load_proposal(session: Session, process: Process, proposal_code: str) -> Proposal:
    row = session.scalar(
        select(Proposal).where(
            Proposal.process_id == process.id, Proposal.code == proposal_code.strip().upper()
        )
    )
    if row is None:
        raise NotFoundError(f"process `{process.code}` has no proposal `{proposal_code}`")
    return row


def review_proposal(
    session: Session,
    process_code: str,
    proposal_code: str,
    *,
    feasible: bool,
    reason: str,
    cost: int | None = None,
    actor: str,
    now: datetime,
) -> ProposalInfo:
    """Officials' feasibility decision with its public reason (and the confirmed cost)."""
    process = load_process(session, process_code)
    if process.phase != "review":
        raise ConflictError(
            f"proposals are reviewed in the review phase; process `{process.code}` is in its "
            f"{process.phase} phase"
        )
    row = _load_proposal(session, process, proposal_code)
    problems: list[Problem] = []
    reason = (reason or "").strip()
    if not reason:
        problems.append(Problem("say why, publicly: residents read the reason", column="reason"))
    if len(reason) > 4000:
        problems.append(Problem("at most 4000 characters", column="reason"))
    confirmed = row.estimated_cost if cost is None else cost
    if feasible and (not isinstance(confirmed, int) or confirmed <= 0):
        problems.append(Problem("a positive whole number of tenge", column="cost", value=cost))
    elif feasible and confirmed > process.budget:
        problems.append(
            Problem(
                f"more than the whole budget ({process.budget:,} tenge): not feasible as is",
                column="cost",
                value=cost,
            )
        )
    if row.status == "withdrawn":
        problems.append(
            Problem("the author withdrew this proposal", column="proposal", value=row.code)
        )
    raise_if_problems(problems, f"cannot review proposal {row.code}")
    row.status = "feasible" if feasible else "infeasible"
    row.review_reason = reason
    row.cost = confirmed if feasible else None
    row.reviewed_by = actor
    row.reviewed_at = now
    session.flush()
    return _proposal_info(process, row, with_author=True)


def withdraw_proposal(
    session: Session, process_code: str, proposal_code: str, *, author: str, now: datetime
) -> ProposalInfo:
    """The author takes their proposal back, while proposals are still taken."""
    process = load_process(session, process_code)
    row = _load_proposal(session, process, proposal_code)
    if row.author != author:
        raise ConflictError(f"only the author may withdraw proposal {row.code}")
    if process.phase != "proposals" or not _within(
        now, process.proposals_open_at, process.proposals_close_at
    ):
        raise ConflictError(
            f"proposals can be withdrawn while process `{process.code}` takes them; it is in its "
            f"{process.phase} phase"
        )
    row.status = "withdrawn"
    row.review_reason = "withdrawn by the author"
    session.flush()
    return _proposal_info(process, row, with_author=True)


# ---------------------------------------------------------------------------------------------
# Phases


def advance(
    session: Session,
    process_code: str,
    *,
    to_phase: str,
    actor: str,
    now: datetime,
    note: str = "",
) -> ProcessInfo:
    """Move a process to its next phase, if its calendar and preconditions allow.

    - ``review``: once proposals have closed;
    - ``voting``: once voting opens, with every proposal reviewed and at least one feasible;
    - ``results``: once voting has closed; the vote is counted (:func:`~qala.components.budgeting.
      ballots.count_votes`) and the selected proposals marked;
    - ``implementation``: each selected proposal becomes a tracked project;
    - ``closed``: when every tracked project of the process is delivered or cancelled.

    Every change is kept in the phase history and the public ledger.
    """
    process = load_process(session, process_code, for_update=True)
    _check_next_phase(process, to_phase)
    _PRECONDITIONS[to_phase](session, process, utc(now))
    _record_phase_change(session, process, to_phase, actor=actor, now=now, note=note.strip())
    if to_phase == "results":
        # Imported here: counting loads the pb engine (numpy, scipy), which the CLI's and the
        # web's listings of processes would otherwise pay for at every start.
        from qala.components.budgeting.ballots import record_results

        record_results(session, process, actor=actor, now=now)
    if to_phase == "implementation":
        projects_from_results(session, process, actor=actor, now=now)
    return _info(session, process, history=True)


def _check_next_phase(process: Process, to_phase: str) -> None:
    """``to_phase`` is a phase, and the one right after the process's current phase."""
    if to_phase not in PHASES:
        raise ValidationError.single(
            f"one of {', '.join(PHASES)}", column="to_phase", value=to_phase
        )
    current = PHASES.index(process.phase)
    if PHASES.index(to_phase) != current + 1:
        expected = PHASES[current + 1] if current + 1 < len(PHASES) else None
        raise ConflictError(
            f"process `{process.code}` is in its {process.phase} phase and can only move to "
            + (f"`{expected}`" if expected else "no further phase")
            + f", not to `{to_phase}`"
        )


def _ready_for_review(session: Session, process: Process, moment: datetime) -> None:
    if moment < utc(process.proposals_close_at):
        raise ConflictError(
            f"proposals are open until {utc(process.proposals_close_at):%Y-%m-%d %H:%M} UTC; "
            "review starts after that"
        )


def _ready_for_voting(session: Session, process: Process, moment: datetime) -> None:
    statuses = dict(
        session.execute(
            select(Proposal.status, func.count())
            .where(Proposal.process_id == process.id)
            .group_by(Proposal.status)
        ).all()
    )
    if statuses.get("submitted"):
        raise ConflictError(
            f"{statuses['submitted']} proposal(s) still await their feasibility review"
        )
    if not statuses.get("feasible"):
        raise ConflictError("no proposal was found feasible: there is nothing to vote on")
    if moment < utc(process.voting_open_at):
        raise ConflictError(f"voting opens at {utc(process.voting_open_at):%Y-%m-%d %H:%M} UTC")


def _ready_for_results(session: Session, process: Process, moment: datetime) -> None:
    if moment < utc(process.voting_close_at):
        raise ConflictError(
            f"voting is open until {utc(process.voting_close_at):%Y-%m-%d %H:%M} UTC; ballots "
            "may be revised until then, so results wait"
        )


def _ready_for_implementation(session: Session, process: Process, moment: datetime) -> None:
    """Results are counted: nothing more to wait for."""


def _ready_to_close(session: Session, process: Process, moment: datetime) -> None:
    unfinished = session.scalars(
        select(Project.code).where(
            Project.process_id == process.id,
            Project.status.not_in(("delivered", "cancelled")),
        )
    ).all()
    if unfinished:
        raise ConflictError(
            f"projects still under way: {', '.join(unfinished)}; a process closes when "
            "every project is delivered or cancelled"
        )


_PRECONDITIONS: dict[str, Callable[[Session, Process, datetime], None]] = {
    "review": _ready_for_review,
    "voting": _ready_for_voting,
    "results": _ready_for_results,
    "implementation": _ready_for_implementation,
    "closed": _ready_to_close,
}
"""What must hold, at ``moment`` (UTC), before a process enters each phase after ``proposals``."""


def _record_phase_change(
    session: Session, process: Process, to_phase: str, *, actor: str, now: datetime, note: str
) -> None:
    """Move the process on, in its phase history and in the public ledger."""
    previous = process.phase
    process.phase = to_phase
    session.add(
        PhaseChange(
            process_id=process.id,
            from_phase=previous,
            to_phase=to_phase,
            at=now,
            actor=actor,
            note=note,
        )
    )
    session.flush()
    append(
        session,
        actor=actor,
        kind="process.phase",
        subject=process.code,
        data={"from": previous, "to": to_phase, "note": note},
        now=now,
    )


__all__ = [
    "NewProcess",
    "NewProposal",
    "ProcessInfo",
    "ProposalInfo",
    "advance",
    "as_utc",
    "check_key",
    "clean_text3",
    "create_process",
    "get_process",
    "list_processes",
    "list_proposals",
    "load_process",
    "review_proposal",
    "submit_proposal",
    "text_in",
    "withdraw_proposal",
]
