"""Years of readings on PostgreSQL: the observation history is partitioned by month of
``time_us`` (declarative range partitions), and hourly and daily roll-ups are kept beside it.

20,000 sensors every 10 s is 173 million rows a day. Monthly partitions keep each index small
enough to stay in memory, let a time range scan only its months, and let retention drop a month
as a table instead of deleting rows. ``qala operate maintain`` creates the partitions ahead of
time (the current month and ``months_ahead`` more); a reading for a month without a partition
lands in the default partition, never refused, and the next ``maintain`` moves it into a
partition of its own. SQLite, the embedded default, keeps one plain table.

Retention (``maintain(retain_days=…)``, setting ``operate_retain_days``) removes raw readings
older than that once the roll-ups hold them: PostgreSQL drops whole monthly partitions, SQLite
deletes rows in batches; anything a roll-up lacks is kept and reported (:func:`apply_retention`).

The roll-ups (:class:`~qala.components.operate.models.HourlyRollup`, ``DailyRollup``) are upserted
by ingestion itself (:func:`add_to_rollups`) in the batch's transaction, from the rows actually
inserted: exact at every commit, and never counting a redelivered reading twice.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Table, text
from sqlalchemy.orm import Session

from qala.runtime import Context

PARENT = "operate_observation"
DEFAULT_PARTITION = "operate_observation_default"
US_PER_HOUR = 3_600_000_000
US_PER_DAY = 24 * US_PER_HOUR


def month_start_us(year: int, month: int) -> int:
    return int(datetime(year, month, 1, tzinfo=UTC).timestamp()) * 1_000_000


def month_of(time_us: int) -> tuple[int, int]:
    moment = datetime.fromtimestamp(time_us / 1_000_000, tz=UTC)
    return moment.year, moment.month


def next_month(year: int, month: int) -> tuple[int, int]:
    return (year + 1, 1) if month == 12 else (year, month + 1)


_MONTHLY = re.compile(PARENT + r"_y(\d{4})m(\d{2})")


def partition_name(year: int, month: int) -> str:
    return f"operate_observation_y{year:04d}m{month:02d}"


@dataclass
class MaintenanceReport:
    backend: str
    created: list[str] = field(default_factory=list)
    moved_rows: int = 0
    partitions: int = 0
    note: str = ""
    retain_days: int | None = None
    dropped: list[str] = field(default_factory=list)
    """Partitions dropped by retention (PostgreSQL)."""
    deleted_rows: int = 0
    """Raw readings removed by retention (rows of dropped partitions, or deleted on SQLite)."""
    kept: list[str] = field(default_factory=list)
    """What retention left although old, because its roll-ups do not hold all its readings:
    partitions (PostgreSQL) or ``sensor/quantity`` streams (SQLite)."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "created": self.created,
            "moved_rows": self.moved_rows,
            "partitions": self.partitions,
            "note": self.note,
            "retain_days": self.retain_days,
            "dropped": self.dropped,
            "deleted_rows": self.deleted_rows,
            "kept": self.kept,
        }


def is_partitioned(connection: Connection) -> bool:
    if connection.dialect.name != "postgresql":
        return False
    kind = connection.scalar(text("SELECT relkind FROM pg_class WHERE relname = :n"), {"n": PARENT})
    return bool(kind == "p")


def existing_partitions(connection: Connection) -> set[str]:
    return set(
        connection.scalars(
            text(
                "SELECT child.relname FROM pg_inherits JOIN pg_class parent ON parent.oid = "
                "inhparent JOIN pg_class child ON child.oid = inhrelid WHERE parent.relname = :n"
            ),
            {"n": PARENT},
        )
    )


def ensure_partition(connection: Connection, year: int, month: int) -> tuple[bool, int]:
    """Create the month's partition unless it exists, moving that month's rows out of the
    default partition first (PostgreSQL refuses a partition whose rows sit in the default).
    Returns whether it was created and how many rows moved."""
    name = partition_name(year, month)
    if name in existing_partitions(connection):
        return False, 0
    low = month_start_us(year, month)
    high = month_start_us(*next_month(year, month))
    bounds = {"low": low, "high": high}
    waiting = connection.scalar(
        text(f"SELECT count(*) FROM {DEFAULT_PARTITION} WHERE time_us >= :low AND time_us < :high"),
        bounds,
    )
    if not waiting:
        connection.execute(
            text(f"CREATE TABLE {name} PARTITION OF {PARENT} FOR VALUES FROM ({low}) TO ({high})")
        )
        return True, 0
    connection.execute(text(f"CREATE TABLE {name} (LIKE {PARENT} INCLUDING DEFAULTS)"))
    connection.execute(
        text(
            f"WITH moved AS (DELETE FROM {DEFAULT_PARTITION} WHERE time_us >= :low AND "
            f"time_us < :high RETURNING *) INSERT INTO {name} SELECT * FROM moved"
        ),
        bounds,
    )
    connection.execute(
        text(f"ALTER TABLE {PARENT} ATTACH PARTITION {name} FOR VALUES FROM ({low}) TO ({high})")
    )
    return True, int(waiting)


