"""The regional rating on official statistics: computed ranks and scores, the comparison with the
volunteer ranking (rank correlations checked against their formulas), the command and the page."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from tests.conftest import shared_file
from typer.testing import CliRunner

from qala.cli.main import app as cli
from qala.components.catalog.official import load_official
from qala.components.rating.regional import (
    build_regional,
    compare_ranks,
    reference_ranking,
)
from qala.runtime import Context

SHIPPED = Path(__file__).resolve().parents[3] / "src/qala/components/rating/data"


@pytest.fixture(scope="module")
def official_db(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A store with the official data loaded once for the module (a copy per test)."""
    from qala.settings import Settings

    folder = tmp_path_factory.mktemp("regional")
    path = folder / "official.sqlite"
    path.write_bytes(sqlite_template.read_bytes())
    context = Context.from_settings(Settings(database_url=f"sqlite:///{path}", secret_key="x"))
    load_official(context.database)
    context.database.dispose()
    return str(path)


@pytest.fixture
def official_context(official_db: str, tmp_path: Path) -> Context:
    from qala.settings import Settings

    path = tmp_path / "q.sqlite"
    path.write_bytes(Path(official_db).read_bytes())
    return Context.from_settings(Settings(database_url=f"sqlite:///{path}", secret_key="x"))


def test_regional_rating_ranks_the_twenty_places_on_official_values(official_context) -> None:
    from qala.components.catalog.calls import list_releases

    outcome, comparison = build_regional(official_context.database, replications=0)
    ranking = outcome.ranking()
    assert outcome.year == 2022 and len(ranking) == 20
    assert outcome.table.illustrative_share == 0
    # It read the official statistics' 2022 release (official values: the spec reads no other)
    # and the stored run names it.
    with official_context.database.session() as session:
        (release,) = [r for r in list_releases(session) if r["year"] == 2022]
    assert outcome.release == release["id"] and outcome.run_id is not None
    assert outcome.source is not None and outcome.source["kind"] == "release"
    assert sorted(outcome.table.data.columns[2:9]) == [
        "iso37120.11.1",
        "iso37120.5.1",
        "kz_bns.air_emissions_stationary_per_capita",
        "kz_bns.doctors_per_10000",
        "kz_bns.general_schools_per_10000",
        "kz_bns.grp_per_capita_kzt",
        "kz_bns.hospitals_per_10000",
    ]
    top = ranking.head(3)
    assert list(top.index) == ["north-kazakhstan-region", "astana", "almaty"]
    assert [round(s, 2) for s in top["score"]] == [59.89, 59.36, 58.24]
    assert list(ranking.tail(2).index) == ["ulytau-region", "pavlodar-region"]
    assert round(ranking.loc["pavlodar-region", "score"], 2) == 33.98

    # The correlations agree with their textbook formulas (no ties in either ranking).
    n = comparison.places
    assert n == 20
    d2 = sum(row["difference"] ** 2 for row in comparison.rows)
    assert comparison.spearman == pytest.approx(1 - 6 * d2 / (n * (n * n - 1)))
    assert round(comparison.spearman, 3) == 0.188
    pairs = [(row["ours"], row["theirs"]) for row in comparison.rows]
    concordant = sum(
        1 for i, (a, b) in enumerate(pairs) for c, d in pairs[i + 1 :] if (a - c) * (b - d) > 0
    )
    assert comparison.kendall == pytest.approx(
        (2 * concordant - n * (n - 1) / 2) / (n * (n - 1) / 2)
    )
    # The largest disagreement: North Kazakhstan, first here (schools per 10 000), 15th there.
    first = comparison.rows[0]
    assert (first["place"], first["ours"], first["theirs"]) == ("north-kazakhstan-region", 1, 15)
    assert first["strongest_area"] == "kz_regional.education"


def test_without_a_published_release_the_regional_rating_is_refused(context) -> None:
    from qala.core.errors import NotFoundError

    with pytest.raises(NotFoundError, match="no published release holds the kz_regional"):
        build_regional(context.database, replications=0)


def test_comparison_on_hand_made_rankings() -> None:
    reference = pd.DataFrame({"rank": [1, 2, 3, 4]}, index=["a", "b", "c", "d"])
    reversed_ = compare_ranks(pd.Series({"a": 4, "b": 3, "c": 2, "d": 1}), reference=reference)
    assert reversed_.spearman == pytest.approx(-1.0) and reversed_.kendall == pytest.approx(-1.0)
    assert [r["difference"] for r in reversed_.rows] == [3, -3, 1, -1]
    same = compare_ranks(pd.Series({"a": 1, "b": 2, "c": 3, "e": 9}), reference=reference)
    assert same.places == 3 and same.spearman == pytest.approx(1.0)


def test_reference_ranking_is_the_volunteer_file_mapped_to_places() -> None:
    reference = reference_ranking()
    assert len(reference) == 20
    assert reference.loc["almaty", "rank"] == 1 and reference.loc["ulytau-region", "rank"] == 20
    assert reference.loc["zhambyl-region", "printed"] == "Jambyl Region"


@pytest.mark.shared
def test_shipped_reference_is_the_shared_file_byte_for_byte() -> None:
    shared = shared_file("kz/odk_city_ranking_unofficial/raw/data__final_rating.csv")
    shipped = SHIPPED / "odk_final_rating.csv"
    digest = hashlib.sha256(shipped.read_bytes()).hexdigest()
    assert digest == hashlib.sha256(shared.read_bytes()).hexdigest()


def test_command_and_rating_page(official_context, monkeypatch: pytest.MonkeyPatch) -> None:
    from qala.api.app import create_app

    monkeypatch.setenv("QALA_DATABASE_URL", official_context.settings.database_url)
    result = CliRunner().invoke(cli, ["rating", "regional", "--replications", "20", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["replications"] == 20 and report["illustrative"] is False
    assert report["release"] is not None and report["source"]["kind"] == "release"
    assert round(report["comparison"]["spearman"], 3) == 0.188

    client = TestClient(create_app(official_context.settings, context=official_context))
    for language, title in (
        ("en", "Regional rating on official statistics"),
        ("ru", "Региональный рейтинг по официальной статистике"),
        ("kk", "Ресми статистика бойынша өңірлік рейтинг"),
    ):
        html = client.get(f"/rating?lang={language}", headers={"accept": "text/html"}).text
        assert title in html
        section = html[html.index('id="regional-official"') :]
        assert "0.19" in section[section.index('id="regional-correlation"') :][:400]
        assert "BNS labour statistics: unemployment rate by region" in section
        # The run names the release it read, with its data package.
        shown = section[section.index('id="regional-source"') :][:400]
        assert f'href="/api/v1/releases/{report["release"]}/datapackage.json"' in shown
        assert f"{report['release']} " in shown
    # Published releases are downloadable from the page.
    from qala.components.catalog.calls import load_demo_release

    number = load_demo_release(official_context.database)
    html = client.get("/rating?lang=ru", headers={"accept": "text/html"}).text
    assert "Открытые данные" in html
    assert f'href="/api/v1/releases/{number}/datapackage.json"' in html
    # Each release says how many values it holds (a count, not the dict method `values`).
    assert f"Выпуск {number} (2022, значений: 6)" in html
    assert "built-in method" not in html
