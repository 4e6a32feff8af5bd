"""Consultations: surveys and public hearings with questions, comments and results, in kk/ru/en.

A consultation is open between ``opens_at`` and ``closes_at``; residents answer once (answering
again replaces their answers until it closes) and comment; officials may hide a comment with a
public reason, record how many people came to a hearing and publish a summary. Respondents are
kept as a keyed hash of their account, so results never name anyone.
"""

from __future__ import annotations

import hmac
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from qala.components.accounts.identity import has_identity
from qala.components.budgeting.core import (
    CODE,
    LANGUAGES,
    MAX_DESCRIPTION,
    as_utc,
    clean_text3,
    clean_title_and_description,
    utc,
)
from qala.components.budgeting.models import (
    CONSULTATION_KINDS,
    QUESTION_KINDS,
    Comment,
    Consultation,
    Question,
    Response,
)
from qala.core.errors import (
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    Problem,
    ValidationError,
    raise_if_problems,
)
from qala.events import Event, publish_in_transaction

MAX_ANSWER = 4000
MAX_COMMENT = 4000
KEY = CODE


@dataclass
class NewQuestion:
    key: str
    kind: str
    text: Mapping[str, str] | str
    options: Sequence[Mapping[str, Any]] = ()
    """``[{"key": "park", "label": {"kk": …, "ru": …, "en": …}}, …]`` for single/multiple."""
    scale_min: int | None = None
    scale_max: int | None = None
    required: bool = True


@dataclass
class NewConsultation:
    code: str
    place_code: str
    title: Mapping[str, str] | str
    opens_at: datetime
    closes_at: datetime
    kind: str = "survey"
    description: Mapping[str, str] | str | None = None
    hearing_at: datetime | None = None
    venue: str | None = None
    questions: Sequence[NewQuestion] = ()


@dataclass
class QuestionInfo:
    id: int
    key: str
    kind: str
    text: dict[str, str]
    options: list[dict[str, Any]]
    scale_min: int | None
    scale_max: int | None
    required: bool


@dataclass
class CommentInfo:
    id: int
    author: str
    language: str
    text: str | None
    """None when hidden (``hidden_reason`` says why)."""
    created_at: datetime
    hidden: bool
    hidden_reason: str | None


@dataclass
class ConsultationInfo:
    code: str
    place_code: str
    kind: str
    title: dict[str, str]
    description: dict[str, str]
    opens_at: datetime
    closes_at: datetime
    hearing_at: datetime | None
    venue: str | None
    status: str
    """``upcoming``, ``open`` or ``closed`` at the time asked."""
    responses: int
    comments: int
    hearing_participants: int | None
    summary: dict[str, str]
    illustrative: bool
    questions: list[QuestionInfo] = field(default_factory=list)
    comment_list: list[CommentInfo] = field(default_factory=list)


def _status(row: Consultation, now: datetime) -> str:
    if utc(now) < utc(row.opens_at):
        return "upcoming"
    return "open" if utc(now) < utc(row.closes_at) else "closed"


def _load(session: Session, code: str) -> Consultation:
    row = session.scalar(select(Consultation).where(Consultation.code == code.strip().lower()))
    if row is None:
        raise NotFoundError(f"no consultation `{code}`")
    return row


def _questions(session: Session, row: Consultation) -> list[Question]:
    return list(
        session.scalars(
            select(Question).where(Question.consultation_id == row.id).order_by(Question.position)
        )
    )


