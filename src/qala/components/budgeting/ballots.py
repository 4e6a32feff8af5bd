"""Ballots, the count and the pabulib export.

Casting a ballot does two writes in one transaction: the voter's row in the registry is flipped to
"has voted" (a conditional update, so two simultaneous ballots of one IIN cannot both pass) and
the choices are stored under ``sha256(receipt)``, where ``receipt`` is a random token returned to
the voter once and never stored. The voter revises their ballot until voting closes by presenting
their IIN and that receipt; without the receipt nobody — not even an administrator reading both
tables — can tell which ballot is whose.

The count builds an engine instance and profile from the feasible proposals and the ballots (voters
numbered in receipt-hash order) and runs the process's rule with ``qala.engines.pb.solve``.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from fractions import Fraction
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from qala.components.budgeting.core import load_process, text_in, utc
from qala.components.budgeting.ledger import append
from qala.components.budgeting.models import (
    AccountVote,
    Ballot,
    Process,
    Proposal,
    Result,
    Voter,
)
from qala.components.budgeting.voters import register_in
from qala.core.errors import ConflictError, NotFoundError, Problem, raise_if_problems
from qala.core.messages import msg
from qala.engines.pb import (
    Ballot as EngineBallot,
    BallotKind,
    Election,
    Instance,
    Outcome,
    Profile,
    Project,
    method_of_equal_shares,
    solve,
    write_pabulib,
)
from qala.events import Event, publish_in_transaction

Choices = Sequence[str] | Mapping[str, int]
"""Approval: project codes; ordinal: codes best first; cumulative: ``{code: points}``."""
PABULIB_RULES = {"greedy": "greedy", "phragmen": "phragmen", "max-welfare": "max-welfare"}


def receipt_hash(receipt: str) -> str:
    return hashlib.sha256(receipt.strip().encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class BallotReceipt:
    """What the voter gets back: keep ``receipt`` to check or revise the ballot."""

    process: str
    receipt: str
    revised: bool
    projects: list[str]
    points: list[int] | None


@dataclass(frozen=True)
class BallotView:
    process: str
    projects: list[str]
    points: list[int] | None


def _feasible(session: Session, process: Process) -> dict[str, Proposal]:
    rows = session.scalars(
        select(Proposal)
        .where(Proposal.process_id == process.id, Proposal.status == "feasible")
        .order_by(Proposal.code)
    )
    return {row.code: row for row in rows}


def check_choices(
    process: Process, feasible: Mapping[str, Proposal], choices: Choices
) -> tuple[list[str], list[int] | None]:
    """The ballot in stored form, or a ``ValidationError`` naming every rule it breaks."""
    problems: list[Problem] = []
    points: list[int] | None = None
    if process.ballot_kind == "cumulative":
        projects, points = _points_given(process, choices, problems)
    else:
        projects = _projects_listed(choices)
    _check_projects_named(process, feasible, projects, problems)
    raise_if_problems(problems, "the ballot is not valid")
    return projects, points


def _points_given(
    process: Process, choices: Choices, problems: list[Problem]
) -> tuple[list[str], list[int]]:
    """A cumulative ballot's projects and points, each within the process's limits."""
    if not isinstance(choices, Mapping):
        raise_if_problems(
            [Problem("a cumulative ballot gives points: {project: points}", column="choices")],
            "the ballot is not valid",
        )
    assert isinstance(choices, Mapping)
    pairs = [(str(k).strip().upper(), v) for k, v in choices.items()]
    points = []
    for code, value in pairs:
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            problems.append(
                Problem(
                    "points are whole numbers of at least 1",
                    column=f"choices.{code}",
                    value=value,
                )
            )
        elif process.max_points_per_project is not None and value > process.max_points_per_project:
            problems.append(
                Problem(
                    f"at most {process.max_points_per_project} points per project",
                    column=f"choices.{code}",
                    value=value,
                )
            )
        points.append(value if isinstance(value, int) else 0)
    total = sum(points)
    if process.points_total is not None and total > process.points_total:
        problems.append(
            Problem(
                f"the points add up to {total}, more than the {process.points_total} "
                "each voter may give",
                column="choices",
                value=total,
            )
        )
    return [code for code, _ in pairs], points


def _projects_listed(choices: Choices) -> list[str]:
    """An approval or ordinal ballot's project codes, in the order given."""
    if isinstance(choices, (Mapping, str)):
        raise_if_problems(
            [Problem('list the chosen projects\' codes, e.g. ["P01", "P04"]', column="choices")],
            "the ballot is not valid",
        )
    return [str(code).strip().upper() for code in choices]


