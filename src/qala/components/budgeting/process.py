"""Participatory budgeting processes: their calendar, proposals, feasibility review and phases.

A process of a city or district moves ``proposals → review → voting → results → implementation →
closed``, one step at a time, each step checked against its calendar and its preconditions
(:func:`advance`). Every function takes a ``Session`` (the caller owns the transaction), an explicit
``now`` and the acting user's name, and returns plain dataclasses.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from qala.components.budgeting.iin import key_fingerprint
from qala.components.budgeting.ledger import append
from qala.components.budgeting.models import (
    BALLOT_KINDS,
    PHASES,
    Ballot,
    PhaseChange,
    Process,
    Proposal,
    Voter,
)
from qala.core.errors import (
    ConfigurationError,
    ConflictError,
    NotFoundError,
    Problem,
    ValidationError,
    raise_if_problems,
)

LANGUAGES = ("kk", "ru", "en")
CODE = re.compile(r"^[a-z0-9][a-z0-9_.-]{1,79}$")
MAX_TITLE = 300
MAX_DESCRIPTION = 8000
RULES_WITH_COMPLETION = ("mes",)


def as_utc(moment: datetime | None) -> datetime | None:
    """SQLite hands back naive date-times; every stored time is UTC."""
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _utc(moment: datetime) -> datetime:
    result = as_utc(moment)
    assert result is not None
    return result


def clean_text3(
    value: Mapping[str, Any] | str | None,
    *,
    column: str,
    required: bool = True,
    limit: int = MAX_TITLE,
    problems: list[Problem],
) -> dict[str, str]:
    """Multilingual text ``{"kk"|"ru"|"en": text}`` (a plain string counts as Russian)."""
    if value is None:
        value = {}
    if isinstance(value, str):
        value = {"ru": value}
    clean: dict[str, str] = {}
    for language, text in value.items():
        if language not in LANGUAGES:
            problems.append(Problem("language must be kk, ru or en", column=f"{column}.{language}"))
            continue
        text = str(text or "").strip()
        if len(text) > limit:
            problems.append(
                Problem(
                    f"at most {limit} characters", column=f"{column}.{language}", value=len(text)
                )
            )
        elif text:
            clean[language] = text
    if required and not clean:
        problems.append(Problem("give the text in at least one of kk, ru, en", column=column))
    return clean


def text_in(value: Mapping[str, str], language: str) -> str:
    """The text in ``language``, else in Russian, Kazakh or English, whichever exists."""
    for candidate in (language, "ru", "kk", "en"):
        if value.get(candidate):
            return value[candidate]
    return ""


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
    proposals: int = 0
    feasible_proposals: int = 0
    voters_registered: int = 0
    ballots_cast: int = 0
    next_phase: str | None = None
    history: list[dict[str, Any]] = field(default_factory=list)

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
        proposals_open_at=_utc(process.proposals_open_at),
        proposals_close_at=_utc(process.proposals_close_at),
        review_close_at=_utc(process.review_close_at),
        voting_open_at=_utc(process.voting_open_at),
        voting_close_at=_utc(process.voting_close_at),
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
                "at": _utc(change.at).isoformat(),
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
    from qala.components.catalog.services import get_place
    from qala.engines.pb import COMPLETIONS, RULES

    problems: list[Problem] = []
    code = new.code.strip().lower()
    if not CODE.match(code):
        problems.append(
            Problem(
                "2–80 characters of a–z, 0–9, _ . - (starting with a letter or digit)",
                column="code",
                value=new.code,
            )
        )
    try:
        place = get_place(session, new.place_code)
        if place.level not in ("city", "district"):
            problems.append(
                Problem(
                    f"a process belongs to a city or a district, not a {place.level}",
                    column="place_code",
                    value=new.place_code,
                )
            )
        place_code = place.code
    except NotFoundError:
        problems.append(
            Problem(
                "no such place in the catalogue (see `qala places list`)",
                column="place_code",
                value=new.place_code,
            )
        )
        place_code = new.place_code
    title = clean_text3(new.title, column="title", problems=problems)
    description = clean_text3(
        new.description,
        column="description",
        required=False,
        limit=MAX_DESCRIPTION,
        problems=problems,
    )
    if not isinstance(new.budget, int) or new.budget <= 0:
        problems.append(
            Problem("a positive whole number of tenge", column="budget", value=new.budget)
        )
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
    if not naive:
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
    if new.min_voter_age is not None and not 0 <= new.min_voter_age <= 30:
        problems.append(
            Problem("between 0 and 30 years", column="min_voter_age", value=new.min_voter_age)
        )
    for name in ("eligible_voters", "capital_budget"):
        value = getattr(new, name)
        if value is not None and (not isinstance(value, int) or value <= 0):
            problems.append(Problem("a positive whole number", column=name, value=value))
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
            "voting_close_at": _utc(process.voting_close_at).isoformat(),
        },
        now=now,
    )
    return _info(session, process)


def load_process(session: Session, code: str, *, for_update: bool = False) -> Process:
    query = select(Process).where(Process.code == code.strip().lower())
    if for_update:
        query = query.with_for_update()
    process = session.scalar(query)
    if process is None:
        raise NotFoundError(f"no participatory budgeting process `{code}`")
    return process


def check_key(process: Process, secret_key: str) -> None:
    """Refuse to touch voters when the secret key changed: the IIN hashes would not match.

    An illustrative (demo) process adopts the new key instead: without ``QALA_SECRET_KEY`` every
    Qala process draws a random key, so ``qala demo load`` and ``qala serve`` differ, and a demo
    must stay usable. Its generated voters then count as other people — harmless for demo data,
    never allowed for a real vote.
    """
    fingerprint = key_fingerprint(secret_key)
    if process.key_check != fingerprint and process.illustrative:
        process.key_check = fingerprint
        return
    if process.key_check != fingerprint:
        raise ConfigurationError(
            f"process `{process.code}` was created with another secret key (QALA_SECRET_KEY); "
            "with this one, registered IINs would not be recognised and people could vote twice"
        )


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
    return _utc(start) <= _utc(now) < _utc(end)


def submit_proposal(
    session: Session,
    process_code: str,
    new: NewProposal,
    *,
    author: str,
    now: datetime,
    illustrative: bool = False,
) -> ProposalInfo:
    """A resident's proposal, accepted while the process takes proposals."""
    process = load_process(session, process_code, for_update=True)
    if process.phase != "proposals" or not _within(
        now, process.proposals_open_at, process.proposals_close_at
    ):
        raise ConflictError(
            f"process `{process.code}` takes proposals from "
            f"{_utc(process.proposals_open_at):%Y-%m-%d %H:%M} to "
            f"{_utc(process.proposals_close_at):%Y-%m-%d %H:%M} UTC; it is now in its "
            f"{process.phase} phase"
        )
    problems: list[Problem] = []
    title = clean_text3(new.title, column="title", problems=problems)
    description = clean_text3(
        new.description,
        column="description",
        required=False,
        limit=MAX_DESCRIPTION,
        problems=problems,
    )
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
    if to_phase not in PHASES:
        raise ValidationError.single(
            f"one of {', '.join(PHASES)}", column="to_phase", value=to_phase
        )
    current = PHASES.index(process.phase)
    target = PHASES.index(to_phase)
    if target != current + 1:
        expected = PHASES[current + 1] if current + 1 < len(PHASES) else None
        raise ConflictError(
            f"process `{process.code}` is in its {process.phase} phase and can only move to "
            + (f"`{expected}`" if expected else "no further phase")
            + f", not to `{to_phase}`"
        )
    moment = _utc(now)
    if to_phase == "review" and moment < _utc(process.proposals_close_at):
        raise ConflictError(
            f"proposals are open until {_utc(process.proposals_close_at):%Y-%m-%d %H:%M} UTC; "
            "review starts after that"
        )
    if to_phase == "voting":
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
        if moment < _utc(process.voting_open_at):
            raise ConflictError(
                f"voting opens at {_utc(process.voting_open_at):%Y-%m-%d %H:%M} UTC"
            )
    if to_phase == "results" and moment < _utc(process.voting_close_at):
        raise ConflictError(
            f"voting is open until {_utc(process.voting_close_at):%Y-%m-%d %H:%M} UTC; ballots "
            "may be revised until then, so results wait"
        )
    if to_phase == "closed":
        from qala.components.budgeting.models import Project

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
    previous = process.phase
    process.phase = to_phase
    session.add(
        PhaseChange(
            process_id=process.id,
            from_phase=previous,
            to_phase=to_phase,
            at=now,
            actor=actor,
            note=note.strip(),
        )
    )
    session.flush()
    append(
        session,
        actor=actor,
        kind="process.phase",
        subject=process.code,
        data={"from": previous, "to": to_phase, "note": note.strip()},
        now=now,
    )
    if to_phase == "results":
        from qala.components.budgeting.ballots import record_results

        record_results(session, process, actor=actor, now=now)
    if to_phase == "implementation":
        from qala.components.budgeting.projects import projects_from_results

        projects_from_results(session, process, actor=actor, now=now)
    return _info(session, process, history=True)


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