def _info(session: Session, row: Consultation, now: datetime, *, detail: bool) -> ConsultationInfo:
    responses = session.scalar(
        select(func.count()).select_from(Response).where(Response.consultation_id == row.id)
    )
    comments = session.scalar(
        select(func.count())
        .select_from(Comment)
        .where(Comment.consultation_id == row.id, Comment.hidden.is_(False))
    )
    info = ConsultationInfo(
        code=row.code,
        place_code=row.place_code,
        kind=row.kind,
        title=dict(row.title),
        description=dict(row.description or {}),
        opens_at=utc(row.opens_at),
        closes_at=utc(row.closes_at),
        hearing_at=as_utc(row.hearing_at),
        venue=row.venue,
        status=_status(row, now),
        responses=int(responses or 0),
        comments=int(comments or 0),
        hearing_participants=row.hearing_participants,
        summary=dict(row.summary or {}),
        illustrative=row.illustrative,
    )
    if detail:
        info.questions = [
            QuestionInfo(
                q.id,
                q.key,
                q.kind,
                dict(q.text),
                list(q.options),
                q.scale_min,
                q.scale_max,
                q.required,
            )
            for q in _questions(session, row)
        ]
        info.comment_list = [
            CommentInfo(
                c.id,
                c.author,
                c.language,
                None if c.hidden else c.text,
                utc(c.created_at),
                c.hidden,
                c.hidden_reason,
            )
            for c in session.scalars(
                select(Comment).where(Comment.consultation_id == row.id).order_by(Comment.id)
            )
        ]
    return info


def _check_question(position: int, q: NewQuestion, problems: list[Problem]) -> dict[str, Any]:
    where = f"questions[{position}]"
    if not KEY.match(q.key or ""):
        problems.append(Problem("a key of a–z, 0–9, _ . -", column=f"{where}.key", value=q.key))
    if q.kind not in QUESTION_KINDS:
        problems.append(
            Problem(f"one of {', '.join(QUESTION_KINDS)}", column=f"{where}.kind", value=q.kind)
        )
    text = clean_text3(q.text, column=f"{where}.text", limit=1000, problems=problems)
    options: list[dict[str, Any]] = []
    if q.kind in ("single", "multiple"):
        if len(q.options) < 2:
            problems.append(
                Problem("a choice question needs at least two options", column=f"{where}.options")
            )
        keys: set[str] = set()
        for k, option in enumerate(q.options):
            key = str(option.get("key", "")).strip()
            if not KEY.match(key) or key in keys:
                problems.append(
                    Problem(
                        "each option needs its own key (a–z, 0–9, _ . -)",
                        column=f"{where}.options[{k}].key",
                        value=key,
                    )
                )
            keys.add(key)
            label = clean_text3(
                option.get("label"),
                column=f"{where}.options[{k}].label",
                limit=300,
                problems=problems,
            )
            options.append({"key": key, "label": label})
    elif q.options:
        problems.append(Problem("only choice questions have options", column=f"{where}.options"))
    low: int | None
    high: int | None
    if q.kind == "scale":
        low, high = (
            q.scale_min if q.scale_min is not None else 1,
            q.scale_max if q.scale_max is not None else 5,
        )
        if not (isinstance(low, int) and isinstance(high, int) and low < high and high - low <= 10):
            problems.append(
                Problem(
                    "a scale from a smaller to a larger whole number, at most 10 steps apart",
                    column=f"{where}.scale_max",
                    value=f"{low}..{high}",
                )
            )
    else:
        low = high = None
    return {
        "key": q.key,
        "kind": q.kind,
        "text": text,
        "options": options,
        "scale_min": low,
        "scale_max": high,
        "required": bool(q.required),
    }


def _check_schedule(new: NewConsultation, problems: list[Problem]) -> None:
    """Aware times, closing after opening; a hearing's date and venue."""
    for name in ("opens_at", "closes_at", "hearing_at"):
        moment = getattr(new, name)
        if moment is not None and moment.tzinfo is None:
            problems.append(Problem("give a time zone (e.g. +05:00 for Astana)", column=name))
    if new.opens_at.tzinfo and new.closes_at.tzinfo and new.opens_at >= new.closes_at:
        problems.append(Problem("`closes_at` must come after `opens_at`", column="closes_at"))
    if new.kind == "hearing" and (new.hearing_at is None or not (new.venue or "").strip()):
        problems.append(
            Problem(
                "a public hearing needs its date (`hearing_at`) and `venue`", column="hearing_at"
            )
        )


