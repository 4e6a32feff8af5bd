"""The assessment on the store: readiness answers stored and written back, a whole assessment on
generated sample data with a hand-made imbalance, the API and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from qala.components.assessment import readiness as readiness_mod, services
from qala.components.catalog.sample import generate_sample
from qala.components.catalog.services import import_frame, values_frame
from qala.runtime import Context

HEALTH_INFRA = (
    "kz_sc.health.mis_connected_share",
    "kz_sc.health.paperless_clinics_share",
    "kz_sc.health.ambulance_gps_share",
)
HEALTH_SERVICE_ZERO = (
    "iso37122.11.1",
    "kz_sc.health.online_appointments_share",
    "kz_sc.health.e_prescriptions_share",
    "iso37122.11.2",
)


def test_readiness_answers_are_stored_and_become_catalogue_values(context: Context) -> None:
    sheet = readiness_mod.AnswerSheet(
        [
            readiness_mod.Answer("chourabi2012.people.digital_divide", 4, "libraries teach", "r1"),
            readiness_mod.Answer("chourabi2012.people.digital_divide", 2, "", "r2"),
            readiness_mod.Answer("chourabi2012.management.leadership", None),
        ],
        respondent="team",
    )
    response = services.submit_readiness(context.database, sheet, place="temirtau", year=2025)
    with context.database.session() as session:
        stored = services.stored_sheet(session, "temirtau", 2025)
        assert stored is not None and stored.source.startswith(f"questionnaire #{response}")
        answers = {a.item: (a.score, a.evidence) for a in stored.answers}
        assert answers["chourabi2012.people.digital_divide"] == (3.0, "libraries teach")
        assert answers["chourabi2012.management.leadership"] == (None, "")
        values = values_frame(session, places=["temirtau"], framework="chourabi2012")
        assert values[["indicator", "year", "value"]].values.tolist() == [
            ["chourabi2012.people.digital_divide", 2025, 3.0]
        ]
        # no stored questionnaire for 2024 and no values: the bundled sample, marked as such
        fallback = services.readiness_for(session, "temirtau", 2024)
        assert "ILLUSTRATIVE" in fallback.source and fallback.illustrative


@pytest.fixture
def sample_context(sqlite_context: Context) -> Context:
    frame = generate_sample(years=[2024, 2025], frameworks=("kz_smart_city", "iso37120"))
    # a hand-made imbalance: Temirtau's health systems all installed, its health services absent
    year = frame["year"] == 2025
    town = frame["place"] == "temirtau"
    frame.loc[year & town & frame["indicator"].isin(HEALTH_INFRA), "value"] = 100.0
    frame.loc[year & town & frame["indicator"].isin(HEALTH_SERVICE_ZERO), "value"] = 0.0
    minutes = frame["indicator"] == "kz_sc.health.ambulance_arrival_minutes"
    frame.loc[year & town & minutes, "value"] = 1000.0  # beyond any goalpost: clipped to 0
    import_frame(sqlite_context.database, frame, file="test:sample", illustrative=True)
    return sqlite_context


def test_assessment_of_a_town_with_systems_but_no_services(sample_context: Context) -> None:
    a = services.assess_place(sample_context.database, "Temirtau", budget=1500)
    assert a.place == "temirtau" and a.year == 2025 and a.single_industry and a.illustrative
    health = a.balance.table().loc["kz_sc.health"]
    # every infrastructure indicator at the top goalpost, every service one at the bottom
    assert health["infrastructure"] == pytest.approx(100.0)
    assert health["service"] == pytest.approx(0.0)
    assert health["imbalance"] == pytest.approx(100.0)
    assert bool(health["flag"])
    assert set(a.balance.trend) >= {"kz_sc.health", "overall"}
    health_maturity = next(m for m in a.maturity if m.domain == "kz_sc.health")
    assert health_maturity.level == 2  # systems installed, no services
    assert len(a.maturity) == 12
    assert a.roadmap.spent <= 1500 and a.roadmap.steps
    chosen = [s.action for s in a.roadmap.steps]
    for step in a.roadmap.steps:  # prerequisites come first
        assert all(chosen.index(d) < chosen.index(step.action) for d in step.depends_on)
    assert len(a.mentors.weak_areas) == 3
    for area, _ in a.mentors.weak_areas:
        assert len(a.mentors.mentors[area]) == 3
    json.dumps(a.as_dict(), default=str)  # serialisable for the API


def test_api_and_cli(
    sample_context: Context, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from qala.api.app import create_app
    from qala.cli.main import app
    from qala.components.accounts.services import create_user, issue_token

    settings = sample_context.settings
    with sample_context.database.transaction() as session:
        token = issue_token(
            session,
            create_user(session, username="oper", password="pw-123456-steppe", role="operator"),
        )
    client = TestClient(create_app(settings))
    form = client.get("/api/v1/assessment/readiness/questionnaire", params={"lang": "ru"}).json()
    assert len(form["clusters"]) == 8
    body = {
        "place": "rudny",
        "year": 2025,
        "answers": {"chourabi2012.people.digital_divide": {"score": 5, "evidence": "x"}},
    }
    assert client.post("/api/v1/assessment/readiness", json=body).status_code == 401
    sent = client.post(
        "/api/v1/assessment/readiness", json=body, headers={"Authorization": f"Bearer {token}"}
    )
    assert sent.status_code == 201, sent.text
    people = next(c for c in sent.json()["clusters"] if c["code"] == "chourabi2012.people")
    assert people["item_scores"]["chourabi2012.people.digital_divide"] == 100.0
    bad = dict(body, answers={"nope": {"score": 3}})
    assert (
        client.post(
            "/api/v1/assessment/readiness", json=bad, headers={"Authorization": f"Bearer {token}"}
        ).status_code
        == 422
    )
    place = client.get("/api/v1/assessment/places/temirtau", params={"budget": 500}).json()
    assert place["roadmap"]["spent"] <= 500
    csv = client.get("/api/v1/assessment/places/temirtau/roadmap.csv").text
    assert csv.startswith("position,action")
    assert (
        client.get("/api/v1/assessment/cases", params={"city": "astana"}).json()[0]["action"]
        == "unified_contact_centre"
    )
    wrong = client.post(
        "/api/v1/assessment/stakeholders",
        json={"csv": "group,respondent,area,points\nresidents,r1,parks,10\n"},
    )
    assert wrong.status_code == 422 and "unknown area" in wrong.text
    groups_api = client.post(
        "/api/v1/assessment/stakeholders",
        json={
            "csv": "group,respondent,area,points\nresidents,r1,health,70\nresidents,r1,ecology,30\n"
        },
    ).json()
    assert groups_api["weights"]["residents"]["kz_sc.health"] == pytest.approx(70.0)
    assert groups_api["illustrative"] is True  # the values are generated sample data
    overview = client.get("/api/v1/assessment/balance").json()
    assert overview["year"] == 2025 and len(overview["places"]) > 20

    monkeypatch.setenv("QALA_DATABASE_URL", settings.database_url)
    runner = CliRunner()
    result = runner.invoke(app, ["assess", "temirtau", "--json", "--budget", "800"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["roadmap"]["spent"] <= 800
    shown = runner.invoke(app, ["assess", "temirtau"])
    assert "infrastructure without services or participation" in shown.stdout
    assert "Mentors" in shown.stdout
    groups = runner.invoke(app, ["assess", "stakeholders", "--json"])
    assert groups.exit_code == 0, groups.output
    payload = json.loads(groups.stdout)
    assert set(payload["priorities"]) == {"officials", "businesses", "residents"}
    assert payload["illustrative"] is True
    goals = tmp_path / "goals.csv"
    goals.write_text("indicator,target\niso37120.5.1,0\n", encoding="utf-8")
    gaps = runner.invoke(app, ["assess", "gaps", "temirtau", "--goals", str(goals), "--json"])
    assert gaps.exit_code == 0, gaps.output
    unemployment = next(g for g in json.loads(gaps.stdout) if g["indicator"] == "iso37120.5.1")
    assert unemployment["target"] == 0.0 and unemployment["target_source"] == "user goal"
    assert unemployment["shortfall"] == pytest.approx(unemployment["value"])  # lower is better
    goals.write_text("indicator,target\niso37120.5.1,lots\n", encoding="utf-8")
    bad_goals = runner.invoke(app, ["assess", "gaps", "temirtau", "--goals", str(goals)])
    assert bad_goals.exit_code == 2
    template = runner.invoke(app, ["assess", "questionnaire", "--lang", "kk"])
    assert template.exit_code == 0 and "chourabi2012.people.digital_divide" in template.stdout
    ranks = pd.DataFrame(payload["ranks"])
    assert (ranks["nominal"] >= 1).all()


def test_cached_panel_follows_the_stored_values_and_hands_out_copies(
    sample_context: Context,
) -> None:
    from qala.components.assessment.panel import cached_panel, load_panel

    indicator = "kz_sc.health.mis_connected_share"
    with sample_context.database.session() as session:
        first = cached_panel(session)
        built = load_panel(session)
    pd.testing.assert_frame_equal(first.values, built.values)
    first.values.loc[("temirtau", 2025), indicator] = -1.0  # the caller's own copy
    with sample_context.database.session() as session:
        again = cached_panel(session)
    assert again.values.loc[("temirtau", 2025), indicator] == 100.0
    # A new import changes the data version: the next panel has the new value.
    changed = pd.DataFrame(
        [{"place": "temirtau", "indicator": indicator, "year": 2025, "value": 42.0}]
    )
    import_frame(sample_context.database, changed, file="test:update", illustrative=True)
    with sample_context.database.session() as session:
        after = cached_panel(session)
    assert after.values.loc[("temirtau", 2025), indicator] == 42.0
