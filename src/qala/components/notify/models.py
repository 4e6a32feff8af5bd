"""Tables of resident notifications: who wants to hear about what (subscriptions), a signed-in
resident's contact and channel choices, the ballots they cast (for "mine"), and the outbox of
messages written in the same transaction as the change they tell about.

Contact details (e-mail, phone) of anonymous reporters are copied here from their request so the
notifications component never reads another component's tables.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from qala.store.base import Base, utcnow


class Contact(Base):
    """A signed-in resident's address book entry and channel choices (the settings page)."""

    __tablename__ = "notify_contact"

    account: Mapped[str] = mapped_column(String(80), primary_key=True)
    email: Mapped[str | None] = mapped_column(String(254))
    phone: Mapped[str | None] = mapped_column(String(40))
    language: Mapped[str] = mapped_column(String(2), default="ru")
    email_on: Mapped[bool] = mapped_column(Boolean, default=True)
    sms_on: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Subscription(Base):
    """Someone following a subject: their own request, a city project, a consultation."""

    __tablename__ = "notify_subscription"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    topic: Mapped[str] = mapped_column(String(160), index=True)
    """``request:<city>:<id>``, ``project:<code>`` or ``consultation:<code>``."""
    account: Mapped[str | None] = mapped_column(String(80), index=True)
    email: Mapped[str | None] = mapped_column(String(254))
    phone: Mapped[str | None] = mapped_column(String(40))
    language: Mapped[str] = mapped_column(String(2), default="ru")
    label: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    """What to call the subject in each language ({"kk": …, "ru": …, "en": …})."""
    link: Mapped[str] = mapped_column(String(500), default="")
    """The subject's page, a path under the public base URL."""
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class BallotNote(Base):
    """That an account voted in a process, and when — never which ballot (ballots are secret)."""

    __tablename__ = "notify_ballot_note"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account: Mapped[str] = mapped_column(String(80), index=True)
    process: Mapped[str] = mapped_column(String(80))
    title: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    cast_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    receipt_mailed: Mapped[bool] = mapped_column(Boolean, default=False)


class OutboxMessage(Base):
    """One message to one recipient on one channel, stored with the change it tells about.

    ``idempotency_key`` is unique: the same event never makes two messages, and it travels with
    the message (the e-mail's Message-ID, the SMS gateway's Idempotency-Key) so a receiver can
    drop a copy sent again after a crash between delivering and recording it.
    """

    __tablename__ = "notify_outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(60))
    channel: Mapped[str] = mapped_column(String(10))
    recipient: Mapped[str] = mapped_column(String(254))
    language: Mapped[str] = mapped_column(String(2))
    subject: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    redact_after_send: Mapped[bool] = mapped_column(Boolean, default=False)
    """The body holds a secret (a ballot receipt): blanked once delivered."""
    status: Mapped[str] = mapped_column(String(10), default="queued")
    """queued → sent, or failed (gave up; an administrator may queue it again)."""
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    lease_owner: Mapped[str | None] = mapped_column(String(80))
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (Index("ix_notify_outbox_due", "status", "next_attempt_at"),)
