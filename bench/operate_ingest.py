"""Sustained ingestion of sensor observations on SQLite and PostgreSQL.

Two measurements per store:
1. **direct** — batches handed to ``ingest()`` (history kept, rules evaluated, incidents opened,
   one transaction per batch; COPY into a staging table on PostgreSQL);
2. **mqtt** — end to end: a publisher process sends QoS 1 messages (50 observations each) to
   Mosquitto at a fixed rate; Qala's ``MqttIngester`` stores them, evaluates the rules, commits and
   only then acknowledges. Latency = commit time − publish time (both on this machine's clock).

The peer, Orion-LD, is not runnable here (no container runtime); FIWARE's published load test
(2 CPUs: about 3,500 updates/s, 2,800/s with history via TRoE) is printed for reference only.

    .venv/bin/python bench/operate_ingest.py [--observations 100000] [--rate 8000] [--seconds 20]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from qala.components.operate.ingest import RulesRunner, ingest
from qala.components.operate.models import Observation
from qala.components.operate.readings import Reading
from qala.components.operate.simulator import stream
from qala.registry import prepare
from qala.runtime import Context
from qala.settings import Settings

POSTGRES_ADMIN = os.environ.get(
    "QALA_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
console = Console()


def make_database(backend: str) -> tuple[str, Any]:
    if backend == "sqlite":
        folder = tempfile.mkdtemp(prefix="qala-bench-")
        return f"sqlite:///{Path(folder) / 'bench.sqlite'}", None
    name = f"qala_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(POSTGRES_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(POSTGRES_ADMIN).set(database=name).render_as_string(hide_password=False)

    def drop() -> None:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return url, drop


def direct(context: Context, count: int, batch: int, sensors: int) -> dict[str, float]:
    rows = stream(
        sensors=sensors, seconds=count / 1000, rate_per_s=1000, start_us=1_764_547_200_000_000
    )
    readings = [
        Reading(str(r["sensor"]), "pm25", int(r["time_us"]), float(r["value"]), "ug/m3")
        for r in rows
    ]  # type: ignore[call-overload]
    runner = RulesRunner(soft_state_every_s=1.0)
    ingest(context, readings[:batch], runner=runner)  # warm-up: sensors registered, state created
    started = time.perf_counter()
    findings = 0
    for start in range(batch, len(readings), batch):
        findings += ingest(context, readings[start : start + batch], runner=runner).findings
    seconds = time.perf_counter() - started
    stored = len(readings) - batch
    return {
        "observations": stored,
        "seconds": seconds,
        "per_s": stored / seconds,
        "findings": findings,
    }


def _publisher(
    prefix: str, rate: float, seconds: float, sensors: int, per_message: int, start_us: int
) -> None:
    import paho.mqtt.client as mqtt

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.max_inflight_messages_set(2000)
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", 1883)
    client.loop_start()
    messages_per_s = rate / per_message
    total = int(messages_per_s * seconds)
    began = time.perf_counter()
    step_us = 60_000_000  # a reading per sensor per minute of simulated time
    counters = dict.fromkeys(range(sensors), 0)
    for k in range(total):
        due = began + k / messages_per_s
        pause = due - time.perf_counter()
        if pause > 0:
            time.sleep(pause)
        sensor = k % sensors
        base = counters[sensor]
        counters[sensor] += per_message
        body = {
            "sensor": f"mq-{sensor:04d}",
            "sent_us": time.time_ns() // 1000,
            "observations": [
                {
                    "quantity": "pm25",
                    "time_us": start_us + (base + i) * step_us,
                    "value": 25.0 + ((base + i) % 13),
                }
                for i in range(per_message)
            ],
        }
        client.publish(f"{prefix}/observations/mq-{sensor:04d}", json.dumps(body), qos=1)
    time.sleep(1.0)
    client.disconnect()
    client.loop_stop()


def mqtt_run(
    context: Context, rate: float, seconds: float, sensors: int, max_delay_s: float = 0.05
) -> dict[str, float]:
    from qala.components.operate.ingest import register_sensors
    from qala.components.operate.mqtt import MqttIngester

    prefix = f"bench{uuid.uuid4().hex[:6]}"
    per_message = 50
    with context.database.transaction() as session:  # unknown sensors would be dead letters
        register_sensors(session, [{"id": f"mq-{s:04d}"} for s in range(sensors)])
    ingester = MqttIngester(
        context,
        client_id=f"qala-bench-{prefix}",
        topic=f"{prefix}/observations/#",
        batch_messages=200,  # messages per transaction (x50 observations)
        max_delay_s=max_delay_s,
        runner=RulesRunner(soft_state_every_s=1.0),
    ).start()
    expected = int(rate / per_message * seconds) * per_message
    publisher = multiprocessing.Process(
        target=_publisher, args=(prefix, rate, seconds, sensors, per_message, 1_764_547_200_000_000)
    )
    started = time.perf_counter()
    publisher.start()
    deadline = started + seconds * 4 + 30
    while ingester.stats.stored < expected and time.perf_counter() < deadline:
        time.sleep(0.05)
    elapsed = time.perf_counter() - started
    publisher.join(30)
    ingester.stop()
    latencies = sorted(ingester.stats.latencies_us)
    with context.database.session() as session:
        stored = (
            session.scalar(
                select(func.count()).select_from(Observation).where(Observation.sensor.like("mq-%"))
            )
            or 0
        )

    def quantile(q: float) -> float:
        if not latencies:
            return float("nan")
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] / 1000

    return {
        "observations": stored,
        "expected": expected,
        "seconds": elapsed,
        "per_s": stored / elapsed,
        "p50_ms": quantile(0.5),
        "p95_ms": quantile(0.95),
        "p99_ms": quantile(0.99),
        "mean_ms": statistics.fmean(latencies) / 1000 if latencies else float("nan"),
        "batches": ingester.stats.batches,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--observations", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=5000)
    parser.add_argument("--sensors", type=int, default=200)
    parser.add_argument(
        "--rate", type=float, default=6000.0, help="MQTT publish rate, observations/s"
    )
    parser.add_argument("--seconds", type=float, default=20.0, help="MQTT publishing duration")
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--max-delay-ms", type=float, default=50.0, help="MQTT batch flush delay")
    args = parser.parse_args()
    results: dict[str, dict[str, dict[str, float]]] = {}
    load_before = os.getloadavg()[0]
    for backend in args.backends.split(","):
        url, drop = make_database(backend)
        context = Context.from_settings(Settings(database_url=url))
        try:
            prepare(context)
            console.print(
                f"[bold]{backend}[/]: direct ingestion of {args.observations:,} observations…"
            )
            results.setdefault(backend, {})["direct"] = direct(
                context, args.observations, args.batch, args.sensors
            )
            console.print(
                f"[bold]{backend}[/]: MQTT at {args.rate:,.0f} obs/s for {args.seconds:g} s…"
            )
            results[backend]["mqtt"] = mqtt_run(
                context, args.rate, args.seconds, args.sensors, args.max_delay_ms / 1000
            )
        finally:
            context.database.dispose()
            if drop is not None:
                drop()
    load_after = os.getloadavg()[0]
    table = Table(
        title=f"Operate ingestion, history kept, rules on ingest — {os.cpu_count()} CPUs, "
        f"load average {load_before:.1f} → {load_after:.1f} (other work on the machine skews figures)"
    )
    for column in (
        "store",
        "path",
        "observations",
        "obs/s",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "vs Orion-LD+history 2,800/s",
    ):
        table.add_column(column, justify="right")
    for backend, runs in results.items():
        for path, figures in runs.items():
            table.add_row(
                backend,
                path,
                f"{figures['observations']:,.0f}",
                f"{figures['per_s']:,.0f}",
                f"{figures.get('p50_ms', float('nan')):.1f}",
                f"{figures.get('p95_ms', float('nan')):.1f}",
                f"{figures.get('p99_ms', float('nan')):.1f}",
                f"{figures['per_s'] / 2800:.2f}×",
            )
    table.add_row(
        "Orion-LD (published)", "HTTP", "", "3,500 / 2,800 with history", "", "", "", "1.00×"
    )
    console.print(table)
    out = Path("bench/results")
    out.mkdir(parents=True, exist_ok=True)
    document = {"cpus": os.cpu_count(), "load": [load_before, load_after], "results": results}
    (out / "operate_ingest.json").write_text(json.dumps(document, indent=2))


if __name__ == "__main__":
    main()
