"""No loss across outages: sensors publish at 500 readings/s to Mosquitto configured as shipped
(deploy/mosquitto) while the ingester is killed with SIGKILL and restarted, and while PostgreSQL
drops its connections (pg_terminate_backend); every reading the broker acknowledged is stored
exactly once. The HTTP batch route is driven the same way."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import NullPool, create_engine, func, select, text
from tests.components.operate.conftest import INGESTER, OperateApp, PrivateBroker

from qala.components.operate.devices import password_file, provision_device
from qala.components.operate.models import Observation
from qala.runtime import Context
from qala.settings import Settings

pytestmark = [pytest.mark.mqtt, pytest.mark.slow]

DEVICES = 10
RATE = 500.0  # readings (one per message) per second, over all devices
START_US = 1_764_547_200_000_000


class Counter:
    """Counts and lists the stored readings through its own unpooled connections, which a
    terminated backend cannot break for the next query."""

    def __init__(self, url: str) -> None:
        self.engine = create_engine(url, poolclass=NullPool)

    def ids(self) -> list[str]:
        with self.engine.connect() as connection:
            return list(connection.scalars(select(Observation.message_id)))

    def count(self) -> int:
        for _attempt in range(5):
            try:
                with self.engine.connect() as connection:
                    return int(
                        connection.scalar(select(func.count()).select_from(Observation)) or 0
                    )
            except Exception:
                time.sleep(0.2)
        raise AssertionError("the store did not answer a count five times in a row")

    def terminate_others(self) -> int:
        """Break every other connection to this database, as a failover or restart does."""
        with self.engine.connect() as connection:
            killed = connection.execute(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            ).scalar_one()
            connection.commit()
        return int(killed)


class Publisher(threading.Thread):
    """DEVICES devices, each with its own broker login, publishing one reading per message with
    QoS 1 at RATE in all; ``acknowledged`` holds the ids of the readings the broker PUBACKed."""

    def __init__(self, port: int, logins: list[tuple[str, str]], seconds: float) -> None:
        super().__init__(daemon=True)
        self.port, self.logins, self.seconds = port, logins, seconds
        self.acknowledged: set[str] = set()
        self.published = 0
        self.problems: list[str] = []

    def run(self) -> None:
        clients = []
        for user, password in self.logins:
            client = mqtt.Client(
                CallbackAPIVersion.VERSION2, client_id=f"pub-{user}", protocol=mqtt.MQTTv5
            )
            client.username_pw_set(user, password)
            client.max_inflight_messages_set(1000)
            client.max_queued_messages_set(0)
            client.connect("127.0.0.1", self.port)
            client.loop_start()
            clients.append(client)
        total = int(RATE * self.seconds)
        began = time.perf_counter()
        infos = []
        for k in range(total):
            pause = began + k / RATE - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            index = k % len(clients)
            user = self.logins[index][0]
            reading_id = f"{user}-{k}"
            body = {
                "id": reading_id,
                "quantity": "pm25",
                "time_us": START_US + k * 1_000_000,
                "value": 20.0 + k % 11,
                "unit": "ug/m3",
            }
            info = clients[index].publish(f"qala/observations/{user}", json.dumps(body), qos=1)
            infos.append((reading_id, info))
            self.published += 1
        for reading_id, info in infos:  # PUBACKed: the broker has accepted the reading
            try:
                info.wait_for_publish(30)
            except Exception as exc:
                self.problems.append(repr(exc))
            if info.is_published():
                self.acknowledged.add(reading_id)
        for client in clients:
            client.disconnect()
            client.loop_stop()


def _wait_for(predicate: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


@pytest.mark.parametrize("down_s", [10, pytest.param(60, id="60s")])
def test_no_acknowledged_reading_is_lost_across_a_kill_and_database_failures(
    database_url: str, private_broker: PrivateBroker, tmp_path: Path, down_s: int
) -> None:
    postgres = database_url.startswith("postgresql")
    if down_s == 60 and not postgres:
        pytest.skip("the minute-long outage runs once, on PostgreSQL")
    context = Context.from_settings(Settings(database_url=database_url))
    logins = []
    with context.database.transaction() as session:
        for d in range(DEVICES):
            device = provision_device(session, f"out-{d:02d}", topic_prefix="qala")
            logins.append((device.username, device.password))
        private_broker.passwords.write_text(
            password_file(session, services=dict([INGESTER])), encoding="utf-8"
        )
    context.database.dispose()
    private_broker.start()
    env = {
        **os.environ,
        "QALA_DATABASE_URL": database_url,
        "QALA_MQTT_PORT": str(private_broker.port),
        "QALA_MQTT_USERNAME": INGESTER[0],
        "QALA_MQTT_PASSWORD": INGESTER[1],
    }
    command = [sys.executable, "-m", "qala.cli.main", "operate", "ingest-mqtt"]
    log_path = tmp_path / "ingester.log"
    log = log_path.open("w")
    counter = Counter(database_url)
    processes: list[subprocess.Popen[bytes]] = []

    def start_ingester() -> None:
        processes.append(subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT))
        assert _wait_for(lambda: log_path.read_text().count("ingesting from") == len(processes), 60)

    terminated = 0
    publisher = Publisher(private_broker.port, logins, seconds=down_s + 12)
    try:
        start_ingester()
        publisher.start()
        assert _wait_for(lambda: counter.count() >= 500, 30), log_path.read_text()
        processes[-1].send_signal(signal.SIGKILL)
        processes[-1].wait(10)
        at_kill = counter.count()
        time.sleep(down_s)
        assert counter.count() == at_kill  # nobody ingested meanwhile: the broker held it all
        start_ingester()
        # Break the restarted ingester's connections while it drains the backlog and the live
        # stream, a few times.
        for _round in range(4 if postgres else 0):
            time.sleep(1.5)
            terminated += counter.terminate_others()
        publisher.join(down_s + 60)
        assert not publisher.is_alive() and not publisher.problems, publisher.problems
        expected = len(publisher.acknowledged)
        assert expected == publisher.published  # the broker accepted every message
        assert _wait_for(lambda: counter.count() >= expected, 120), (
            f"{counter.count()} of {expected} stored; log:\n{log_path.read_text()[-3000:]}"
        )
        time.sleep(1.0)  # redeliveries still on their way must add nothing
        stored = counter.ids()
    finally:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                process.wait(30)
        log.close()
        counter.engine.dispose()
    assert len(stored) == len(set(stored)) == expected
    assert set(stored) == publisher.acknowledged
    if postgres:
        assert terminated >= 4, "the database outage did not happen"
        # ...and the ingester met it, waited and carried on.
        assert "database failed, retrying" in log_path.read_text()


def test_http_batches_survive_database_failures(operate_app: OperateApp) -> None:
    """Batches POSTed while PostgreSQL drops connections: the failing ones answer 503 with
    Retry-After (not 500); the client resends them, and every reading is stored exactly once."""
    context = operate_app.context
    if context.database.backend != "postgresql":
        pytest.skip("connections are broken on PostgreSQL")
    from qala.components.operate.ingest import register_sensors

    with context.database.transaction() as session:
        register_sensors(session, [{"id": f"http-{d}"} for d in range(DEVICES)])
    counter = Counter(context.database.url)
    stop = threading.Event()
    terminated = [0]

    def breaker() -> None:
        while not stop.wait(0.3):
            terminated[0] += counter.terminate_others()

    thread = threading.Thread(target=breaker, daemon=True)
    answers: dict[int, int] = {}
    sent = set()
    thread.start()
    try:
        for batch in range(120):
            items = [
                {
                    "id": f"h-{batch}-{i}",
                    "sensor": f"http-{i % DEVICES}",
                    "quantity": "pm25",
                    "time_us": START_US + (batch * 50 + i) * 1_000_000,
                    "value": 15.0 + i % 9,
                    "unit": "ug/m3",
                }
                for i in range(50)
            ]
            for _attempt in range(30):
                response = operate_app.client.post(
                    "/api/v1/operate/observations", json=items, headers=operate_app.auth
                )
                answers[response.status_code] = answers.get(response.status_code, 0) + 1
                if response.status_code < 500:
                    break
                assert response.status_code == 503, response.text
                assert int(response.headers["Retry-After"]) >= 1
            assert response.status_code in (200, 201), response.text
            sent.update(item["id"] for item in items)
    finally:
        stop.set()
        thread.join(5)
    stored = counter.ids()
    counter.engine.dispose()
    assert terminated[0] > 0 and answers.get(503, 0) > 0, answers
    assert len(stored) == len(set(stored)) == len(sent) == 6000
    assert set(stored) == sent
