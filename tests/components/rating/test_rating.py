"""The rating component: spec files, ratings built from stored values (hand-worked), filters,
stored runs, API and the store mode of `qala index build`."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from qala.components.catalog.frameworks import load_catalogue
from qala.components.catalog.services import import_frame
from qala.components.rating import services
from qala.core.errors import ValidationError
from qala.engines.index import IndexSpec, uncertainty_section
from qala.runtime import Context

# A tiny method over the Chourabi framework: 8 clusters × 4 statements, all "higher is better",
# every weight 1, so scores can be worked out by hand.
HAND_SPEC = """
store: {framework: chourabi2012, min_coverage: 0.5}
index:
  name: hand
  data: {unit_column: place, time_column: year, name_column: name}
  steps:
    - {step: normalise, method: minmax, params: {low: 0.0, high: 100.0}}
    - {step: aggregate, method: arithmetic}
uncertainty:
  replications: 40
  seed: 3
  assumptions:
    - {name: Weights, weights_noise: {2: 0.25}}
    - {name: Aggregation, step: aggregate, parameter: method, values: [arithmetic, geometric]}
"""


def hand_values(year: int = 2025) -> pd.DataFrame:
    """aksu (single-industry): management statements 5, the rest 1; pavlodar (city): all 3;
    arkalyk (single-industry): all 2."""
    items = load_catalogue().framework("chourabi2012").indicator_ids()
    rows = []
    for item in items:
        management = item.startswith("chourabi2012.management.")
        rows.append(("aksu", item, year, 5.0 if management else 1.0))
        rows.append(("pavlodar", item, year, 3.0))
        rows.append(("arkalyk", item, year, 2.0))
    frame = pd.DataFrame(rows, columns=["place", "indicator", "year", "value"])
    frame["source"] = "test"
    frame["note"] = ""
    return frame


def publish_hand(database: object, year: int = 2025) -> int:
    """The hand-made values published as a release through a data call (a stored run names the
    release it read); returns the release number."""
    from qala.components.catalog.calls import publish_import

    frame = hand_values(year).assign(evidence="test: hand-made values")
    with database.transaction() as session:  # type: ignore[attr-defined]
        release = publish_import(
            session,
            frame[["place", "indicator", "value", "evidence"]],
            year=year,
            title=f"hand-made values {year}",
            actor="test: rating team",
        )
    assert release is not None
    return release.number


@pytest.fixture
def hand_context(context: Context) -> Context:
    import_frame(context.database, hand_values(), file="test:hand")
    return context


def test_national_spec_reads_in_store_and_file_mode() -> None:
    spec = services.national_spec()
    assert spec.store == services.StoreSource("kz_smart_city", "city", 0.5)
    assert spec.name == "kz_smart_city"
    assert [s.kind for s in spec.spec.steps] == [
        "screen",
        "impute",
        "treat",
        "normalise",
        "aggregate",
    ]
    # the engine's own reader (file mode) sees the same recipe and the uncertainty block
    text = services.NATIONAL_SPEC.read_text(encoding="utf-8")
    assert IndexSpec.from_text(text) == spec.spec
    block = uncertainty_section(text)
    assert block is not None and len(block["assumptions"]) == 4


def test_spec_errors_name_the_field() -> None:
    with pytest.raises(ValidationError) as info:
        services.read_spec_text("store: {framwork: x}\nindex: {steps: []}", file="bad.yaml")
    assert info.value.problems[0].column == "store.framwork"
    assert info.value.problems[0].file == "bad.yaml"
    with pytest.raises(ValidationError):
        services.read_spec_text("store: {min_coverage: 2}\nindex: {steps: []}")


def test_hand_worked_rating_from_the_store(hand_context: Context) -> None:
    number = publish_hand(hand_context.database)
    outcome = services.build_rating(
        hand_context.database, services.read_spec_text(HAND_SPEC), save=True, release=number
    )
    root = outcome.result.root
    scores = outcome.result.scores[root]
    # management: aksu 5 → 100, pavlodar 3 → 33.3, arkalyk 2 → 0; other clusters: aksu 1 → 0,
    # pavlodar 3 → 100, arkalyk 2 → 50; the index is the mean of eight equal clusters.
    assert scores["aksu"] == pytest.approx(100 / 8)
    assert scores["pavlodar"] == pytest.approx((100 / 3 + 7 * 100) / 8)
    assert scores["arkalyk"] == pytest.approx(7 * 50 / 8)
    ranking = outcome.ranking()
    assert list(ranking.index) == ["pavlodar", "arkalyk", "aksu"]
    assert list(ranking["rank"]) == [1, 2, 3]
    assert (ranking["rank_q05"] <= ranking["rank_median"]).all()
    assert (ranking["rank_median"] <= ranking["rank_q95"]).all()
    assert outcome.uncertainty is not None and outcome.uncertainty.runs == 40
    assert not outcome.illustrative
    assert outcome.year == 2025
    payload = outcome.to_json_dict()
    assert payload["release"] == number and payload["source"]["kind"] == "release"
    assert payload["source"]["datapackage"] == f"/api/v1/releases/{number}/datapackage.json"
    assert set(payload["rank_intervals"]) == {"aksu", "pavlodar", "arkalyk"}
    assert payload["ranks"]["pavlodar"][root] == 1

    with hand_context.database.session() as session:
        run = services.get_run(session, outcome.run_id or 0)
        assert run.spec_text == HAND_SPEC  # stored with the spec that made it
        entries = services.run_entries(session, run)
        assert [(e.place, e.rank) for e in entries] == [
            ("pavlodar", 1),
            ("arkalyk", 2),
            ("aksu", 3),
        ]
        mono = services.run_entries(session, run, kind="single_industry")
        assert [(e.place, e.rank, e.rank_in_selection) for e in mono] == [
            ("arkalyk", 2, 1),
            ("aksu", 3, 2),
        ]
        region = services.run_entries(session, run, region="pavlodar-region")
        assert [e.place for e in region] == ["pavlodar", "aksu"]
        assert region[0].areas["chourabi2012.management"]["score"] == pytest.approx(100 / 3)


def test_a_saved_rating_is_announced(hand_context: Context) -> None:
    from qala.events import Event

    seen: list[Event] = []
    hand_context.bus.subscribe("rating.built", seen.append)
    outcome = services.build_rating(
        hand_context.database,
        services.read_spec_text(HAND_SPEC),
        replications=0,
        bus=hand_context.bus,
        release=publish_hand(hand_context.database),
    )
    assert [e.payload for e in seen] == [
        {
            "run_id": outcome.run_id,
            "name": "hand",
            "year": 2025,
            "kind": None,
            "region": None,
            "illustrative": False,
        }
    ]


def test_filters_rank_within_the_selection(hand_context: Context) -> None:
    spec = services.read_spec_text(HAND_SPEC)
    mono = services.build_rating(
        hand_context.database, spec, kind="single_industry", replications=0, save=False
    )
    # only aksu and arkalyk: management aksu 100, arkalyk 0; the others aksu 0, arkalyk 100
    scores = mono.result.scores[mono.result.root]
    assert scores.to_dict() == pytest.approx({"aksu": 12.5, "arkalyk": 87.5})
    region = services.build_rating(
        hand_context.database, spec, region="pavlodar-region", replications=0, save=False
    )
    assert region.result.scores[region.result.root].to_dict() == pytest.approx(
        {"aksu": 12.5, "pavlodar": 87.5}
    )
    with pytest.raises(ValidationError):
        services.build_rating(hand_context.database, spec, kind="village", save=False)


def test_a_stored_run_on_live_unpublished_values_is_refused(hand_context: Context) -> None:
    """Hand-made (reported, not illustrative) values in the live store: a preview is built and
    labelled as what it read, a stored run is refused with how to publish, nothing is stored."""
    from qala.components.rating.models import RatingRun
    from qala.core.errors import ConflictError

    spec = services.read_spec_text(HAND_SPEC)
    preview = services.build_rating(hand_context.database, spec, replications=0, save=False)
    assert preview.run_id is None and preview.source == {
        "kind": "live",
        "release": None,
        "note": "the store's live values, not a published release",
    }
    with pytest.raises(ConflictError, match="names the published release it read") as refused:
        services.build_rating(hand_context.database, spec, replications=0)
    assert "qala releases publish" in str(refused.value) and "--no-save" in str(refused.value)
    with pytest.raises(ConflictError), hand_context.database.transaction() as session:
        services.save_outcome(session, preview)  # the store's own guard, past build_rating
    with hand_context.database.session() as session:
        assert session.scalars(select(RatingRun)).all() == []


def test_illustrative_values_make_an_illustrative_rating(context: Context) -> None:
    frame = hand_values()
    import_frame(context.database, frame, file="test:sample", illustrative=True)
    outcome = services.build_rating(
        context.database, services.read_spec_text(HAND_SPEC), replications=0, save=True
    )
    assert outcome.illustrative
    assert outcome.warnings[0].startswith("ILLUSTRATIVE: 100%")
    # Stored without a release, and labelled so: illustrative sample values, no release.
    assert outcome.warnings[0].endswith("; not a published release")
    with context.database.session() as session:
        (summary,) = services.list_runs(session)
        assert summary.illustrative and summary.illustrative_share == pytest.approx(1.0)
        assert summary.release is None and summary.source == {
            "kind": "illustrative",
            "release": None,
            "note": "illustrative sample values, not a published release",
        }


def test_latest_year_skips_a_year_with_too_few_values(context: Context) -> None:
    import_frame(context.database, hand_values(2024), file="test:2024")
    lone = hand_values(2025)
    import_frame(context.database, lone[lone["place"] == "aksu"], file="test:2025")
    outcome = services.build_rating(
        context.database, services.read_spec_text(HAND_SPEC), replications=0, save=False
    )
    assert outcome.year == 2024  # 2025 has one place only: nothing to rank


def test_api_reads_publicly_and_builds_for_analysts(sqlite_url: str) -> None:
    from qala.api.app import create_app
    from qala.components.accounts.services import create_user, issue_token
    from qala.settings import Settings

    settings = Settings(database_url=sqlite_url, secret_key="t")
    ctx = Context.from_settings(settings)
    import_frame(ctx.database, hand_values(), file="test:hand")
    number = publish_hand(ctx.database)
    with ctx.database.transaction() as session:
        services.save_spec(session, HAND_SPEC, name="hand")
        token = issue_token(
            session,
            create_user(session, username="ana", password="pw-123456-steppe", role="analyst"),
        )
    client = TestClient(create_app(settings))
    assert client.post("/api/v1/rating/runs", json={"spec": "hand"}).status_code == 401
    # Live values that are neither published nor illustrative: refused, nothing stored.
    live = client.post(
        "/api/v1/rating/runs",
        json={"spec": "hand", "replications": 0},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert live.status_code == 409, live.text
    assert "qala releases publish" in live.text
    assert client.get("/api/v1/rating/runs").json() == []
    built = client.post(
        "/api/v1/rating/runs",
        json={"spec": "hand", "replications": 20, "release": number},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert built.status_code == 201, built.text
    run_id = built.json()["run_id"]
    shown = client.get(f"/api/v1/rating/runs/{run_id}", params={"kind": "single_industry"}).json()
    assert [e["place"] for e in shown["entries"]] == ["arkalyk", "aksu"]
    # The run's answer names the release it read: number, publication date, data package.
    assert shown["release"] == number
    assert shown["source"]["kind"] == "release" and shown["source"]["published_at"]
    assert shown["source"]["datapackage"] == f"/api/v1/releases/{number}/datapackage.json"
    latest = client.get("/api/v1/rating/latest", params={"name": "hand"}).json()
    assert latest["id"] == run_id and latest["entries"][0]["place"] == "pavlodar"
    history = client.get("/api/v1/rating/places/pavlodar", params={"name": "hand"}).json()
    assert history["history"][0]["rank"] == 1
    assert client.get("/api/v1/rating/specs/default").json()["name"] == "kz_smart_city"
    assert client.get("/api/v1/rating/runs/999").status_code == 404


@pytest.fixture
def hand_spec_on_store(sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The hand-made values in a store the CLI opens (QALA_DATABASE_URL), and their spec file."""
    from qala.settings import Settings

    ctx = Context.from_settings(Settings(database_url=sqlite_url))
    import_frame(ctx.database, hand_values(), file="test:hand")
    assert publish_hand(ctx.database) == 1
    spec = tmp_path / "hand.yaml"
    spec.write_text(HAND_SPEC, encoding="utf-8")
    monkeypatch.setenv("QALA_DATABASE_URL", sqlite_url)
    return spec


