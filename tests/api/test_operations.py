"""Operations endpoints: /healthz (alive), /readyz (database reachable and migrated, broker
connected), /metrics (Prometheus text, not public)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text
from tests.conftest import unreachable_postgres_url

from qala.api.app import create_app
from qala.runtime import Context
from qala.settings import Settings


def _samples(body: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(body)
        for sample in family.samples
    }


@pytest.fixture
def app_with_token(database_url: str) -> Iterator[tuple[TestClient, Context]]:
    app = create_app(Settings(database_url=database_url, secret_key="t", metrics_token="scrape"))
    with TestClient(app) as client:
        yield client, app.state.context
    app.state.context.database.dispose()


def test_metrics_count_requests_by_route_template_and_ingestion(
    app_with_token: tuple[TestClient, Context],
) -> None:
    client, context = app_with_token
    from tests.components.operate.conftest import make_operator

    from qala.components.operate.ingest import register_sensors

    auth = {"Authorization": f"Bearer {make_operator(context)}"}
    with context.database.transaction() as session:
        register_sensors(session, [{"id": "m-1"}])
    for incident in (1, 2, 3):
        client.get(f"/api/v1/operate/incidents/{incident}", headers=auth)
    posted = client.post(
        "/api/v1/operate/observations",
        json=[
            {"sensor": "m-1", "quantity": "pm25", "time_us": 1_764_547_200_000_000 + i, "value": 9}
            for i in range(3)
        ],
        headers=auth,
    )
    assert posted.status_code in (200, 201), posted.text
    from qala.components.operate.subscriptions import notifier_for

    notifier_for(context).drain()  # the sensor's entity changed: its outbox row is done with
    # Without the token — and the test client is no loopback peer — nothing is shown.
    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 404
    answer = client.get("/metrics", headers={"Authorization": "Bearer scrape"})
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples = _samples(answer.text)
    template = "/api/v1/operate/incidents/{incident_id}"
    assert (
        samples[
            (
                "qala_http_requests_total",
                (("method", "GET"), ("route", template), ("status", "404")),
            )
        ]
        == 3
    )
    assert not any("/incidents/1" in str(key) for key in samples)  # raw paths never become labels
    count = ("qala_http_request_duration_seconds_count", (("method", "GET"), ("route", template)))
    assert samples[count] == 3
    key = ("qala_ingest_readings_total", (("channel", "http"), ("outcome", "stored")))
    assert samples[key] == 3
    assert ("qala_ingest_pending_messages", ()) not in samples  # no ingester in this process
    assert samples[("qala_dead_letters_stored", ())] == 0
    assert samples[("qala_notifications_pending", ())] == 0


def test_ingest_counters_and_dead_letters(app_with_token: tuple[TestClient, Context]) -> None:
    client, context = app_with_token
    from qala.components.operate.dead_letters import Refusal
    from qala.components.operate.ingest import ingest, register_sensors
    from qala.components.operate.readings import Reading

    with context.database.transaction() as session:
        register_sensors(session, [{"id": "c-1"}])
    readings = [Reading("c-1", "pm25", 1_764_547_200_000_000 + i, 10.0, "ug/m3") for i in range(5)]
    refusal = Refusal("mqtt", "qala/observations/c-1", "unit degC", "{}", sensor="c-1", key="0")
    ingest(context, readings, channel="mqtt", refusals=[refusal])
    ingest(context, readings, channel="mqtt")
    samples = _samples(client.get("/metrics", headers={"Authorization": "Bearer scrape"}).text)
    assert (
        samples[("qala_ingest_readings_total", (("channel", "mqtt"), ("outcome", "stored")))] == 5
    )
    assert (
        samples[("qala_ingest_readings_total", (("channel", "mqtt"), ("outcome", "duplicate")))]
        == 5
    )
    assert samples[("qala_ingest_dead_letters_total", (("channel", "mqtt"),))] == 1
    assert samples[("qala_ingest_batch_duration_seconds_count", (("channel", "mqtt"),))] == 2
    assert samples[("qala_dead_letters_stored", ())] == 1


def test_readyz_tells_ready_from_alive(sqlite_url: str, tmp_path: Path) -> None:
    app = create_app(Settings(database_url=sqlite_url, secret_key="t"))
    context: Context = app.state.context
    with TestClient(app) as client:
        assert client.get("/healthz").json()["status"] == "ok"
        ready = client.get("/readyz")
        assert ready.status_code == 200 and ready.json() == {
            "ready": True,
            "checks": {"database": "ok", "migrations": "ok"},
        }
        # A migration missing (an upgrade not run): not ready, and it says which.
        with context.database.engine.begin() as connection:
            heads = [
                r[0] for r in connection.execute(text("SELECT version_num FROM alembic_version"))
            ]
            connection.execute(
                text("DELETE FROM alembic_version WHERE version_num = :v"), {"v": heads[0]}
            )
        answer = client.get("/readyz")
        assert answer.status_code == 503 and answer.json()["checks"]["migrations"].startswith(
            "not applied"
        )
        with context.database.engine.begin() as connection:
            connection.execute(text("INSERT INTO alembic_version VALUES (:v)"), {"v": heads[0]})
        # A running ingester whose broker is gone.
        context.readiness_checks()["mqtt"] = lambda: False
        answer = client.get("/readyz")
        assert answer.status_code == 503
        assert answer.json()["checks"] == {
            "database": "ok",
            "migrations": "ok",
            "mqtt": "not connected",
        }
        assert client.get("/healthz").status_code == 200  # alive all the same
    context.database.dispose()


def test_readyz_answers_503_when_the_database_is_unreachable(tmp_path: Path) -> None:
    settings = Settings(database_url=unreachable_postgres_url(), secret_key="t")
    app = create_app(context=Context.from_settings(settings), migrate=False)
    with TestClient(app) as client:
        assert client.get("/healthz").status_code == 200
        answer = client.get("/readyz")
    assert answer.status_code == 503
    assert answer.json()["checks"]["database"].startswith("unreachable")


def test_metrics_answer_a_local_scraper_but_not_through_a_proxy(sqlite_url: str) -> None:
    """Without a token, a real loopback client reads /metrics; the same request carrying a
    proxy's X-Forwarded-For (someone outside, relayed by a local nginx) gets 404."""
    app = create_app(Settings(database_url=sqlite_url, secret_key="t"))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        base = f"http://127.0.0.1:{port}"
        local = httpx.get(f"{base}/metrics", timeout=10)
        assert local.status_code == 200 and "qala_http_requests_total" in local.text
        relayed = httpx.get(
            f"{base}/metrics", headers={"X-Forwarded-For": "203.0.113.9"}, timeout=10
        )
        assert relayed.status_code == 404
    finally:
        server.should_exit = True
        thread.join(10)
        app.state.context.database.dispose()


@pytest.mark.parametrize("opentelemetry", [False, True])
def test_fastapi_asks_for_opentelemetry_providers_only_when_qala_is_told_to(
    sqlite_url: str, opentelemetry: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Off by default: FastAPI then does not look up the tracer provider on every request (a
    tenth of a cached answer's CPU); on, traces go to whatever provider the process configured."""
    from opentelemetry import trace

    asked: list[int] = []
    provider = trace.get_tracer_provider()

    def tracer_provider() -> object:
        asked.append(1)
        return provider

    settings = Settings(database_url=sqlite_url, secret_key="t", opentelemetry=opentelemetry)
    app = create_app(settings, migrate=False)
    monkeypatch.setattr(trace, "get_tracer_provider", tracer_provider)
    with TestClient(app) as client:
        for _ in range(3):
            assert client.get("/healthz").status_code == 200
    assert bool(asked) is opentelemetry