def _check_projects_named(
    process: Process, feasible: Mapping[str, Proposal], projects: list[str], problems: list[Problem]
) -> None:
    """Feasible projects, each once, as many as the process allows."""
    unknown = [code for code in projects if code not in feasible]
    if unknown:
        problems.append(
            Problem(
                "not a project on this ballot (see the feasible proposals)",
                column="choices",
                value=", ".join(unknown),
            )
        )
    repeated = sorted({code for code in projects if projects.count(code) > 1})
    if repeated:
        problems.append(
            Problem("a project is named twice", column="choices", value=", ".join(repeated))
        )
    count = len(projects)
    fewest = max(process.min_choices or 1, 1)
    if count < fewest:
        problems.append(
            Problem(
                f"choose at least {fewest} project(s); this ballot names {count}",
                column="choices",
                value=count,
            )
        )
    if process.max_choices is not None and count > process.max_choices:
        problems.append(
            Problem(
                f"choose at most {process.max_choices} projects; this ballot names {count}",
                column="choices",
                value=count,
            )
        )


def cast_ballot(
    session: Session,
    process_code: str,
    *,
    iin: str,
    choices: Choices,
    secret_key: str,
    now: datetime,
    receipt: str | None = None,
    illustrative: bool = False,
    account_id: int | None = None,
) -> BallotReceipt:
    """Cast a ballot (registering the voter if new) or, with ``receipt``, revise one.

    With ``account_id`` the ballot counts only for the account's own IIN (bound to it on its
    first use; see ``voters.speak_for``): an account cannot vote for other people.

    Raises ``ConflictError`` outside the voting window or for a second ballot of one IIN,
    ``ValidationError`` for an invalid IIN or a ballot over the form's limits, ``NotFoundError``
    for an unknown receipt. The ballot is durable once the caller's transaction commits.
    """
    process = load_process(session, process_code)
    if process.phase != "voting" or not (
        utc(process.voting_open_at) <= utc(now) < utc(process.voting_close_at)
    ):
        raise ConflictError(
            f"voting in `{process.code}` is open from {utc(process.voting_open_at):%Y-%m-%d %H:%M} "
            f"to {utc(process.voting_close_at):%Y-%m-%d %H:%M} UTC during its voting phase; "
            f"it is now in its {process.phase} phase"
            + (" and voting has closed" if utc(now) >= utc(process.voting_close_at) else "")
        )
    voter, _created = register_in(
        session,
        process,
        iin,
        secret_key=secret_key,
        now=now,
        illustrative=illustrative,
        account_id=account_id,
    )
    projects, points = check_choices(process, _feasible(session, process), choices)
    if receipt is not None:
        if not voter.has_voted:
            raise NotFoundError(
                "this IIN has not voted yet in this process: cast a ballot first"
            ).with_message(msg("pb.error.not_voted_yet"))
        ballot = session.scalar(
            select(Ballot).where(
                Ballot.receipt_hash == receipt_hash(receipt), Ballot.process_id == process.id
            )
        )
        if ballot is None:
            raise NotFoundError(
                f"no ballot in `{process.code}` has this receipt; check that you typed it exactly"
            ).with_message(msg("pb.error.receipt_unknown"))
        ballot.projects = projects
        ballot.points = points
        if account_id is not None:
            mark = session.get(AccountVote, (process.id, account_id))
            if mark is not None:
                mark.changed_at = now
        session.flush()
        return BallotReceipt(process.code, receipt.strip(), True, projects, points)
    # Flip "has voted" only if it was not already: of two simultaneous ballots one wins.
    flipped = session.execute(
        update(Voter)
        .where(Voter.id == voter.id, Voter.has_voted.is_(False))
        .values(has_voted=True)
        .execution_options(synchronize_session=False)
    )
    if getattr(flipped, "rowcount", 0) != 1:
        raise ConflictError(
            f"this IIN has already voted in `{process.code}`; to change the ballot before voting "
            "closes, send it again with the receipt you got when you voted"
        ).with_message(msg("pb.error.already_voted"))
    session.expire(voter, ["has_voted"])
    token = secrets.token_urlsafe(18)
    session.add(
        Ballot(
            receipt_hash=receipt_hash(token),
            process_id=process.id,
            projects=projects,
            points=points,
        )
    )
    if account_id is not None and not illustrative:
        # That (not how) this account voted: the page it returns to says so.
        session.add(AccountVote(process_id=process.id, account_id=account_id, voted_at=now))
    session.flush()
    if account_id is not None and not illustrative:
        # In the ballot's transaction: the receipt mail is stored exactly when the ballot is.
        # Nothing here links the account to the ballot's content.
        publish_in_transaction(
            session,
            Event(
                "budgeting.ballot_cast",
                {
                    "process": process.code,
                    "title": dict(process.title or {}),
                    "account_id": account_id,
                    "receipt": token,
                    "at": now.isoformat(),
                },
            ),
        )
    return BallotReceipt(process.code, token, False, projects, points)


