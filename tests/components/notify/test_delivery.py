"""Notifications end to end on real peers: a resident filing in Kazakh hears back by e-mail
(received, then closed with the operator's note), SMS go through the gateway, an SMTP server
that is down only delays, and a sender killed mid-delivery delivers exactly once after restart."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Table, insert, select
from tests.components.notify.conftest import MailBox, SmsGatewayStub
from tests.components.requests311.conftest import NOW, YESIL, make_city

from qala.components.accounts.services import create_user, issue_token
from qala.components.notify.models import OutboxMessage, Subscription
from qala.components.notify.sender import Sender
from qala.components.notify.services import outbox
from qala.registry import start_components
from qala.runtime import Context
from qala.settings import Settings
from qala.store.ids import SequenceIds

REPO = Path(__file__).resolve().parents[3]


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found
    return found.group(1)


def _site(sqlite_url: str, **settings: Any) -> tuple[Context, TestClient]:
    from qala.api import create_app

    context = Context.from_settings(
        Settings(database_url=sqlite_url, secret_key="notify-tests", **settings)
    )
    app = create_app(context=context)
    make_city(context)
    client = TestClient(app, headers={"accept": "text/html"}, follow_redirects=False)
    return context, client


def _operator_headers(context: Context) -> dict[str, str]:
    with context.database.transaction() as session:
        user = create_user(
            session,
            username="energy.op",
            password="long enough pw",
            role="operator",
            department="energy_housing",  # street lights' department: operators act within theirs
            place="astana",
        )
        return {"Authorization": f"Bearer {issue_token(session, user)}"}


def _file_in_kazakh(client: TestClient, **fields: str) -> int:
    form = client.get("/requests/new?lang=kk").text
    answer = client.post(
        "/requests/new",
        data={
            "csrf_token": _csrf(form),
            "city": "astana",
            "service_code": "street_light",
            "description": "Тұран даңғылында үш шам жанбайды",
            "lat": str(YESIL[0]),
            "long": str(YESIL[1]),
            **fields,
        },
    )
    assert answer.status_code == 303, answer.text[:600]
    followed = client.get(answer.headers["location"]).text
    found = re.search(r'id="request-id">(\d+)<', followed)
    assert found
    return int(found.group(1))


def test_a_resident_filing_in_kazakh_is_told_by_mail_in_kazakh(
    sqlite_url: str, mailbox: MailBox
) -> None:
    context, client = _site(sqlite_url, smtp_url=mailbox.url, mail_from="Qala <noreply@astana.kz>")
    request_id = _file_in_kazakh(client, email="aigerim@example.kz")
    sender = Sender.for_context(context)
    assert sender.run_once() == {"sent": 1}
    operator = _operator_headers(context)
    closed = client.post(
        f"/api/v1/requests/{request_id}/close",
        json={"reason": "resolved", "note": "Шамдар ауыстырылды, көше жарық."},
        headers=operator,
    )
    assert closed.status_code == 200, closed.text
    assert sender.run_once() == {"sent": 1}
    assert sender.run_once() == {}  # nothing twice

    received, status = mailbox.messages
    assert received["To"] == "aigerim@example.kz"
    assert received["Subject"] == f"Өтініш №{request_id} қабылданды"
    assert received["Content-Language"] == "kk"
    body = received.get_content()
    assert "өтінішіңіз тіркелді" in body and f"Өтініш нөмірі: {request_id}." in body
    follow_link = re.search(r"(http://\S+/requests/[\w-]+\?city=astana)", body)
    assert follow_link, body
    assert "/notifications/unsubscribe/" in body

    assert status["Subject"] == f"Өтініш №{request_id} жабылды"
    text = status.get_content()
    assert f"№{request_id} өтінішіңіз жабылды" in text
    assert "Мәселе шешілді." in text
    assert "Қызметкердің түсіндірмесі: Шамдар ауыстырылды, көше жарық." in text
    assert follow_link.group(1) in text
    # The follow link is the resident's own page of this request.
    page = client.get(follow_link.group(1).replace("http://127.0.0.1:8000", ""))
    assert page.status_code == 200 and f'id="request-id">{request_id}<' in page.text


def test_the_unsubscribe_link_stops_the_next_messages_and_forged_links_fail(
    database_url: str, mailbox: MailBox
) -> None:
    # On PostgreSQL the reporter's subscription id is drawn before its row is written (it goes
    # with the confirmation in one statement): the link must name the row's own id.
    context, client = _site(database_url, smtp_url=mailbox.url)
    request_id = _file_in_kazakh(client, email="bolat@example.kz")
    Sender.for_context(context).run_once()
    link = re.search(r"/notifications/unsubscribe/(\S+)", mailbox.messages[0].get_content())
    assert link
    token = link.group(1)
    forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    assert client.get(f"/notifications/unsubscribe/{forged}?lang=kk").status_code == 404
    page = client.post(f"/notifications/unsubscribe/{token}?lang=kk")
    assert page.status_code == 200
    assert "Хабарламалар тоқтатылды" in page.text
    operator = _operator_headers(context)
    client.post(f"/api/v1/requests/{request_id}/acknowledge", json={}, headers=operator)
    assert Sender.for_context(context).run_once() == {}
    assert len(mailbox.messages) == 1


def test_sms_go_through_the_gateway_with_the_key_and_idempotency_key(
    sqlite_city: Any, sms_gateway: SmsGatewayStub
) -> None:
    context = sqlite_city.context
    context.settings.sms_gateway_url = sms_gateway.url
    context.settings.sms_gateway_key = "gw-secret"
    start_components(context)
    submitted = sqlite_city.submit("pothole", phone="+7 701 555 12 34", language="ru")
    assert Sender.for_context(context).run_once() == {"sent": 1}
    (sms,) = sms_gateway.received
    assert sms["headers"]["Authorization"] == "Bearer gw-secret"
    assert sms["body"]["to"] == "+7 701 555 12 34"
    assert sms["body"]["text"].startswith(
        f"Qala: Обращение №{submitted.service_request_id} принято."
    )
    assert submitted.token in sms["body"]["text"]
    assert sms["headers"]["Idempotency-Key"] == sms["body"]["reference"]


def test_a_reporter_with_mail_and_phone_is_followed_once_and_told_on_both(city: Any) -> None:
    # On PostgreSQL the subscription and both messages are one statement (two rows selected).
    start_components(city.context)
    submitted = city.submit("pothole", email="aigul@example.kz", phone="+7 701 555 12 34")
    with city.context.database.session() as session:
        (subscription,) = session.scalars(select(Subscription)).all()
        messages = session.scalars(select(OutboxMessage).order_by(OutboxMessage.channel)).all()
    assert subscription.topic == f"request:astana:{submitted.service_request_id}"
    assert (subscription.email, subscription.phone) == ("aigul@example.kz", "+7 701 555 12 34")
    assert [(m.channel, m.recipient, m.status) for m in messages] == [
        ("email", "aigul@example.kz", "queued"),
        ("sms", "+7 701 555 12 34", "queued"),
    ]
    assert all(m.idempotency_key.endswith(f":s{subscription.id}:{m.channel}") for m in messages)


def test_a_server_that_is_down_delays_messages_and_never_loses_them(
    city: Any, mailbox: MailBox
) -> None:
    sqlite_city = city
    context = city.context
    port = mailbox.port
    context.settings.smtp_url = f"smtp://127.0.0.1:{port + 1 if port < 65000 else port - 1}"
    start_components(context)
    submitted = sqlite_city.submit("pothole", email="dana@example.kz", language="en")
    sender = Sender.for_context(context)
    assert sender.run_once() == {"retry": 1}
    with context.database.session() as session:
        (row,) = outbox(session)
        assert row.status == "queued" and row.attempts == 1
        assert row.last_error and "Connection" in row.last_error
        assert row.next_attempt_at > context.clock()  # backing off
    assert sender.run_once() == {}  # not due yet
    sqlite_city.clock.advance(minutes=1)
    context.settings.smtp_url = mailbox.url
    assert Sender.for_context(context).run_once() == {"sent": 1}
    assert [m["Subject"] for m in mailbox.messages] == [
        f"Request No. {submitted.service_request_id} received"
    ]


def test_work_rolled_back_leaves_no_message(city: Any) -> None:
    sqlite_city = city
    context = city.context
    start_components(context)
    from qala.components.requests311.services import NewRequest, submit_request

    with pytest.raises(RuntimeError), context.database.transaction() as session:
        submit_request(
            session,
            sqlite_city.jurisdiction,
            NewRequest(
                service_code="pothole",
                lat=YESIL[0],
                lon=YESIL[1],
                attributes={"size": ["large"]},
                email="x@example.kz",
            ),
            now=context.clock(),
            bus=context.bus,
        )
        raise RuntimeError("the request's transaction fails after the insert")
    with context.database.session() as session:
        assert session.scalars(select(OutboxMessage)).all() == []


@pytest.mark.slow
def test_a_worker_killed_between_claim_and_delivery_delivers_exactly_once(
    sqlite_url: str, mailbox: MailBox, tmp_path: Path
) -> None:
    context, client = _site(sqlite_url, smtp_url=mailbox.url)
    request_id = _file_in_kazakh(client, email="saule@example.kz")
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO / "src") + os.pathsep + str(REPO),
        "QALA_DATABASE_URL": sqlite_url,
        "QALA_SECRET_KEY": "notify-tests",
        "QALA_SMTP_URL": mailbox.url,
        "QALA_NOTIFY_LEASE_SECONDS": "3",
        "QALA_NOTIFY_SEND_TIMEOUT": "2",
    }
    command = [sys.executable, "-m", "qala.cli.main", "notify", "worker", "--interval", "0.2"]
    mailbox.stall = True
    first = subprocess.Popen(command, env=env, cwd=tmp_path)
    try:
        assert mailbox.stalled.wait(60), "the worker never reached the SMTP server"
        with context.database.session() as session:
            claimed = session.scalars(select(OutboxMessage)).one()
            assert claimed.status == "queued" and claimed.lease_owner  # claimed, not delivered
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    finally:
        if first.poll() is None:
            first.kill()
    assert mailbox.messages == []
    second = subprocess.run(
        [*command, "--until-empty"], env=env, cwd=tmp_path, timeout=120, capture_output=True
    )
    assert second.returncode == 0, second.stderr.decode()[-2000:]
    time.sleep(0.2)
    assert [m["Subject"] for m in mailbox.messages] == [f"Өтініш №{request_id} қабылданды"]
    with context.database.session() as session:
        row = session.scalars(select(OutboxMessage)).one()
        assert row.status == "sent" and row.lease_owner is None


def test_senders_running_side_by_side_never_send_a_message_twice(
    city: Any, mailbox: MailBox
) -> None:
    import threading

    context = city.context
    context.settings.smtp_url = mailbox.url
    for k in range(24):
        city.submit("pothole", email=f"r{k}@example.kz", language="ru")
    senders = [Sender.for_context(context) for _ in range(3)]
    stop = threading.Event()
    threads = [
        threading.Thread(target=s.run, args=(stop,), kwargs={"interval": 0.05, "until_empty": True})
        for s in senders
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(m["To"] for m in mailbox.messages) == sorted(
        f"r{k}@example.kz" for k in range(24)
    )
    # A lease held by one sender keeps the others off until it expires.
    city.submit("pothole", email="late@example.kz", language="ru")
    first, second = senders[:2]
    assert len(first.claim()) == 1 and second.claim() == []
    city.clock.advance(seconds=first.lease.total_seconds() + 1)
    (taken,) = second.claim()
    assert first.deliver(taken) == "lost" and second.deliver(taken) == "sent"
    assert [m["To"] for m in mailbox.messages].count("late@example.kz") == 1


@pytest.fixture
def postgres_url(postgres_server: Any, postgres_template: str) -> Iterator[str]:
    url = postgres_server.create(template=postgres_template)
    yield url
    postgres_server.drop(url)


@pytest.mark.postgres
def test_subscription_ids_drawn_in_blocks_never_collide(postgres_url: str) -> None:
    # Two processes' pools of ids and rows numbered by the table's own default, interleaved.
    context = Context.from_settings(Settings(database_url=postgres_url, secret_key="t"))
    first, second = (SequenceIds("notify_subscription", block=3) for _ in range(2))
    table = cast(Table, Subscription.__table__)
    row = {"topic": "request:astana:1", "language": "ru", "label": {}, "link": "", "active": True}
    taken: list[int] = []
    try:
        for _ in range(5):
            with context.database.transaction() as session:
                connection = session.connection()
                for pool in (first, second):
                    subscription_id = pool.take(connection)
                    connection.execute(
                        insert(table), {**row, "id": subscription_id, "created_at": NOW}
                    )
                    taken.append(subscription_id)
                connection.execute(insert(table), {**row, "created_at": NOW})
        with context.database.session() as session:
            stored = list(session.scalars(select(Subscription.id)))
    finally:
        context.database.dispose()
    assert len(stored) == len(set(stored)) == 15
    assert set(taken) <= set(stored)
