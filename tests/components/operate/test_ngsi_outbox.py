"""NGSI-LD notifications survive a crash and a failed endpoint (issues #20, #21): each write
stages its changes in the notification outbox in its own transaction; the notifier sends them,
retries failed deliveries, and several processes share the rows without sending one twice
(on SQLite as on PostgreSQL)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from qala.api.app import create_app
from qala.settings import Settings

OperateApp = Any  # fixture from this folder's conftest

BASE = "/ngsi-ld/v1"
SRC = Path(__file__).parents[3] / "src"


class Receiver:
    """An HTTP endpoint on a fixed loopback port that can be down (nothing listens) or up."""

    def __init__(self, delay_s: float = 0.0) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = int(sock.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}/notify"
        self.received: list[dict[str, Any]] = []
        self.delay_s = delay_s
        self._server: ThreadingHTTPServer | None = None

    def up(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", 0))
                body = json.loads(self.rfile.read(length))
                time.sleep(receiver.delay_s)
                receiver.received.append(body)
                self.send_response(204)
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def down(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def entity_ids(self) -> list[str]:
        return [entity["id"] for body in self.received for entity in body["data"]]

    def wait_for(self, count: int, timeout_s: float = 15.0) -> list[str]:
        deadline = time.monotonic() + timeout_s
        while len(self.entity_ids()) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.entity_ids()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    endpoint = Receiver()
    yield endpoint
    endpoint.down()


def subscribe(app: OperateApp, url: str) -> None:
    body = {
        "id": "urn:ngsi-ld:Subscription:outbox",
        "type": "Subscription",
        "entities": [{"type": "Building"}],
        "notification": {"endpoint": {"uri": url, "accept": "application/json"}},
    }
    answer = app.client.post(f"{BASE}/subscriptions", json=body, headers=app.auth)
    assert answer.status_code == 201, answer.text


def building(suffix: str) -> dict[str, Any]:
    return {
        "id": f"urn:ngsi-ld:Building:{suffix}",
        "type": "Building",
        "name": {"type": "Property", "value": f"Building {suffix}"},
    }


def outbox_rows(app: OperateApp) -> list[Any]:
    from sqlalchemy import select

    from qala.components.operate.models import NotificationOutbox

    with app.context.database.session() as session:
        return list(session.scalars(select(NotificationOutbox)))


def subscription_shown(app: OperateApp) -> dict[str, Any]:
    answer = app.client.get(
        f"{BASE}/subscriptions/urn:ngsi-ld:Subscription:outbox", headers=app.auth
    )
    return dict(answer.json()["notification"])


def test_a_change_made_while_the_endpoint_is_down_is_delivered_once_it_is_up(
    operate_app: OperateApp, receiver: Receiver
) -> None:
    from qala.components.operate.subscriptions import notifier_for

    notifier = notifier_for(operate_app.context)
    notifier.BACKOFF_S = 0.3  # type: ignore[misc]  # a quick retry for the test
    subscribe(operate_app, receiver.url)
    created = operate_app.client.post(
        f"{BASE}/entities", json=building("down"), headers=operate_app.auth
    )
    assert created.status_code == 201
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # at least two deliveries tried and failed
        if subscription_shown(operate_app).get("timesSent", 0) >= 2:
            break
        time.sleep(0.05)
    failed = subscription_shown(operate_app)
    assert failed.get("timesSent", 0) >= 2, failed
    assert "lastFailure" in failed and "lastSuccess" not in failed
    (kept_row,) = [row for row in outbox_rows(operate_app) if row.subscription_id]
    assert kept_row.attempts >= 2 and kept_row.due_at is not None and kept_row.failed_at is None

    receiver.up()
    assert receiver.wait_for(1) == ["urn:ngsi-ld:Building:down"]
    notifier.drain()
    assert outbox_rows(operate_app) == []  # delivered: nothing left
    delivered = subscription_shown(operate_app)
    assert "lastSuccess" in delivered and delivered["timesSent"] == kept_row.attempts + 1
    time.sleep(0.5)
    assert receiver.entity_ids() == ["urn:ngsi-ld:Building:down"]  # not sent again


def test_a_delivery_failing_too_often_is_given_up_and_kept_for_operators(
    operate_app: OperateApp, receiver: Receiver
) -> None:
    from qala.components.operate.subscriptions import notifier_for

    notifier = notifier_for(operate_app.context)
    notifier.BACKOFF_S = 0.05  # type: ignore[misc]
    notifier.MAX_ATTEMPTS = 3  # type: ignore[misc]
    subscribe(operate_app, receiver.url)
    operate_app.client.post(f"{BASE}/entities", json=building("gone"), headers=operate_app.auth)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        kept = [row for row in outbox_rows(operate_app) if row.failed_at is not None]
        if kept:
            break
        time.sleep(0.05)
    (given_up,) = outbox_rows(operate_app)
    assert given_up.attempts == 3 and given_up.due_at is None and given_up.failed_at is not None
    assert given_up.notification["data"][0]["id"] == "urn:ngsi-ld:Building:gone"
    assert subscription_shown(operate_app)["timesSent"] == 3
    receiver.up()
    notifier.drain()
    assert receiver.received == []  # given up means not sent any more


def test_an_entity_changed_often_is_told_once_per_round_and_a_round_is_bounded(
    operate_app: OperateApp, capture_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Changes wait in the store, not in memory; a round reads at most ``CHUNK`` rows and tells
    each entity among them once (its newest state)."""
    from qala.components.operate import broker
    from qala.components.operate.changes import EntityChange
    from qala.components.operate.outbox import stage
    from qala.components.operate.subscriptions import Notifier, notifier_for
    from qala.core.clock import utc_now

    monkeypatch.setattr(Notifier, "CHUNK", 1000)
    context = operate_app.context
    notifier = notifier_for(context)
    notifier.stop()  # the changes pile up first
    subscribe(operate_app, capture_server.url)
    for suffix in ("a", "b"):
        broker.create(context, parse_building(suffix))
    ids = ["urn:ngsi-ld:Building:a", "urn:ngsi-ld:Building:b"]
    with context.database.transaction() as session:
        for _ in range(2_499):  # with the two creations: 5,000 changes of two entities
            changes = {i: EntityChange(i, attributes_updated={"name"}) for i in ids}
            stage(session, changes, utc_now())
    assert len(outbox_rows(operate_app)) == 5_000
    restarted = Notifier(context)
    restarted.drain(timeout_s=60)
    assert outbox_rows(operate_app) == []
    assert 5 <= len(capture_server.received) <= 6  # a round per CHUNK rows, not one per change
    for body in capture_server.received:
        assert sorted(entity["id"] for entity in body["data"]) == ids  # each entity once
    restarted.stop()


