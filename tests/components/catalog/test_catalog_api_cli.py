"""The catalogue and places through the HTTP API and the command line."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from qala.api import create_app
from qala.settings import Settings


@pytest.fixture
def client(sqlite_url: str) -> TestClient:
    return TestClient(create_app(Settings(database_url=sqlite_url, secret_key="t")))


def test_places_api_gives_names_in_three_languages_and_monotown_status_by_year(
    client: TestClient,
) -> None:
    places = {p["code"]: p for p in client.get("/api/v1/places", params={"year": 2015}).json()}
    assert places["astana"]["name"] == {"kk": "Астана", "ru": "Астана", "en": "Astana"}
    assert places["astana"]["parent"] == "kz" and not places["astana"]["single_industry"]
    assert places["temirtau"]["single_industry"] and places["saran"]["single_industry"]
    later = {p["code"]: p for p in client.get("/api/v1/places", params={"year": 2025}).json()}
    assert not later["saran"]["single_industry"] and not later["tekeli"]["single_industry"]


def test_frameworks_and_indicators_api(client: TestClient) -> None:
    frameworks = {f["id"]: f for f in client.get("/api/v1/frameworks").json()}
    assert frameworks["kz_smart_city"]["purpose"] == "rating"
    tree = client.get("/api/v1/frameworks/kz_smart_city").json()["tree"]
    assert len(tree["children"]) >= 11
    found = client.get(
        "/api/v1/indicators", params={"q": "kz_sc.pb", "category": "participation"}
    ).json()
    assert {"kz_sc.pb.turnout", "kz_sc.pb.proposals_per_1000"} <= {i["id"] for i in found}
    assert client.get("/api/v1/indicators/no.such").status_code == 404


def test_data_check_and_import_over_http_need_an_analyst(client: TestClient) -> None:
    from qala.components.accounts.services import create_user, issue_token

    bad = b"place,indicator,year,value\nastana,kz_sc.pb.turnout,2024,140\n"
    files = {"file": ("turnout.csv", bad, "text/csv")}
    assert client.post("/api/v1/data/import", files=files).status_code == 401
    with client.app.state.context.database.transaction() as session:  # type: ignore[attr-defined]
        token = issue_token(
            session,
            create_user(session, username="analyst", password="analyst-pass", role="analyst"),
        )
    client.headers["Authorization"] = f"Bearer {token}"
    answer = client.post("/api/v1/data/check", files={"file": ("turnout.csv", bad, "text/csv")})
    assert answer.status_code == 200
    [problem] = answer.json()["problems"]
    assert (problem["file"], problem["row"], problem["column"], problem["code"]) == (
        "turnout.csv",
        2,
        "value",
        "out_of_range",
    )
    assert (
        client.post(
            "/api/v1/data/import", files={"file": ("turnout.csv", bad, "text/csv")}
        ).status_code
        == 422
    )
    good = bad.replace(b"140", b"14")
    assert (
        client.post(
            "/api/v1/data/import", files={"file": ("turnout.csv", good, "text/csv")}
        ).status_code
        == 200
    )
    values = client.get(
        "/api/v1/values", params={"place": "astana", "indicator": "kz_sc.pb.turnout"}
    ).json()
    assert [(v["year"], v["value"]) for v in values] == [(2024, 14.0)]


def test_catalog_and_places_commands(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from qala.cli.main import app

    monkeypatch.setenv("QALA_DATABASE_URL", sqlite_url)
    runner = CliRunner()
    shown = runner.invoke(app, ["catalog", "show", "kz_sc.pb.turnout", "--json"])
    assert shown.exit_code == 0 and json.loads(shown.output)["category"] == "participation"
    listed = runner.invoke(app, ["catalog", "list", "--framework", "wgi", "--json"])
    assert listed.exit_code == 0 and len(json.loads(listed.output)) == 12
    assert runner.invoke(app, ["catalog", "show", "nonsense"]).exit_code == 2
    places = json.loads(
        runner.invoke(app, ["places", "list", "--json", "--level", "region"]).output
    )
    assert len(places) == 17
