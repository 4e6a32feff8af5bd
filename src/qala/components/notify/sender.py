"""Delivering the outbox: claim due messages under a lease, send, record; retry with
exponential back-off.

Crash safety: a claim only sets a lease (owner and expiry) in its own short transaction, so a
sender killed after claiming leaves the message queued; once the lease runs out another sender
(or the restarted one) claims it again. A message is marked sent only by the lease's holder, so
two senders never both record it. On PostgreSQL claims take rows ``FOR UPDATE SKIP LOCKED`` (many
senders never wait on each other); on SQLite the single writer makes the conditional update
atomic. Delivery never runs inside a resident's request: an SMTP server that is down only delays.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from qala.components.notify.channels import (
    Channel,
    DeliveryFailed,
    Outgoing,
    SmsGateway,
    SmtpChannel,
)
from qala.components.notify.models import OutboxMessage
from qala.runtime import Context

log = logging.getLogger(__name__)

BACKOFF_BASE_SECONDS = 30.0
BACKOFF_CAP_SECONDS = 6 * 3600.0


def backoff(attempts: int, *, base: float = BACKOFF_BASE_SECONDS) -> timedelta:
    """How long to wait after the ``attempts``-th failure: base·2^(n−1), at most 6 hours."""
    return timedelta(seconds=min(base * 2 ** max(attempts - 1, 0), BACKOFF_CAP_SECONDS))


def channels_of(context: Context) -> dict[str, Channel]:
    """The channels the settings configure (none: messages wait in the outbox)."""
    settings = context.settings
    found: dict[str, Channel] = {}
    if settings.smtp_url:
        found["email"] = SmtpChannel(
            settings.smtp_url, settings.mail_from, timeout=settings.notify_send_timeout
        )
    if settings.sms_gateway_url:
        found["sms"] = SmsGateway(
            settings.sms_gateway_url,
            settings.sms_gateway_key or "",
            timeout=settings.notify_send_timeout,
        )
    return found


def lease_owner_name() -> str:
    """Who holds a lease: host, process and a random part (a restarted process on the same pid
    is someone else), within the column's 80 characters."""
    return f"{socket.gethostname()[:50]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass
class Sender:
    """One delivering process (or thread): its lease owner name, channels and limits."""

    context: Context
    channels: dict[str, Channel]
    owner: str = field(default_factory=lease_owner_name)
    lease: timedelta = timedelta(seconds=120)
    max_attempts: int = 10
    backoff_base: float = BACKOFF_BASE_SECONDS

    @classmethod
    def for_context(cls, context: Context) -> Sender:
        settings = context.settings
        return cls(
            context,
            channels_of(context),
            lease=timedelta(seconds=settings.notify_lease_seconds),
            max_attempts=settings.notify_max_attempts,
            backoff_base=settings.notify_backoff_seconds,
        )

    def claim(self, *, limit: int = 20) -> list[int]:
        """Lease up to ``limit`` due messages of the configured channels; their ids."""
        if not self.channels:
            return []
        now = self.context.clock()
        due = (
            OutboxMessage.status == "queued",
            OutboxMessage.next_attempt_at <= now,
            OutboxMessage.channel.in_(list(self.channels)),
            or_(OutboxMessage.lease_until.is_(None), OutboxMessage.lease_until < now),
        )
        claimed: list[int] = []
        database = self.context.database
        with database.transaction() as session:
            query = select(OutboxMessage.id).where(*due).order_by(OutboxMessage.id).limit(limit)
            if database.backend == "postgresql":
                query = query.with_for_update(skip_locked=True)
            for message_id in session.scalars(query).all():
                taken = session.execute(
                    update(OutboxMessage)
                    .where(OutboxMessage.id == message_id, *due)
                    .values(lease_owner=self.owner, lease_until=now + self.lease)
                    .execution_options(synchronize_session=False)
                )
                if getattr(taken, "rowcount", 0) == 1:
                    claimed.append(message_id)
        return claimed

    def deliver(self, message_id: int) -> str:
        """Send one claimed message and record the outcome: ``sent``, ``retry``, ``failed`` or
        ``lost`` (the lease ran out and another sender took the message over)."""
        with self.context.database.session() as session:
            message = session.get(OutboxMessage, message_id)
            if message is None or message.lease_owner != self.owner:
                return "lost"
            outgoing = Outgoing(
                message.idempotency_key,
                message.recipient,
                message.subject,
                message.body,
                message.language,
            )
            channel = self.channels.get(message.channel)
        if channel is None:
            return self._record_failure(message_id, "no such channel configured", permanent=False)
        try:
            channel.send(outgoing)
        except DeliveryFailed as exc:
            return self._record_failure(message_id, str(exc), permanent=exc.permanent)
        except Exception as exc:  # a channel bug must not kill the sender; keep the message
            log.exception("notify: channel %s failed on message %s", channel, message_id)
            return self._record_failure(
                message_id, f"{exc.__class__.__name__}: {exc}", permanent=False
            )
        return self._record_sent(message_id)

    def _mine(self, session: Session, message_id: int) -> OutboxMessage | None:
        message = session.get(OutboxMessage, message_id, with_for_update=True)
        return message if message is not None and message.lease_owner == self.owner else None

    def _record_sent(self, message_id: int) -> str:
        with self.context.database.transaction() as session:
            message = self._mine(session, message_id)
            if message is None:
                log.warning("notify: message %s was sent after its lease ran out", message_id)
                return "lost"
            message.status = "sent"
            message.sent_at = self.context.clock()
            message.attempts += 1
            message.lease_owner = message.lease_until = None
            message.last_error = None
            if message.redact_after_send:
                message.body = ""
        return "sent"

    def _record_failure(self, message_id: int, reason: str, *, permanent: bool) -> str:
        with self.context.database.transaction() as session:
            message = self._mine(session, message_id)
            if message is None:
                return "lost"
            message.attempts += 1
            message.last_error = reason[:2000]
            message.lease_owner = message.lease_until = None
            if permanent or message.attempts >= self.max_attempts:
                message.status = "failed"
                outcome = "failed"
            else:
                message.next_attempt_at = self.context.clock() + backoff(
                    message.attempts, base=self.backoff_base
                )
                outcome = "retry"
        log.info("notify: message %s %s: %s", message_id, outcome, reason)
        return outcome

    def run_once(self, *, limit: int = 20) -> dict[str, int]:
        """Claim and deliver one batch; counts by outcome."""
        counts: dict[str, int] = {}
        for message_id in self.claim(limit=limit):
            outcome = self.deliver(message_id)
            counts[outcome] = counts.get(outcome, 0) + 1
        return counts

    def due(self) -> int:
        """Messages of the configured channels due now, leased or not (a leased one is taken
        over when its lease runs out); those backing off until later are not counted."""
        now = self.context.clock()
        with self.context.database.session() as session:
            return int(
                session.scalar(
                    select(func.count())
                    .select_from(OutboxMessage)
                    .where(
                        OutboxMessage.status == "queued",
                        OutboxMessage.next_attempt_at <= now,
                        OutboxMessage.channel.in_(list(self.channels)),
                    )
                )
                or 0
            )

    def run(
        self,
        stop: threading.Event,
        *,
        interval: float = 2.0,
        until_empty: bool = False,
        on_batch: Callable[[dict[str, int]], None] | None = None,
    ) -> None:
        """Deliver until ``stop`` is set (or, with ``until_empty``, until nothing is due)."""
        while not stop.is_set():
            try:
                counts = self.run_once()
            except Exception:  # the database away for a moment: try again next round
                log.exception("notify: delivery round failed")
                counts = {}
            if counts and on_batch is not None:
                on_batch(counts)
            if until_empty and not counts and self.due() == 0:
                return
            if not counts:
                stop.wait(interval)


@dataclass
class BackgroundDelivery:
    """The sender as a daemon thread of ``qala serve``."""

    thread: threading.Thread
    stop_event: threading.Event

    def stop(self, timeout: float = 10.0) -> None:
        self.stop_event.set()
        self.thread.join(timeout)


def start_background_delivery(context: Context) -> BackgroundDelivery | None:
    """Start delivering in this process (None when no channel is configured)."""
    sender = Sender.for_context(context)
    if not sender.channels:
        return None
    stop = threading.Event()
    thread = threading.Thread(
        target=sender.run,
        args=(stop,),
        kwargs={"interval": context.settings.notify_poll_seconds},
        name="qala-notify",
        daemon=True,
    )
    thread.start()
    return BackgroundDelivery(thread, stop)