def maintain(
    context: Context,
    *,
    months_ahead: int = 3,
    now_us: int | None = None,
    retain_days: int | None = None,
    batch_rows: int = 10_000,
) -> MaintenanceReport:
    """Create the observation partitions from the current month to ``months_ahead`` months
    ahead, and one for every month whose readings wait in the default partition; with
    ``retain_days``, remove raw readings older than that many days (:func:`apply_retention`).
    Safe to run as often as wanted (a daily timer); SQLite has no partitions to create."""
    database = context.database
    report = MaintenanceReport(database.backend, retain_days=retain_days)
    if now_us is None:
        now_us = int(context.clock().timestamp() * 1_000_000)
    with database.engine.begin() as connection:
        if not is_partitioned(connection):
            report.note = "the observation table is not partitioned on this backend"
        else:
            _create_partitions(connection, report, months_ahead, now_us)
    if retain_days is not None:
        apply_retention(
            context, report, cutoff_us=now_us - retain_days * US_PER_DAY, batch_rows=batch_rows
        )
    return report


def _create_partitions(
    connection: Connection, report: MaintenanceReport, months_ahead: int, now_us: int
) -> None:
    # One maintainer at a time (a timer on each of several machines).
    connection.execute(text("SELECT pg_advisory_xact_lock(hashtext('qala.operate.maintain'))"))
    months: set[tuple[int, int]] = set()
    for (time_us,) in connection.execute(
        text(f"SELECT DISTINCT (time_us / {US_PER_DAY}) * {US_PER_DAY} FROM {DEFAULT_PARTITION}")
    ):
        months.add(month_of(int(time_us)))
    year, month = month_of(now_us)
    for _ in range(months_ahead + 1):
        months.add((year, month))
        year, month = next_month(year, month)
    for year, month in sorted(months):
        created, moved = ensure_partition(connection, year, month)
        if created:
            report.created.append(partition_name(year, month))
        report.moved_rows += moved
    report.partitions = len(existing_partitions(connection))


# ---------------------------------------------------------------------------------------------
# Retention


def rolled_up(connection: Connection, source: str, low: int, high: int) -> set[tuple[str, str]]:
    """The streams with readings in ``source`` over ``[low, high)`` (whole UTC days) that the
    hourly or the daily roll-up does not fully hold (fewer readings counted than stored)."""
    missing: set[tuple[str, str]] = set()
    for rollup in ("operate_observation_hourly", "operate_observation_daily"):
        rows = connection.execute(
            text(
                f"SELECT r.sensor, r.quantity FROM (SELECT sensor, quantity, count(*) AS n "
                f"FROM {source} WHERE time_us >= :low AND time_us < :high "
                f"GROUP BY sensor, quantity) AS r LEFT JOIN (SELECT sensor, quantity, "
                f"sum(count) AS n FROM {rollup} WHERE start_us >= :low AND start_us < :high "
                f"GROUP BY sensor, quantity) AS u ON u.sensor = r.sensor AND "
                f"u.quantity = r.quantity WHERE u.n IS NULL OR u.n < r.n"
            ),
            {"low": low, "high": high},
        )
        missing.update((str(sensor), str(quantity)) for sensor, quantity in rows)
    return missing


def apply_retention(
    context: Context, report: MaintenanceReport, *, cutoff_us: int, batch_rows: int = 10_000
) -> None:
    """Remove raw readings older than ``cutoff_us`` whose roll-ups exist; never one whose hourly
    or daily roll-up does not hold it (reported in ``report.kept``).

    PostgreSQL: a monthly partition goes (``DROP TABLE``) once its whole month is older than the
    cutoff and both roll-ups count all its readings, stream by stream; months are never split.
    SQLite: rows older than the cutoff's UTC day go in batches of ``batch_rows`` (a transaction
    each, so ingestion waits at most one batch), except those of streams a roll-up lacks.
    """
    cutoff_us -= cutoff_us % US_PER_DAY  # whole days: the daily roll-up's buckets
    with context.database.engine.begin() as connection:
        partitioned = is_partitioned(connection)
    if partitioned:
        _drop_old_partitions(context, report, cutoff_us)
    else:
        _delete_old_rows(context, report, cutoff_us, batch_rows)


