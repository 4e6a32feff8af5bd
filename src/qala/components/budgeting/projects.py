"""Public tracking of city projects: budget, contractor, milestones, payments, status, risks,
impact, and residents' ratings.

Every change (except ratings, which are opinions, not facts about the money) goes through the
ledger in the same transaction as the table write, so :func:`~qala.components.budgeting.ledger.
verify_ledger` can replay the ledger and find the tables exactly as it says.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from qala.components.budgeting.core import (
    CODE,
    MAX_DESCRIPTION,
    MAX_TITLE,
    clean_text3,
    clean_title_and_description,
    utc,
)
from qala.components.budgeting.ledger import (
    MILESTONE_FIELDS,
    PAYMENT_FIELDS,
    PROJECT_FIELDS,
    RISK_FIELDS,
    append,
    snapshot,
)
from qala.components.budgeting.models import (
    PROJECT_STATUSES,
    Milestone,
    Payment,
    Process,
    Project,
    Proposal,
    Rating,
    Risk,
)
from qala.core.errors import (
    ConflictError,
    NotFoundError,
    Problem,
    ValidationError,
    raise_if_problems,
)
from qala.events import Event, publish_in_transaction

EDITABLE = (
    "title",
    "description",
    "contractor",
    "budget",
    "status",
    "planned_start",
    "planned_end",
    "actual_end",
    "impact_note",
    "lat",
    "lon",
)
DEFAULT_DURATION = timedelta(days=365)
"""Planned duration of a project selected in a vote, until officials set its real plan."""


@dataclass
class NewProject:
    code: str
    place_code: str
    title: Mapping[str, str] | str
    budget: int
    planned_end: date
    planned_start: date | None = None
    description: Mapping[str, str] | str | None = None
    contractor: str | None = None
    lat: float | None = None
    """Where the work is (WGS 84 degrees), for the map; both or neither."""
    lon: float | None = None


@dataclass
class ProjectSummary:
    code: str
    place_code: str
    title: dict[str, str]
    origin: str
    process: str | None
    budget: int
    paid: int
    contractor: str | None
    status: str
    planned_end: date
    actual_end: date | None
    late: bool
    """Delivered after its planned end, or not delivered and past it."""
    rating: float | None
    ratings: int
    illustrative: bool
    lat: float | None
    lon: float | None


@dataclass
class ProjectDetail(ProjectSummary):
    description: dict[str, str] = field(default_factory=dict)
    planned_start: date | None = None
    impact_note: str | None = None
    milestones: list[dict[str, Any]] = field(default_factory=list)
    payments: list[dict[str, Any]] = field(default_factory=list)
    risks: list[dict[str, Any]] = field(default_factory=list)
    """Risk register, highest ``score`` (likelihood × impact) first."""


def _load(session: Session, code: str) -> Project:
    project = session.scalar(select(Project).where(Project.code == code.strip().lower()))
    if project is None:
        raise NotFoundError(f"no tracked project `{code}`")
    return project


def _paid(session: Session, project_id: int) -> int:
    return int(
        session.scalar(
            select(func.coalesce(func.sum(Payment.amount), 0)).where(
                Payment.project_id == project_id
            )
        )
        or 0
    )


def _summary_fields(session: Session, project: Project, today: date) -> dict[str, Any]:
    process_code = (
        session.scalar(select(Process.code).where(Process.id == project.process_id))
        if project.process_id
        else None
    )
    mean, count = session.execute(
        select(func.avg(Rating.stars), func.count(Rating.id)).where(Rating.project_id == project.id)
    ).one()
    finished = project.actual_end
    late = (finished > project.planned_end) if finished else today > project.planned_end
    if project.status == "cancelled":
        late = False
    return {
        "code": project.code,
        "place_code": project.place_code,
        "title": dict(project.title),
        "origin": project.origin,
        "process": process_code,
        "budget": project.budget,
        "paid": _paid(session, project.id),
        "contractor": project.contractor,
        "status": project.status,
        "planned_end": project.planned_end,
        "actual_end": project.actual_end,
        "late": bool(late),
        "rating": None if mean is None else round(float(mean), 3),
        "ratings": int(count),
        "illustrative": project.illustrative,
        "lat": None if project.lat_e6 is None else project.lat_e6 / 1e6,
        "lon": None if project.lon_e6 is None else project.lon_e6 / 1e6,
    }


def _degrees(value: Any, column: str, limit: int, problems: list[Problem]) -> int | None:
    """``value`` (degrees) in millionths of a degree, or None (a problem when it is no number
    within ±``limit``)."""
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not -limit <= value <= limit
    ):
        problems.append(
            Problem(f"degrees between -{limit} and {limit}", column=column, value=value)
        )
        return None
    return round(value * 1_000_000)


def position_e6(lat: Any, lon: Any, problems: list[Problem]) -> tuple[int | None, int | None]:
    """A checked position in millionths of a degree: both numbers or neither."""
    lat_e6 = _degrees(lat, "lat", 90, problems)
    lon_e6 = _degrees(lon, "lon", 180, problems)
    if (lat is None) != (lon is None):
        problems.append(
            Problem("give lat and lon together", column="lat" if lat is None else "lon")
        )
    return lat_e6, lon_e6


def list_projects(
    session: Session,
    *,
    today: date,
    place_code: str | None = None,
    status: str | None = None,
    origin: str | None = None,
    process_code: str | None = None,
) -> list[ProjectSummary]:
    """Tracked projects, filtered, ordered by planned end."""
    query = select(Project).order_by(Project.planned_end, Project.code)
    if place_code:
        query = query.where(Project.place_code == place_code)
    if status:
        query = query.where(Project.status == status)
    if origin:
        query = query.where(Project.origin == origin)
    if process_code:
        query = query.join(Process, Process.id == Project.process_id).where(
            Process.code == process_code
        )
    return [ProjectSummary(**_summary_fields(session, p, today)) for p in session.scalars(query)]


def get_project(session: Session, code: str, *, today: date) -> ProjectDetail:
    """A project with its milestones, payments and risk register."""
    project = _load(session, code)
    milestones = [
        snapshot(m, MILESTONE_FIELDS)
        for m in session.scalars(
            select(Milestone)
            .where(Milestone.project_id == project.id)
            .order_by(Milestone.due_on, Milestone.id)
        )
    ]
    payments = [
        snapshot(p, PAYMENT_FIELDS)
        for p in session.scalars(
            select(Payment)
            .where(Payment.project_id == project.id)
            .order_by(Payment.paid_on, Payment.id)
        )
    ]
    risks = [
        {**snapshot(r, RISK_FIELDS), "score": r.likelihood * r.impact}
        for r in session.scalars(select(Risk).where(Risk.project_id == project.id))
    ]
    risks.sort(key=lambda r: (r["status"] != "open", -r["score"], r["id"]))
    return ProjectDetail(
        **_summary_fields(session, project, today),
        description=dict(project.description or {}),
        planned_start=project.planned_start,
        impact_note=project.impact_note,
        milestones=milestones,
        payments=payments,
        risks=risks,
    )


def _record(
    session: Session,
    project: Project,
    kind: str,
    data: Mapping[str, Any],
    actor: str,
    now: datetime,
) -> None:
    append(session, actor=actor, kind=kind, subject=project.code, data=data, now=now)


def create_project(
    session: Session,
    new: NewProject,
    *,
    actor: str,
    now: datetime,
    origin: str = "city",
    process_id: int | None = None,
    proposal_id: int | None = None,
    illustrative: bool = False,
) -> ProjectDetail:
    """Start tracking a project (ledger: ``project.created`` with every field)."""
    from qala.components.catalog.services import get_place

    problems: list[Problem] = []
    code = new.code.strip().lower()
    if not CODE.match(code):
        problems.append(
            Problem("2–80 characters of a–z, 0–9, _ . -", column="code", value=new.code)
        )
    elif session.scalar(select(Project.id).where(Project.code == code)) is not None:
        problems.append(
            Problem("a project with this code exists", column="code", value=code, code="conflict")
        )
    try:
        place_code = get_place(session, new.place_code).code
    except NotFoundError:
        problems.append(
            Problem("no such place in the catalogue", column="place_code", value=new.place_code)
        )
        place_code = new.place_code
    title, description = clean_title_and_description(new.title, new.description, problems)
    if not isinstance(new.budget, int) or new.budget < 0:
        problems.append(
            Problem("a whole number of tenge, 0 or more", column="budget", value=new.budget)
        )
    if new.planned_start is not None and new.planned_start > new.planned_end:
        problems.append(
            Problem(
                "the planned start comes after the planned end",
                column="planned_start",
                value=new.planned_start.isoformat(),
            )
        )
    if new.contractor is not None and len(new.contractor) > 300:
        problems.append(Problem("at most 300 characters", column="contractor"))
    lat_e6, lon_e6 = position_e6(new.lat, new.lon, problems)
    raise_if_problems(problems, "cannot create the project")
    project = Project(
        code=code,
        place_code=place_code,
        title=title,
        description=description,
        origin=origin,
        process_id=process_id,
        proposal_id=proposal_id,
        budget=new.budget,
        contractor=(new.contractor or "").strip() or None,
        status="planned",
        planned_start=new.planned_start,
        planned_end=new.planned_end,
        lat_e6=lat_e6,
        lon_e6=lon_e6,
        illustrative=illustrative,
    )
    session.add(project)
    session.flush()
    _record(session, project, "project.created", snapshot(project, PROJECT_FIELDS), actor, now)
    return get_project(session, code, today=utc(now).date())


def projects_from_results(
    session: Session, process: Process, *, actor: str, now: datetime
) -> list[str]:
    """Each proposal selected in ``process`` becomes a tracked project (``<process>-<p01>``)."""
    codes = []
    selected = session.scalars(
        select(Proposal)
        .where(Proposal.process_id == process.id, Proposal.selected.is_(True))
        .order_by(Proposal.code)
    )
    end = (utc(process.voting_close_at) + DEFAULT_DURATION).date()
    for proposal in selected:
        code = f"{process.code}-{proposal.code}".lower()
        if session.scalar(select(Project.id).where(Project.code == code)) is not None:
            continue
        create_project(
            session,
            NewProject(
                code=code,
                place_code=process.place_code,
                title=dict(proposal.title),
                description=dict(proposal.description or {}),
                budget=int(proposal.cost or proposal.estimated_cost),
                planned_end=end,
                planned_start=utc(now).date(),
            ),
            actor=actor,
            now=now,
            origin="participatory",
            process_id=process.id,
            proposal_id=proposal.id,
            illustrative=process.illustrative or proposal.illustrative,
        )
        codes.append(code)
    return codes


def _as_date(value: Any, column: str, problems: list[Problem]) -> date | None:
    if value is None or (isinstance(value, date) and not isinstance(value, datetime)):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        problems.append(Problem("a date YYYY-MM-DD", column=column, value=value))
        return None


def _clean_field(name: str, value: Any, clean: dict[str, Any], problems: list[Problem]) -> None:
    """Put the checked ``value`` of the editable field ``name`` in ``clean``, or say why not."""
    if name not in EDITABLE:
        problems.append(
            Problem(f"not editable; editable fields: {', '.join(EDITABLE)}", column=name)
        )
    elif name in ("title", "description"):
        clean[name] = clean_text3(
            value,
            column=name,
            required=name == "title",
            limit=MAX_TITLE if name == "title" else MAX_DESCRIPTION,
            problems=problems,
        )
    elif name == "budget":
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            problems.append(Problem("a whole number of tenge, 0 or more", column=name, value=value))
        clean[name] = value
    elif name == "status":
        if value not in PROJECT_STATUSES:
            problems.append(
                Problem(f"one of {', '.join(PROJECT_STATUSES)}", column=name, value=value)
            )
        clean[name] = value
    elif name in ("planned_start", "planned_end", "actual_end"):
        clean[name] = _as_date(value, name, problems)
        if name == "planned_end" and value is None:
            problems.append(Problem("a project needs a planned end", column=name))
    else:
        text = None if value is None else str(value).strip() or None
        if name == "contractor" and text is not None and len(text) > 300:
            problems.append(Problem("at most 300 characters", column=name))
        clean[name] = text


def update_project(
    session: Session,
    code: str,
    changes: Mapping[str, Any],
    *,
    actor: str,
    now: datetime,
) -> ProjectDetail:
    """Change some of a project's fields (ledger: ``project.updated`` with each field's old and new
    value). Delivering a project without ``actual_end`` sets it to today."""
    project = _load(session, code)
    problems: list[Problem] = []
    clean: dict[str, Any] = {}
    for name, value in changes.items():
        if name not in ("lat", "lon"):
            _clean_field(name, value, clean, problems)
    if "lat" in changes or "lon" in changes:
        clean["lat_e6"], clean["lon_e6"] = position_e6(
            changes.get("lat"), changes.get("lon"), problems
        )
    if (
        project.status in ("delivered", "cancelled")
        and "status" not in clean
        and {"budget", "planned_end"} & set(clean)
    ):
        problems.append(
            Problem(f"the project is {project.status}; its plan is final", column="status")
        )
    if (
        clean.get("status") == "delivered"
        and "actual_end" not in clean
        and project.actual_end is None
    ):
        clean["actual_end"] = utc(now).date()
    if clean.get("actual_end") and clean["actual_end"] > utc(now).date():
        problems.append(
            Problem(
                "the actual end cannot be in the future",
                column="actual_end",
                value=clean["actual_end"].isoformat(),
            )
        )
    raise_if_problems(problems, f"cannot update project {project.code}")
    recorded: dict[str, list[Any]] = {}
    before = snapshot(project, PROJECT_FIELDS)
    for name, value in clean.items():
        setattr(project, name, value)
    session.flush()
    after = snapshot(project, PROJECT_FIELDS)
    for name in clean:
        if before[name] != after[name]:
            recorded[name] = [before[name], after[name]]
    if recorded:
        _record(session, project, "project.updated", {"changes": recorded}, actor, now)
    return get_project(session, project.code, today=utc(now).date())


def add_milestone(
    session: Session, code: str, *, title: str, due_on: date, actor: str, now: datetime
) -> dict[str, Any]:
    project = _load(session, code)
    title = (title or "").strip()
    if not title or len(title) > 300:
        raise ValidationError.single("1–300 characters", column="title")
    row = Milestone(project_id=project.id, title=title, due_on=due_on)
    session.add(row)
    session.flush()
    data = snapshot(row, MILESTONE_FIELDS)
    _record(session, project, "milestone.added", data, actor, now)
    return data


def complete_milestone(
    session: Session, code: str, milestone_id: int, *, done_on: date, actor: str, now: datetime
) -> dict[str, Any]:
    project = _load(session, code)
    row = session.get(Milestone, milestone_id)
    if row is None or row.project_id != project.id:
        raise NotFoundError(f"project `{project.code}` has no milestone {milestone_id}")
    if done_on > utc(now).date():
        raise ValidationError.single(
            "a milestone cannot be done in the future", column="done_on", value=done_on.isoformat()
        )
    old = row.done_on
    row.done_on = done_on
    session.flush()
    if old is None:
        _announce(session, project, "budgeting.project_milestone", milestone=row.title, on=done_on)
    _record(
        session,
        project,
        "milestone.updated",
        {
            "id": row.id,
            "changes": {"done_on": [None if old is None else old.isoformat(), done_on.isoformat()]},
        },
        actor,
        now,
    )
    return snapshot(row, MILESTONE_FIELDS)


def record_payment(
    session: Session,
    code: str,
    *,
    paid_on: date,
    amount: int,
    payee: str,
    purpose: str = "",
    reference: str = "",
    actor: str,
    now: datetime,
) -> dict[str, Any]:
    """A payment made for the project (ledger: ``payment.recorded``). Payments are never edited:
    a correction is a new (negative-free) entry explained in ``purpose``; overruns are allowed and
    show in the on-budget indicator."""
    project = _load(session, code)
    problems: list[Problem] = []
    if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
        problems.append(Problem("a positive whole number of tenge", column="amount", value=amount))
    if not (payee or "").strip():
        problems.append(Problem("who was paid", column="payee"))
    if paid_on > utc(now).date():
        problems.append(
            Problem(
                "a payment cannot be dated in the future",
                column="paid_on",
                value=paid_on.isoformat(),
            )
        )
    if project.status == "cancelled":
        problems.append(Problem("the project is cancelled", column="project", value=project.code))
    raise_if_problems(problems, f"cannot record a payment for {project.code}")
    row = Payment(
        project_id=project.id,
        paid_on=paid_on,
        amount=amount,
        payee=payee.strip(),
        purpose=purpose.strip(),
        reference=reference.strip(),
    )
    session.add(row)
    session.flush()
    data = snapshot(row, PAYMENT_FIELDS)
    _record(session, project, "payment.recorded", data, actor, now)
    _announce(session, project, "budgeting.project_payment", amount=amount, on=paid_on)
    return data


def _announce(session: Session, project: Project, name: str, *, on: date, **details: Any) -> None:
    """Tell the project's followers, inside the change's transaction (their notifications are
    stored exactly when the change is)."""
    if project.illustrative:
        return
    publish_in_transaction(
        session,
        Event(
            name,
            {
                "project": project.code,
                "title": dict(project.title or {}),
                "on": on.isoformat(),
                **details,
            },
        ),
    )


def _check_risk(fields: Mapping[str, Any], problems: list[Problem], *, partial: bool) -> None:
    for name in ("likelihood", "impact"):
        if name in fields or not partial:
            value = fields.get(name)
            if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 5:
                problems.append(
                    Problem(
                        "a whole number from 1 (rare, minor) to 5 (almost certain, severe)",
                        column=name,
                        value=value,
                    )
                )
    for name in ("risk", "owner"):
        if (name in fields or not partial) and not str(fields.get(name) or "").strip():
            problems.append(Problem("required", column=name))
    if "status" in fields and fields["status"] not in ("open", "closed"):
        problems.append(Problem("open or closed", column="status", value=fields["status"]))


def add_risk(
    session: Session,
    code: str,
    *,
    risk: str,
    likelihood: int,
    impact: int,
    owner: str,
    mitigation: str = "",
    actor: str,
    now: datetime,
) -> dict[str, Any]:
    """An entry of the project's risk register (likelihood and impact on 1–5 scales)."""
    project = _load(session, code)
    problems: list[Problem] = []
    _check_risk(
        {"risk": risk, "likelihood": likelihood, "impact": impact, "owner": owner},
        problems,
        partial=False,
    )
    raise_if_problems(problems, "cannot add the risk")
    row = Risk(
        project_id=project.id,
        risk=risk.strip(),
        likelihood=likelihood,
        impact=impact,
        owner=owner.strip(),
        mitigation=mitigation.strip(),
        status="open",
    )
    session.add(row)
    session.flush()
    data = snapshot(row, RISK_FIELDS)
    _record(session, project, "risk.added", data, actor, now)
    return data


