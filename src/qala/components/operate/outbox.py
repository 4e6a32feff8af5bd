"""The notification outbox: what NGSI-LD subscriptions still have to be told, kept in the store.

A write stages the changes it made (:func:`stage`) in its own transaction, so a change is
committed together with the promise to notify it; the notifier
(:class:`~qala.components.operate.subscriptions.Notifier`) claims due rows (:func:`claim`), sends
the notifications and deletes the rows, or keeps a failed notification to be tried again later.
A claim leases the rows to its process: one conditional ``UPDATE`` moves them out of the due
range in a short transaction of its own, committed before anything is sent, so several
processes share the rows without sending one twice on SQLite (whose writes are serialised) as
on PostgreSQL (``FOR UPDATE SKIP LOCKED``), and no store lock is held while endpoints answer.
Delivery is at least once: rows whose process stopped before it was done with them are due
again when their lease ends, and sent again.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, delete, func, insert, select, update
from sqlalchemy.orm import Session

from qala.components.operate.changes import EntityChange, from_record, to_record
from qala.components.operate.models import NotificationOutbox, Subscription

# Core: the ORM's bulk insert costs more CPU than the statement (bench/ngsi_outbox.py).
_INSERT_CHANGE = insert(cast(Table, NotificationOutbox.__table__))


def changes_of(
    entity_ids: Iterable[str],
    attributes: Mapping[str, Sequence[str]] | None = None,
    changes: Mapping[str, EntityChange] | None = None,
) -> dict[str, EntityChange]:
    """Each changed entity's change: ``changes`` tells what happened to it, else ``attributes``
    the names updated (an entity in neither: any of its attributes, as sensor readings)."""
    found: dict[str, EntityChange] = {}
    for entity_id in dict.fromkeys(entity_ids):
        change = (changes or {}).get(entity_id)
        if change is None:
            known = attributes.get(entity_id) if attributes else None
            change = EntityChange(
                entity_id, known=known is not None, attributes_updated=set(known or ())
            )
        found[entity_id] = change
    return found


def stage(session: Session, changes: Mapping[str, EntityChange], now: datetime) -> int:
    """Add the changes to the outbox in the caller's transaction (one statement); how many.

    Nothing is staged while no subscription is active: a city whose sensors write thousands of
    entity changes a second and that nobody subscribed to would otherwise fill the table only
    for the notifier to delete it again."""
    if not changes or not _subscribed(session):
        return 0
    session.execute(
        _INSERT_CHANGE,
        [
            {
                "entity_id": entity_id,
                "change": to_record(change),
                "attempts": 0,
                "due_at": now,
                "created_at": now,
            }
            for entity_id, change in changes.items()
        ],
    )
    return len(changes)


def _subscribed(session: Session) -> bool:
    found = session.scalar(select(Subscription.id).where(Subscription.active.is_(True)).limit(1))
    return found is not None


def claim(
    session: Session, now: datetime, *, limit: int, lease_s: float
) -> list[NotificationOutbox]:
    """The oldest rows due at ``now`` (at most ``limit``, in the order they were staged), leased
    to the caller: due again only ``lease_s`` after ``now``, so that no other process claims
    them meanwhile. The caller commits the claim before sending (its transaction is the only
    one that can have taken the rows), then removes the rows or puts them off; rows another
    process is claiming on PostgreSQL are skipped, not waited for."""
    due = (
        select(NotificationOutbox.id)
        .where(NotificationOutbox.due_at <= now)
        .order_by(NotificationOutbox.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    leased = session.scalars(
        update(NotificationOutbox)
        # due_at again: a row another transaction leased while this one waited for it is no
        # longer due when PostgreSQL reads it anew.
        .where(NotificationOutbox.id.in_(due), NotificationOutbox.due_at <= now)
        .values(due_at=now + timedelta(seconds=lease_s))
        .returning(NotificationOutbox),
        execution_options={"synchronize_session": False},
    )
    return sorted(leased, key=lambda row: row.id)  # RETURNING follows no order


def due_again(session: Session, ids: Sequence[int], moment: datetime) -> None:
    """Make the rows due at ``moment``: a lease given back (``now``) or held longer."""
    if ids:
        session.execute(
            update(NotificationOutbox)
            .where(NotificationOutbox.id.in_(ids), NotificationOutbox.due_at.is_not(None))
            .values(due_at=moment)
        )


def merged_changes(rows: Iterable[NotificationOutbox]) -> dict[str, EntityChange]:
    """The change rows among ``rows``, those of one entity folded in the order they were made."""
    found: dict[str, EntityChange] = {}
    for row in rows:
        if row.entity_id is None or row.change is None:
            continue
        change = from_record(row.entity_id, row.change)
        if row.entity_id in found:
            found[row.entity_id].merge(change)
        else:
            found[row.entity_id] = change
    return found


def retry_later(
    session: Session,
    subscription_id: str,
    notification: dict[str, Any],
    row: NotificationOutbox | None,
    *,
    now: datetime,
    delay_s: float | None,
) -> None:
    """Keep a notification whose delivery failed: tried again ``delay_s`` from ``now``, or
    (None) given up and kept as failed for operators. ``row``: the row it was kept on, as
    claimed (read anew here; gone: another process took it over once its lease ended)."""
    if row is not None:
        row = session.get(NotificationOutbox, row.id)
        if row is None:
            return
    else:
        row = NotificationOutbox(
            subscription_id=subscription_id, notification=notification, attempts=0, created_at=now
        )
        session.add(row)
    put_off(row, now=now, delay_s=delay_s)


def put_off(row: NotificationOutbox, *, now: datetime, delay_s: float | None) -> None:
    """One attempt more for the row: tried again ``delay_s`` from ``now``, or (None) given up."""
    row.attempts += 1
    if delay_s is None:
        row.due_at, row.failed_at = None, now
    else:
        row.due_at = now + timedelta(seconds=delay_s)


def remove(session: Session, ids: Sequence[int]) -> None:
    """Delete the rows done with (one statement)."""
    if ids:
        session.execute(delete(NotificationOutbox).where(NotificationOutbox.id.in_(ids)))


def next_due(session: Session) -> datetime | None:
    """When the soonest row waiting is due (None: nothing waits)."""
    return session.scalar(select(func.min(NotificationOutbox.due_at)))


def count_waiting(session: Session) -> int:
    """Rows still to be notified or retried (not those given up)."""
    waiting = select(func.count()).select_from(NotificationOutbox)
    return int(session.scalar(waiting.where(NotificationOutbox.due_at.is_not(None))) or 0)


def purge_failed(session: Session, before: datetime, *, limit: int) -> int:
    """Delete at most ``limit`` notifications given up before ``before`` (the table stays
    bounded; operators have had them meanwhile)."""
    old = (
        select(NotificationOutbox.id)
        .where(NotificationOutbox.failed_at < before)
        .order_by(NotificationOutbox.id)
        .limit(limit)
    )
    ids = list(session.scalars(old))
    if ids:
        session.execute(delete(NotificationOutbox).where(NotificationOutbox.id.in_(ids)))
    return len(ids)
