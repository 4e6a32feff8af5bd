"""Tables of participation: budgeting processes, proposals, voters and ballots, results,
consultations, tracked city projects (milestones, payments, risks, ratings) and the hash-chained
ledger of their changes.

Secrecy of the vote: ``budgeting_voter`` records *who* voted (a keyed hash of the IIN and a flag);
``budgeting_ballot`` records *how* (the choices), keyed by the SHA-256 of a random receipt that only
the voter holds. Neither table names the other, neither has a time of voting, and ballots carry no
sequence number (SQLite stores them in receipt-hash order: ``WITHOUT ROWID``).

Money is whole tenge (``BigInteger``): exact on both stores, no floats, no rounding.
Multilingual text is a JSON object ``{"kk": …, "ru": …, "en": …}`` (any of the three).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from qala.store.base import Base, utcnow

PHASES = ("proposals", "review", "voting", "results", "implementation", "closed")
"""A process moves forward through these, one step at a time."""
BALLOT_KINDS = ("approval", "cumulative", "ordinal")
PROPOSAL_STATUSES = ("submitted", "feasible", "infeasible", "withdrawn")
PROJECT_STATUSES = ("planned", "in_progress", "delivered", "suspended", "cancelled")
QUESTION_KINDS = ("single", "multiple", "scale", "text")
CONSULTATION_KINDS = ("survey", "hearing")
VERIFIERS = ("declared", "signature", "oidc")
"""How a process's residents show who they are: ``declared`` (an IIN typed in, check digit only:
for demos and trainings, every result labelled unverified), ``signature`` (a challenge signed
with an NCA-style certificate) or ``oidc`` (a sign-in at eGov's or the city's OpenID provider)."""

Text3 = dict[str, str]


def _in(values: tuple[str, ...]) -> str:
    return ",".join(f"'{v}'" for v in values)


class Process(Base):
    """One participatory budget of a city or district, with its money, rule and calendar."""

    __tablename__ = "budgeting_process"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(80), unique=True)
    place_code: Mapped[str] = mapped_column(String(80), index=True)
    title: Mapped[Text3] = mapped_column(JSON)
    description: Mapped[Text3] = mapped_column(JSON, default=dict)
    budget: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3), default="KZT")
    phase: Mapped[str] = mapped_column(String(16), default="proposals")
    proposals_open_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    proposals_close_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    review_close_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    voting_open_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    voting_close_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ballot_kind: Mapped[str] = mapped_column(String(16), default="approval")
    min_choices: Mapped[int | None] = mapped_column(Integer)
    max_choices: Mapped[int | None] = mapped_column(Integer)
    points_total: Mapped[int | None] = mapped_column(Integer)
    """Cumulative ballots: the most points a voter may hand out in total."""
    max_points_per_project: Mapped[int | None] = mapped_column(Integer)
    rule: Mapped[str] = mapped_column(String(16), default="mes")
    completion: Mapped[str] = mapped_column(String(32), default="add1")
    min_voter_age: Mapped[int | None] = mapped_column(Integer)
    eligible_voters: Mapped[int | None] = mapped_column(Integer)
    """Residents entitled to vote (turnout's denominator); else the catalogue's population."""
    capital_budget: Mapped[int | None] = mapped_column(BigInteger)
    """The place's capital budget that year (for the share decided by residents)."""
    verifier: Mapped[str] = mapped_column(String(16), default="declared", server_default="declared")
    """How residents show who they are (one of ``VERIFIERS``)."""
    key_check: Mapped[str] = mapped_column(String(64))
    """Fingerprint of the secret key that hashes this process's IINs (a changed key is refused)."""
    illustrative: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (
        CheckConstraint(f"phase in ({_in(PHASES)})", name="phase_known"),
        CheckConstraint(f"ballot_kind in ({_in(BALLOT_KINDS)})", name="ballot_kind_known"),
        CheckConstraint("budget > 0", name="budget_positive"),
        CheckConstraint(f"verifier in ({_in(VERIFIERS)})", name="verifier_known"),
    )


class PhaseChange(Base):
    """One step of a process's calendar: who moved it, when, and why."""

    __tablename__ = "budgeting_phase_change"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    process_id: Mapped[int] = mapped_column(ForeignKey("budgeting_process.id"), index=True)
    from_phase: Mapped[str] = mapped_column(String(16))
    to_phase: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    actor: Mapped[str] = mapped_column(String(80))
    note: Mapped[str] = mapped_column(Text, default="")


class Proposal(Base):
    """A project proposed by a resident, reviewed for feasibility by officials (publicly)."""

    __tablename__ = "budgeting_proposal"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    process_id: Mapped[int] = mapped_column(ForeignKey("budgeting_process.id"), index=True)
    code: Mapped[str] = mapped_column(String(40))
    """The project id on the ballot and in the pabulib export (``P01``, ``P02``…)."""
    title: Mapped[Text3] = mapped_column(JSON)
    description: Mapped[Text3] = mapped_column(JSON, default=dict)
    category: Mapped[str] = mapped_column(String(80), default="")
    district: Mapped[str | None] = mapped_column(String(80))
    estimated_cost: Mapped[int] = mapped_column(BigInteger)
    cost: Mapped[int | None] = mapped_column(BigInteger)
    """The cost officials confirmed at review (the cost on the ballot)."""
    status: Mapped[str] = mapped_column(String(16), default="submitted")
    review_reason: Mapped[str | None] = mapped_column(Text)
    """Public reason for the feasibility decision."""
    reviewed_by: Mapped[str | None] = mapped_column(String(80))
    reviewed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    author: Mapped[str] = mapped_column(String(80))
    submitted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    selected: Mapped[bool] = mapped_column(Boolean, default=False)
    illustrative: Mapped[bool] = mapped_column(Boolean, default=False)

    __table_args__ = (
        UniqueConstraint("process_id", "code"),
        CheckConstraint(f"status in ({_in(PROPOSAL_STATUSES)})", name="status_known"),
        CheckConstraint("estimated_cost > 0", name="cost_positive"),
    )


class Voter(Base):
    """Who may vote and whether they have: a keyed hash of the IIN, never the number."""

    __tablename__ = "budgeting_voter"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    process_id: Mapped[int] = mapped_column(ForeignKey("budgeting_process.id"), index=True)
    iin_hash: Mapped[str] = mapped_column(String(64))
    has_voted: Mapped[bool] = mapped_column(Boolean, default=False)
    registered_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    illustrative: Mapped[bool] = mapped_column(Boolean, default=False)

    __table_args__ = (UniqueConstraint("process_id", "iin_hash"),)


class AccountVote(Base):
    """That an account has voted in a process and when (never how: no link to the ballot), so the
    process page can tell a returning resident that their ballot is in."""

    __tablename__ = "budgeting_account_vote"

    process_id: Mapped[int] = mapped_column(ForeignKey("budgeting_process.id"), primary_key=True)
    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts_user.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    voted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    changed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Ballot(Base):
    """How someone voted, keyed by the hash of their random receipt; no link to the voter."""

    __tablename__ = "budgeting_ballot"

    receipt_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    process_id: Mapped[int] = mapped_column(ForeignKey("budgeting_process.id"), index=True)
    projects: Mapped[list[str]] = mapped_column(JSON)
    """Approved projects, the ranking (best first) or the projects given points."""
    points: Mapped[list[int] | None] = mapped_column(JSON)

    __table_args__ = ({"sqlite_with_rowid": False},)


class Result(Base):
    """The outcome of a process's vote, computed by the engine's rule and kept with its explanation."""

    __tablename__ = "budgeting_result"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    process_id: Mapped[int] = mapped_column(ForeignKey("budgeting_process.id"), unique=True)
    rule: Mapped[str] = mapped_column(String(80))
    selected: Mapped[list[str]] = mapped_column(JSON)
    cost: Mapped[int] = mapped_column(BigInteger)
    ballots: Mapped[int] = mapped_column(Integer)
    outcome: Mapped[dict[str, Any]] = mapped_column(JSON)
    computed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    computed_by: Mapped[str] = mapped_column(String(80))


class Consultation(Base):
    """A survey or a public hearing, with its questions, open between two dates."""

    __tablename__ = "budgeting_consultation"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(80), unique=True)
    place_code: Mapped[str] = mapped_column(String(80), index=True)
    kind: Mapped[str] = mapped_column(String(16), default="survey")
    title: Mapped[Text3] = mapped_column(JSON)
    description: Mapped[Text3] = mapped_column(JSON, default=dict)
    opens_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    closes_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    hearing_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    venue: Mapped[str | None] = mapped_column(Text)
    hearing_participants: Mapped[int | None] = mapped_column(Integer)
    """People present at the hearing (recorded by officials afterwards)."""
    summary: Mapped[Text3] = mapped_column(JSON, default=dict)
    """Officials' public summary of what was heard and what follows from it."""
    created_by: Mapped[str] = mapped_column(String(80))
    illustrative: Mapped[bool] = mapped_column(Boolean, default=False)

    __table_args__ = (CheckConstraint(f"kind in ({_in(CONSULTATION_KINDS)})", name="kind_known"),)


