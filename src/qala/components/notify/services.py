"""What residents and administrators do with notifications: choose channels, follow and
unfollow, unsubscribe by link, see the outbox, queue a failed message again."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from qala.components.notify.catalogue import LANGUAGES
from qala.components.notify.models import BallotNote, Contact, OutboxMessage, Subscription
from qala.components.notify.outbox import read_unsubscribe_token
from qala.core.clock import as_utc
from qala.core.errors import NotFoundError, Problem, ValidationError, raise_if_problems


def _utc(moment: datetime) -> datetime:
    """SQLite gives times back without their zone; they were stored in UTC."""
    return as_utc(moment) or moment


TOPIC_KINDS = ("project", "consultation")
"""What a signed-in resident may follow from its page (requests are followed when filed)."""


@dataclass(frozen=True)
class Preferences:
    email: str
    phone: str
    language: str
    email_on: bool
    sms_on: bool


def preferences(session: Session, account: str, *, default_language: str) -> Preferences:
    contact = session.get(Contact, account)
    if contact is None:
        return Preferences("", "", default_language, True, True)
    return Preferences(
        contact.email or "", contact.phone or "", contact.language, contact.email_on, contact.sms_on
    )


def save_preferences(
    session: Session,
    account: str,
    *,
    email: str,
    phone: str,
    language: str,
    email_on: bool,
    sms_on: bool,
    now: datetime,
) -> Preferences:
    """Store an account's contact and channel choices; every problem named by its field."""
    email, phone = email.strip(), phone.strip()
    problems: list[Problem] = []
    if email and ("@" not in email or " " in email or len(email) > 254):
        problems.append(Problem("expected an e-mail address", column="email", code="invalid_email"))
    if phone and (len(phone) > 40 or not all(c.isdigit() or c in "+-() " for c in phone)):
        problems.append(
            Problem(
                "expected a phone number (digits, spaces, + - ( ))",
                column="phone",
                code="invalid_phone",
            )
        )
    if language not in LANGUAGES:
        problems.append(
            Problem(f"expected one of {', '.join(LANGUAGES)}", column="language", value=language)
        )
    raise_if_problems(problems, "the notification settings are invalid")
    contact = session.get(Contact, account)
    if contact is None:
        contact = Contact(account=account)
        session.add(contact)
    contact.email = email or None
    contact.phone = phone or None
    contact.language = language
    contact.email_on = email_on
    contact.sms_on = sms_on
    contact.updated_at = now
    # Follows made before take the language chosen now.
    for subscription in session.scalars(
        select(Subscription).where(Subscription.account == account)
    ):
        subscription.language = language
    session.flush()
    return preferences(session, account, default_language=language)


@dataclass(frozen=True)
class Followed:
    id: int
    topic: str
    kind: str
    label: dict[str, Any]
    link: str
    active: bool
    since: datetime


def _followed(row: Subscription) -> Followed:
    return Followed(
        row.id,
        row.topic,
        row.topic.split(":", 1)[0],
        dict(row.label or {}),
        row.link,
        row.active,
        _utc(row.created_at),
    )


def followed_by(session: Session, account: str) -> list[Followed]:
    """Everything an account follows (its requests too), newest first."""
    rows = session.scalars(
        select(Subscription)
        .where(Subscription.account == account)
        .order_by(Subscription.created_at.desc(), Subscription.id.desc())
    )
    return [_followed(row) for row in rows]


def follow(
    session: Session,
    account: str,
    *,
    kind: str,
    code: str,
    label: dict[str, Any],
    link: str,
    language: str,
    now: datetime,
) -> Followed:
    """Follow a project or consultation (again, if it was stopped)."""
    if kind not in TOPIC_KINDS:
        raise ValidationError.single(
            f"expected one of {', '.join(TOPIC_KINDS)}", column="kind", value=kind
        )
    if not code or len(code) > 80:
        raise ValidationError.single("1–80 characters", column="code")
    topic = f"{kind}:{code}"
    row = session.scalar(
        select(Subscription).where(Subscription.topic == topic, Subscription.account == account)
    )
    if row is None:
        contact = session.get(Contact, account)
        row = Subscription(
            topic=topic,
            account=account,
            language=contact.language if contact else language,
            label=label,
            link=link,
            created_at=now,
        )
        session.add(row)
    row.active = True
    session.flush()
    return _followed(row)


