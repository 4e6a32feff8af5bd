"""Two ingest workers each owning their sensors (``--worker N --workers 2``, operate/routing.py)
take the whole Astana AirData.kz replay from a real Mosquitto at once, one worker killed with
SIGKILL mid-stream and restarted, and end exactly where one ingester replaying the same readings
in order does: every reading stored once, the same findings and the same incidents.

With an MQTT 5 shared subscription instead (the workers' former mode) the broker spreads one
sensor's readings over both workers; published as fast as here, a worker commits a stream's later
reading before the other commits an earlier one, and the findings differ."""

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

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import NullPool, create_engine, func, select
from tests.components.operate.conftest import shipped_broker
from tests.components.operate.test_detector_records import _outcome
from tests.conftest import shared_file

from qala.components.operate.ingest import RulesRunner, flush_rules, register_sensors
from qala.components.operate.models import Observation
from qala.components.operate.replay import read_observations, replay
from qala.components.operate.routing import Router, partition_of
from qala.runtime import Context
from qala.settings import Settings

ROOT = Path(__file__).resolve().parents[3]


def test_the_owner_of_a_key_is_the_same_everywhere_and_spreads_keys() -> None:
    # CRC-32, not Python's salted hash(): every process and machine agrees.
    assert partition_of("Central", 2) == partition_of("Central", 2)
    owners = [partition_of(f"group-{n}", 4) for n in range(400)]
    assert set(owners) == {1, 2, 3, 4}
    assert min(owners.count(w) for w in range(1, 5)) > 60
    router = Router(1, 2)
    router.keys.update({"a": "g1", "b": "g1", "c": "c"})
    assert router.owner("a") == router.owner("b") == partition_of("g1", 2)  # a group: one worker
    assert router.owner("c") == partition_of("c", 2)
    assert router.owner("unknown") is None
    with pytest.raises(ValueError):
        Router(3, 2)


def _count(url: str, sensors: set[str] | None = None) -> int:
    engine = create_engine(url, poolclass=NullPool)
    query = select(func.count()).select_from(Observation)
    if sensors is not None:
        query = query.where(Observation.sensor.in_(sorted(sensors)))
    try:
        with engine.connect() as connection:
            return int(connection.scalar(query) or 0)
    finally:
        engine.dispose()


