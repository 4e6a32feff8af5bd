"""Events become messages in the outbox, written with the publisher's session so they commit (or
roll back) with the change they tell about.

Each message is rendered at once in the recipient's language (the text does not depend on the
sender's configuration later), keyed by an idempotency key made of the event and the recipient,
and carries an unsubscribe link signed with the platform's secret key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any, Protocol, cast

from sqlalchemy import Table, bindparam, insert, select, union_all
from sqlalchemy.orm import Session

from qala.components.accounts.models import User
from qala.components.notify.catalogue import day, language_of, name_in, tenge, text
from qala.components.notify.models import BallotNote, Contact, OutboxMessage, Subscription
from qala.core.clock import as_utc
from qala.events import Event, EventBus
from qala.runtime import Context
from qala.store.direct import DirectStatement
from qala.store.ids import SequenceIds

REQUEST_STATUSES = ("acknowledged", "in_progress", "closed", "open")

# Core inserts on the report's hot path: the ORM's unit of work cost more than the statements.
_SUBSCRIPTIONS = cast(Table, Subscription.__table__)
_INSERT_SUBSCRIPTION = insert(_SUBSCRIPTIONS).returning(_SUBSCRIPTIONS.c.id)
_MESSAGES = cast(Table, OutboxMessage.__table__)
_INSERT_MESSAGE = insert(_MESSAGES)
SUBSCRIPTION_IDS = SequenceIds("notify_subscription")
"""A reporter's subscription and its confirmation, whose unsubscribe link names the
subscription's id, go to the store in one statement: no round trip to learn the id first."""


@lru_cache(maxsize=8)
def _subscribe_with_messages(
    subscription_columns: tuple[str, ...], message_columns: tuple[str, ...], messages: int
) -> DirectStatement:
    """PostgreSQL: a subscription (its id given) and its first ``messages`` outbox rows, one
    statement. Values bound as ``subscription_<column>`` and ``message<n>_<column>``."""
    # A nested INSERT gets no Python-side column defaults: every such column must be given.
    for table, columns in ((_SUBSCRIPTIONS, subscription_columns), (_MESSAGES, message_columns)):
        missing = [c.name for c in table.c if c.default is not None and c.name not in columns]
        if missing and (table is _SUBSCRIPTIONS or messages):
            raise ValueError(f"{table.name} needs values for {', '.join(missing)}")
    subscribed = insert(_SUBSCRIPTIONS).values(
        {
            name: bindparam(f"subscription_{name}", type_=_SUBSCRIPTIONS.c[name].type)
            for name in subscription_columns
        }
    )
    if not messages:
        return DirectStatement(subscribed)
    # Rows as SELECTs of parameters, not a multi-row VALUES: SQLAlchemy caches the compiled form
    # of this one, where it compiled a multi-row VALUES again on every report.
    rows = [
        select(
            *(
                bindparam(f"message{number}_{name}", type_=_MESSAGES.c[name].type)
                for name in message_columns
            )
        )
        for number in range(messages)
    ]
    return DirectStatement(
        insert(_MESSAGES)
        .from_select(list(message_columns), rows[0] if messages == 1 else union_all(*rows))
        .add_cte(subscribed.cte("subscribed"))
    )


# -- signed unsubscribe links ----------------------------------------------------------------
def _signature(secret_key: str, subject: str) -> str:
    digest = hmac.new(
        secret_key.encode(), f"notify-unsubscribe:{subject}".encode(), hashlib.sha256
    ).digest()
    return base64.urlsafe_b64encode(digest[:18]).decode().rstrip("=")


def unsubscribe_token(secret_key: str, subject: str) -> str:
    """A token naming ``subject`` (``s<id>``: one subscription, ``a<username>``: everything an
    account gets) that only this platform's key can make."""
    encoded = base64.urlsafe_b64encode(subject.encode()).decode().rstrip("=")
    return f"{encoded}.{_signature(secret_key, subject)}"


def read_unsubscribe_token(secret_key: str, token: str) -> str | None:
    """The subject a genuine token names; None for a forged, altered or malformed one."""
    encoded, _, signature = token.partition(".")
    try:
        subject = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    if not signature or not hmac.compare_digest(signature, _signature(secret_key, subject)):
        return None
    return subject