@dataclass(frozen=True)
class AccountVoteView:
    """When an account voted in a process and when it last changed its ballot."""

    process: str
    voted_at: datetime
    changed_at: datetime | None


def account_vote(session: Session, process_code: str, account_id: int) -> AccountVoteView | None:
    """Whether (never how) an account has voted in a process; None before it has."""
    process = load_process(session, process_code)
    mark = session.get(AccountVote, (process.id, account_id))
    if mark is None:
        return None
    return AccountVoteView(
        process.code, utc(mark.voted_at), mark.changed_at and utc(mark.changed_at)
    )


def check_ballot(session: Session, process_code: str, receipt: str) -> BallotView:
    """The ballot stored under a receipt (only its holder can ask)."""
    process = load_process(session, process_code)
    ballot = session.scalar(
        select(Ballot).where(
            Ballot.receipt_hash == receipt_hash(receipt), Ballot.process_id == process.id
        )
    )
    if ballot is None:
        raise NotFoundError(f"no ballot in `{process.code}` has this receipt")
    return BallotView(process.code, list(ballot.projects), ballot.points)


# ---------------------------------------------------------------------------------------------
# The count


def pabulib_rule(process: Process) -> str:
    """The rule as pabulib's META ``rule`` spells it."""
    if process.rule == "mes":
        return (
            "equalshares" if process.completion == "none" else f"equalshares/{process.completion}"
        )
    return PABULIB_RULES[process.rule]


def build_election(session: Session, process: Process, *, language: str = "en") -> Election:
    """The engine's instance (feasible proposals at their confirmed cost) and profile (ballots)."""
    feasible = _feasible(session, process)
    projects = [
        Project(
            code,
            Fraction(int(row.cost if row.cost is not None else row.estimated_cost)),
            {"name": text_in(row.title, language), "category": row.category},
        )
        for code, row in feasible.items()
    ]
    meta = {
        "description": text_in(process.title, language),
        "country": "Kazakhstan",
        "unit": process.place_code,
        "instance": process.code,
        "currency": process.currency,
        "date_begin": utc(process.voting_open_at).date().isoformat(),
        "date_end": utc(process.voting_close_at).date().isoformat(),
        "rule": pabulib_rule(process),
        "language": language,
    }
    if process.illustrative:
        meta["comment"] = "ILLUSTRATIVE: generated demo data, not a real vote"
    instance = Instance(projects, Fraction(process.budget), meta)
    rows = session.execute(
        select(Ballot.projects, Ballot.points)
        .where(Ballot.process_id == process.id)
        .order_by(Ballot.receipt_hash)
    ).all()
    kind = BallotKind(process.ballot_kind)
    ballots = [
        EngineBallot(
            str(k + 1),
            tuple(chosen),
            None if points is None else tuple(Fraction(p) for p in points),
        )
        for k, (chosen, points) in enumerate(rows)
    ]
    profile = Profile(
        kind,
        ballots,
        min_length=process.min_choices,
        max_length=process.max_choices,
        max_points=None
        if process.max_points_per_project is None
        else Fraction(process.max_points_per_project),
        max_sum_points=None if process.points_total is None else Fraction(process.points_total),
    )
    return Election(instance, profile)


