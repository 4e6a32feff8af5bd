"""Bad messages and bad devices: validated before a batch, refused into the dead letters (MQTT) or
with a 422 naming item and field (HTTP); only transient database errors are retried."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session
from tests.components.operate.conftest import make_operator
from typer.testing import CliRunner

from qala.api.app import create_app
from qala.components.operate.dead_letters import Refusal, list_dead_letters
from qala.components.operate.ingest import RulesRunner, ingest, register_sensors
from qala.components.operate.models import Observation
from qala.components.operate.mqtt import MqttIngester
from qala.components.operate.readings import Reading, reading_problems
from qala.engines.detect import Finding
from qala.runtime import Context
from qala.settings import Settings
from qala.store.database import is_transient

T0 = 1_764_547_200_000_000  # 2025-12-01T00:00Z


def _observation(sensor: str, hour: int, **overrides: Any) -> dict[str, Any]:
    return {
        "sensor": sensor,
        "quantity": "pm25",
        "time_us": T0 + hour * 3_600_000_000,
        "value": 20.0 + hour,
        "unit": "ug/m3",
        **overrides,
    }


def _count(context: Context) -> int:
    with context.database.session() as session:
        return session.scalar(select(func.count()).select_from(Observation)) or 0


def test_reading_problems_name_the_field() -> None:
    now = T0 + 3_600_000_000

    def fields(reading: Reading) -> list[str]:
        return [name for name, _reason in reading_problems(reading, now_us=now)]

    assert fields(Reading("s", "pm25", T0, 35.0, "ug/m3")) == []
    assert fields(Reading("s", "pm25", T0, 0.035, "mg/m3")) == []  # converted, in range
    assert fields(Reading("s", "pm25", T0, 21.0, "degC")) == ["unit"]
    assert fields(Reading("s", "supply_temperature", T0, 95.0, "ug/m3")) == ["unit"]
    assert fields(Reading("s", "pm25", 0, 35.0, "ug/m3")) == ["time"]  # a reset clock: 1970
    assert fields(Reading("s", "pm25", now + 2 * 86_400_000_000, 35.0, "ug/m3")) == ["time"]
    assert fields(Reading("s", "pm25", T0, 5e7, "ug/m3")) == ["value"]
    assert fields(Reading("s", "supply_temperature", T0, 9000.0, "degC")) == ["value"]
    assert fields(Reading("x" * 300, "pm25", T0, 35.0, "ug/m3")) == ["sensor"]
    # A quantity without a default unit has no unit or range to check against.
    assert fields(Reading("s", "noise", T0, 65.0, "dB")) == []


def test_http_batch_is_refused_whole_naming_item_and_field(database_url: str) -> None:
    app = create_app(
        Settings(database_url=database_url, secret_key="t", operate_provisioning=False)
    )
    context: Context = app.state.context
    auth = {"Authorization": f"Bearer {make_operator(context)}"}
    with context.database.transaction() as session:
        register_sensors(session, [{"id": "known-1"}])
    body = {
        "observations": [
            _observation("known-1", 1),
            _observation("known-1", 2, unit="degC"),
            _observation("stranger", 3),
        ]
    }
    with TestClient(app) as client:
        refused = client.post("/api/v1/operate/observations", json=body, headers=auth)
        assert refused.status_code == 422
        problems = refused.json()["problems"]
        assert [(p["row"], p["column"]) for p in problems] == [(1, "unit"), (2, "sensor")]
        assert "does not measure pm25" in problems[0]["reason"]
        assert problems[1]["reason"] == "unknown sensor"
        assert _count(context) == 0  # all or nothing: the integrator fixes and resends
        good = {"observations": [_observation("known-1", 1)]}
        assert (
            client.post("/api/v1/operate/observations", json=good, headers=auth).json()["stored"]
            == 1
        )
    context.database.dispose()


def _message(topic: str, payload: Any, mid: int) -> mqtt.MQTTMessage:
    message = mqtt.MQTTMessage(mid=mid, topic=topic.encode())
    message.payload = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    message.qos = 1
    return message


class FailingRunner(RulesRunner):
    """Rules that fail on one sensor's readings: first ``transient`` times with a database
    error, then (if ``permanent``) for good."""

    def __init__(self, sensor: str, *, transient: int = 0, permanent: bool = False) -> None:
        super().__init__()
        self.sensor, self.transient, self.permanent = sensor, transient, permanent

    def evaluate(
        self,
        session: Session,
        rows: Sequence[tuple[int, str, str, int, float, str]],
        *,
        groups: dict[str, str],
        silence_at_us: int | None = None,
    ) -> list[Finding]:
        if any(row[1] == self.sensor for row in rows):
            if self.transient:
                self.transient -= 1
                raise OperationalError("SELECT 1", {}, Exception("database is locked"))
            if self.permanent:
                raise RuntimeError("a bug that fails every time")
        return super().evaluate(session, rows, groups=groups, silence_at_us=silence_at_us)


def test_a_batch_failing_for_good_is_retried_message_by_message(context: Context) -> None:
    ingester = MqttIngester(context, provisioning=True, runner=FailingRunner("bad", permanent=True))
    ingester._process(
        [
            _message("qala/observations/a", _observation("a", 1), 1),
            _message("qala/observations/bad", _observation("bad", 1), 2),
            _message("qala/observations/b", _observation("b", 1), 3),
            _message("qala/observations/c", b"{not json", 4),
        ]
    )
    assert _count(context) == 2
    with context.database.session() as session:
        letters = {d.sensor: d.reason for d in list_dead_letters(session)}
    assert set(letters) == {"bad", "c"}
    assert letters["bad"].startswith("could not be ingested: RuntimeError")
    assert letters["c"].startswith("not JSON")
    assert ingester.stats.dead_letters == 2 and ingester.stats.messages == 4


def test_transient_database_errors_are_retried_not_dead_lettered(context: Context) -> None:
    ingester = MqttIngester(context, provisioning=True, runner=FailingRunner("busy", transient=1))
    ingester._process([_message("qala/observations/busy", _observation("busy", 1), 1)])
    assert _count(context) == 1 and ingester.stats.dead_letters == 0
    assert "database is locked" in ingester.stats.errors[0]
    assert is_transient(OperationalError("x", {}, Exception("server closed the connection")))
    assert not is_transient(RuntimeError("bug"))


def test_unknown_sensors_are_dead_lettered_outside_provisioning_mode(context: Context) -> None:
    with context.database.transaction() as session:
        register_sensors(session, [{"id": "known-2"}])
    ingester = MqttIngester(context, provisioning=False)
    ingester._process(
        [
            _message("qala/observations/known-2", _observation("known-2", 1), 1),
            _message("qala/observations/fake", _observation("fake", 1), 2),
        ]
    )
    assert _count(context) == 1
    with context.database.session() as session:
        letters = list_dead_letters(session)
    assert [(d.sensor, d.reason) for d in letters] == [("fake", "unknown sensor")]


def test_statistics_keep_only_the_newest_entries(context: Context) -> None:
    ingester = MqttIngester(context)
    for i in range(1_000):
        ingester.stats.errors.append(f"error {i}")
    ingester.stats.latencies_us.extend(range(300_000))
    assert len(ingester.stats.errors) == 100 and ingester.stats.errors[-1] == "error 999"
    assert len(ingester.stats.latencies_us) == 100_000


def test_cli_lists_dead_letters_and_the_summary_counts_them(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from qala.cli.main import app

    monkeypatch.setenv("QALA_DATABASE_URL", sqlite_url)
    context = Context.from_settings(Settings(database_url=sqlite_url))
    refusal = Refusal("mqtt", "qala/observations/s9", "unit: degC", '{"unit": "degC"}', "s9")
    assert ingest(context, [], refusals=[refusal, refusal]).dead_letters == 1
    assert ingest(context, [], refusals=[refusal]).dead_letters == 0  # a redelivery: kept once
    runner = CliRunner()
    listed = runner.invoke(app, ["operate", "dead-letters", "--json"])
    assert listed.exit_code == 0, listed.output
    letters = json.loads(listed.stdout[listed.stdout.index("[") :])
    assert [(d["sensor"], d["reason"], d["channel"]) for d in letters] == [
        ("s9", "unit: degC", "mqtt")
    ]
    table = runner.invoke(app, ["operate", "dead-letters", "--sensor", "other"])
    assert table.exit_code == 0 and "s9" not in table.output
    from qala.components.operate.queries import summary

    with context.database.session() as session:
        assert summary(session, now=context.clock()).dead_letters == 1
    context.database.dispose()
