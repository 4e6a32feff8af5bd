"""One routed ingest worker's cost per one-reading MQTT message, in one process, no broker.

Many sensors each publishing their own reading (20,000 sensors every 10 s) are the dearest shape
of ingestion: every reading is its stream's only reading in its batch. This bench measures what a
routed worker (``--worker 1 --workers 2``) spends on them, without the broker and the publisher
sharing the cores: prepared MQTT messages (the publisher's payload, one reading each, for every
sensor, both workers' sensors) go through the ingester's own paho callback (``_on_message``: the
other worker's messages are acknowledged there) and its batches (``_process``: parse, route,
store, rules, soft state, commit) against a fresh PostgreSQL database.

The detector records start as a running city has them (``--seed-days`` of 10-second readings:
full windows, hourly means, a seasonal profile). Round 0 gives every sensor its first reading
here (loads those records, creates the ``Device`` entities), round 1 warms up; rounds 2 … are measured: the steady state of a running city. Each
round advances the data time by ``--period-s`` per sensor, and the runner's clock follows the
data time, so that the soft state (last seen, the entity's latest values; ``--soft-state-s``)
falls due as it would in real time: with 6 measured rounds of 10 s and a 60 s interval every
sensor's soft state is written once. Reported per 1,000 readings this
worker stored — which equals the whole cluster's cost per 1,000 readings, since every worker also
skips the others' messages: CPU of this process (the worker) and of its PostgreSQL backend, the
statements sent per batch by kind (counted at the driver: SQLAlchemy's and raw cursor calls),
and rows written per batch by table (``pg_stat_user_tables``). ``--profile FILE`` also writes a
cProfile of the measured rounds and prints its top entries.

    PYTHONPATH=src .venv/bin/python bench/operate_batch_profile.py [--sensors 20000]
        [--group-size 20] [--batch 200] [--rounds 8] [--workers 2] [--soft-state-s 1]
        [--profile /tmp/ingest.prof]
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import re
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
from sqlalchemy import NullPool, create_engine, text

sys.path.insert(0, str(Path(__file__).resolve().parent))
from operate_scale import cpu_seconds, make_database, register, sensor_name
from qala.components.operate.ingest import RulesRunner
from qala.components.operate.mqtt import MqttIngester
from qala.components.operate.routing import Router
from qala.runtime import Context
from qala.settings import Settings

START_US = 1_796_083_200_000_000  # 2026-12-01 00:00 UTC: every round stays within one hour
TABLES = (
    "operate_observation",
    "operate_detector_record",
    "operate_sensor",
    "operate_entity",
    "operate_observation_hourly",
    "operate_observation_daily",
    "operate_finding",
)


class AckCounter:
    """Stands in for the paho client: counts the acknowledgements the worker sends."""

    def __init__(self) -> None:
        self.acks = 0

    def ack(self, _mid: int, _qos: int) -> None:
        self.acks += 1


class StatementCounter:
    """Counts the statements sent through psycopg (SQLAlchemy's and raw cursors), by kind."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.active = False

    @staticmethod
    def kind(query: Any) -> str:
        sql = query if isinstance(query, str) else str(getattr(query, "as_string", str)(None))
        sql = re.sub(r"\s+", " ", sql).strip()
        words = sql.split(" ")
        verb = words[0].upper()
        if verb == "WITH":
            verb = "WITH " + " ".join(words[1:6])
        table = re.search(r"(?:FROM|INTO|UPDATE|JOIN) (\w+)", sql, re.IGNORECASE)
        return f"{verb[:60]} {table.group(1) if table else ''}".strip()

    def install(self) -> None:
        counter = self

        def wrap(name: str) -> None:
            original = getattr(psycopg.Cursor, name)

            def counted(cursor: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
                if counter.active:
                    label = counter.kind(query)
                    counter.counts[f"{name}: {label}"] += 1
                return original(cursor, query, *args, **kwargs)

            setattr(psycopg.Cursor, name, counted)

        for name in ("execute", "executemany", "copy"):
            wrap(name)


def message(sensor: str, round_: int, period_us: int) -> mqtt.MQTTMessage:
    """The benchmark publisher's one-reading payload for ``sensor`` in ``round_``."""
    time_us = START_US + round_ * period_us
    body = {
        "sensor": sensor,
        "sent_us": time_us,
        "observations": [
            {
                "id": f"{sensor}:{round_}:0:{time_us}",
                "quantity": "pm25",
                "time_us": time_us,
                "value": 18.0 + (round_ * 7) % 17 + (round_ % 5) * 0.1,
                "unit": "ug/m3",
            }
        ],
    }
    item = mqtt.MQTTMessage(mid=1, topic=f"qala/observations/{sensor}".encode())
    item.payload = json.dumps(body).encode()
    item.qos = 1
    return item


def seed_records(url: str, sensors: int, group_size: int, days: float) -> int:
    """Detector records as a running city has them: one group's 20 sensors fed ``days`` of
    10-second readings up to ``START_US`` (full windows, hourly means, seasonal profile; about
    3 KiB per stream), copied to every group. Returns the bytes of state per stream."""
    from qala.components.operate.ingest import default_rule_sets
    from qala.engines.detect import StreamingEvaluator

    size = group_size or sensors
    evaluator = StreamingEvaluator(default_rule_sets()["air"])
    members = [sensor_name(i) for i in range(size)]
    evaluator.groups = {name: "g-0000" for name in members} if group_size else {}
    steps = int(days * 8640)
    for k in range(steps, 0, -1):
        for i, name in enumerate(members):
            value = 18.0 + (k * 7 + i * 3) % 17 + (k % 5) * 0.1
            evaluator.feed_value(name, "pm25", START_US - k * 10_000_000, value, "ug/m3")
    state = evaluator.state()
    streams = {
        r.pop("sensor"): json.dumps({k: v for k, v in r.items() if k != "quantity"})
        for r in state["streams"]
    }
    groups = {
        r.pop("group"): json.dumps({k: v for k, v in r.items() if k != "quantity"})
        for r in state["groups"]
    }

    def rows() -> Iterator[tuple[str, str, str, str, str, int, str]]:
        stamp = "2026-12-01T00:00Z"
        for start in range(0, sensors, size):
            names = [sensor_name(start + i) for i in range(min(size, sensors - start))]
            for member, name in zip(members, names, strict=False):
                yield ("air", "stream", name, "pm25", streams[member], 1, stamp)
            group_state = groups.get("g-0000" if group_size else "all")
            if group_state is None:
                continue
            # The group's hour table names its members: give it this group's.
            renamed = json.loads(group_state)
            renamed["hours"] = {
                hour: dict(zip(names, cells.values(), strict=False))
                for hour, cells in renamed["hours"].items()
            }
            group = f"g-{start // size:04d}" if group_size else "all"
            yield ("air", "group", group, "pm25", json.dumps(renamed), 1, stamp)

    copy_sql = (
        "COPY operate_detector_record (rule_set, kind, subject, quantity, state, version,"
        " updated_at) FROM STDIN"
    )
    with (
        psycopg.connect(url.replace("postgresql+psycopg", "postgresql")) as connection,
        connection.cursor() as cursor,
        cursor.copy(copy_sql) as copy,
    ):
        for row in rows():
            copy.write_row(row)
    return len(streams[members[0]])


def table_writes(url: str) -> dict[str, tuple[int, int, int]]:
    """(inserted, updated, HOT-updated) rows per operate table so far."""
    engine = create_engine(url, poolclass=NullPool)
    with engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT relname, sum(n_tup_ins), sum(n_tup_upd), sum(n_tup_hot_upd)"
                " FROM pg_stat_user_tables WHERE relname LIKE 'operate_%' GROUP BY relname"
            )
        ).all()
    engine.dispose()
    writes: dict[str, tuple[int, int, int]] = {}
    for name, inserted, updated, hot in rows:
        base = re.sub(r"_(y\d{4}m\d{2}|default)$", "", name)  # partitions → their table
        before = writes.get(base, (0, 0, 0))
        writes[base] = (
            before[0] + int(inserted),
            before[1] + int(updated),
            before[2] + int(hot),
        )
    return writes