# -- recipients and messages ---------------------------------------------------------------
@dataclass(frozen=True)
class Recipient:
    email: str | None
    phone: str | None
    language: str
    unsubscribe_subject: str


@dataclass(frozen=True)
class Writer:
    """What rendering needs from the platform: where links point and the signing key."""

    base_url: str
    secret_key: str
    default_language: str

    @classmethod
    def of(cls, context: Context) -> Writer:
        settings = context.settings
        return cls(
            settings.public_base_url.rstrip("/"), settings.secret_key, settings.default_language
        )

    def link(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def unsubscribe_link(self, subject: str) -> str:
        return self.link(
            f"/notifications/unsubscribe/{unsubscribe_token(self.secret_key, subject)}"
        )


def _contact(session: Session, account: str | None) -> Contact | None:
    return session.get(Contact, account) if account else None


class Following(Protocol):
    """What telling a follower reads of their subscription: a stored :class:`Subscription`, or
    a :class:`NewFollowing` for one a statement is writing this moment."""

    @property
    def id(self) -> int: ...
    @property
    def topic(self) -> str: ...
    @property
    def account(self) -> str | None: ...
    @property
    def email(self) -> str | None: ...
    @property
    def phone(self) -> str | None: ...
    @property
    def language(self) -> str: ...
    @property
    def label(self) -> dict[str, Any]: ...
    @property
    def link(self) -> str: ...
    @property
    def active(self) -> bool: ...


@dataclass(frozen=True)
class NewFollowing:
    """A subscription's values before (or as) its row is written: rendering its first message
    needs no ORM object, whose instrumented attributes cost more than the rendering."""

    id: int
    topic: str
    account: str | None
    email: str | None
    phone: str | None
    language: str
    label: dict[str, Any]
    link: str
    active: bool
    created_at: datetime


def recipient_of(session: Session, subscription: Following) -> Recipient | None:
    """Where a subscription's messages go, its account's channel choices applied; None when
    nobody is to be told."""
    if not subscription.active:
        return None
    contact = _contact(session, subscription.account)
    email = subscription.email or (contact.email if contact else None)
    phone = subscription.phone or (contact.phone if contact else None)
    if contact is not None:
        email = email if contact.email_on else None
        phone = phone if contact.sms_on else None
    if not email and not phone:
        return None
    return Recipient(email, phone, subscription.language, f"s{subscription.id}")


def enqueue(
    session: Session,
    *,
    key: str,
    kind: str,
    recipient: Recipient,
    subject: str,
    lines: list[str],
    writer: Writer,
    now: datetime,
    sms_tail: str = "",
    secret: bool = False,
    fresh: bool = False,
) -> int:
    """Add a message per channel the recipient has; an idempotency key seen before adds nothing
    (the same event announced twice; ``fresh``: the recipient is new, no key can exist yet).
    Returns how many messages were added."""
    rows = message_rows(
        session,
        key=key,
        kind=kind,
        recipient=recipient,
        subject=subject,
        lines=lines,
        writer=writer,
        now=now,
        sms_tail=sms_tail,
        secret=secret,
        fresh=fresh,
    )
    _store_messages(session, rows)
    return len(rows)


def _store_messages(session: Session, rows: list[dict[str, Any]]) -> None:
    if rows:
        # On the session's connection: the ORM's execute path cost more than the INSERT (one
        # row is the usual case: a plain execute, not an executemany).
        session.connection().execute(_INSERT_MESSAGE, rows[0] if len(rows) == 1 else rows)


def message_rows(
    session: Session,
    *,
    key: str,
    kind: str,
    recipient: Recipient,
    subject: str,
    lines: list[str],
    writer: Writer,
    now: datetime,
    sms_tail: str = "",
    secret: bool = False,
    fresh: bool = False,
) -> list[dict[str, Any]]:
    """The outbox rows :func:`enqueue` adds, rendered but not yet stored."""
    language = recipient.language
    footer = [
        "",
        "—",
        text(language, "unsubscribe", link=writer.unsubscribe_link(recipient.unsubscribe_subject)),
        text(language, "footer"),
    ]
    rows = []
    for channel, address, body in (
        ("email", recipient.email, "\n\n".join(line for line in lines if line) + "\n".join(footer)),
        ("sms", recipient.phone, f"Qala: {subject}. {sms_tail}".strip()),
    ):
        if not address:
            continue
        message_key = f"{key}:{channel}"
        if not fresh and session.scalar(
            select(OutboxMessage.id).where(OutboxMessage.idempotency_key == message_key)
        ):
            continue
        rows.append(
            {
                "idempotency_key": message_key,
                "kind": kind,
                "channel": channel,
                "recipient": address,
                "language": language,
                "subject": subject[:300],
                "body": body,
                "redact_after_send": secret,
                "status": "queued",
                "attempts": 0,
                "next_attempt_at": now,
                "lease_owner": None,
                "lease_until": None,
                "last_error": None,
                "created_at": now,
                "sent_at": None,
            }
        )
    return rows


def _when(event: Event, fallback: datetime) -> datetime:
    at = event.payload.get("at")
    return as_utc(datetime.fromisoformat(at)) or fallback if isinstance(at, str) else fallback


# -- requests ------------------------------------------------------------------------------
def request_topic(city: str, request_id: int) -> str:
    return f"request:{city}:{request_id}"


def support_topic(city: str, request_id: int) -> str:
    """What a resident who supports another's request follows (told as a supporter)."""
    return f"support:{city}:{request_id}"


def on_request_received(session: Session, event: Event, writer: Writer, now: datetime) -> None:
    """Follow the request for its reporter (their contact, their language) and confirm it."""
    data = event.payload
    if data.get("illustrative") or not (
        data.get("email") or data.get("phone") or data.get("account")
    ):
        return
    language = language_of(data.get("language"), writer.default_language)
    values: dict[str, Any] = {
        "topic": request_topic(data["jurisdiction"], data["id"]),
        "account": data.get("account"),
        "email": data.get("email"),
        "phone": data.get("phone"),
        "language": language,
        "label": dict(data.get("service_names") or {}),
        "link": f"/requests/{data['token']}?city={data['jurisdiction']}",
        "active": True,
        "created_at": now,
    }
    connection = session.connection()
    if connection.dialect.name != "postgresql":
        values["id"] = int(connection.execute(_INSERT_SUBSCRIPTION, values).scalar_one())
        # The values to render from: the row itself was written by the statement above.
        subscription = NewFollowing(**values)
        _request_message(
            session, subscription, "received", data, writer, _when(event, now), fresh=True
        )
        return
    # PostgreSQL: the id known before the row exists, so the subscription and its first message
    # (whose unsubscribe link names the id) go to the store in one statement.
    values["id"] = SUBSCRIPTION_IDS.take(connection)
    rows = _request_message_rows(
        session, NewFollowing(**values), "received", data, writer, _when(event, now), fresh=True
    )
    parameters = {f"subscription_{name}": value for name, value in values.items()}
    for number, row in enumerate(rows):
        parameters.update((f"message{number}_{name}", value) for name, value in row.items())
    statement = _subscribe_with_messages(tuple(values), tuple(rows[0]) if rows else (), len(rows))
    # Nothing to wait for: it goes to the store with the report's next statement that answers.
    statement.send(session, parameters)


def on_request_supported(session: Session, event: Event, writer: Writer, now: datetime) -> None:
    """Follow the request for a resident who supports it (by account or e-mail) and confirm."""
    data = event.payload
    if data.get("illustrative") or not (data.get("email") or data.get("account")):
        return
    city = data["jurisdiction"]
    topic = support_topic(city, data["id"])
    following = (topic, request_topic(city, data["id"]))
    if _already_following(session, following, data.get("account"), data.get("email")):
        return
    language = language_of(data.get("language"), writer.default_language)
    values: dict[str, Any] = {
        "topic": topic,
        "account": data.get("account"),
        "email": data.get("email"),
        "phone": None,
        "language": language,
        "label": dict(data.get("service_names") or {}),
        "link": f"/requests/{data['id']}?city={data['jurisdiction']}",
        "active": True,
        "created_at": now,
    }
    values["id"] = int(session.connection().execute(_INSERT_SUBSCRIPTION, values).scalar_one())
    subscription = NewFollowing(**values)
    _request_message(session, subscription, "supported", data, writer, _when(event, now))


def _already_following(
    session: Session, topics: tuple[str, ...], account: str | None, email: str | None
) -> bool:
    """Whether ``account`` (else ``email``) actively follows any of ``topics``."""
    if not account and not email:
        return False
    who = Subscription.account == account if account else Subscription.email == email
    found = select(Subscription.id).where(
        Subscription.topic.in_(topics), who, Subscription.active.is_(True)
    )
    return session.scalar(found.limit(1)) is not None


def on_request_status(session: Session, event: Event, writer: Writer, now: datetime) -> None:
    """The reporter's and the supporters' messages of a new status; a merged duplicate's
    supporters then follow the original."""
    data = event.payload
    if data.get("illustrative") or data.get("status") not in REQUEST_STATUSES:
        return
    city = data["jurisdiction"]
    topics = (request_topic(city, data["id"]), support_topic(city, data["id"]))
    for subscription in session.scalars(
        select(Subscription)
        .where(Subscription.topic.in_(topics), Subscription.active.is_(True))
        .order_by(Subscription.id)
    ):
        _request_message(session, subscription, data["status"], data, writer, _when(event, now))
    if data.get("reason") == "duplicate" and data.get("duplicate_of"):
        _move_supporters(session, city, data["id"], int(data["duplicate_of"]))


def _move_supporters(session: Session, city: str, duplicate: int, original: int) -> None:
    """A merged duplicate's supporters and reporter follow its original from now on, as its
    supporters (once each: whoever already follows the original is not added again)."""
    following = (request_topic(city, original), support_topic(city, original))
    moving = session.scalars(
        select(Subscription)
        .where(
            Subscription.topic.in_(
                (support_topic(city, duplicate), request_topic(city, duplicate))
            ),
            Subscription.active.is_(True),
        )
        .order_by(Subscription.id)
    ).all()
    for subscription in moving:
        if _already_following(session, following, subscription.account, subscription.email):
            subscription.active = False
        else:
            subscription.topic = support_topic(city, original)
            subscription.link = f"/requests/{original}?city={city}"
            session.flush()


def _request_message(
    session: Session,
    subscription: Following,
    status: str,
    data: dict[str, Any],
    writer: Writer,
    at: datetime,
    *,
    fresh: bool = False,
) -> None:
    rows = _request_message_rows(session, subscription, status, data, writer, at, fresh=fresh)
    _store_messages(session, rows)


def _request_message_rows(
    session: Session,
    subscription: Following,
    status: str,
    data: dict[str, Any],
    writer: Writer,
    at: datetime,
    *,
    fresh: bool = False,
) -> list[dict[str, Any]]:
    """The outbox rows telling ``subscription`` about a request's ``status`` (none when nobody
    is to be told)."""
    recipient = recipient_of(session, subscription)
    if recipient is None:
        return []
    language = recipient.language
    number = data["id"]
    service = name_in(subscription.label, language)
    # Supporters are told about "the request you support", reporters about "your request".
    role = "support" if subscription.topic.startswith("support:") else "request"
    subject = text(language, f"{role}.{status}.subject", number=number)
    lines = [text(language, f"{role}.{status}.lead", number=number, service=service)]
    if status == "closed" and data.get("reason"):
        lines.append(
            text(language, f"reason.{data['reason']}", original=data.get("duplicate_of") or "")
        )
    if data.get("note"):
        lines.append(text(language, "note", note=data["note"]))
    link = writer.link(subscription.link)
    lines.append(text(language, "follow", link=link))
    return message_rows(
        session,
        key=f"{subscription.topic}:{status}:{at.isoformat()}:s{subscription.id}",
        kind=f"request.{status}",
        recipient=recipient,
        subject=subject,
        lines=lines,
        writer=writer,
        now=at,
        sms_tail=link,
        fresh=fresh,
    )


# -- participation -------------------------------------------------------------------------
def on_ballot_cast(session: Session, event: Event, writer: Writer, now: datetime) -> None:
    """Note that the account voted (for "mine") and mail the receipt where it asked for mail."""
    data = event.payload
    username = session.scalar(select(User.username).where(User.id == data["account_id"]))
    if username is None:
        return
    at = _when(event, now)
    note = BallotNote(
        account=username, process=data["process"], title=dict(data.get("title") or {}), cast_at=at
    )
    session.add(note)
    contact = _contact(session, username)
    if contact is None or not (contact.email and contact.email_on):
        session.flush()
        return
    # E-mail only: the receipt is a secret and an SMS gateway would keep a copy.
    recipient = Recipient(contact.email, None, contact.language, f"a{username}")
    language = recipient.language
    process = name_in(note.title, language)
    note.receipt_mailed = (
        enqueue(
            session,
            key=f"ballot:{data['process']}:{username}",
            kind="ballot.receipt",
            recipient=recipient,
            subject=text(language, "ballot.subject", process=process),
            lines=[
                text(language, "ballot.lead", receipt=data["receipt"]),
                text(language, "ballot.keep"),
            ],
            writer=writer,
            now=at,
            secret=True,
        )
        > 0
    )


def _followers(session: Session, topic: str) -> list[Subscription]:
    return list(
        session.scalars(
            select(Subscription).where(Subscription.topic == topic, Subscription.active.is_(True))
        )
    )


def on_project_news(session: Session, event: Event, writer: Writer, now: datetime) -> None:
    """A followed project's milestone done or payment made."""
    data = event.payload
    kind = "project.milestone" if event.name.endswith("milestone") else "project.payment"
    for subscription in _followers(session, f"project:{data['project']}"):
        recipient = recipient_of(session, subscription)
        if recipient is None:
            continue
        language = recipient.language
        project = name_in(data.get("title"), language)
        lead = text(
            language,
            f"{kind}.lead",
            on=day(data["on"]),
            milestone=data.get("milestone", ""),
            amount=tenge(int(data.get("amount") or 0)),
        )
        link = writer.link(subscription.link)
        detail = data.get("milestone") or data.get("amount")
        enqueue(
            session,
            key=f"{subscription.topic}:{kind}:{data['on']}:{detail}:{now.isoformat()}:s{subscription.id}",
            kind=kind,
            recipient=recipient,
            subject=text(language, f"{kind}.subject", project=project),
            lines=[lead, text(language, "project.follow", link=link)],
            writer=writer,
            now=now,
            sms_tail=link,
        )


def on_consultation_outcome(session: Session, event: Event, writer: Writer, now: datetime) -> None:
    data = event.payload
    for subscription in _followers(session, f"consultation:{data['consultation']}"):
        recipient = recipient_of(session, subscription)
        if recipient is None:
            continue
        language = recipient.language
        link = writer.link(subscription.link)
        enqueue(
            session,
            key=f"{subscription.topic}:outcome:{now.isoformat()}:s{subscription.id}",
            kind="consultation.outcome",
            recipient=recipient,
            subject=text(
                language,
                "consultation.outcome.subject",
                consultation=name_in(data.get("title"), language),
            ),
            lines=[
                text(language, "consultation.outcome.lead"),
                name_in(data.get("summary"), language),
                text(language, "consultation.follow", link=link),
            ],
            writer=writer,
            now=now,
            sms_tail=link,
        )


HANDLERS = {
    "requests311.received": on_request_received,
    "requests311.status_changed": on_request_status,
    "requests311.supported": on_request_supported,
    "budgeting.ballot_cast": on_ballot_cast,
    "budgeting.project_milestone": on_project_news,
    "budgeting.project_payment": on_project_news,
    "budgeting.consultation_outcome": on_consultation_outcome,
}


def subscribe_handlers(context: Context, bus: EventBus) -> None:
    """Write the outbox inside each announcing transaction."""
    for name, handler in HANDLERS.items():

        def run(session: Any, event: Event, handler: Any = handler) -> None:
            handler(session, event, Writer.of(context), context.clock())

        bus.subscribe_in_transaction(name, run)
