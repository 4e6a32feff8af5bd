"""The what-if rating and the analysis views through the ASGI app: results equal the stored
rating at the official settings, links reproduce views, bad settings are 422 naming the field,
only analysts save variants (and a saved variant builds the same scores), three languages."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import numpy as np
import pytest
from fastapi.testclient import TestClient
from tests.web.conftest import load_small_demo
from tests.web.test_pages import client_for, csrf, signed_in

from qala.core.errors import ValidationError
from qala.runtime import Context
from qala.settings import Settings


@pytest.fixture(scope="module")
def site(
    sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Context, object]]:
    from qala.api.app import create_app

    folder = tmp_path_factory.mktemp("analysis")
    shutil.copy(sqlite_template, folder / "qala.sqlite")
    settings = Settings(database_url=f"sqlite:///{folder / 'qala.sqlite'}", secret_key="analysis")
    context = Context.from_settings(settings)
    app = create_app(settings, context=context)
    load_small_demo(context, replications=5, budgeting=False, years=2)
    yield context, app
    context.database.dispose()


def api(site: tuple[Context, object]) -> TestClient:
    return TestClient(site[1], headers={"accept": "application/json"})  # type: ignore[arg-type]


def table_rows(html: str) -> list[tuple[str, str, str]]:
    """(rank, place code, score) of each row of the what-if table."""
    body = html.split('id="whatif-table"', 1)[1].split("</table>", 1)[0]
    return re.findall(
        r'<tr data-unit="([^"]+)">\s*<td class="num rank">(\d+)</td>.*?<td class="num">([\d.,\s]+)</td>',
        body,
        flags=re.S,
    )


def test_official_settings_give_the_stored_rating(site: tuple[Context, object]) -> None:
    from qala.components.rating import services as rating

    data = api(site).get("/rating/what-if/results").json()
    with site[0].database.session() as session:
        run = rating.latest_run(session)
        stored = {e.place: e.rank for e in rating.run_entries(session, run)}
    assert len(data["rows"]) == len(stored) >= 40
    for row in data["rows"]:
        assert row["rank"] == row["official_rank"] == stored[row["code"]]
        assert row["shift"] == 0 and row["drivers"] == []
        assert row["q05"] <= row["rank"] + 5 and row["q05"] <= row["q95"]
    assert data["moved"] == 0 and data["replications"] == 200


def test_moving_a_weight_moves_places_and_names_the_drivers(
    site: tuple[Context, object],
) -> None:
    data = api(site).get("/rating/what-if/results?w=kz_sc.health:5&lang=en").json()
    assert data["settings"]["w"] == "kz_sc.health:5"
    assert data["weights"]["kz_sc.health"] == pytest.approx(100 * 5 / 17, abs=0.1)
    moved = [r for r in data["rows"] if r["shift"] != 0]
    assert moved and data["moved"] == len(moved)
    assert sum(r["shift"] for r in data["rows"]) == 0  # ranks are a permutation
    # raising health makes health indicators the drivers of the largest moves
    biggest = max(moved, key=lambda r: abs(r["shift"]))
    assert biggest["drivers"]
    health_names = api(site).get("/rating/what-if/results?w=kz_sc.health:5&lang=en").json()
    assert health_names["rows"] == data["rows"]  # the same settings give the same answer


def test_a_link_reproduces_the_view(site: tuple[Context, object]) -> None:
    settings = "w=kz_sc.ict_intensity:0.5,kz_sc.transport:3&norm=rank&agg=geometric&imp=median"
    data = api(site).get(f"/rating/what-if/results?{settings}").json()
    link = data["link"]
    assert dict(parse_qsl(urlsplit(link).query)) == {
        "w": "kz_sc.ict_intensity:0.5,kz_sc.transport:3",
        "norm": "rank",
        "agg": "geometric",
        "imp": "median",
    }
    page = client_for(site).get(link)
    assert page.status_code == 200
    shown = table_rows(page.text)
    assert [(code, int(rank)) for code, rank, _ in shown] == [
        (r["code"], r["rank"]) for r in data["rows"]
    ]
    assert 'value="0.5" data-code="kz_sc.ict_intensity"' in page.text
    assert re.search(r'<option value="rank" selected>', page.text)
    # the form a browser without scripts sends (one field per slider) gives the same view
    form = client_for(site).get(
        "/rating/what-if?wt.kz_sc.ict_intensity=0.5&wt.kz_sc.transport=3&norm=rank"
        "&agg=geometric&imp=median&wt.kz_sc.health=1"
    )
    assert table_rows(form.text) == shown


def test_presets_are_the_stakeholder_groups_weights(site: tuple[Context, object]) -> None:
    from qala.components.assessment.services import stakeholder_presets

    presets = stakeholder_presets()
    data = api(site).get("/rating/what-if/results?preset=residents").json()
    weights = dict(item.split(":") for item in data["settings"]["w"].split(","))
    total_share = sum(presets["residents"].values())
    for area, share in presets["residents"].items():
        assert data["weights"][area] == pytest.approx(100 * share / total_share, abs=0.15)
        assert float(weights[area]) == pytest.approx(share / 100 * 13, abs=0.01)


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("norm=bogus", "normalisation"),
        ("agg=copeland", "aggregation"),
        ("imp=em", "imputation"),
        ("w=kz_sc.health:abc", "w"),
        ("w=kz_sc.health", "w"),
        ("w=kz_sc.nowhere:2", "weights"),
        ("w=kz_sc.health:-2", "kz_sc.health"),
        ("preset=aliens", "preset"),
        ("year=20x5", "year"),
    ],
)
def test_bad_settings_are_422_naming_the_field(
    site: tuple[Context, object], query: str, field: str
) -> None:
    answer = api(site).get(f"/rating/what-if/results?{query}")
    assert answer.status_code == 422
    assert f"`{field}`" in answer.text
    page = client_for(site).get(f"/rating/what-if?{query}")
    assert page.status_code == 422


def test_geometric_mean_of_zeros_is_explained(site: tuple[Context, object]) -> None:
    answer = api(site).get("/rating/what-if/results?agg=geometric&norm=minmax")
    assert answer.status_code == 422
    assert "geometric mean" in answer.text and "1–100" in answer.text


def test_three_languages(site: tuple[Context, object]) -> None:
    heads = {
        "kk": "«Егер де» рейтингі",
        "ru": "Рейтинг «что если»",
        "en": "What-if rating",
    }
    for lang, head in heads.items():
        page = client_for(site).get(f"/rating/what-if?lang={lang}")
        assert f"<h1>{head}</h1>" in page.text
    ru = api(site).get("/rating/what-if/results?lang=ru&w=kz_sc.health:4").json()
    astana = next(r for r in ru["rows"] if r["code"] == "astana")
    assert astana["name"] == "Астана"
    assert any(re.search("[а-яА-Я]", d["name"]) for r in ru["rows"] for d in r["drivers"])


def test_only_analysts_save_variants_and_a_variant_builds_the_same_scores(
    site: tuple[Context, object],
) -> None:
    from qala.components.rating import services as rating
    from qala.engines.index import build_index

    query = {"w": "kz_sc.health:3,kz_sc.city_management.requests:2", "norm": "zscore"}
    anonymous = client_for(site)
    page = anonymous.get("/rating/what-if")
    assert 'id="variant-form"' not in page.text
    refused = anonymous.post(
        "/rating/what-if/variants",
        data={**query, "name": "mine", "csrf_token": csrf(anonymous.get("/login").text)},
    )
    assert refused.status_code == 303 and refused.headers["location"].startswith("/login")
    citizen = signed_in(site, "citizen")
    token = csrf(citizen.get("/rating/what-if").text)
    answer = citizen.post(
        "/rating/what-if/variants", data={**query, "name": "mine", "csrf_token": token}
    )
    assert answer.status_code == 403
    analyst = signed_in(site, "analyst")
    page = analyst.get("/rating/what-if?" + "&".join(f"{k}={v}" for k, v in query.items()))
    assert 'id="variant-form"' in page.text
    token = csrf(page.text)
    forged = analyst.post("/rating/what-if/variants", data={**query, "name": "forged"})
    assert forged.status_code == 403  # no form token: a cross-site post is refused
    bad = analyst.post(
        "/rating/what-if/variants", data={**query, "name": "bad name!", "csrf_token": token}
    )
    assert bad.status_code == 303 and "error" in bad.headers["location"]
    saved = analyst.post(
        "/rating/what-if/variants",
        data={**query, "name": "health_first", "csrf_token": token},
    )
    assert saved.status_code == 303, saved.text[:300]
    context = site[0]
    with context.database.session() as session:
        spec_file = rating.stored_spec_file(session, "health_first")
        table = rating.store_table(session, spec_file.store)
    result = build_index(spec_file.spec, table.data, table.framework)
    data = (
        api(site)
        .get("/rating/what-if/results?" + "&".join(f"{k}={v}" for k, v in query.items()))
        .json()
    )
    for row in data["rows"]:
        assert row["score"] == pytest.approx(result.scores.at[row["code"], result.root], abs=0.006)
        assert row["rank"] == result.ranks.at[row["code"], result.root]
    assert not np.isnan(result.scores[result.root]).any()
    with pytest.raises(ValidationError, match="cannot replace the official"):
        from qala.components.rating.whatif import save_variant
        from qala.web.cache import cached_whatif

        _, whatif = cached_whatif(context)
        with context.database.transaction() as session:
            save_variant(session, whatif, whatif.model.official, name="kz_smart_city")


def test_analysis_views_render_for_the_national_rating(site: tuple[Context, object]) -> None:
    from qala.components.rating import services as rating

    with site[0].database.session() as session:
        runs = rating.list_runs(session)
    assert len(runs) >= 2
    page = client_for(site).get(f"/rating/analysis?run={runs[0].id}&compare={runs[1].id}")
    assert page.status_code == 200
    html = page.text
    assert html.count('class="chart sunburst"') == 1
    assert html.count('class="arc ') > 150  # every area, group and indicator
    assert html.count('class="chart heatmap"') == 2
    assert html.count('class="chart bump"') == 1
    assert html.count('class="card distribution"') >= 5
    other = client_for(site).get("/rating/analysis?area=kz_sc.city_management&lang=kk")
    assert other.status_code == 200 and "<h1>Индексті талдау</h1>" in other.text
    assert client_for(site).get("/rating/analysis?area=nowhere").status_code == 422
    assert client_for(site).get("/rating/analysis?run=99999").status_code == 404