def _drop_old_partitions(context: Context, report: MaintenanceReport, cutoff_us: int) -> None:
    with context.database.engine.begin() as connection:
        connection.execute(text("SELECT pg_advisory_xact_lock(hashtext('qala.operate.maintain'))"))
        for name in sorted(existing_partitions(connection)):
            if name == DEFAULT_PARTITION:
                continue
            match = _MONTHLY.fullmatch(name)
            if match is None:  # not one of ours
                continue
            year, month = int(match[1]), int(match[2])
            low, high = month_start_us(year, month), month_start_us(*next_month(year, month))
            if high > cutoff_us:
                continue
            if rolled_up(connection, name, low, high):
                report.kept.append(name)
                continue
            rows = int(connection.scalar(text(f"SELECT count(*) FROM {name}")) or 0)
            connection.execute(text(f"ALTER TABLE {PARENT} DETACH PARTITION {name}"))
            connection.execute(text(f"DROP TABLE {name}"))
            report.dropped.append(name)
            report.deleted_rows += rows
        report.partitions = len(existing_partitions(connection))


def _delete_old_rows(
    context: Context, report: MaintenanceReport, cutoff_us: int, batch_rows: int
) -> None:
    with context.database.engine.begin() as connection:
        oldest = connection.scalar(text(f"SELECT min(time_us) FROM {PARENT}"))
        if oldest is None or oldest >= cutoff_us:
            return
        low = int(oldest) - int(oldest) % US_PER_DAY
        missing = sorted(rolled_up(connection, PARENT, low, cutoff_us))
    report.kept.extend(f"{sensor}/{quantity}" for sensor, quantity in missing)
    connection_kept = " AND NOT EXISTS (SELECT 1 FROM retention_kept k WHERE k.sensor = o.sensor AND k.quantity = o.quantity)"
    while True:
        with context.database.engine.begin() as connection:
            connection.execute(
                text("CREATE TEMP TABLE IF NOT EXISTS retention_kept (sensor text, quantity text)")
            )
            connection.execute(text("DELETE FROM retention_kept"))
            if missing:
                connection.execute(
                    text("INSERT INTO retention_kept (sensor, quantity) VALUES (:s, :q)"),
                    [{"s": s, "q": q} for s, q in missing],
                )
            deleted = connection.execute(
                text(
                    f"DELETE FROM {PARENT} WHERE id IN (SELECT o.id FROM {PARENT} o "
                    f"WHERE o.time_us < :cutoff{connection_kept} LIMIT :n)"
                ),
                {"cutoff": cutoff_us, "n": batch_rows},
            ).rowcount
        report.deleted_rows += deleted
        if deleted < batch_rows:
            return


# ---------------------------------------------------------------------------------------------
# Roll-ups


def _buckets(
    rows: Sequence[tuple[int, str, str, int, float, str]], width_us: int
) -> list[dict[str, Any]]:
    buckets: dict[tuple[str, str, int], list[float]] = {}
    for _id, sensor, quantity, time_us, value, _unit in rows:
        key = (sensor, quantity, time_us - time_us % width_us)
        bucket = buckets.get(key)
        if bucket is None:
            buckets[key] = [1, value, value, value]
        else:
            bucket[0] += 1
            bucket[1] += value
            if value < bucket[2]:
                bucket[2] = value
            if value > bucket[3]:
                bucket[3] = value
    # Sorted, so that concurrent writers lock the same rows in the same order (no deadlock).
    return [
        {
            "sensor": sensor,
            "quantity": quantity,
            "start_us": start,
            "count": int(b[0]),
            "total": b[1],
            "minimum": b[2],
            "maximum": b[3],
        }
        for (sensor, quantity, start), b in sorted(buckets.items())
    ]


def add_to_rollups(session: Session, rows: Sequence[tuple[int, str, str, int, float, str]]) -> None:
    """Add newly stored observations ``(id, sensor, quantity, time_us, value, unit)`` to the
    hourly and daily roll-ups (one upsert statement each)."""
    if not rows:
        return
    from qala.components.operate.models import DailyRollup, HourlyRollup

    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]
    for model, width in ((HourlyRollup, US_PER_HOUR), (DailyRollup, US_PER_DAY)):
        values = _buckets(rows, width)
        table: Table = model.__table__  # type: ignore[assignment]
        statement = insert(table)
        excluded = statement.excluded
        statement = statement.on_conflict_do_update(
            index_elements=["sensor", "quantity", "start_us"],
            set_={
                "count": table.c.count + excluded.count,
                "total": table.c.total + excluded.total,
                "minimum": _least(dialect, table.c.minimum, excluded.minimum),
                "maximum": _greatest(dialect, table.c.maximum, excluded.maximum),
            },
        )
        session.execute(statement, values)


def _least(dialect: str, a: Any, b: Any) -> Any:
    from sqlalchemy import func

    return func.least(a, b) if dialect == "postgresql" else func.min(a, b)


def _greatest(dialect: str, a: Any, b: Any) -> Any:
    from sqlalchemy import func

    return func.greatest(a, b) if dialect == "postgresql" else func.max(a, b)