class Question(Base):
    __tablename__ = "budgeting_question"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    consultation_id: Mapped[int] = mapped_column(
        ForeignKey("budgeting_consultation.id"), index=True
    )
    position: Mapped[int] = mapped_column(Integer)
    key: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(16))
    text: Mapped[Text3] = mapped_column(JSON)
    options: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    """Choices as ``{"key": "park", "label": {"kk": …, "ru": …, "en": …}}``."""
    scale_min: Mapped[int | None] = mapped_column(Integer)
    scale_max: Mapped[int | None] = mapped_column(Integer)
    required: Mapped[bool] = mapped_column(Boolean, default=True)

    __table_args__ = (
        UniqueConstraint("consultation_id", "key"),
        CheckConstraint(f"kind in ({_in(QUESTION_KINDS)})", name="kind_known"),
    )


class Response(Base):
    """One respondent's answers (the respondent is a keyed hash of their account)."""

    __tablename__ = "budgeting_response"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    consultation_id: Mapped[int] = mapped_column(
        ForeignKey("budgeting_consultation.id"), index=True
    )
    respondent_hash: Mapped[str] = mapped_column(String(64))
    language: Mapped[str] = mapped_column(String(2), default="ru")
    answers: Mapped[dict[str, Any]] = mapped_column(JSON)
    submitted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    illustrative: Mapped[bool] = mapped_column(Boolean, default=False)

    __table_args__ = (UniqueConstraint("consultation_id", "respondent_hash"),)