def test_index_build_store_mode_and_file_mode_guard(
    hand_spec_on_store: Path, tmp_path: Path
) -> None:
    from qala.cli.main import app

    spec = hand_spec_on_store
    runner = CliRunner()
    refused = runner.invoke(app, ["index", "build", str(spec), "--json", "-n", "20"])
    assert refused.exit_code != 0 and "qala releases publish" in refused.output
    result = runner.invoke(
        app, ["index", "build", str(spec), "--json", "-n", "20", "--release", "1"]
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["ranks"]["pavlodar"]["chourabi2012"] == 1
    assert payload["scores"]["aksu"]["chourabi2012"] == pytest.approx(12.5)
    assert set(payload["rank_intervals"]["aksu"]) == {"nominal", "median", "q05", "q95"}
    assert payload["illustrative"] is False
    # file mode needs both files
    data = tmp_path / "d.csv"
    data.write_text("uCode,x\nA,1\n", encoding="utf-8")
    half = runner.invoke(app, ["index", "build", str(spec), "--data", str(data)])
    assert half.exit_code == 2
    shown = runner.invoke(app, ["rating", "show", "--json"])
    assert shown.exit_code != 0  # the only run is named `hand`, not the national rating
    runs = runner.invoke(app, ["rating", "runs", "--json"])
    assert json.loads(runs.stdout)[0]["name"] == "hand"


def test_single_industry_kind_is_read_for_the_year(context: Context) -> None:
    """Saran was on the single-industry list until 2023: a monotown in 2023, a city in 2024."""
    frames = []
    for year in (2023, 2024):
        frame = hand_values(year)
        saran = frame[frame["place"] == "arkalyk"].assign(place="saran")
        frames.append(pd.concat([frame, saran]))
    import_frame(context.database, pd.concat(frames), file="test:saran")
    spec = services.read_spec_text(HAND_SPEC)
    in_2023 = services.build_rating(
        context.database, spec, year=2023, kind="single_industry", replications=0, save=False
    )
    assert sorted(in_2023.result.scores.index) == ["aksu", "arkalyk", "saran"]
    in_2024 = services.build_rating(
        context.database, spec, year=2024, kind="single_industry", replications=0, save=False
    )
    assert sorted(in_2024.result.scores.index) == ["aksu", "arkalyk"]
    cities = services.build_rating(
        context.database, spec, year=2024, kind="city", replications=0, save=False
    )
    assert sorted(cities.result.scores.index) == ["pavlodar", "saran"]


def test_national_rating_on_generated_sample(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`qala index build` with no spec and no files: the national rating with rank intervals,
    flagged illustrative because the sample values are."""
    from qala.cli.main import app
    from qala.components.catalog.sample import generate_sample
    from qala.settings import Settings

    ctx = Context.from_settings(Settings(database_url=sqlite_url))
    frame = generate_sample(years=[2024, 2025], frameworks=("kz_smart_city",))
    import_frame(ctx.database, frame, file="test:sample", illustrative=True)
    monkeypatch.setenv("QALA_DATABASE_URL", sqlite_url)
    runner = CliRunner()
    result = runner.invoke(app, ["index", "build", "--json", "-n", "30", "--no-save"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    cities = set(frame["place"])
    assert set(payload["ranks"]) == cities and payload["year"] == 2025
    assert payload["illustrative"] is True and payload["replications"] == 30
    assert payload["warnings"][0].startswith("ILLUSTRATIVE")
    for stats in payload["rank_intervals"].values():
        assert 1 <= stats["q05"] <= stats["median"] <= stats["q95"] <= len(cities)
    ranks = sorted(r["kz_smart_city"] for r in payload["ranks"].values())
    assert ranks == list(range(1, len(cities) + 1))
    mono = runner.invoke(app, ["rating", "build", "--kind", "single_industry", "-n", "0", "--json"])
    assert mono.exit_code == 0, mono.output
    mono_payload = json.loads(mono.stdout)
    assert 0 < len(mono_payload["ranks"]) < len(cities)
    assert "temirtau" in mono_payload["ranks"] and "astana" not in mono_payload["ranks"]


def test_index_results_audit_uncertainty_and_compare_in_store_mode(
    hand_spec_on_store: Path,
) -> None:
    from qala.cli.main import app

    spec = hand_spec_on_store
    runner = CliRunner()
    built = runner.invoke(app, ["index", "build", str(spec), "--json", "--no-save", "-n", "0"])
    assert built.exit_code == 0, built.output
    scores = json.loads(built.stdout)["scores"]
    # `results` on the same stored values gives the same scores as `build`.
    results = runner.invoke(app, ["index", "results", str(spec), "--json"])
    assert results.exit_code == 0, results.output
    table = json.loads(results.stdout)
    assert table["aksu"]["chourabi2012"] == pytest.approx(scores["aksu"]["chourabi2012"])
    assert set(table) == set(scores)
    audit = runner.invoke(app, ["index", "audit", str(spec), "--json"])
    assert audit.exit_code == 0, audit.output
    assert json.loads(audit.stdout)["spec"]["name"] == "hand"
    intervals = runner.invoke(app, ["index", "uncertainty", str(spec), "-n", "20", "--json"])
    assert intervals.exit_code == 0, intervals.output
    assert json.loads(intervals.stdout)["runs"] == 20
    same = runner.invoke(app, ["index", "compare", str(spec), str(spec), "--json"])
    assert same.exit_code == 0, same.output
    assert all(row["diff"] == 0 for row in json.loads(same.stdout).values())
    # A year with no stored values is named as such.
    missing = runner.invoke(app, ["index", "results", str(spec), "--year", "1990"])
    assert missing.exit_code == 2 and "1990" in missing.output