def add1_increment(budget: int, voters: int) -> int:
    """Add1's raise of each voter's share per step: 1 tenge, or 0.1 % of the first share when that
    is larger.

    Add1 reruns MES with every share raised by one currency unit until the outcome overspends.
    With 1 tenge and a share of millions (a district budget, a few hundred voters) that is millions
    of reruns; 0.1 % of the share keeps it to a few thousand at most and equals 1 unit whenever
    shares are below 2,000 tenge (as in the large pabulib elections, counted in PLN or EUR).
    """
    if voters <= 0:
        return 1
    return max(1, budget // voters // 1000)


def count_votes(session: Session, process: Process) -> Outcome:
    """Run the process's rule on its ballots with ``qala.engines.pb``.

    MES runs with the process's completion and :func:`add1_increment`; every other rule is
    ``qala.engines.pb.solve`` by name, as ``qala pb solve`` runs it on the exported file.
    """
    election = build_election(session, process)
    if process.rule == "mes":
        return method_of_equal_shares(
            election.instance,
            election.profile,
            completion=process.completion,  # type: ignore[arg-type]
            increment=add1_increment(process.budget, len(election.profile)),
        )
    return solve(election.instance, election.profile, process.rule)


def record_results(session: Session, process: Process, *, actor: str, now: datetime) -> Result:
    """Count, keep the outcome with its explanation, mark the selected proposals, ledger it."""
    outcome = count_votes(session, process)
    count = int(
        session.scalar(
            select(func.count()).select_from(Ballot).where(Ballot.process_id == process.id)
        )
        or 0
    )
    cost = int(outcome.cost)
    result = Result(
        process_id=process.id,
        rule=outcome.rule,
        selected=list(outcome.selected),
        cost=cost,
        ballots=count,
        outcome={
            **outcome.as_dict(explain=True),
            "add1_increment": add1_increment(process.budget, count),
        },
        computed_at=now,
        computed_by=actor,
    )
    session.add(result)
    chosen = set(outcome.selected)
    for row in _feasible(session, process).values():
        row.selected = row.code in chosen
    session.flush()
    append(
        session,
        actor=actor,
        kind="process.results",
        subject=process.code,
        data={
            "rule": outcome.rule,
            "selected": list(outcome.selected),
            "cost": cost,
            "ballots": count,
        },
        now=now,
    )
    return result


@dataclass
class ProjectResult:
    code: str
    title: dict[str, str]
    cost: int
    votes: int
    """Ballots naming the project."""
    selected: bool
    round: int | None
    reason: str
    numbers: dict[str, float] = field(default_factory=dict)


@dataclass
class ResultsInfo:
    process: str
    rule: str
    budget: int
    cost: int
    ballots: int
    selected: list[str]
    projects: list[ProjectResult]
    computed_at: datetime
    verifier: str = "declared"
    unverified: bool = True
    """Residents only typed their IINs in: nobody checked that each ballot was its voter's own."""

    @property
    def share_spent(self) -> float:
        return self.cost / self.budget if self.budget else 0.0


def get_results(session: Session, process_code: str) -> ResultsInfo:
    """The published results with the explanation of every project (after voting closed)."""
    process = load_process(session, process_code)
    result = session.scalar(select(Result).where(Result.process_id == process.id))
    if result is None:
        raise NotFoundError(
            f"process `{process.code}` has no results yet (it is in its {process.phase} phase)"
        )
    feasible = _feasible(session, process)
    votes = dict.fromkeys(feasible, 0)
    for (chosen,) in session.execute(
        select(Ballot.projects).where(Ballot.process_id == process.id)
    ):
        for code in chosen:
            if code in votes:
                votes[code] += 1
    explanations: dict[str, dict[str, Any]] = {
        e["project_id"]: e for e in result.outcome.get("explanations", [])
    }
    order = {code: k for k, code in enumerate(result.selected)}
    rows = []
    for code, proposal in feasible.items():
        explanation = explanations.get(code, {})
        rows.append(
            ProjectResult(
                code=code,
                title=dict(proposal.title),
                cost=int(proposal.cost or proposal.estimated_cost),
                votes=votes[code],
                selected=code in order,
                round=explanation.get("round"),
                reason=str(explanation.get("reason", "")),
                numbers=dict(explanation.get("numbers", {})),
            )
        )
    rows.sort(key=lambda r: (not r.selected, order.get(r.code, 0), -r.votes, r.code))
    return ResultsInfo(
        process=process.code,
        rule=result.rule,
        budget=process.budget,
        cost=result.cost,
        ballots=result.ballots,
        selected=list(result.selected),
        projects=rows,
        computed_at=utc(result.computed_at),
        verifier=process.verifier,
        unverified=process.verifier == "declared",
    )


def export_pabulib(session: Session, process_code: str, *, language: str = "en") -> str:
    """The process as a pabulib ``.pb`` file (after voting closed, so no running tally leaks).

    Projects carry ``name``, ``category``, ``votes`` and, once counted, ``selected`` (1/0).
    """
    process = load_process(session, process_code)
    if process.phase in ("proposals", "review", "voting"):
        raise ConflictError(
            f"process `{process.code}` is in its {process.phase} phase; its ballots are published "
            "once voting has closed"
        )
    election = build_election(session, process, language=language)
    votes = election.profile.approval_counts(election.instance)
    result = session.scalar(select(Result).where(Result.process_id == process.id))
    chosen = set(result.selected) if result is not None else None
    projects = []
    for project in election.instance:
        meta = dict(project.meta)
        meta["votes"] = str(votes[project.id])
        if chosen is not None:
            meta["selected"] = "1" if project.id in chosen else "0"
        projects.append(Project(project.id, project.cost, meta))
    meta = dict(election.instance.meta)
    if process.rule == "mes" and process.completion.startswith("add1"):
        # Not a pabulib key: readers keep it, and `qala pb solve` users can pass it on.
        meta["add1_increment"] = str(add1_increment(process.budget, len(election.profile)))
    instance = Instance(projects, election.instance.budget_limit, meta)
    return write_pabulib(instance, election.profile)
