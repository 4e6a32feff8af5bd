"""Years of readings: monthly partitions of the history on PostgreSQL (`qala operate maintain`),
hourly and daily roll-ups kept exact by ingestion, and the upgrade of a store holding readings."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import func, select, text
from typer.testing import CliRunner

from qala.components.operate.ingest import RulesRunner, ingest, register_sensors
from qala.components.operate.models import DailyRollup, HourlyRollup, Observation
from qala.components.operate.partitions import US_PER_DAY, US_PER_HOUR, maintain, month_of
from qala.components.operate.readings import Reading
from qala.registry import migration_locations
from qala.runtime import Context
from qala.settings import Settings
from qala.store.database import Database
from qala.store.migrate import alembic_config

T0 = int(datetime(2025, 11, 30, 22, tzinfo=UTC).timestamp()) * 1_000_000


def _readings(sensor: str, count: int, step_us: int, start: int = T0) -> list[Reading]:
    return [
        Reading(sensor, "pm25", start + i * step_us, 5.0 + (i * 37) % 23, "ug/m3")
        for i in range(count)
    ]


def _raw_buckets(context: Context, width: int) -> dict[tuple[str, str, int], tuple]:
    with context.database.session() as session:
        rows = session.execute(
            select(Observation.sensor, Observation.quantity, Observation.time_us, Observation.value)
        ).all()
    buckets: dict[tuple[str, str, int], list[float]] = {}
    for sensor, quantity, time_us, value in rows:
        buckets.setdefault((sensor, quantity, time_us - time_us % width), []).append(value)
    return {key: (len(v), pytest.approx(sum(v)), min(v), max(v)) for key, v in buckets.items()}


def _rollup(context: Context, model: type) -> dict[tuple[str, str, int], tuple]:
    with context.database.session() as session:
        return {
            (r.sensor, r.quantity, r.start_us): (r.count, r.total, r.minimum, r.maximum)
            for r in session.scalars(select(model))
        }


def test_rollups_equal_the_raw_history_whatever_the_batches_and_repeats(context: Context) -> None:
    with context.database.transaction() as session:
        register_sensors(session, [{"id": "roll-1"}, {"id": "roll-2"}])
    every_ten_minutes = _readings("roll-1", 400, 600_000_000)  # crosses days and a month
    every_hour = _readings("roll-2", 60, US_PER_HOUR, start=T0 + 123)
    runner = RulesRunner()
    for start in range(0, 400, 70):
        ingest(context, every_ten_minutes[start : start + 70], runner=runner)
    ingest(context, every_hour, runner=runner)
    # Redelivered and overlapping batches: stored once, so counted once.
    ingest(context, every_ten_minutes[50:120] + every_hour[:5], runner=runner)
    assert _rollup(context, HourlyRollup) == _raw_buckets(context, US_PER_HOUR)
    assert _rollup(context, DailyRollup) == _raw_buckets(context, US_PER_DAY)
    assert sum(c for c, *_ in _rollup(context, DailyRollup).values()) == 460


@pytest.mark.postgres
def test_maintain_creates_months_ahead_and_moves_strays_out_of_the_default(
    context: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    if context.database.backend != "postgresql":
        report = maintain(context)
        assert report.created == [] and "not partitioned" in report.note
        return
    with context.database.engine.connect() as connection:
        kind = connection.scalar(
            text("SELECT relkind FROM pg_class WHERE relname = 'operate_observation'")
        )
    assert kind == "p"
    with context.database.transaction() as session:
        register_sensors(session, [{"id": "old-1"}])
    old = int(datetime(2005, 6, 15, tzinfo=UTC).timestamp()) * 1_000_000
    assert ingest(context, _readings("old-1", 3, US_PER_HOUR, start=old)).stored == 3

    def partition_of(time_us: int) -> str:
        with context.database.engine.connect() as connection:
            return str(
                connection.scalar(
                    text(
                        "SELECT tableoid::regclass::text FROM operate_observation WHERE time_us = :t"
                    ),
                    {"t": time_us},
                )
            )

    assert partition_of(old) == "operate_observation_default"
    now = int(datetime(2031, 11, 20, tzinfo=UTC).timestamp()) * 1_000_000
    report = maintain(context, months_ahead=2, now_us=now)
    assert report.created == [
        "operate_observation_y2005m06",
        "operate_observation_y2031m11",
        "operate_observation_y2031m12",
        "operate_observation_y2032m01",
    ]
    assert report.moved_rows == 3
    assert partition_of(old) == "operate_observation_y2005m06"
    again = maintain(context, months_ahead=2, now_us=now)
    assert again.created == [] and again.moved_rows == 0
    # The keys still hold across the partitions: a repeat is a duplicate, not a second row.
    repeat = ingest(context, _readings("old-1", 3, US_PER_HOUR, start=old))
    assert (repeat.stored, repeat.duplicates) == (0, 3)
    # The command, as a daily timer runs it.
    from qala.cli.main import app

    monkeypatch.setenv("QALA_DATABASE_URL", context.database.url)
    result = CliRunner().invoke(app, ["operate", "maintain", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout[result.stdout.index("{") :])["partitions"] >= 5


@pytest.mark.postgres
def test_upgrading_a_store_with_readings_partitions_and_rolls_them_up(
    postgres_server: object, tmp_path: Path
) -> None:
    url = postgres_server.create()  # type: ignore[attr-defined]
    database = Database(url)
    try:
        config = alembic_config(database, [str(p) for p in migration_locations()])
        command.upgrade(config, "heads")
        command.downgrade(config, "operate_0004")
        with database.engine.begin() as connection:
            for i in range(30):
                connection.execute(
                    text(
                        "INSERT INTO operate_observation (sensor, quantity, time_us, value, unit,"
                        " message_id, received_us) VALUES ('up-1', 'pm25', :t, :v, 'ug/m3', :m, 0)"
                    ),
                    {"t": T0 + i * 6 * US_PER_HOUR, "v": float(i), "m": f"m{i}"},
                )
        command.upgrade(config, "heads")
        context = Context.from_settings(Settings(database_url=url))
        with database.engine.connect() as connection:
            partitions = set(
                connection.scalars(
                    text(
                        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
                        " JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'operate_observation'"
                    )
                )
            )
            next_id = connection.scalar(text("SELECT nextval('operate_observation_id_seq')"))
        assert {"operate_observation_y2025m11", "operate_observation_y2025m12"} <= partitions
        assert next_id > 30  # the id sequence carried over
        with database.session() as session:
            assert session.scalar(select(func.count()).select_from(Observation)) == 30
        assert _rollup(context, DailyRollup) == _raw_buckets(context, US_PER_DAY)
        assert _rollup(context, HourlyRollup) == _raw_buckets(context, US_PER_HOUR)
        command.downgrade(config, "operate_0004")  # and back
        with database.session() as session:
            assert session.scalar(select(func.count()).select_from(Observation)) == 30
        context.database.dispose()
    finally:
        database.dispose()
        postgres_server.drop(url)  # type: ignore[attr-defined]


def test_retention_removes_old_readings_only_where_both_rollups_hold_them(
    context: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    with context.database.transaction() as session:
        register_sensors(session, [{"id": "ret-1"}, {"id": "ret-2"}])
    september = int(datetime(2025, 9, 3, tzinfo=UTC).timestamp()) * 1_000_000
    october = int(datetime(2025, 10, 5, tzinfo=UTC).timestamp()) * 1_000_000
    recent = int(datetime(2025, 12, 19, tzinfo=UTC).timestamp()) * 1_000_000
    runner = RulesRunner()
    for sensor, start, count in (
        ("ret-1", september, 30),
        ("ret-2", september, 20),
        ("ret-1", october, 25),
        ("ret-2", recent, 10),
    ):
        assert ingest(context, _readings(sensor, count, US_PER_HOUR, start), runner=runner).stored
    # October's hourly roll-up of ret-1 lost a bucket: its readings must stay.
    with context.database.transaction() as session:
        session.execute(
            text("DELETE FROM operate_observation_hourly WHERE sensor = 'ret-1' AND start_us = :t"),
            {"t": october},
        )
    daily_before = _rollup(context, DailyRollup)
    now = int(datetime(2025, 12, 20, 12, tzinfo=UTC).timestamp()) * 1_000_000

    def stored() -> dict[tuple[str, tuple[int, int]], int]:
        """Readings per sensor and month."""
        with context.database.session() as session:
            rows = session.execute(select(Observation.sensor, Observation.time_us)).all()
        counts: dict[tuple[str, tuple[int, int]], int] = {}
        for sensor, time_us in rows:
            key = (sensor, month_of(time_us))
            counts[key] = counts.get(key, 0) + 1
        return counts

    before = stored()
    assert before == {
        ("ret-1", (2025, 9)): 30,
        ("ret-2", (2025, 9)): 20,
        ("ret-1", (2025, 10)): 25,
        ("ret-2", (2025, 12)): 10,
    }
    report = maintain(context, now_us=now, retain_days=30, batch_rows=7)
    after = stored()
    if context.database.backend == "postgresql":
        # Whole months: September goes as a table; October is kept, its roll-up lacks a bucket.
        assert report.dropped == ["operate_observation_y2025m09"]
        assert report.kept == ["operate_observation_y2025m10"]
        assert report.deleted_rows == 50
        assert after == {k: v for k, v in before.items() if k[1] != (2025, 9)}
    else:
        # Rows in batches: every old reading goes but those of the stream a roll-up lacks.
        assert report.dropped == [] and report.kept == ["ret-1/pm25"]
        assert report.deleted_rows == 20
        assert after == {k: v for k, v in before.items() if k != ("ret-2", (2025, 9))}
    # The roll-ups stay: the charts and indicators of the removed months still answer.
    assert _rollup(context, DailyRollup) == daily_before
    # Repaired roll-up, the command as a timer runs it (setting, today's clock): all old goes.
    with context.database.transaction() as session:
        session.execute(
            text(
                "INSERT INTO operate_observation_hourly (sensor, quantity, start_us, count,"
                " total, minimum, maximum) SELECT sensor, quantity, time_us - time_us % :h,"
                " count(*), sum(value), min(value), max(value) FROM operate_observation"
                " WHERE sensor = 'ret-1' AND time_us >= :t AND time_us < :t + :h"
                " GROUP BY sensor, quantity, time_us - time_us % :h"
            ),
            {"t": october, "h": US_PER_HOUR},
        )
    from qala.cli.main import app

    monkeypatch.setenv("QALA_DATABASE_URL", context.database.url)
    monkeypatch.setenv("QALA_OPERATE_RETAIN_DAYS", "30")
    result = CliRunner().invoke(app, ["operate", "maintain", "--json"])
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout[result.stdout.index("{") :])
    assert answer["retain_days"] == 30 and answer["kept"] == []
    assert answer["deleted_rows"] == sum(after.values())
    assert stored() == {}
