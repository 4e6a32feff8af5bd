"""Two ingester processes share the stream through the real Mosquitto (MQTT 5 shared
subscription ``$share/qala/…``): each takes part of the messages, every reading is stored once,
and the findings and incidents are those of one ingester given the same data — none doubled."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import NullPool, create_engine, func, select
from tests.components.operate.test_mqtt import _need_broker as _need_broker

from qala.components.operate.ingest import RulesRunner, flush_rules, ingest, register_sensors
from qala.components.operate.models import Finding, Incident, Observation
from qala.components.operate.mqtt import publish_readings
from qala.components.operate.readings import Reading
from qala.runtime import Context
from qala.settings import Settings

pytestmark = [pytest.mark.mqtt, pytest.mark.slow]

SENSORS = 12
PER_SENSOR = 120
START_US = 1_764_547_200_000_000


def _rows(prefix: str) -> list[dict[str, Any]]:
    """Hourly PM2.5: clean air, then a day far over the limits for every third sensor."""
    rows = []
    for s in range(SENSORS):
        for i in range(PER_SENSOR):
            polluted = s % 3 == 0 and 48 <= i < 72
            rows.append(
                {
                    "id": f"{prefix}-{s}-{i}",
                    "sensor": f"{prefix}-st{s:02d}",
                    "quantity": "pm25",
                    "time_us": START_US + i * 3_600_000_000,
                    "value": (420.0 + (i % 5) * 7) if polluted else 12.0 + (i * 7 + s) % 9,
                    "unit": "ug/m3",
                }
            )
    return rows


def _outcome(url: str) -> tuple[int, list[tuple[str, str, int]], list[tuple[str, str, int]]]:
    engine = create_engine(url, poolclass=NullPool)
    with engine.connect() as connection:
        stored = connection.scalar(select(func.count()).select_from(Observation)) or 0
        findings = sorted(
            (str(rule), str(sensor), int(n))
            for rule, sensor, n in connection.execute(
                select(Finding.rule_id, Finding.sensor, func.count()).group_by(
                    Finding.rule_id, Finding.sensor
                )
            )
        )
        incidents = sorted(
            (str(category), str(sensor), int(n))
            for category, sensor, n in connection.execute(
                select(Incident.category, Incident.sensor, func.count()).group_by(
                    Incident.category, Incident.sensor
                )
            )
        )
    engine.dispose()
    return int(stored), findings, incidents


@pytest.mark.postgres
def test_two_ingesters_share_the_stream_without_loss_or_double_counting(
    postgres_server: Any, postgres_template: str, tmp_path: Path
) -> None:
    prefix = f"s{uuid.uuid4().hex[:8]}"
    rows = _rows(prefix)
    sensors = [{"id": s} for s in sorted({str(r["sensor"]) for r in rows})]
    # What one ingester makes of the same data, readings in order, on a database of its own.
    alone_url = postgres_server.create(template=postgres_template)
    shared_url = postgres_server.create(template=postgres_template)
    try:
        alone = Context.from_settings(Settings(database_url=alone_url))
        with alone.database.transaction() as session:
            register_sensors(session, sensors)
        runner = RulesRunner()
        ordered = sorted(rows, key=lambda r: (r["time_us"], r["sensor"]))
        for start in range(0, len(ordered), 200):
            chunk = ordered[start : start + 200]
            ingest(
                alone,
                [
                    Reading(r["sensor"], "pm25", r["time_us"], r["value"], "ug/m3", r["id"])
                    for r in chunk
                ],
                runner=runner,
            )
        flush_rules(alone, runner=runner)
        alone.database.dispose()
        expected = _outcome(alone_url)

        shared = Context.from_settings(Settings(database_url=shared_url))
        with shared.database.transaction() as session:
            register_sensors(session, sensors)
        shared.database.dispose()
        env = {**os.environ, "QALA_DATABASE_URL": shared_url, "QALA_MQTT_TOPIC_PREFIX": prefix}
        logs = [tmp_path / f"worker{n}.log" for n in (1, 2)]
        workers = []
        for n, log in zip((1, 2), logs, strict=True):
            command = [
                *(sys.executable, "-m", "qala.cli.main", "operate", "ingest-mqtt"),
                *("--client-id", f"qala-{prefix}", "--worker", str(n), "--max-delay-ms", "20"),
            ]
            workers.append(
                subprocess.Popen(command, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)
            )
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not all(
                "ingesting from" in log.read_text() for log in logs
            ):
                time.sleep(0.1)
            assert all("$share/qala/" in log.read_text() for log in logs), [
                log.read_text() for log in logs
            ]
            # Hour by hour, every sensor's reading for that hour: the order a city's stream has.
            # A sensor's next reading comes an hour later, long after the workers stored this
            # one (a batch takes milliseconds): the next hour is published once this one is in.
            # Both workers share each hour's messages; one stream's readings are never
            # evaluated out of order (the engine would ignore the earlier one as late).
            counter = create_engine(shared_url, poolclass=NullPool)
            count = select(func.count()).select_from(Observation)
            try:
                for hour in range(PER_SENSOR):
                    publish_readings(
                        [r for r in ordered if r["time_us"] == START_US + hour * 3_600_000_000],
                        topic_prefix=prefix,
                    )
                    deadline = time.monotonic() + 30
                    while time.monotonic() < deadline:
                        with counter.connect() as connection:
                            if (connection.scalar(count) or 0) >= (hour + 1) * SENSORS:
                                break
                        time.sleep(0.02)
            finally:
                counter.dispose()
        finally:
            for worker in workers:
                worker.send_signal(signal.SIGTERM)
            for worker in workers:
                worker.wait(30)
        taken = []
        for log in logs:
            text = log.read_text()
            stats = json.loads(text[text.index("stopped: ") + len("stopped: ") :].strip())
            taken.append(stats["messages"])
        shared_context = Context.from_settings(Settings(database_url=shared_url))
        flush_rules(shared_context)
        shared_context.database.dispose()
        outcome = _outcome(shared_url)
    finally:
        postgres_server.drop(alone_url)
        postgres_server.drop(shared_url)
    assert all(n > 0 for n in taken), f"one ingester took every message: {taken}"
    assert sum(taken) == len(rows)
    stored, findings, incidents = outcome
    assert stored == len(rows)
    assert incidents == expected[2], "incidents differ from one ingester's"
    assert findings == expected[1], "findings differ from one ingester's"
    polluted = {f"{prefix}-st{s:02d}" for s in range(0, SENSORS, 3)}
    assert {sensor for category, sensor, _n in incidents if category == "air_quality"} == polluted
    assert all(n == 1 for _c, _s, n in incidents)