def test_a_change_that_cannot_be_notified_does_not_hold_back_the_others(
    operate_app: OperateApp, capture_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from qala.components.operate import subscriptions
    from qala.components.operate.subscriptions import Notifier, notifier_for

    building_for = subscriptions.notification_for

    def failing(subscription: Any, entities: Any, *args: Any) -> Any:
        if any(entity.id.endswith(":poison") for entity in entities):
            raise ValueError("a notification that cannot be built")
        return building_for(subscription, entities, *args)

    monkeypatch.setattr(subscriptions, "notification_for", failing)
    monkeypatch.setattr(Notifier, "BACKOFF_S", 0.05)
    monkeypatch.setattr(Notifier, "MAX_ATTEMPTS", 2)
    notifier = notifier_for(operate_app.context)
    notifier.stop()
    subscribe(operate_app, capture_server.url)
    for suffix in ("poison", "good"):
        operate_app.client.post(f"{BASE}/entities", json=building(suffix), headers=operate_app.auth)
    restarted = Notifier(operate_app.context)  # both changes in one round, which fails
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not any(
        row.failed_at for row in outbox_rows(operate_app)
    ):
        time.sleep(0.05)
    restarted.drain()
    assert [e["id"] for b in capture_server.received for e in b["data"]] == [
        "urn:ngsi-ld:Building:good"
    ]
    (given_up,) = outbox_rows(operate_app)
    assert given_up.entity_id == "urn:ngsi-ld:Building:poison" and given_up.attempts == 2
    assert given_up.due_at is None and given_up.failed_at is not None
    restarted.stop()


CRASHING_WRITER = """
import os, sys
from qala.api.app import create_app
from qala.components.operate import broker
from qala.components.operate.ngsi import parse_entity
from qala.settings import Settings

app = create_app(Settings(database_url=sys.argv[1], secret_key="t"))
context = app.state.context
broker.create(context, parse_entity({
    "id": "urn:ngsi-ld:Building:crash", "type": "Building",
    "name": {"type": "Property", "value": "committed, then the process died"},
}))
os._exit(0)  # the process dies right after the commit: no orderly shutdown
"""


def test_a_change_committed_before_a_crash_is_delivered_after_the_restart(
    database_url: str, operate_app: OperateApp, receiver: Receiver
) -> None:
    from qala.components.operate.subscriptions import notifier_for

    subscribe(operate_app, receiver.url)
    # Another process writes and dies at once; the endpoint is down meanwhile, so whatever its
    # notifier managed to try before dying, nothing was delivered.
    done = subprocess.run(
        [sys.executable, "-c", CRASHING_WRITER, database_url],
        env={"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert receiver.received == []
    receiver.up()
    restarted = create_app(Settings(database_url=database_url, secret_key="t"))  # a fresh process
    try:
        with TestClient(restarted):
            assert receiver.wait_for(1, timeout_s=20) == ["urn:ngsi-ld:Building:crash"]
            notifier_for(restarted.state.context).drain()
        assert outbox_rows(operate_app) == []  # delivered, so no longer kept
    finally:
        restarted.state.context.database.dispose()


def parse_building(suffix: str) -> Any:
    from qala.components.operate.ngsi import parse_entity

    return parse_entity(building(suffix))


SUBSCRIPTION = {
    "id": "urn:ngsi-ld:Subscription:outbox",
    "type": "Subscription",
    "entities": [{"type": "Building"}],
}


def test_two_notifiers_share_the_outbox_without_sending_a_change_twice(
    database_url: str, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two processes notifying from one store (``qala serve`` and ``qala operate ingest-mqtt``,
    each with its own engine) send each change once between them, on SQLite as on PostgreSQL;
    none is lost and the outbox is empty at the end."""
    from sqlalchemy import func, select

    from qala.components.operate import broker
    from qala.components.operate.models import NotificationOutbox
    from qala.components.operate.subscriptions import Notifier, notifier_for

    monkeypatch.setattr(Notifier, "CHUNK", 5)  # many rounds, so that both notifiers take part

    writer = create_app(Settings(database_url=database_url, secret_key="t")).state.context
    endpoint = {"endpoint": {"uri": receiver.url, "accept": "application/json"}}
    broker.subscribe(writer, {**SUBSCRIPTION, "notification": endpoint})
    notifier_for(writer).stop()  # this process commits, two others notify
    count = 120
    for index in range(count):
        broker.create(writer, parse_building(f"b{index}"))
    with writer.database.session() as session:
        assert session.scalar(select(func.count()).select_from(NotificationOutbox)) == count
    # Each answer takes a while, so that the two notifiers' rounds overlap: one reads the rows
    # due while the other is still sending the same ones, unless claiming is exclusive.
    receiver.delay_s = 0.02
    receiver.up()
    processes = [
        create_app(Settings(database_url=database_url, secret_key="t")).state.context
        for _ in range(2)
    ]
    notifiers = [notifier_for(process) for process in processes]
    try:
        receiver.wait_for(count, timeout_s=60)
        for notifier in notifiers:
            notifier.drain(timeout_s=30)
        time.sleep(1.0)  # a second send would come meanwhile
        ids = receiver.entity_ids()
        assert len(ids) == len(set(ids)), "a change was sent twice"
        assert sorted(ids) == sorted(f"urn:ngsi-ld:Building:b{i}" for i in range(count))
        assert all(notifier.delivered > 0 for notifier in notifiers), "both took part"
        with writer.database.session() as session:
            assert session.scalar(select(func.count()).select_from(NotificationOutbox)) == 0
    finally:
        for notifier in notifiers:
            notifier.stop()
        for process in processes:
            process.database.dispose()
        writer.database.dispose()


def test_writes_stage_nothing_while_no_subscription_is_active(
    operate_app: OperateApp, receiver: Receiver
) -> None:
    """A city whose sensors change entities all day and that nobody subscribed to keeps no
    outbox rows; once a subscription is active, writes are staged again."""
    from qala.components.operate.subscriptions import notifier_for

    notifier_for(operate_app.context).stop()  # rows staged would stay to be counted
    created = operate_app.client.post(
        f"{BASE}/entities", json=building("quiet"), headers=operate_app.auth
    )
    assert created.status_code == 201, created.text
    assert outbox_rows(operate_app) == []
    subscribe(operate_app, receiver.url)
    changed = operate_app.client.patch(
        f"{BASE}/entities/urn:ngsi-ld:Building:quiet/attrs",
        json={"name": {"type": "Property", "value": "Renamed"}},
        headers=operate_app.auth,
    )
    assert changed.status_code == 204, changed.text
    assert [row.entity_id for row in outbox_rows(operate_app)] == ["urn:ngsi-ld:Building:quiet"]


class HeldEndpoint:
    """An HTTP endpoint that takes each request and answers nothing until ``release`` is set
    (a receiver that hangs, as a black-holed address does), then answers 503."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.arrived = threading.Event()
        self.requests = 0
        self.answered = 0
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("content-length", 0)))
                endpoint.requests += 1
                endpoint.arrived.set()
                endpoint.release.wait(120)
                endpoint.answered += 1
                self.send_response(503)
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_port}/notify"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def held_endpoint() -> Iterator[HeldEndpoint]:
    endpoint = HeldEndpoint()
    yield endpoint
    endpoint.close()


def fresh_notifier(app: OperateApp, *, timeout_s: float) -> Any:
    """The app's notifier replaced by one whose HTTP timeout is ``timeout_s``."""
    from qala.components.operate.subscriptions import NOTIFIER_KEY, Notifier, notifier_for

    notifier_for(app.context).stop()
    notifier = app.context.extras[NOTIFIER_KEY] = Notifier(app.context, timeout_s=timeout_s)
    return notifier


def subscribe_named(app: OperateApp, suffix: str, url: str) -> str:
    body = {
        **SUBSCRIPTION,
        "id": f"urn:ngsi-ld:Subscription:{suffix}",
        "notification": {"endpoint": {"uri": url, "accept": "application/json"}},
    }
    answer = app.client.post(f"{BASE}/subscriptions", json=body, headers=app.auth)
    assert answer.status_code == 201, answer.text
    return str(body["id"])


def delivery_of(app: OperateApp, subscription_id: str) -> dict[str, Any]:
    answer = app.client.get(f"{BASE}/subscriptions/{subscription_id}", headers=app.auth)
    return dict(answer.json()["notification"])


def test_an_endpoint_that_does_not_answer_does_not_hold_back_the_others(
    operate_app: OperateApp, held_endpoint: HeldEndpoint, capture_server: Any
) -> None:
    """The round's notifications to different endpoints go out at once: the second endpoint is
    told while the first still holds its request (the HTTP timeout is a minute here, so sending
    one after another would keep the second waiting all that time)."""
    notifier = fresh_notifier(operate_app, timeout_s=60.0)
    held = subscribe_named(operate_app, "1-held", held_endpoint.url)  # first in the round
    told = subscribe_named(operate_app, "2-told", capture_server.url)
    created = operate_app.client.post(
        f"{BASE}/entities", json=building("both"), headers=operate_app.auth
    )
    assert created.status_code == 201, created.text

    assert held_endpoint.arrived.wait(10)
    assert capture_server.event.wait(10), "the other endpoint waited for the held one"
    assert held_endpoint.answered == 0  # still held when the other was told
    assert [e["id"] for e in capture_server.received[0]["data"]] == ["urn:ngsi-ld:Building:both"]

    held_endpoint.release.set()  # it answers 503: a failed delivery, kept to be tried again
    notifier.drain()
    told_shown, held_shown = delivery_of(operate_app, told), delivery_of(operate_app, held)
    assert told_shown["timesSent"] == 1 and "lastSuccess" in told_shown
    assert "lastFailure" not in told_shown
    assert held_shown["timesSent"] == 1 and "lastFailure" in held_shown
    assert "lastSuccess" not in held_shown
    (kept,) = outbox_rows(operate_app)
    assert kept.subscription_id == held and kept.attempts == 1 and kept.due_at is not None
    assert kept.notification["data"][0]["id"] == "urn:ngsi-ld:Building:both"
    notifier.stop()


def test_an_endpoint_that_timed_out_is_not_sent_the_rest_of_its_round(
    operate_app: OperateApp, held_endpoint: HeldEndpoint
) -> None:
    """Once an endpoint let a notification time out, its other notifications of the round are
    not sent (each would wait the timeout again, the round's rows locked meanwhile): they count
    as failed deliveries and are tried again later with theirs."""
    notifier = fresh_notifier(operate_app, timeout_s=0.5)
    ids = [subscribe_named(operate_app, suffix, held_endpoint.url) for suffix in ("h1", "h2")]
    created = operate_app.client.post(
        f"{BASE}/entities", json=building("twice"), headers=operate_app.auth
    )
    assert created.status_code == 201, created.text
    assert held_endpoint.arrived.wait(10)
    notifier.drain()
    assert held_endpoint.requests == 1  # the second notification was not sent to it
    for subscription_id in ids:
        shown = delivery_of(operate_app, subscription_id)
        assert shown["timesSent"] == 1 and "lastFailure" in shown, shown
    kept = outbox_rows(operate_app)
    assert sorted(row.subscription_id for row in kept) == sorted(ids)
    assert all(row.attempts == 1 and row.due_at is not None for row in kept)
    notifier.stop()