class Comment(Base):
    """A public comment on a consultation (officials may hide one, with a public reason)."""

    __tablename__ = "budgeting_comment"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    consultation_id: Mapped[int] = mapped_column(
        ForeignKey("budgeting_consultation.id"), index=True
    )
    author: Mapped[str] = mapped_column(String(80))
    language: Mapped[str] = mapped_column(String(2), default="ru")
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    hidden: Mapped[bool] = mapped_column(Boolean, default=False)
    hidden_reason: Mapped[str | None] = mapped_column(Text)
    illustrative: Mapped[bool] = mapped_column(Boolean, default=False)


class Project(Base):
    """A city project followed in public: selected by residents or commissioned by the city."""

    __tablename__ = "budgeting_project"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(80), unique=True)
    place_code: Mapped[str] = mapped_column(String(80), index=True)
    title: Mapped[Text3] = mapped_column(JSON)
    description: Mapped[Text3] = mapped_column(JSON, default=dict)
    origin: Mapped[str] = mapped_column(String(16), default="city")
    """``participatory`` (selected in a process) or ``city``."""
    process_id: Mapped[int | None] = mapped_column(ForeignKey("budgeting_process.id"))
    proposal_id: Mapped[int | None] = mapped_column(ForeignKey("budgeting_proposal.id"))
    budget: Mapped[int] = mapped_column(BigInteger)
    contractor: Mapped[str | None] = mapped_column(String(300))
    status: Mapped[str] = mapped_column(String(16), default="planned")
    planned_start: Mapped[date | None] = mapped_column(Date)
    planned_end: Mapped[date] = mapped_column(Date)
    actual_end: Mapped[date | None] = mapped_column(Date)
    impact_note: Mapped[str | None] = mapped_column(Text)
    lat_e6: Mapped[int | None] = mapped_column(Integer)
    """Where the work is, in millionths of a degree (whole numbers: the ledger holds no floats);
    both or neither are set."""
    lon_e6: Mapped[int | None] = mapped_column(Integer)
    illustrative: Mapped[bool] = mapped_column(Boolean, default=False)

    __table_args__ = (
        CheckConstraint(f"status in ({_in(PROJECT_STATUSES)})", name="status_known"),
        CheckConstraint("origin in ('participatory','city')", name="origin_known"),
        CheckConstraint("budget >= 0", name="budget_not_negative"),
    )


