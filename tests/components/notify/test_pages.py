"""The resident's and staff's pages around notifications: the report form under Open311's rate
limit, "mine", the settings page, the administrators' outbox, and the staff export."""

from __future__ import annotations

import csv
import io
import re
from typing import Any

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlalchemy import update
from tests.components.notify.test_delivery import YESIL, _csrf, _site

from qala.components.accounts.services import create_user
from qala.components.notify.models import OutboxMessage


def _report(client: TestClient, token: str, **fields: str) -> Any:
    data = {
        "csrf_token": token,
        "city": "astana",
        "service_code": "street_light",
        "lat": str(YESIL[0]),
        "long": str(YESIL[1]),
        **fields,
    }
    # Reports at one point: the resident has seen the nearby ones and files anyway.
    data.setdefault("nearby_seen", f"{data['service_code']}|{data['lat']}|{data['long']}")
    return client.post("/requests/new", data=data)


def _sign_in(context: Any, client: TestClient, username: str, role: str, **extra: Any) -> None:
    with context.database.transaction() as session:
        create_user(session, username=username, password="long enough pw", role=role, **extra)
    page = client.get("/login").text
    answer = client.post(
        "/login",
        data={
            "username": username,
            "password": "long enough pw",
            "csrf_token": _csrf(page),
            "next": "/",
        },
    )
    assert answer.status_code == 303, answer.text[:300]


@pytest.mark.slow
def test_the_report_form_refuses_a_flood_as_open311_does(sqlite_url: str) -> None:
    context, client = _site(sqlite_url)
    token = _csrf(client.get("/requests/new?lang=kk").text)
    statuses = [_report(client, token, description=f"шам {k}").status_code for k in range(300)]
    limit = context.settings.rate_limit_per_minute
    assert statuses.count(303) == limit and statuses.count(429) == 300 - limit
    refused = _report(client, token)
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
    assert "Сіздің мекенжайыңыздан сұрау тым көп" in refused.text
    assert 'id="retry-after"' in refused.text


def test_mine_lists_the_residents_requests_and_settings_are_checked(sqlite_url: str) -> None:
    context, client = _site(sqlite_url)
    assert client.get("/mine").status_code == 303  # sign in first
    _sign_in(context, client, "dana", "citizen")
    page = client.get("/requests/new?lang=ru").text
    filed = _report(client, _csrf(page), description="Темно во дворе")
    assert filed.status_code == 303
    mine = client.get("/mine?lang=ru")
    assert mine.status_code == 200
    assert "Мои обращения" in mine.text and "Мои бюллетени" in mine.text
    number = re.search(r"/requests/([\w-]+)\?city=astana\">Обращение №\s?(\d+)", mine.text)
    assert number, mine.text[-3000:]
    assert "Вы ещё не голосовали." in mine.text

    settings = client.get("/notifications?lang=kk")
    assert settings.status_code == 200 and "Хабарламалар тілі" in settings.text
    # The request filed while signed in is followed (no contact yet: nothing is sent).
    assert 'id="followed"' in settings.text
    bad = client.post(
        "/notifications",
        data={"csrf_token": _csrf(settings.text), "email": "not an address", "language": "kk"},
    )
    assert bad.status_code == 422 and "<code>email</code>" in bad.text
    good = client.post(
        "/notifications",
        data={
            "csrf_token": _csrf(settings.text),
            "email": "dana@example.kz",
            "language": "kk",
            "email_on": "on",
        },
    )
    assert good.status_code == 303
    assert 'value="dana@example.kz"' in client.get("/notifications").text


def test_administrators_see_failed_messages_with_their_last_error(sqlite_url: str) -> None:
    context, client = _site(sqlite_url)
    token = _csrf(client.get("/requests/new").text)
    assert _report(client, token, email="a@example.kz").status_code == 303
    with context.database.transaction() as session:
        session.execute(
            update(OutboxMessage).values(
                status="failed", attempts=10, last_error="SMTP 550: mailbox unavailable"
            )
        )
    _sign_in(context, client, "clerk", "operator", department="akimat_yesil")
    assert client.get("/admin/notifications").status_code == 403
    client.post("/logout", data={"csrf_token": _csrf(client.get("/").text)})
    _sign_in(context, client, "root", "administrator")
    page = client.get("/admin/notifications?lang=ru")
    assert page.status_code == 200
    assert "SMTP 550: mailbox unavailable" in page.text and "не доставлено" in page.text
    assert "a…@example.kz" in page.text and "a@example.kz" not in page.text
    message_id = re.search(r'id="message-(\d+)"', page.text)
    assert message_id
    again = client.post(
        f"/admin/notifications/{message_id.group(1)}/retry", data={"csrf_token": _csrf(page.text)}
    )
    assert again.status_code == 303
    assert "в очереди: <strong>1</strong>" in client.get("/admin/notifications?lang=ru").text