def _check_questions(new: NewConsultation, problems: list[Problem]) -> list[dict[str, Any]]:
    """Each question checked, keys unique, at least one for a survey; the questions' columns."""
    checked = [_check_question(k, q, problems) for k, q in enumerate(new.questions)]
    keys = [q["key"] for q in checked]
    for key in sorted({k for k in keys if keys.count(k) > 1}):
        problems.append(Problem("two questions share a key", column="questions", value=key))
    if new.kind == "survey" and not checked:
        problems.append(Problem("a survey needs at least one question", column="questions"))
    return checked


def create_consultation(
    session: Session,
    new: NewConsultation,
    *,
    actor: str,
    now: datetime,
    illustrative: bool = False,
) -> ConsultationInfo:
    """A survey or hearing with its questions; every problem is reported together."""
    from qala.components.catalog.services import get_place

    problems: list[Problem] = []
    code = new.code.strip().lower()
    if not CODE.match(code):
        problems.append(
            Problem("2–80 characters of a–z, 0–9, _ . -", column="code", value=new.code)
        )
    elif session.scalar(select(Consultation.id).where(Consultation.code == code)) is not None:
        problems.append(
            Problem(
                "a consultation with this code exists", column="code", value=code, code="conflict"
            )
        )
    try:
        place_code = get_place(session, new.place_code).code
    except NotFoundError:
        problems.append(
            Problem("no such place in the catalogue", column="place_code", value=new.place_code)
        )
        place_code = new.place_code
    if new.kind not in CONSULTATION_KINDS:
        problems.append(
            Problem(f"one of {', '.join(CONSULTATION_KINDS)}", column="kind", value=new.kind)
        )
    title, description = clean_title_and_description(new.title, new.description, problems)
    _check_schedule(new, problems)
    checked = _check_questions(new, problems)
    raise_if_problems(problems, "cannot create the consultation")
    row = Consultation(
        code=code,
        place_code=place_code,
        kind=new.kind,
        title=title,
        description=description,
        opens_at=new.opens_at,
        closes_at=new.closes_at,
        hearing_at=new.hearing_at,
        venue=(new.venue or "").strip() or None,
        created_by=actor,
        illustrative=illustrative,
        summary={},
    )
    session.add(row)
    session.flush()
    for position, q in enumerate(checked):
        session.add(Question(consultation_id=row.id, position=position, **q))
    session.flush()
    return _info(session, row, now, detail=True)


def list_consultations(
    session: Session, *, now: datetime, place_code: str | None = None
) -> list[ConsultationInfo]:
    query = select(Consultation).order_by(Consultation.closes_at.desc(), Consultation.code)
    if place_code:
        query = query.where(Consultation.place_code == place_code)
    return [_info(session, row, now, detail=False) for row in session.scalars(query)]


def get_consultation(session: Session, code: str, *, now: datetime) -> ConsultationInfo:
    return _info(session, _load(session, code), now, detail=True)


def respondent_hash(username: str, secret_key: str) -> str:
    return hmac.new(
        secret_key.encode("utf-8"),
        b"qala.budgeting.respondent:" + username.encode("utf-8"),
        "sha256",
    ).hexdigest()