def backend_cpu(url: str) -> Callable[[], float]:
    engine = create_engine(url, poolclass=NullPool)
    with engine.connect() as connection:
        monitor = connection.scalar(text("SELECT pg_backend_pid()"))

    def total() -> float:
        with engine.connect() as connection:
            pids = connection.scalars(
                text(
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                    " AND pid <> pg_backend_pid() AND pid <> :monitor"
                ),
                {"monitor": monitor},
            ).all()
        return sum(cpu_seconds(pid) for pid in pids)

    return total


def run(args: argparse.Namespace) -> dict[str, Any]:
    url, drop = make_database()
    try:
        register(url, args.sensors, args.group_size)
        if args.fillfactor:
            engine = create_engine(url, poolclass=NullPool)
            with engine.begin() as connection:
                for table in args.fillfactor_tables.split(","):
                    connection.execute(
                        text(f"ALTER TABLE {table} SET (fillfactor = {int(args.fillfactor)})")
                    )
            engine.dispose()
        state_bytes = (
            seed_records(url, args.sensors, args.group_size, args.seed_days)
            if args.seed_days
            else 0
        )
        context = Context.from_settings(Settings(database_url=url))
        router = Router(1, args.workers)
        with context.database.session() as session:
            router.load(session)
        # The soft state falls due by the data's clock, as if the sensors published in real time:
        # a sensor reporting every 10 s with a 60 s interval is written once in six rounds.
        data_clock = [0.0]
        try:
            runner = RulesRunner(soft_state_every_s=args.soft_state_s, clock=lambda: data_clock[0])
        except TypeError:  # a runner without a clock (before 6 Dec 2026): the wall clock
            runner = RulesRunner(soft_state_every_s=args.soft_state_s)
        ingester = MqttIngester(
            context, router=router, runner=runner, batch_messages=args.batch, provisioning=False
        )
        acks = AckCounter()
        ingester._client = acks  # type: ignore[assignment]
        names = [sensor_name(s) for s in range(args.sensors)]
        period_us = int(args.period_s * 1_000_000)
        statements = StatementCounter()
        statements.install()
        backends = backend_cpu(url)
        profiler = cProfile.Profile() if args.profile else None

        rounds = [[message(name, r, period_us) for name in names] for r in range(args.rounds)]

        def feed(round_: int) -> None:
            messages = rounds[round_]
            on_message = ingester._on_message
            step = args.period_s / len(messages)
            for index, item in enumerate(messages):
                data_clock[0] = (round_ * len(messages) + index) * step
                on_message(acks, None, item)  # type: ignore[arg-type]
                if len(ingester._pending) >= args.batch:
                    ingester._process(ingester._take_batch())
            while ingester._pending:
                ingester._process(ingester._take_batch())

        for round_ in range(2):
            feed(round_)
        time.sleep(1.5)  # the table statistics reach pg_stat_user_tables within a second
        writes_before = table_writes(url)
        stored_before, batches_before = ingester.stats.stored, ingester.stats.batches
        cpu_before, pg_before = time.process_time(), backends()
        statements.active = True
        if profiler is not None:
            profiler.enable()
        for round_ in range(2, args.rounds):
            feed(round_)
        if profiler is not None:
            profiler.disable()
        statements.active = False
        worker_s, pg_s = time.process_time() - cpu_before, backends() - pg_before
        stored = ingester.stats.stored - stored_before
        batches = ingester.stats.batches - batches_before
        time.sleep(1.5)
        writes_after = table_writes(url)
        context.database.dispose()
    finally:
        drop()
    per_batch = {k: round(v / batches, 2) for k, v in statements.counts.most_common()}
    rows = {
        table: tuple(
            round((after[i] - writes_before.get(table, (0, 0, 0))[i]) / batches, 1)
            for i in range(3)
        )
        for table, after in sorted(writes_after.items())
        if table in TABLES
    }
    record = {
        "sensors": args.sensors,
        "workers": args.workers,
        "batch": args.batch,
        "soft_state_s": args.soft_state_s,
        "measured_rounds": args.rounds - 2,
        "stream_state_bytes": state_bytes,
        "stored": stored,
        "batches": batches,
        "readings_per_batch": round(stored / batches, 1),
        "worker_ms_per_1000": round(worker_s / stored * 1e6, 1),
        "postgres_ms_per_1000": round(pg_s / stored * 1e6, 1),
        "statements_per_batch": per_batch,
        "rows_per_batch_ins_upd_hot": rows,
        "load": os.getloadavg()[0],
    }
    if profiler is not None:
        profiler.dump_stats(args.profile)
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sensors", type=int, default=20_000)
    parser.add_argument("--group-size", type=int, default=20)
    parser.add_argument("--batch", type=int, default=200, help="MQTT messages per batch at most")
    parser.add_argument(
        "--rounds", type=int, default=8, help="rounds in all; the first two warm up"
    )
    parser.add_argument("--workers", type=int, default=2, help="this is worker 1 of them")
    parser.add_argument("--period-s", type=float, default=10.0, help="data time between rounds")
    parser.add_argument("--soft-state-s", type=float, default=None, help="default: the CLI's")
    parser.add_argument(
        "--seed-days", type=float, default=2.0, help="detector records of this history (0: none)"
    )
    parser.add_argument(
        "--fillfactor",
        type=int,
        default=0,
        help="set this fill factor on --fillfactor-tables first (100: as before operate_0010)",
    )
    parser.add_argument(
        "--fillfactor-tables",
        default="operate_detector_record,operate_observation_hourly,operate_observation_daily",
    )
    parser.add_argument("--profile", help="write a cProfile of the measured rounds here")
    args = parser.parse_args()
    if args.soft_state_s is None:
        import inspect

        from qala.cli.operate import ingest_mqtt

        default = inspect.signature(ingest_mqtt).parameters["soft_state_s"].default
        args.soft_state_s = float(default)
    load_before = os.getloadavg()[0]
    record = run(args)
    record["load_before"] = load_before
    print(json.dumps(record, indent=1))
    if args.profile:
        pstats.Stats(args.profile).sort_stats("tottime").print_stats(25)
        pstats.Stats(args.profile).sort_stats("cumulative").print_stats(40)


if __name__ == "__main__":
    main()