def test_staff_export_is_filtered_and_formula_safe(sqlite_url: str) -> None:
    context, client = _site(sqlite_url)
    token = _csrf(client.get("/requests/new").text)
    _report(client, token, description='=HYPERLINK("http://evil.example","click")')
    _report(client, token, description="+7 701 000 00 00 called twice")
    _report(
        client, token, service_code="pothole", description="hole", **{"attr.pothole.size": "large"}
    )
    assert client.get("/operator/export/requests.csv").status_code == 303  # sign in first
    _sign_in(context, client, "clerk", "operator", department="akimat_yesil")
    answer = client.get(
        "/operator/export/requests.csv?city=astana&service=street_light&status=open"
    )
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(answer.content.decode("utf-8-sig"))))
    header, *data = rows
    assert header[:5] == ["id", "status", "close_reason", "service_code", "service"]
    assert {row[3] for row in data} == {"street_light"} and len(data) == 2
    descriptions = {row[header.index("description")] for row in data}
    assert descriptions == {
        '\'=HYPERLINK("http://evil.example","click")',
        "'+7 701 000 00 00 called twice",
    }
    book = client.get("/operator/export/requests.xlsx?city=astana")
    sheet = load_workbook(io.BytesIO(book.content)).active
    cells = [c for row in sheet.iter_rows() for c in row]
    assert not [c for c in cells if c.data_type == "f"]  # no formula anywhere
    assert sheet.max_row == 4
    for query, column in (("status=bogus", "status"), ("from=yesterday", "from")):
        # A browser gets the translated error page; a script asking for JSON gets the problems.
        bad = client.get(
            f"/operator/export/requests.csv?{query}", headers={"accept": "application/json"}
        )
        assert bad.status_code == 422
        assert [p["column"] for p in bad.json()["problems"]] == [column]
        page = client.get(f"/operator/export/requests.csv?{query}", headers={"accept": "text/html"})
        assert page.status_code == 422 and "<html" in page.text
    assert client.get("/operator/export?lang=kk").status_code == 200


def test_a_resident_follows_a_project_from_its_page_and_stops(
    sqlite_url: str, tmp_path: Any
) -> None:
    from datetime import date

    from qala.components.budgeting.projects import NewProject, create_project

    context, client = _site(sqlite_url, ledger_key_file=tmp_path / "ledger_key")
    with context.database.transaction() as session:
        create_project(
            session,
            NewProject(
                code="park-1",
                place_code="astana",
                title={
                    "kk": "Өзен жағасындағы саябақ",
                    "ru": "Парк у реки",
                    "en": "Riverside park",
                },
                budget=5_000_000,
                planned_end=date(2026, 12, 1),
            ),
            actor="akimat",
            now=context.clock(),
        )
    assert 'id="follow-project"' not in client.get("/budgeting/projects/park-1").text
    _sign_in(context, client, "aigerim", "citizen")
    page = client.get("/budgeting/projects/park-1?lang=kk").text
    assert "Жобаны бақылау" in page
    followed = client.post(
        "/notifications/follow",
        data={"csrf_token": _csrf(page), "kind": "project", "code": "park-1"},
    )
    assert followed.status_code == 303
    assert followed.headers["location"] == "/budgeting/projects/park-1?followed=1"
    assert 'id="project-followed"' in client.get(followed.headers["location"]).text
    mine = client.get("/mine?lang=kk").text
    assert "Жоба: Өзен жағасындағы саябақ" in mine
    settings = client.get("/notifications").text
    stop = re.search(r'action="(/notifications/follows/\d+/stop)"', settings)
    assert stop
    assert client.post(stop.group(1), data={"csrf_token": _csrf(settings)}).status_code == 303
    assert "/resume" in client.get("/notifications").text
    unknown = client.post(
        "/notifications/follow",
        data={"csrf_token": _csrf(settings), "kind": "project", "code": "nope"},
    )
    assert unknown.status_code == 404