@pytest.mark.postgres
@pytest.mark.shared
@pytest.mark.mqtt
@pytest.mark.slow
def test_routed_workers_on_the_astana_replay_end_where_one_does_across_a_kill(
    postgres_server: Any, postgres_template: str, tmp_path: Path
) -> None:
    if subprocess.run(["which", "mosquitto"], capture_output=True).returncode != 0:
        pytest.skip("mosquitto is not installed (apt-get install -y mosquitto)")
    table = read_observations(
        shared_file("sensors/airdatakz_astana_pm25_hourly_2025-12_2026-01.csv")
    )
    ordered = sorted(table.readings, key=lambda r: (r.time_us, r.sensor))
    groups = {str(s["id"]): str(s.get("group_id")) for s in table.sensors}
    assert {partition_of(g, 2) for g in groups.values()} == {1, 2}  # both workers get work
    # The worker killed is the one with more to do; it dies a quarter into its own readings.
    owned = {n: {s for s, g in groups.items() if partition_of(g, 2) == n} for n in (1, 2)}
    victim = max((1, 2), key=lambda n: sum(r.sensor in owned[n] for r in ordered))
    other = 3 - victim
    victim_total = sum(r.sensor in owned[victim] for r in ordered)
    alone_url = postgres_server.create(template=postgres_template)
    routed_url = postgres_server.create(template=postgres_template)
    broker = shipped_broker(tmp_path, anonymous=True)
    broker.start()
    port = broker.port
    workers: dict[int, subprocess.Popen[bytes]] = {}
    try:
        alone = Context.from_settings(Settings(database_url=alone_url))
        replay(alone, table, batch_size=200, runner=RulesRunner())
        expected = _outcome(alone)
        alone.database.dispose()

        routed = Context.from_settings(Settings(database_url=routed_url))
        with routed.database.transaction() as session:
            register_sensors(session, table.sensors)
        routed.database.dispose()
        prefix = f"r{uuid.uuid4().hex[:8]}"
        env = {
            **os.environ,
            "QALA_DATABASE_URL": routed_url,
            "QALA_MQTT_HOST": "127.0.0.1",
            "QALA_MQTT_PORT": str(port),
            "QALA_MQTT_TOPIC_PREFIX": prefix,
            "PYTHONPATH": os.pathsep.join(
                [str(ROOT / "src"), *filter(None, [os.environ.get("PYTHONPATH")])]
            ),
        }
        logs = {n: tmp_path / f"worker{n}.log" for n in (1, 2)}

        def start(n: int) -> None:
            before = logs[n].read_text().count("ingesting from") if logs[n].exists() else 0
            command = [
                *(sys.executable, "-m", "qala.cli.main", "operate", "ingest-mqtt"),
                *("--client-id", f"qala-{prefix}", "--worker", str(n), "--workers", "2"),
                *("--batch", "50", "--max-delay-ms", "20", "--silence-every-s", "0"),
            ]
            workers[n] = subprocess.Popen(
                command, env=env, stdout=logs[n].open("a"), stderr=subprocess.STDOUT
            )
            deadline = time.monotonic() + 90
            while logs[n].read_text().count("ingesting from") <= before:
                assert time.monotonic() < deadline and workers[n].poll() is None, logs[
                    n
                ].read_text()[-3000:]
                time.sleep(0.1)

        for n in (1, 2):
            start(n)
        assert all("routed to worker" in logs[n].read_text() for n in (1, 2))
        # The whole replay as fast as the broker takes it, one reading a message, in time order
        # (the order sensors report in): each worker gets a backlog of its sensors at once.
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="", protocol=mqtt.MQTTv5)
        client.max_inflight_messages_set(1000)
        client.max_queued_messages_set(0)
        client.connect("127.0.0.1", port)
        client.loop_start()
        infos = []
        for r in ordered:
            body = {
                "sensor": r.sensor,
                "quantity": r.quantity,
                "time_us": r.time_us,
                "value": r.value,
                "unit": r.unit,
                "id": r.message_id or f"{r.sensor}@{r.time_us}",
            }
            infos.append(
                client.publish(f"{prefix}/observations/{r.sensor}", json.dumps(body), qos=1)
            )
        # A worker killed mid-stream: what it held unacknowledged, and what comes meanwhile,
        # waits in its persistent session.
        deadline = time.monotonic() + 120
        while _count(routed_url, owned[victim]) < victim_total // 4:
            assert time.monotonic() < deadline, "nothing stored"
            time.sleep(0.02)
        workers[victim].send_signal(signal.SIGKILL)
        workers[victim].wait(10)
        at_kill = _count(routed_url, owned[victim])
        for info in infos:
            info.wait_for_publish(timeout=60)
        client.disconnect()
        client.loop_stop()
        time.sleep(1.0)
        start(victim)
        deadline = time.monotonic() + 300
        while _count(routed_url) < len(ordered):
            assert time.monotonic() < deadline, f"{_count(routed_url)} of {len(ordered)} stored"
            time.sleep(0.2)
        for n in (1, 2):
            workers[n].send_signal(signal.SIGTERM)
        stats = {}
        for n in (1, 2):
            workers[n].wait(60)
            text = logs[n].read_text()
            stats[n] = json.loads(text[text.rindex("stopped: ") + len("stopped: ") :].strip())
        routed = Context.from_settings(Settings(database_url=routed_url))
        flush_rules(routed, runner=RulesRunner())
        got = _outcome(routed)
        routed.database.dispose()
    finally:
        for process in workers.values():
            if process.poll() is None:
                process.kill()
                process.wait(10)
        broker.stop()
        postgres_server.drop(alone_url)
        postgres_server.drop(routed_url)
    assert victim_total // 4 <= at_kill < victim_total, (at_kill, victim_total)
    # Each worker read every message and evaluated only its own sensors' (the killed worker's
    # figures are of its second life only).
    assert stats[other]["messages"] + stats[other]["routed_elsewhere"] == len(ordered)
    assert stats[other]["observations"] == len(ordered) - victim_total
    assert 0 < stats[victim]["observations"] <= victim_total - at_kill + 2_000
    assert got[0] == expected[0] == len(ordered)  # stored once each: none lost, none twice
    assert len(expected[1]) > 100 and expected[2]
    assert got[1] == expected[1], "findings differ from one ingester's"
    assert got[2] == expected[2], "incidents differ from one ingester's"
