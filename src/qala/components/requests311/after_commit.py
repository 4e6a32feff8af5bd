"""Events of the requests component, published only once the work behind them has committed.

Subscribers (other components) write in their own transactions: publishing inside ours would let
them see uncommitted ids, wait on our write lock (SQLite) or, under load, need a second pooled
connection per request while holding the first, which can drain the pool.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event as sqlalchemy_event
from sqlalchemy.orm import Session

from qala.events import Event, EventBus

_PENDING_EVENTS = "requests311.pending_events"
_COMMITTED = "requests311.committed"


def publish_after_commit(session: Session, bus: EventBus | None, event: Event) -> None:
    """Publish ``event`` once the session's transaction has committed and given its connection
    back to the pool (never for rolled-back work)."""
    if bus is None:
        return
    session.info.setdefault(_PENDING_EVENTS, []).append((bus, event))


def pending_event_count(session: Session) -> int:
    """How many events wait for ``session``'s commit (a mark for :func:`forget_events_after`)."""
    return len(session.info.get(_PENDING_EVENTS, []))


def forget_events_after(session: Session, count: int) -> None:
    """Drop the events queued after the first ``count``: their work was rolled back to a
    savepoint."""
    if _PENDING_EVENTS in session.info:
        del session.info[_PENDING_EVENTS][count:]


def _mark_committed(session: Session) -> None:
    # SQLAlchemy also calls after_commit when a savepoint is released; wait for the real commit.
    if session.info.get(_PENDING_EVENTS) and not session.in_nested_transaction():
        session.info[_COMMITTED] = True


def _publish_if_committed(session: Session, transaction: Any) -> None:
    if transaction.parent is not None or transaction.nested:
        return
    pending = session.info.pop(_PENDING_EVENTS, None)
    if session.info.pop(_COMMITTED, False) and pending:
        for bus, event in pending:
            bus.publish(event)


# Once for every session rather than per session on its first event: registering a listener
# cost more than the rest of publishing (bench/requests311_load.py, POST). Sessions without
# pending events return at the first dictionary lookup.
sqlalchemy_event.listen(Session, "after_commit", _mark_committed)
sqlalchemy_event.listen(Session, "after_transaction_end", _publish_if_committed)