class Milestone(Base):
    __tablename__ = "budgeting_milestone"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("budgeting_project.id"), index=True)
    title: Mapped[str] = mapped_column(String(300))
    due_on: Mapped[date] = mapped_column(Date)
    done_on: Mapped[date | None] = mapped_column(Date)


class Payment(Base):
    __tablename__ = "budgeting_payment"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("budgeting_project.id"), index=True)
    paid_on: Mapped[date] = mapped_column(Date)
    amount: Mapped[int] = mapped_column(BigInteger)
    payee: Mapped[str] = mapped_column(String(300))
    purpose: Mapped[str] = mapped_column(Text, default="")
    reference: Mapped[str] = mapped_column(String(120), default="")
    """The payment order or contract act number, for auditors."""

    __table_args__ = (CheckConstraint("amount > 0", name="amount_positive"),)


class Risk(Base):
    """One entry of a project's risk register."""

    __tablename__ = "budgeting_risk"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("budgeting_project.id"), index=True)
    risk: Mapped[str] = mapped_column(Text)
    likelihood: Mapped[int] = mapped_column(Integer)
    impact: Mapped[int] = mapped_column(Integer)
    owner: Mapped[str] = mapped_column(String(200))
    mitigation: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default="open")

    __table_args__ = (
        CheckConstraint("likelihood between 1 and 5", name="likelihood_1_5"),
        CheckConstraint("impact between 1 and 5", name="impact_1_5"),
        CheckConstraint("status in ('open','closed')", name="status_known"),
    )


class Rating(Base):
    """A resident's rating of a delivered project (the rater is a keyed hash of their account)."""

    __tablename__ = "budgeting_rating"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("budgeting_project.id"), index=True)
    rater_hash: Mapped[str] = mapped_column(String(64))
    stars: Mapped[int] = mapped_column(Integer)
    comment: Mapped[str | None] = mapped_column(Text)
    rated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    illustrative: Mapped[bool] = mapped_column(Boolean, default=False)

    __table_args__ = (
        UniqueConstraint("project_id", "rater_hash"),
        CheckConstraint("stars between 1 and 5", name="stars_1_5"),
    )


class LedgerEntry(Base):
    """One change to a tracked project or a process, chained to the previous entry by its hash.

    ``entry_hash = sha256(prev_hash + canonical_json({seq, at, actor, kind, subject, data}))``.
    ``at`` is kept as the exact ISO text that was hashed.
    """

    __tablename__ = "budgeting_ledger_entry"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[str] = mapped_column(String(40))
    actor: Mapped[str] = mapped_column(String(80))
    kind: Mapped[str] = mapped_column(String(40))
    subject: Mapped[str] = mapped_column(String(80), index=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    prev_hash: Mapped[str] = mapped_column(String(64))
    entry_hash: Mapped[str] = mapped_column(String(64), unique=True)


class LedgerHead(Base):
    """The newest entry's number and hash (one row), moved in the same transaction as each append.

    Appends lock this row, so concurrent writers queue; a deleted tail no longer matches it.
    """

    __tablename__ = "budgeting_ledger_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(Integer)
    entry_hash: Mapped[str] = mapped_column(String(64))


class LedgerSignedHead(Base):
    """The tree head after each append, signed with the ledger's key (kept outside the database).

    ``root_hash`` is the RFC 9162 Merkle root of entries 1…``size``; ``signature`` is Ed25519 over
    :func:`qala.components.budgeting.ledger.head_message`. ``frontier`` (not signed) keeps the
    right edge of that tree, so the next append hashes O(log n) nodes, not every entry.
    """

    __tablename__ = "budgeting_ledger_signed_head"

    size: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    root_hash: Mapped[str] = mapped_column(String(64))
    signed_at: Mapped[str] = mapped_column(String(40))
    signature: Mapped[str] = mapped_column(String(128))
    frontier: Mapped[list[str]] = mapped_column(JSON)