def set_following(session: Session, account: str, subscription_id: int, *, active: bool) -> None:
    """Stop (or resume) one of the account's own subscriptions."""
    row = session.get(Subscription, subscription_id)
    if row is None or row.account != account:
        raise NotFoundError(f"you follow nothing numbered {subscription_id}")
    row.active = active


def unsubscribe(session: Session, secret_key: str, token: str) -> str | None:
    """Carry out an unsubscribe link: ``subscription`` or ``account`` (what was stopped), None
    for a token this platform did not sign or whose subject is gone."""
    subject = read_unsubscribe_token(secret_key, token)
    if subject is None:
        return None
    if subject.startswith("s") and subject[1:].isdigit():
        row = session.get(Subscription, int(subject[1:]))
        if row is None:
            return None
        row.active = False
        return "subscription"
    if subject.startswith("a") and len(subject) > 1:
        contact = session.get(Contact, subject[1:])
        if contact is None:
            contact = Contact(account=subject[1:])
            session.add(contact)
        contact.email_on = contact.sms_on = False
        return "account"
    return None


@dataclass(frozen=True)
class BallotCast:
    process: str
    title: dict[str, Any]
    cast_at: datetime
    receipt_mailed: bool


def ballots_of(session: Session, account: str) -> list[BallotCast]:
    """The processes an account voted in and when (the ballots themselves stay secret)."""
    rows = session.scalars(
        select(BallotNote).where(BallotNote.account == account).order_by(BallotNote.cast_at.desc())
    )
    return [
        BallotCast(r.process, dict(r.title or {}), _utc(r.cast_at), r.receipt_mailed) for r in rows
    ]


# -- administrators -----------------------------------------------------------------------
@dataclass(frozen=True)
class OutboxRow:
    id: int
    kind: str
    channel: str
    recipient: str
    subject: str
    status: str
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None


STATUSES = ("queued", "failed", "sent")


def outbox(
    session: Session, *, statuses: tuple[str, ...] = ("queued", "failed"), limit: int = 200
) -> list[OutboxRow]:
    """Messages by status, oldest first (what waits longest matters most)."""
    unknown = [s for s in statuses if s not in STATUSES]
    if unknown:
        raise ValidationError.single(
            f"expected {', '.join(STATUSES)}", column="status", value=unknown[0]
        )
    rows = session.scalars(
        select(OutboxMessage)
        .where(OutboxMessage.status.in_(statuses))
        .order_by(OutboxMessage.id)
        .limit(limit)
    )
    return [
        OutboxRow(
            r.id,
            r.kind,
            r.channel,
            _masked(r.recipient),
            r.subject,
            r.status,
            r.attempts,
            _utc(r.next_attempt_at),
            r.last_error,
            _utc(r.created_at),
            as_utc(r.sent_at),
        )
        for r in rows
    ]


def outbox_counts(session: Session) -> dict[str, int]:
    found = session.execute(
        select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)
    ).all()
    return {status: 0 for status in STATUSES} | {str(s): int(n) for s, n in found}


def _masked(address: str) -> str:
    """Enough of an address to tell messages apart, not enough to harvest it."""
    name, at, domain = address.partition("@")
    if at:
        return f"{name[:2]}…@{domain}"
    return f"…{address[-4:]}"


def requeue(session: Session, message_id: int, *, now: datetime) -> None:
    """Queue a failed message again, due at once with a fresh count of attempts."""
    row = session.get(OutboxMessage, message_id)
    if row is None:
        raise NotFoundError(f"no notification {message_id}")
    if row.status != "failed":
        raise ValidationError.single(
            "only failed messages are queued again", column="id", value=message_id
        )
    row.status = "queued"
    row.attempts = 0
    row.next_attempt_at = now
    row.lease_owner = row.lease_until = None
