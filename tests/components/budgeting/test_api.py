"""The HTTP API: who may do what, and a process from proposal to results over HTTP."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select
from tests.components.budgeting.conftest import KEY, NOW, iin

from qala.components.accounts.identity import bind_identity
from qala.components.accounts.models import User

API = "/api/v1/budgeting"


def process_body() -> dict[str, Any]:
    return {
        "code": "astana-2026",
        "place_code": "astana",
        "title": {"kk": "Қатысу бюджеті", "ru": "Бюджет участия", "en": "Participatory budget"},
        "budget": 100_000_000,
        "proposals_open_at": (NOW - timedelta(days=1)).isoformat(),
        "proposals_close_at": (NOW + timedelta(days=10)).isoformat(),
        "review_close_at": (NOW + timedelta(days=20)).isoformat(),
        "voting_open_at": (NOW + timedelta(days=21)).isoformat(),
        "voting_close_at": (NOW + timedelta(days=35)).isoformat(),
        "max_choices": 2,
        "rule": "mes",
        "completion": "add1",
    }


def test_a_process_over_http_with_roles(api: Any) -> None:
    http, town, h = api
    assert http.post(f"{API}/processes", json=process_body()).status_code == 401
    assert (
        http.post(f"{API}/processes", json=process_body(), headers=h["aigerim"]).status_code == 403
    )
    created = http.post(f"{API}/processes", json=process_body(), headers=h["akimat"])
    assert created.status_code == 201, created.text
    unregistered = http.post(
        f"{API}/processes/astana-2026/proposals",
        headers=h["aigerim"],
        json={"title": {"ru": "Проект"}, "estimated_cost": 1_000},
    )
    assert unregistered.status_code == 403 and "register as a voter" in unregistered.text
    registered = http.post(
        f"{API}/processes/astana-2026/voters", headers=h["aigerim"], json={"iin": iin(1)}
    )
    assert registered.status_code == 200, registered.text
    for k, cost in enumerate([40_000_000, 30_000_000, 50_000_000]):
        made = http.post(
            f"{API}/processes/astana-2026/proposals",
            headers=h["aigerim"],
            json={"title": {"ru": f"Проект {k}"}, "estimated_cost": cost},
        )
        assert made.status_code == 201 and "author" not in made.json()
    assert (
        http.post(
            f"{API}/processes/astana-2026/proposals",
            headers=h["analyst"],
            json={"title": "x", "estimated_cost": 1},
        ).status_code
        == 403
    )
    town.clock.set(NOW + timedelta(days=11))
    assert (
        http.post(
            f"{API}/processes/astana-2026/advance",
            headers=h["aigerim"],
            json={"to_phase": "review"},
        ).status_code
        == 403
    )
    assert (
        http.post(
            f"{API}/processes/astana-2026/advance", headers=h["akimat"], json={"to_phase": "review"}
        ).status_code
        == 200
    )
    for code in ("P01", "P02", "P03"):
        reviewed = http.post(
            f"{API}/processes/astana-2026/proposals/{code}/review",
            headers=h["akimat"],
            json={"feasible": code != "P03", "reason": "checked on site"},
        )
        assert reviewed.status_code == 200, reviewed.text
    town.clock.set(NOW + timedelta(days=22))
    skipped = http.post(
        f"{API}/processes/astana-2026/advance", headers=h["akimat"], json={"to_phase": "results"}
    )
    assert skipped.status_code == 409 and "can only move to `voting`" in skipped.json()["detail"]
    http.post(
        f"{API}/processes/astana-2026/advance", headers=h["akimat"], json={"to_phase": "voting"}
    )

    ballot = http.post(
        f"{API}/processes/astana-2026/ballots",
        headers=h["aigerim"],
        json={"iin": iin(1), "choices": ["P01", "P02"]},
    )
    assert ballot.status_code == 201, ballot.text
    receipt = ballot.json()["receipt"]
    again = http.post(
        f"{API}/processes/astana-2026/ballots",
        headers=h["aigerim"],
        json={"iin": iin(1), "choices": ["P01"]},
    )
    assert again.status_code == 409 and "already voted" in again.json()["detail"]
    bad = http.post(
        f"{API}/processes/astana-2026/ballots",
        headers=h["nurlan"],
        json={"iin": "900517401232", "choices": ["P01"]},
    )
    assert bad.status_code == 422
    assert (
        bad.json()["problems"][0]["column"] == "iin"
        and "check digit" in bad.json()["problems"][0]["reason"]
    )
    over = http.post(
        f"{API}/processes/astana-2026/ballots",
        headers=h["nurlan"],
        json={"iin": iin(2), "choices": ["P01", "P02", "P03"]},
    )
    assert over.status_code == 422 and "choose at most 2" in over.text
    assert (
        http.post(
            f"{API}/processes/astana-2026/ballots",
            headers=h["nurlan"],
            json={"iin": iin(2), "choices": ["P02"]},
        ).status_code
        == 201
    )
    revised = http.post(
        f"{API}/processes/astana-2026/ballots",
        headers=h["aigerim"],
        json={"iin": iin(1), "choices": ["P01"], "receipt": receipt},
    )
    assert revised.status_code == 201 and revised.json()["revised"] is True
    assert http.post(
        f"{API}/processes/astana-2026/ballots/check", json={"receipt": receipt}
    ).json()["projects"] == ["P01"]
    assert http.get(f"{API}/processes/astana-2026/results").status_code == 404
    assert http.get(f"{API}/processes/astana-2026/export.pb").status_code == 409

    town.clock.set(NOW + timedelta(days=36))
    events: list[Any] = []
    town.context.bus.subscribe("budgeting.phase_changed", events.append)
    http.post(
        f"{API}/processes/astana-2026/advance", headers=h["akimat"], json={"to_phase": "results"}
    )
    assert [e.payload for e in events] == [{"process": "astana-2026", "phase": "results"}]
    results = http.get(f"{API}/processes/astana-2026/results").json()
    assert results["ballots"] == 2 and set(results["selected"]) == {"P01", "P02"}
    assert all(p["reason"] for p in results["projects"])
    # Typed-in IINs (the declared verifier): the results say they are unverified, in each language.
    assert results["verifier"] == "declared" and results["unverified"] is True
    for language, label in [("en", "Unverified"), ("ru", "Не проверено"), ("kk", "Тексерілмеген")]:
        page = http.get("/budgeting/astana-2026", params={"lang": language})
        assert 'id="results-unverified"' in page.text and label in page.text
    exported = http.get(f"{API}/processes/astana-2026/export.pb")
    assert exported.status_code == 200 and exported.text.startswith("META")
    info = http.get(f"{API}/processes/astana-2026").json()
    assert info["phase"] == "results" and info["ballots_cast"] == 2
    assert http.get(f"{API}/processes").json()[0]["code"] == "astana-2026"

    http.post(
        f"{API}/processes/astana-2026/advance",
        headers=h["akimat"],
        json={"to_phase": "implementation"},
    )
    tracked = http.get(f"{API}/projects", params={"process": "astana-2026"}).json()
    assert sorted(p["code"] for p in tracked) == ["astana-2026-p01", "astana-2026-p02"]
    assert http.get(f"{API}/ledger/verify").json()["ok"] is True


def test_projects_consultations_and_indicators_by_role(api: Any) -> None:
    http, town, h = api
    body = {
        "code": "led-1",
        "place_code": "astana",
        "title": {"en": "LED"},
        "budget": 1_000_000,
        "planned_end": "2026-02-20",
    }
    assert http.post(f"{API}/projects", json=body, headers=h["aigerim"]).status_code == 403
    assert http.post(f"{API}/projects", json=body, headers=h["akimat"]).status_code == 201
    paid = http.post(
        f"{API}/projects/led-1/payments",
        headers=h["akimat"],
        json={"paid_on": "2026-02-01", "amount": 900_000, "payee": "TOO Svet"},
    )
    assert paid.status_code == 201
    risk = http.post(
        f"{API}/projects/led-1/risks",
        headers=h["akimat"],
        json={"risk": "supply", "likelihood": 2, "impact": 5, "owner": "energy"},
    )
    assert risk.status_code == 201
    assert (
        http.patch(
            f"{API}/projects/led-1/risks/{risk.json()['id']}",
            headers=h["akimat"],
            json={"mitigation": "second supplier"},
        ).status_code
        == 200
    )
    early = http.post(f"{API}/projects/led-1/ratings", headers=h["aigerim"], json={"stars": 5})
    assert early.status_code == 409
    assert (
        http.patch(
            f"{API}/projects/led-1",
            headers=h["akimat"],
            json={"status": "delivered", "actual_end": "2026-02-18"},
        ).status_code
        == 200
    )
    assert (
        http.post(
            f"{API}/projects/led-1/ratings", headers=h["aigerim"], json={"stars": 5}
        ).status_code
        == 200
    )
    assert (
        http.post(
            f"{API}/projects/led-1/ratings", headers=h["aigerim"], json={"stars": 6}
        ).status_code
        == 422
    )
    detail = http.get(f"{API}/projects/led-1").json()
    assert (detail["paid"], detail["rating"], detail["late"]) == (900_000, 5.0, False)
    assert detail["risks"][0]["mitigation"] == "second supplier"

    consultation = {
        "code": "roads-2026",
        "place_code": "astana",
        "title": {"ru": "Дороги"},
        "opens_at": NOW.isoformat(),
        "closes_at": (NOW + timedelta(days=5)).isoformat(),
        "questions": [{"key": "idea", "kind": "text", "text": {"ru": "Идея"}}],
    }
    assert (
        http.post(f"{API}/consultations", json=consultation, headers=h["akimat"]).status_code == 201
    )
    answer = {"answers": {"idea": "my flat number is 12"}}
    unbound = http.post(
        f"{API}/consultations/roads-2026/responses", headers=h["nurlan"], json=answer
    )
    assert unbound.status_code == 403 and "once per person" in unbound.text
    with town.context.database.transaction() as session:
        nurlan = session.scalar(select(User.id).where(User.username == "nurlan"))
        bind_identity(session, nurlan, iin(9), method="declared", secret_key=KEY, now=NOW)
    assert (
        http.post(
            f"{API}/consultations/roads-2026/responses", headers=h["nurlan"], json=answer
        ).status_code
        == 200
    )
    public = http.get(f"{API}/consultations/roads-2026/results").json()
    staff = http.get(f"{API}/consultations/roads-2026/results", headers=h["akimat"]).json()
    assert public["questions"][0]["texts"] == [] and public["questions"][0]["answered"] == 1
    assert staff["questions"][0]["texts"] == ["my flat number is 12"]
    assert (
        http.post(f"{API}/consultations/roads-2026/comments", json={"text": "hi"}).status_code
        == 401
    )

    assert http.get(f"{API}/indicators", headers=h["aigerim"]).status_code == 403
    rows = http.get(f"{API}/indicators", headers=h["analyst"]).json()
    assert {r["indicator"] for r in rows} == {
        "kz_sc.projects.on_time_share",
        "kz_sc.projects.on_budget_share",
        "kz_sc.projects.satisfaction",
    }
    assert http.post(f"{API}/indicators", headers=h["analyst"]).status_code == 403
    assert http.post(f"{API}/indicators", headers=h["admin"]).json() == {"rows_written": 3}
