"""The staff API at /api/v1/requests: roles, queues per department, the lifecycle, bulk updates,
escalation, indicators; and citizens following their request."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.components.requests311.conftest import NOW, SARYARKA, YESIL, City

from qala.components.accounts.services import create_user, issue_token


@pytest.fixture
def staff_api(city: City) -> tuple[TestClient, City, dict[str, dict[str, str]]]:
    from qala.api import create_app

    headers = {}
    with city.context.database.transaction() as session:
        for username, role, department in [
            ("yesil.op", "operator", "akimat_yesil"),
            ("energy.op", "operator", "energy_housing"),
            ("admin", "administrator", None),
            ("citizen", "citizen", None),
            ("analyst", "analyst", None),
        ]:
            user = create_user(
                session,
                username=username,
                password="long enough pw",
                role=role,
                department=department,
            )
            headers[username] = {"Authorization": f"Bearer {issue_token(session, user)}"}
    return TestClient(create_app(context=city.context)), city, headers


def test_roles_guard_the_staff_api(staff_api: Any) -> None:
    http, city, headers = staff_api
    city.submit("heating")
    assert http.get("/api/v1/requests/queue").status_code == 401
    assert http.get("/api/v1/requests/queue", headers=headers["citizen"]).status_code == 403
    assert http.get("/api/v1/requests/queue", headers=headers["analyst"]).status_code == 403
    assert http.get("/api/v1/requests/indicators", headers=headers["analyst"]).status_code == 200
    assert http.post("/api/v1/requests/indicators", headers=headers["energy.op"]).status_code == 403
    assert http.get("/api/v1/requests/queue", headers=headers["admin"]).status_code == 200


def test_queue_per_department_assignment_notes_and_bulk(staff_api: Any) -> None:
    http, city, headers = staff_api
    snow = [
        int(city.submit("snow_removal", lat=YESIL[0], lon=YESIL[1]).service_request_id)
        for _ in range(2)
    ]
    other_snow = int(
        city.submit("snow_removal", lat=SARYARKA[0], lon=SARYARKA[1]).service_request_id
    )
    heating = int(city.submit("heating", email="reporter@example.kz").service_request_id)
    yesil, energy, admin = headers["yesil.op"], headers["energy.op"], headers["admin"]

    assert [r["id"] for r in http.get("/api/v1/requests/queue", headers=yesil).json()] == snow
    assert [r["id"] for r in http.get("/api/v1/requests/queue", headers=energy).json()] == [heating]
    everything = http.get("/api/v1/requests/queue", headers=admin).json()
    assert sorted(r["id"] for r in everything) == sorted([*snow, other_snow, heating])
    # An operator sees only their own departments' requests, even when asking for another's.
    assert (
        http.get(
            "/api/v1/requests/queue", params={"department": "akimat_saryarka"}, headers=yesil
        ).json()
        == []
    )
    assert http.get(f"/api/v1/requests/{other_snow}", headers=yesil).status_code == 404

    detail = http.get(f"/api/v1/requests/{heating}", headers=energy).json()
    assert detail["reporter"]["email"] == "reporter@example.kz"  # staff may call the reporter back
    assert detail["audit"][0]["action"] == "created"

    ack = http.post(
        f"/api/v1/requests/{heating}/acknowledge",
        json={"note": "Мастер придёт до 14:00"},
        headers=energy,
    )
    assert ack.status_code == 200 and ack.json()["status"] == "acknowledged"
    http.post(
        f"/api/v1/requests/{heating}/notes",
        json={"text": "Стояк в подвале", "public": False},
        headers=energy,
    )
    reroute = {"assignee": "marat", "department": "akimat_yesil"}
    # Re-routing to a department outside the operator's own is an administrator's call.
    assert (
        http.post(f"/api/v1/requests/{heating}/assign", json=reroute, headers=energy).status_code
        == 403
    )
    moved = http.post(f"/api/v1/requests/{heating}/assign", json=reroute, headers=admin)
    assert moved.json()["department"] == "akimat_yesil" and moved.json()["assignee"] == "marat"
    assert (
        http.post(f"/api/v1/requests/{heating}/acknowledge", json={}, headers=admin).status_code
        == 409
    )

    bulk = http.post(
        "/api/v1/requests/bulk",
        json={
            "ids": [*snow, heating],
            "action": "close",
            "options": {"reason": "resolved", "note": "Убрано"},
        },
        headers=yesil,
    )
    assert bulk.status_code == 200, bulk.text
    assert {r["status"] for r in bulk.json()} == {"closed"}
    failing = http.post(
        "/api/v1/requests/bulk",
        json={"ids": [other_snow, heating], "action": "start"},
        headers=yesil,
    )
    assert failing.status_code == 409 or failing.status_code == 422
    assert (
        http.get(f"/api/v1/requests/{other_snow}", headers=admin).json()["status"] == "open"
    )  # all or nothing

    reopened = http.post(
        f"/api/v1/requests/{snow[0]}/reopen", json={"reason": "Снова замело"}, headers=yesil
    )
    assert reopened.json()["reopen_count"] == 1
    merged = http.post(f"/api/v1/requests/{snow[0]}/merge", json={"into": snow[1]}, headers=yesil)
    assert merged.json()["duplicate_of"] == snow[1]
    assert (
        http.post(
            f"/api/v1/requests/{snow[1]}/merge", json={"into": snow[1]}, headers=yesil
        ).status_code
        == 422
    )
    assert (
        http.post(
            f"/api/v1/requests/{heating}/close", json={"reason": "bored"}, headers=admin
        ).status_code
        == 422
    )

    # The citizen follows by token: public updates only, no contact details, no internal notes.
    token = detail["token"]
    followed = http.get(f"/api/v1/requests/follow/{token}").json()
    assert followed["request"]["status"] == "closed"
    assert [u["text"] for u in followed["updates"]] == ["Мастер придёт до 14:00", "Убрано"]
    assert "reporter@example.kz" not in str(followed) and "Стояк" not in str(followed)
    assert http.get("/api/v1/requests/follow/nonsense-token").status_code == 404


def test_escalation_and_indicators_endpoints(staff_api: Any) -> None:
    http, city, headers = staff_api
    heating = int(city.submit("heating").service_request_id)
    city.clock.advance(hours=25)
    answer = http.post("/api/v1/requests/escalate", headers=headers["energy.op"]).json()
    assert answer == {"escalated": [{"id": heating, "level": 1}]}
    assert http.post("/api/v1/requests/escalate", headers=headers["energy.op"]).json() == {
        "escalated": []
    }
    with city.context.database.transaction() as session:
        from qala.components.requests311.services import Requests

        Requests(
            session,
            city.jurisdiction,
            actor="op",
            now=NOW + __import__("datetime").timedelta(hours=30),
        ).close(heating, reason="resolved")
    figures = http.get("/api/v1/requests/indicators", headers=headers["admin"]).json()
    [year] = figures["by_city"]
    assert year["year"] == NOW.year and year["median_hours_to_close"] == pytest.approx(30.0)
    assert year["share_closed_within_sla"] == pytest.approx(0.0)


def test_each_action_answers_alike_on_its_own_route_and_in_bulk(staff_api: Any) -> None:
    """The single-request routes and bulk share one action table: the same action with the same
    fields changes two like requests alike."""
    http, city, headers = staff_api
    admin = headers["admin"]
    steps = [
        ("acknowledge", "acknowledge", {"note": "Принято"}),
        ("start", "start", {"note": "Бригада выехала"}),
        ("notes", "note", {"text": "Стояк в подвале", "public": False}),
        ("assign", "assign", {"assignee": "marat", "department": "akimat_yesil"}),
        ("close", "close", {"reason": "resolved", "note": "Готово"}),
        ("reopen", "reopen", {"reason": "Снова холодно"}),
    ]
    alone, together = (int(city.submit("heating").service_request_id) for _ in range(2))
    for route, action, fields in steps:
        one = http.post(f"/api/v1/requests/{alone}/{route}", json=fields, headers=admin)
        many = http.post(
            "/api/v1/requests/bulk",
            json={"ids": [together], "action": action, "options": fields},
            headers=admin,
        )
        assert one.status_code == many.status_code == 200, (route, one.text, many.text)
        assert _comparable(one.json()) == _comparable(many.json()[0]), route
    into = int(city.submit("heating").service_request_id)
    one = http.post(f"/api/v1/requests/{alone}/merge", json={"into": into}, headers=admin)
    many = http.post(
        "/api/v1/requests/bulk",
        json={"ids": [together], "action": "merge", "options": {"into": into}},
        headers=admin,
    )
    assert _comparable(one.json()) == _comparable(many.json()[0])
    wrong = http.post(
        "/api/v1/requests/bulk",
        json={"ids": [into], "action": "close", "options": {"because": "x"}},
        headers=admin,
    )
    assert wrong.status_code == 422 and "wrong options for close" in wrong.text


def _comparable(request: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in request.items() if k not in ("id", "token")}


def test_each_platform_has_its_own_open311_desk(city: City, sqlite_context: Any) -> None:
    from qala.api import create_app
    from qala.components.requests311.open311 import DESK_KEY, Open311Desk

    create_app(context=city.context)
    desk = city.context.extras[DESK_KEY]
    create_app(context=city.context)  # another app on the same platform shares it
    assert city.context.extras[DESK_KEY] is desk
    other = Open311Desk.for_context(sqlite_context)
    assert other is not desk and other.intake is not desk.intake
    assert other.catalogue is not desk.catalogue