def _check_answers(
    questions: list[Question], answers: Mapping[str, Any]
) -> tuple[dict[str, Any], list[Problem]]:
    problems: list[Problem] = []
    by_key = {q.key: q for q in questions}
    clean: dict[str, Any] = {}
    for key in answers:
        if key not in by_key:
            problems.append(Problem("no such question", column=f"answers.{key}"))
    for q in questions:
        value = answers.get(q.key)
        where = f"answers.{q.key}"
        empty = value is None or value == "" or value == []
        if empty:
            if q.required:
                problems.append(Problem("this question needs an answer", column=where))
            continue
        option_keys = [o["key"] for o in q.options]
        if q.kind == "single":
            if value not in option_keys:
                problems.append(
                    Problem(f"one of {', '.join(option_keys)}", column=where, value=value)
                )
        elif q.kind == "multiple":
            if (
                not isinstance(value, list)
                or any(v not in option_keys for v in value)
                or len(set(value)) != len(value)
            ):
                problems.append(
                    Problem(
                        f"a list of distinct options among {', '.join(option_keys)}",
                        column=where,
                        value=value,
                    )
                )
        elif q.kind == "scale":
            assert q.scale_min is not None and q.scale_max is not None
            if (
                not isinstance(value, int)
                or isinstance(value, bool)
                or not q.scale_min <= value <= q.scale_max
            ):
                problems.append(
                    Problem(
                        f"a whole number from {q.scale_min} to {q.scale_max}",
                        column=where,
                        value=value,
                    )
                )
        else:
            if not isinstance(value, str) or len(value.strip()) > MAX_ANSWER:
                problems.append(Problem(f"text of at most {MAX_ANSWER} characters", column=where))
            else:
                value = value.strip()
        clean[q.key] = value
    return clean, problems


def respond(
    session: Session,
    code: str,
    *,
    respondent: str,
    answers: Mapping[str, Any],
    language: str = "ru",
    secret_key: str,
    now: datetime,
    illustrative: bool = False,
    account_id: int | None = None,
) -> ConsultationInfo:
    """A resident's answers (answering again replaces them while the consultation is open).

    With ``account_id``, only from an account bound to its holder's IIN (by any verifier), so
    that answers count once per person; None for the demo's generated respondents.
    """
    row = _load(session, code)
    if account_id is not None and not has_identity(session, account_id):
        raise PermissionDeniedError(
            "answers count once per person: register with your IIN in a participatory budget, "
            "or verify who you are with your electronic signature (/api/v1/auth/identity), first"
        )
    if _status(row, now) != "open":
        raise ConflictError(
            f"consultation `{row.code}` takes answers from {utc(row.opens_at):%Y-%m-%d %H:%M} to "
            f"{utc(row.closes_at):%Y-%m-%d %H:%M} UTC"
        )
    if language not in LANGUAGES:
        raise ValidationError.single("kk, ru or en", column="language", value=language)
    clean, problems = _check_answers(_questions(session, row), answers)
    raise_if_problems(problems, "the answers are not valid")
    digest = respondent_hash(respondent, secret_key)
    response = session.scalar(
        select(Response).where(
            Response.consultation_id == row.id, Response.respondent_hash == digest
        )
    )
    if response is None:
        response = Response(
            consultation_id=row.id, respondent_hash=digest, illustrative=illustrative
        )
        session.add(response)
    response.answers = clean
    response.language = language
    response.submitted_at = now
    session.flush()
    return _info(session, row, now, detail=False)


def add_comment(
    session: Session,
    code: str,
    *,
    author: str,
    text: str,
    language: str = "ru",
    now: datetime,
    illustrative: bool = False,
) -> CommentInfo:
    row = _load(session, code)
    if _status(row, now) != "open":
        raise ConflictError(
            f"consultation `{row.code}` is {_status(row, now)}; comments are taken while it is open"
        )
    text = (text or "").strip()
    if not text or len(text) > MAX_COMMENT:
        raise ValidationError.single(f"1–{MAX_COMMENT} characters", column="text")
    if language not in LANGUAGES:
        raise ValidationError.single("kk, ru or en", column="language", value=language)
    comment = Comment(
        consultation_id=row.id,
        author=author,
        language=language,
        text=text,
        created_at=now,
        illustrative=illustrative,
    )
    session.add(comment)
    session.flush()
    return CommentInfo(comment.id, author, language, text, utc(now), False, None)


def hide_comment(
    session: Session, code: str, comment_id: int, *, reason: str, actor: str
) -> CommentInfo:
    """Moderation: the comment stays stored, the public sees the reason instead of the text."""
    row = _load(session, code)
    comment = session.get(Comment, comment_id)
    if comment is None or comment.consultation_id != row.id:
        raise NotFoundError(f"consultation `{row.code}` has no comment {comment_id}")
    if not (reason or "").strip():
        raise ValidationError.single("say publicly why the comment is hidden", column="reason")
    comment.hidden = True
    comment.hidden_reason = f"{reason.strip()} ({actor})"
    session.flush()
    return CommentInfo(
        comment.id,
        comment.author,
        comment.language,
        None,
        utc(comment.created_at),
        True,
        comment.hidden_reason,
    )