def update_risk(
    session: Session,
    code: str,
    risk_id: int,
    changes: Mapping[str, Any],
    *,
    actor: str,
    now: datetime,
) -> dict[str, Any]:
    project = _load(session, code)
    row = session.get(Risk, risk_id)
    if row is None or row.project_id != project.id:
        raise NotFoundError(f"project `{project.code}` has no risk {risk_id}")
    problems: list[Problem] = []
    unknown = set(changes) - {"risk", "likelihood", "impact", "owner", "mitigation", "status"}
    for name in sorted(unknown):
        problems.append(Problem("not a field of a risk", column=name))
    _check_risk(changes, problems, partial=True)
    raise_if_problems(problems, f"cannot update risk {risk_id}")
    before = snapshot(row, RISK_FIELDS)
    for name, value in changes.items():
        setattr(row, name, value.strip() if isinstance(value, str) else value)
    session.flush()
    after = snapshot(row, RISK_FIELDS)
    recorded = {k: [before[k], after[k]] for k in changes if before[k] != after[k]}
    if recorded:
        _record(session, project, "risk.updated", {"id": row.id, "changes": recorded}, actor, now)
    return after


def rater_hash(username: str, secret_key: str) -> str:
    return hmac.new(
        secret_key.encode("utf-8"), b"qala.budgeting.rater:" + username.encode("utf-8"), "sha256"
    ).hexdigest()


def rate_project(
    session: Session,
    code: str,
    *,
    rater: str,
    stars: int,
    comment: str | None = None,
    secret_key: str,
    now: datetime,
    illustrative: bool = False,
) -> ProjectSummary:
    """A resident's 1–5 rating of a delivered project; rating again replaces their earlier one."""
    project = _load(session, code)
    if project.status != "delivered":
        raise ConflictError(
            f"project `{project.code}` is {project.status}; residents rate delivered projects"
        )
    if not isinstance(stars, int) or isinstance(stars, bool) or not 1 <= stars <= 5:
        raise ValidationError.single(
            "a whole number of stars from 1 to 5", column="stars", value=stars
        )
    if comment is not None and len(comment) > 2000:
        raise ValidationError.single("at most 2000 characters", column="comment")
    digest = rater_hash(rater, secret_key)
    row = session.scalar(
        select(Rating).where(Rating.project_id == project.id, Rating.rater_hash == digest)
    )
    if row is None:
        row = Rating(project_id=project.id, rater_hash=digest, illustrative=illustrative)
        session.add(row)
    row.stars = stars
    row.comment = (comment or "").strip() or None
    row.rated_at = now
    session.flush()
    return ProjectSummary(**_summary_fields(session, project, utc(now).date()))
