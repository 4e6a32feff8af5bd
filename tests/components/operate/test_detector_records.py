"""The detector's state one row per stream: ingest workers on other sensors never wait for each
other (PostgreSQL row locks), several workers end where one does on the Astana replay, and the
upgrade splits the former one-document state into rows (and the downgrade joins them)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import JSON, column, func, insert, select, table, text
from tests.conftest import shared_file

from qala.components.operate.ingest import (
    RulesRunner,
    flush_rules,
    ingest,
    ingest_in_session,
    register_sensors,
)
from qala.components.operate.models import DetectorRecord, Finding, Incident, Observation
from qala.components.operate.readings import Reading
from qala.components.operate.replay import read_observations, replay
from qala.engines.detect import StreamingEvaluator
from qala.registry import migration_locations
from qala.runtime import Context
from qala.settings import Settings
from qala.store.database import Database
from qala.store.migrate import alembic_config

_BLOBS = table(
    "operate_detector_state",
    column("rule_set"),
    column("state", JSON),
    column("last_observation_id"),
    column("checkpoint_observation_id"),
    column("updated_at"),
)
T0 = 1_764_547_200_000_000  # 2025-12-01T00:00Z
HOUR = 3_600_000_000


def _hourly(sensor: str, values: list[float], start: int = T0) -> list[Reading]:
    return [Reading(sensor, "pm25", start + i * HOUR, v, "ug/m3") for i, v in enumerate(values)]


def _in_thread(work: Any) -> tuple[threading.Thread, list[Any]]:
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append(work())
        except BaseException as exc:  # reported by the caller
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


@pytest.mark.postgres
def test_the_rows_rewritten_with_every_reading_keep_room_on_their_pages_on_postgres(
    postgres_server: Any, postgres_template: str
) -> None:
    """operate_0010: every reading rewrites its stream's detector record and its hour's and day's
    roll-up rows; a fill factor of 50 leaves room for those heap-only updates (no index entries,
    no new page: bench/operate_batch_profile.py measured 2–15 % HOT updates before, 99–100 %
    after)."""
    url = postgres_server.create(template=postgres_template)
    database = Database(url)
    try:
        with database.engine.connect() as connection:
            options = dict(
                connection.execute(
                    text(
                        "SELECT relname, array_to_string(reloptions, ',') FROM pg_class"
                        " WHERE relname IN ('operate_detector_record', 'operate_sensor',"
                        " 'operate_observation_hourly', 'operate_observation_daily')"
                    )
                ).all()
            )
        assert len(options) == 4
        assert set(options.values()) == {"fillfactor=50"}
    finally:
        database.dispose()


@pytest.mark.postgres
def test_a_worker_on_other_sensors_commits_while_another_holds_its_batch_open(
    postgres_server: Any, postgres_template: str
) -> None:
    url = postgres_server.create(template=postgres_template)
    first = Context.from_settings(Settings(database_url=url))
    second = Context.from_settings(Settings(database_url=url))  # another process's connections
    try:
        with first.database.transaction() as session:
            register_sensors(
                session,
                [{"id": "w-a", "group_id": "north"}, {"id": "w-b", "group_id": "south"}],
            )
        worker_a, worker_b = RulesRunner(), RulesRunner()
        ingest(first, _hourly("w-a", [10.0, 11.0]), runner=worker_a)  # rows exist: real locks
        ingest(second, _hourly("w-b", [10.0, 11.0]), runner=worker_b)
        session_a = first.database.sessions()
        transaction = session_a.begin()
        try:
            held = ingest_in_session(
                session_a, _hourly("w-a", [12.0, 13.0], start=T0 + 2 * HOUR), runner=worker_a
            )
            assert held.stored == 2  # worker A's batch is stored, its transaction still open
            # Worker B, other sensor of another group: its batch commits meanwhile.
            other, other_outcome = _in_thread(
                lambda: ingest(
                    second, _hourly("w-b", [12.0, 13.0], start=T0 + 2 * HOUR), runner=worker_b
                )
            )
            other.join(15)
            assert not other.is_alive(), "worker B waited for worker A's transaction"
            assert other_outcome[0].stored == 2, other_outcome
            # A batch of worker A's own stream does wait: the lock is real.
            same, same_outcome = _in_thread(
                lambda: ingest(
                    second, _hourly("w-a", [14.0], start=T0 + 4 * HOUR), runner=RulesRunner()
                )
            )
            same.join(1.5)
            assert same.is_alive() and not same_outcome
            transaction.commit()
        finally:
            if transaction.is_active:
                transaction.rollback()
            session_a.close()
        same.join(15)
        assert not same.is_alive() and same_outcome[0].stored == 1, same_outcome
        with first.database.session() as session:
            versions = {
                r.subject: r.version
                for r in session.scalars(
                    select(DetectorRecord).where(DetectorRecord.kind == "stream")
                )
            }
        assert versions == {"w-a": 3, "w-b": 2}
        reference = StreamingEvaluator(worker_a.rule_sets["air"])
        for r in _hourly("w-a", [10.0, 11.0, 12.0, 13.0, 14.0]):
            reference.feed_value(r.sensor, r.quantity, r.time_us, r.value, r.unit)
        resumed = RulesRunner()
        ingest(first, _hourly("w-a", [15.0], start=T0 + 5 * HOUR), runner=resumed)
        reference.feed_value("w-a", "pm25", T0 + 5 * HOUR, 15.0, "ug/m3")
        assert resumed.evaluator("air").state()["streams"] == reference.state()["streams"]
    finally:
        first.database.dispose()
        second.database.dispose()
        postgres_server.drop(url)


def _outcome(context: Context) -> tuple[int, list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    with context.database.session() as session:
        stored = session.scalar(select(func.count()).select_from(Observation)) or 0
        findings = sorted(
            (f.rule_id, f.sensor, f.start_us, f.end_us, round(f.value, 6), f.explanation)
            for f in session.scalars(select(Finding))
        )
        incidents = sorted(
            (i.category, i.dedup_key, i.severity, i.service, i.unit)
            for i in session.scalars(select(Incident))
        )
    return stored, findings, incidents


@pytest.mark.postgres
@pytest.mark.shared
@pytest.mark.slow
def test_two_workers_on_the_astana_replay_end_where_one_does(
    postgres_server: Any, postgres_template: str
) -> None:
    table = read_observations(
        shared_file("sensors/airdatakz_astana_pm25_hourly_2025-12_2026-01.csv")
    )
    alone_url = postgres_server.create(template=postgres_template)
    shared_url = postgres_server.create(template=postgres_template)
    contexts: list[Context] = []
    try:
        alone = Context.from_settings(Settings(database_url=alone_url))
        contexts.append(alone)
        replay(alone, table, batch_size=200, runner=RulesRunner())
        expected = _outcome(alone)
        # Two workers, each with its own runner and connections (two processes), sharing the
        # stream by sensor cluster as a partitioned broker would, ingesting at the same time.
        workers = [Context.from_settings(Settings(database_url=shared_url)) for _ in range(2)]
        contexts.extend(workers)
        with workers[0].database.transaction() as session:
            register_sensors(session, table.sensors)
        groups = sorted({str(s.get("group_id")) for s in table.sensors})
        assert len(groups) >= 2, groups
        mine = [
            {str(s["id"]) for s in table.sensors if groups.index(str(s.get("group_id"))) % 2 == n}
            for n in range(2)
        ]
        ordered = sorted(table.readings, key=lambda r: r.time_us)

        def work(n: int) -> int:
            runner = RulesRunner()
            readings = [r for r in ordered if r.sensor in mine[n]]
            for start in range(0, len(readings), 100):
                ingest(workers[n], readings[start : start + 100], runner=runner)
            return len(readings)

        threads = [_in_thread(lambda n=n: work(n)) for n in range(2)]
        for thread, _outcome_list in threads:
            thread.join(300)
        counts = [outcome[0] for _thread, outcome in threads]
        assert all(isinstance(c, int) and c > 0 for c in counts), counts
        flush_rules(workers[0], runner=RulesRunner())
        got = _outcome(workers[0])
    finally:
        for context in contexts:
            context.database.dispose()
        postgres_server.drop(alone_url)
        postgres_server.drop(shared_url)
    assert got[0] == expected[0] == len(table.readings)
    assert len(expected[1]) > 100 and expected[2]
    assert got[1] == expected[1]
    assert got[2] == expected[2]


def test_the_upgrade_splits_the_state_document_into_rows_and_back(
    database_url: str, tmp_path: Path
) -> None:
    runner = RulesRunner()
    reference = StreamingEvaluator(runner.rule_sets["air"], groups={"up-1": "north"})
    for r in [*_hourly("up-1", [30.0 + i % 7 for i in range(40)]), *_hourly("up-2", [5.0] * 3)]:
        reference.feed_value(r.sensor, r.quantity, r.time_us, r.value, r.unit)
    document = reference.state()
    assert document["groups"], "the fixture should have a group table too"
    database = Database(database_url)
    try:
        config = alembic_config(database, [str(p) for p in migration_locations()])
        command.downgrade(config, "operate_0005")
        with database.engine.begin() as connection:
            connection.execute(
                insert(_BLOBS).values(
                    rule_set="air",
                    state=document,
                    last_observation_id=0,
                    checkpoint_observation_id=0,
                    updated_at=datetime(2025, 12, 1, tzinfo=UTC),
                )
            )
        command.upgrade(config, "heads")
        context = Context.from_settings(Settings(database_url=database_url))
        with context.database.session() as session:
            rows = session.scalar(select(func.count()).select_from(DetectorRecord))
        assert rows == len(document["streams"]) + len(document["groups"])
        with context.database.transaction() as session:
            register_sensors(session, [{"id": "up-1", "group_id": "north"}])
        ingest(context, _hourly("up-1", [33.0], start=T0 + 40 * HOUR), runner=runner)
        reference.feed_value("up-1", "pm25", T0 + 40 * HOUR, 33.0, "ug/m3")
        resumed = RulesRunner()
        flush_rules(context, runner=resumed)  # loads every row
        reference.flush()
        assert resumed.evaluator("air").state() == reference.state()
        context.database.dispose()
        command.downgrade(config, "operate_0005")
        with database.engine.connect() as connection:
            joined = connection.scalar(select(_BLOBS.c.state).where(_BLOBS.c.rule_set == "air"))
        assert joined == reference.state()
        command.upgrade(config, "heads")
    finally:
        database.dispose()


def test_a_restarted_worker_preloads_its_own_records_and_reads_none_again(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A routed worker starting on a running city loads every record it evaluates (its sensors'
    streams and summation tables, its groups' tables) in one pass, each at its stored version,
    and none of the other worker's; its first batches then read no record again."""
    from qala.components.operate.routing import Router

    context = Context.from_settings(Settings(database_url=database_url))
    sensors = [{"id": f"p-{n}", "group_id": f"g{n % 8}"} for n in range(16)]  # g4-g7: worker 1
    with context.database.transaction() as session:
        register_sensors(session, sensors)
    readings = [r for s in sensors for r in _hourly(s["id"], [10.0, 30.0, 12.0])]
    ingest(context, readings, runner=RulesRunner())  # the records of a running city
    router = Router(1, 2)
    with context.database.session() as session:
        router.load(session)
        stored = {
            (r.rule_set, r.kind, r.subject, r.quantity): (r.version, r.state)
            for r in session.scalars(select(DetectorRecord))
        }
        restarted = RulesRunner()
        loaded = restarted.preload(session, router.owns_subject)
    mine = {k: v for k, v in stored.items() if router.owns_subject(k[2])}
    assert 0 < loaded == len(mine) < len(stored), (loaded, len(mine), len(stored))
    assert restarted._versions == {k: version for k, (version, _state) in mine.items()}
    for (name, kind, subject, quantity), (_version, state) in mine.items():
        assert restarted.evaluator(name).record(kind, subject, quantity) == state
    reads: list[int] = []
    original = RulesRunner._sync

    def counting(self: RulesRunner, session: Any, keys: Any, held: dict[Any, int]) -> None:
        keys = list(keys)
        reads.append(sum(1 for k in keys if self._versions.get(k) != held[k]))
        original(self, session, keys, held)

    monkeypatch.setattr(RulesRunner, "_sync", counting)
    owned = [s["id"] for s in sensors if router.owns_stream(s["id"])]
    later = [r for s in owned for r in _hourly(s, [11.0], start=T0 + 3 * HOUR)]
    assert ingest(context, later, runner=restarted).stored == len(owned)
    assert reads and sum(reads) == 0, reads
    context.database.dispose()
