"""Years of readings on PostgreSQL: the observation history is partitioned by month of
``time_us`` (declarative range partitions), and hourly and daily roll-ups are kept beside it.

20,000 sensors every 10 s is 173 million rows a day. Monthly partitions keep each index small
enough to stay in memory, let a time range scan only its months, and let retention drop a month
as a table instead of deleting rows. ``qala operate maintain`` creates the partitions ahead of
time (the current month and ``months_ahead`` more); a reading for a month without a partition
lands in the default partition, never refused, and the next ``maintain`` moves it into a
partition of its own. SQLite, the embedded default, keeps one plain table.

The roll-ups (:class:`~qala.components.operate.models.HourlyRollup`, ``DailyRollup``) are upserted
by ingestion itself (:func:`add_to_rollups`) in the batch's transaction, from the rows actually
inserted: exact at every commit, and never counting a redelivered reading twice.
"""

from __future__ import annotations

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


def partition_name(year: int, month: int) -> str:
    return f"operate_observation_y{year:04d}m{month:02d}"


@dataclass
class MaintenanceReport:
    backend: str
    created: list[str] = field(default_factory=list)
    moved_rows: int = 0
    partitions: int = 0
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "created": self.created,
            "moved_rows": self.moved_rows,
            "partitions": self.partitions,
            "note": self.note,
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
    context: Context, *, months_ahead: int = 3, now_us: int | None = None
) -> MaintenanceReport:
    """Create the observation partitions from the current month to ``months_ahead`` months
    ahead, and one for every month whose readings wait in the default partition. Safe to run
    as often as wanted (a daily timer); nothing to do on SQLite."""
    database = context.database
    report = MaintenanceReport(database.backend)
    with database.engine.begin() as connection:
        if not is_partitioned(connection):
            report.note = "the observation table is not partitioned on this backend"
            return report
        # One maintainer at a time (a timer on each of several machines).
        connection.execute(text("SELECT pg_advisory_xact_lock(hashtext('qala.operate.maintain'))"))
        months: set[tuple[int, int]] = set()
        for (time_us,) in connection.execute(
            text(
                f"SELECT DISTINCT (time_us / {US_PER_DAY}) * {US_PER_DAY} FROM {DEFAULT_PARTITION}"
            )
        ):
            months.add(month_of(int(time_us)))
        if now_us is None:
            now_us = int(context.clock().timestamp() * 1_000_000)
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
    return report


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