def record_outcome(
    session: Session,
    code: str,
    *,
    summary: Mapping[str, str] | str,
    participants: int | None = None,
    now: datetime,
) -> ConsultationInfo:
    """Officials' public summary (and, for a hearing, how many people took part)."""
    row = _load(session, code)
    problems: list[Problem] = []
    clean = clean_text3(summary, column="summary", limit=MAX_DESCRIPTION, problems=problems)
    if participants is not None and (not isinstance(participants, int) or participants < 0):
        problems.append(
            Problem("a whole number, 0 or more", column="participants", value=participants)
        )
    if (
        row.kind == "hearing"
        and participants is not None
        and row.hearing_at is not None
        and utc(now) < utc(row.hearing_at)
    ):
        problems.append(Problem("the hearing has not taken place yet", column="participants"))
    raise_if_problems(problems, "cannot record the outcome")
    row.summary = clean
    if participants is not None:
        row.hearing_participants = participants
    session.flush()
    if not row.illustrative:
        publish_in_transaction(
            session,
            Event(
                "budgeting.consultation_outcome",
                {"consultation": row.code, "title": dict(row.title or {}), "summary": dict(clean)},
            ),
        )
    return _info(session, row, now, detail=True)


@dataclass
class QuestionResult:
    key: str
    kind: str
    text: dict[str, str]
    answered: int
    counts: dict[str, int] = field(default_factory=dict)
    """Choice questions: option key → respondents choosing it; scale: value → respondents."""
    shares: dict[str, float] = field(default_factory=dict)
    """Counts as a share of those who answered the question."""
    mean: float | None = None
    median: float | None = None
    texts: list[str] = field(default_factory=list)
    """Free-text answers (shown to officials; the public API gives their number only)."""


@dataclass
class ConsultationResults:
    code: str
    status: str
    responses: int
    by_language: dict[str, int]
    questions: list[QuestionResult]


def consultation_results(
    session: Session, code: str, *, now: datetime, with_texts: bool = True
) -> ConsultationResults:
    """Per question: option counts and shares, the scale's distribution, mean and median, texts.

    Free-text answers may hold personal details: without ``with_texts`` (what the public sees)
    each text question says how many answered it but not what they wrote.
    """
    row = _load(session, code)
    responses = list(
        session.scalars(
            select(Response).where(Response.consultation_id == row.id).order_by(Response.id)
        )
    )
    languages: dict[str, int] = {}
    for response in responses:
        languages[response.language] = languages.get(response.language, 0) + 1
    results = []
    for q in _questions(session, row):
        values = [r.answers[q.key] for r in responses if r.answers.get(q.key) not in (None, "", [])]
        result = QuestionResult(q.key, q.kind, dict(q.text), len(values))
        if q.kind in ("single", "multiple"):
            result.counts = {o["key"]: 0 for o in q.options}
            for value in values:
                for chosen in value if isinstance(value, list) else [value]:
                    result.counts[chosen] = result.counts.get(chosen, 0) + 1
        elif q.kind == "scale":
            assert q.scale_min is not None and q.scale_max is not None
            result.counts = {str(v): 0 for v in range(q.scale_min, q.scale_max + 1)}
            for value in values:
                result.counts[str(value)] += 1
            if values:
                result.mean = float(statistics.fmean(values))
                result.median = float(statistics.median(values))
        elif with_texts:
            result.texts = [str(v) for v in values]
        if values and result.counts:
            result.shares = {k: n / len(values) for k, n in result.counts.items()}
        results.append(result)
    return ConsultationResults(row.code, _status(row, now), len(responses), languages, results)
