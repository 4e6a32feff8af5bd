"""Limits on sign-in and registration, counted in the store so every server process shares them.

Each limited event is a row keyed by what it is limited under; an event is refused while the key
already has ``limit`` rows within the window. Counting is done in a transaction of its own, so a
failed sign-in still counts although the caller's transaction rolls back. Under simultaneous
requests a few more than ``limit`` can pass (count, then insert): a throttle, not an exact quota.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from qala.components.accounts.models import AuthAttempt
from qala.core.errors import PermissionDeniedError


@dataclass(frozen=True)
class Limit:
    prefix: str
    limit: int
    window: timedelta


FAILED_LOGINS_PER_ACCOUNT = Limit("login", 10, timedelta(minutes=15))
LOGINS_PER_ADDRESS = Limit("login-from", 30, timedelta(minutes=15))
REGISTRATIONS_PER_ADDRESS = Limit("register-from", 5, timedelta(hours=1))
LONGEST_WINDOW = timedelta(hours=1)
"""Events older than this count under no limit and are deleted."""


class TooManyAttemptsError(PermissionDeniedError):
    """Refused by a limit; ``retry_after`` seconds until the oldest counted event leaves it."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _own_session(session: Session) -> Session:
    """A session on the same store, outside the caller's transaction."""
    return Session(bind=session.get_bind(), expire_on_commit=False)


def check(session: Session, rule: Limit, subject: str, *, now: datetime) -> None:
    """Refuse with ``TooManyAttemptsError`` when ``subject`` is at its limit under ``rule``."""
    key = f"{rule.prefix}:{subject}"[:120]
    with _own_session(session) as own:
        count, oldest = own.execute(
            select(func.count(), func.min(AuthAttempt.at)).where(
                AuthAttempt.key == key, AuthAttempt.at > now - rule.window
            )
        ).one()
    if count >= rule.limit:
        wait = int((_aware(oldest) + rule.window - now).total_seconds()) + 1
        raise TooManyAttemptsError(
            f"too many attempts; try again in {max(1, wait // 60)} minute(s)", max(1, wait)
        )


def record(session: Session, rule: Limit, subject: str, *, now: datetime) -> None:
    """Count one event for ``subject`` (committed at once), and forget events no limit counts."""
    key = f"{rule.prefix}:{subject}"[:120]
    with _own_session(session) as own, own.begin():
        own.execute(delete(AuthAttempt).where(AuthAttempt.at <= now - LONGEST_WINDOW))
        own.add(AuthAttempt(key=key, at=now))


def spend(session: Session, rule: Limit, subject: str, *, now: datetime) -> None:
    """:func:`check`, then :func:`record`: for events limited whether or not they succeed."""
    check(session, rule, subject, now=now)
    record(session, rule, subject, now=now)
