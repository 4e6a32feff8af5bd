"""The tile source setting, the CSP it opens, and the public requests page (no browser).

The browser checks (tiles loaded, markers, popups in Kazakh, no tile request without the setting)
are in test_browser_map.py.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from tests.web.conftest import load_small_demo

from qala.runtime import Context
from qala.settings import Settings, tile_origin

OSM = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"


@pytest.mark.parametrize(
    ("template", "origin"),
    [
        (OSM, "https://tile.openstreetmap.org"),
        ("https://{s}.tile.example.kz/{z}/{x}/{y}.png", "https://*.tile.example.kz"),
        ("http://127.0.0.1:8081/tiles/{z}/{x}/{y}.png?key=1", "http://127.0.0.1:8081"),
    ],
)
def test_the_tile_origin_of_a_template(template: str, origin: str) -> None:
    assert tile_origin(template) == origin


@pytest.mark.parametrize(
    "template",
    [
        "ftp://tiles.example.kz/{z}/{x}/{y}.png",
        "https://tiles.example.kz/{z}/{x}.png",
        "https://tiles.{s}.example.kz/{z}/{x}/{y}.png",
        "https://tiles.example.kz; script-src *;/{z}/{x}/{y}.png",
        "javascript:alert(1)//{z}/{x}/{y}",
    ],
)
def test_a_tile_template_the_map_cannot_use_is_refused_at_start(template: str) -> None:
    with pytest.raises(ValidationError, match="tile_url"):
        Settings(database_url="sqlite://", secret_key="k", tile_url=template)


def test_an_empty_tile_setting_means_none() -> None:
    assert Settings(database_url="sqlite://", secret_key="k", tile_url="  ").tile_url is None


@pytest.fixture(scope="module")
def store(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("tilemap")
    shutil.copy(sqlite_template, folder / "qala.sqlite")
    url = f"sqlite:///{folder / 'qala.sqlite'}"
    context = Context.from_settings(Settings(database_url=url, secret_key="tiles"))
    load_small_demo(context, replications=0, years=1)
    context.database.dispose()
    yield url


def client(url: str, **settings: str) -> TestClient:
    from qala.api.app import create_app

    configured = Settings(database_url=url, secret_key="tiles", **settings)  # type: ignore[arg-type]
    app = create_app(configured, context=Context.from_settings(configured))
    return TestClient(app, headers={"accept": "text/html"})


def images_allowed(answer: object) -> str:
    policy = answer.headers["content-security-policy"]  # type: ignore[attr-defined]
    return next(p for p in policy.split("; ") if p.startswith("img-src"))


def test_the_csp_names_the_tile_origin_only_when_one_is_set(store: str) -> None:
    offline = client(store).get("/requests?city=astana&lang=kk")
    assert offline.status_code == 200
    assert images_allowed(offline) == "img-src 'self' data: blob:"
    assert "tile-map" not in offline.text and "leaflet" not in offline.text
    assert '<svg class="map local"' in offline.text
    tiled = client(store, tile_url=OSM, tile_attribution="© OpenStreetMap").get(
        "/requests?city=astana&lang=kk"
    )
    assert images_allowed(tiled) == "img-src 'self' data: blob: https://tile.openstreetmap.org"
    assert "script-src 'self';" in tiled.headers["content-security-policy"]  # still no inline
    assert 'data-tile-url="https://tile.openstreetmap.org/{z}/{x}/{y}.png"' in tiled.text
    assert 'src="/static/vendor/leaflet/leaflet.js' in tiled.text
    assert "<script>" not in tiled.text


def test_the_public_requests_page_shows_public_fields_only(store: str) -> None:
    from qala.components.requests311 import services as requests

    context = Context.from_settings(Settings(database_url=store, secret_key="tiles"))
    with context.database.transaction() as session:
        astana = requests.load_jurisdictions(session)["astana"]
        filed = requests.submit_request(
            session,
            astana,
            requests.NewRequest(
                service_code="street_light",
                lat=51.1282,
                lon=71.4306,
                description="Яма у подъезда",
                email="reporter@example.kz",
                phone="+77010000000",
                first_name="Айгерим",
            ),
            now=context.clock(),
        )
    context.database.dispose()
    site = client(store)
    page = site.get("/requests?city=astana&lang=ru")
    assert page.status_code == 200
    main = page.text.split("<main", 1)[1].split("</main>", 1)[0]
    assert "Обращения жителей: Астана" in main
    assert f'href="/requests/{filed.service_request_id}?city=astana"' in main
    assert "район Есиль" in main and "Yesil" not in main  # districts in the page's language
    for private in ("reporter@example.kz", "+77010000000", "Айгерим", filed.token):
        assert private not in main
    # Without ?city= the page opens on the city of the newest request (the demo files in Astana).
    assert "Обращения жителей: Астана" in site.get("/requests?lang=ru").text
    assert site.get("/requests?city=nowhere").status_code == 404
    assert site.get("/requests?show=<b>").status_code == 200


def test_placed_projects_on_the_budgeting_map_and_proposal_districts_by_name(store: str) -> None:
    from sqlalchemy import update

    from qala.components.budgeting.models import Process, Proposal

    context = Context.from_settings(Settings(database_url=store, secret_key="tiles"))
    with context.database.transaction() as session:
        process_id = session.scalar(
            Process.__table__.select()
            .with_only_columns(Process.id)
            .where(Process.phase == "voting")
        )
        session.execute(
            update(Proposal).where(Proposal.process_id == process_id).values(district="yesil")
        )
        code = session.scalar(
            Process.__table__.select()
            .with_only_columns(Process.code)
            .where(Process.id == process_id)
        )
    context.database.dispose()
    site = client(store)
    overview = site.get("/budgeting?lang=kk").text
    assert overview.count('<circle class="pt pb-project"') == 2  # the demo's two placed projects
    assert "Қабанбай батыр даңғылын жарықдиодты жарықтандыру" in overview
    assert "Есіл ауданы" in overview  # the map's district landmarks, in Kazakh
    form = site.get("/login").text
    token = form.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    login = {"username": "citizen", "password": "citizen-demo-2026", "csrf_token": token}
    assert site.post("/login", data=login, follow_redirects=False).status_code == 303
    signed = site.get(f"/budgeting/{code}?lang=kk").text  # the ballot lists the proposals
    assert "· Есіл ауданы" in signed and "· yesil" not in signed


def test_the_city_page_maps_its_requests_and_projects(store: str) -> None:
    page = client(store).get("/cities/astana?lang=kk").text
    section = page.split('<h2 id="city-map">', 1)[1].split("</figure>", 1)[0]
    assert "Өтініштер мен жобалар картада" in section
    assert '<circle class="pt request' in section and '<circle class="pt pb-project"' in section
    assert "Есіл ауданы" in section
    assert 'href="/requests?city=astana"' in page
    tiled = client(store, tile_url=OSM).get("/cities/astana?lang=kk").text
    assert 'class="tile-map"' in tiled and 'data-kind="project"' in tiled
    assert 'id="city-map"' not in client(store).get("/cities/abay?lang=kk").text  # nothing placed
