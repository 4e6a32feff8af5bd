"""Every city and single-industry town is a jurisdiction: the national template with each city's
overrides, over Open311 and the web form, and a point outside the chosen city refused."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from qala.components.requests311.catalogue import CityArea
from qala.components.requests311.jurisdictions import JurisdictionInfo
from qala.components.requests311.national import (
    load_city_catalogues,
    merge_city,
    national_catalogues,
)
from qala.engines.geo.area import in_geometry, radius_for_population
from qala.runtime import Context

KARAGANDA_CENTRE = ("49.8047", "73.1094")
KARAGANDA_EAST = ("49.8600", "73.2000")  # Alikhan Bokeikhan district
TEMIRTAU_CENTRE = ("50.0549", "72.9646")
ALMATY_CENTRE = ("43.2380", "76.9450")


def test_every_city_and_town_gets_the_template_with_its_own_changes() -> None:
    catalogues = {c.code: c for c in national_catalogues()}
    assert {"astana", "karaganda", "temirtau", "zhezkazgan", "abay"} <= set(catalogues)
    for catalogue in catalogues.values():
        assert len(catalogue.services) == 13, catalogue.code
        assert catalogue.area is not None and catalogue.area.radius_km >= 5
    karaganda, temirtau = catalogues["karaganda"], catalogues["temirtau"]
    assert karaganda.name == {"kk": "Қарағанды", "ru": "Караганда", "en": "Karaganda"}
    sla = {s.code: s.sla_hours for s in karaganda.services}
    assert sla["heating"] == 12 and sla["hot_water"] == 24  # overridden, and the template's
    assert {d.code for d in karaganda.districts} == {"kazybek_bi", "alikhan_bokeikhan"}
    air = next(s for s in temirtau.services if s.code == "air_quality")
    assert air.sla_hours == 24
    assert air.attributes[0].values[0].key == "steel_plant"
    assert next(s for s in catalogues["astana"].services if s.code == "air_quality").sla_hours == 72
    # Radius by population: a city reaches its outskirts, not its neighbour.
    assert 15 < karaganda.area.radius_km < 25 and 8 < temirtau.area.radius_km < 15  # type: ignore[union-attr]
    assert radius_for_population(None) == 10.0 and radius_for_population(10) == 5.0


def test_a_city_file_renames_drops_and_adds_services() -> None:
    template = {
        "jurisdiction": {"anonymous_allowed": True},
        "departments": [{"code": "roads", "name": "Roads"}],
        "services": [
            {"code": "pothole", "name": "Pothole", "department": "roads", "sla_hours": 72},
            {"code": "snow", "name": "Snow", "department": "roads", "sla_hours": 24},
        ],
    }
    overrides = {
        "jurisdiction": {"anonymous_allowed": False},
        "departments": [{"code": "roads", "name": {"kk": "Жол", "ru": "Дороги", "en": "Roads"}}],
        "services": [
            {"code": "pothole", "name": {"kk": "Шұңқыр", "ru": "Яма", "en": "Hole"}},
            {"code": "snow", "active": False},
            {"code": "ice", "name": "Ice", "department": "roads", "sla_hours": 6},
        ],
    }
    merged = merge_city(template, overrides, {"code": "x", "name": "X"})
    assert merged["jurisdiction"] == {"anonymous_allowed": False, "code": "x", "name": "X"}
    assert [(s["code"], s["sla_hours"]) for s in merged["services"]] == [
        ("pothole", 72),
        ("ice", 6),
    ]
    assert merged["services"][0]["name"]["en"] == "Hole"
    assert merged["departments"][0]["name"]["ru"] == "Дороги"


def test_a_boundary_decides_where_it_is_known() -> None:
    square = [[[73.0, 49.7], [73.2, 49.7], [73.2, 49.9], [73.0, 49.9], [73.0, 49.7]]]
    hole = [[73.05, 49.75], [73.07, 49.75], [73.07, 49.77], [73.05, 49.77], [73.05, 49.75]]
    polygon = {"type": "Polygon", "coordinates": [square[0], hole]}
    assert in_geometry(73.1, 49.8, polygon)
    assert not in_geometry(73.06, 49.76, polygon)  # in the hole
    assert not in_geometry(73.3, 49.8, polygon)
    assert in_geometry(73.1, 49.8, {"type": "MultiPolygon", "coordinates": [square]})
    bounded = JurisdictionInfo(
        1, "k", {}, True, None, None, (), {}, {}, (), CityArea(49.8, 73.1, 50.0, polygon)
    )
    # Within the radius but outside the boundary: the boundary wins.
    assert bounded.contains(49.8, 73.1) and not bounded.contains(49.8, 73.3)
    with pytest.raises(ValueError, match="Polygon"):
        in_geometry(0, 0, {"type": "Point", "coordinates": [0, 0]})


@pytest.fixture
def cities(context: Context) -> Iterator[TestClient]:
    """Every city's catalogue on each store, behind the whole app."""
    from qala.api import create_app

    with context.database.transaction() as session:
        load_city_catalogues(session)
    app = create_app(context=context)
    yield TestClient(app, client=("203.0.113.8", 50000), follow_redirects=False)


def _post(http: TestClient, city: str, point: tuple[str, str], **fields: str) -> Any:
    data = {"jurisdiction_id": city, "lat": point[0], "long": point[1], **fields}
    return http.post("/open311/v2/requests.json", data=data)


def test_karaganda_and_temirtau_take_reports_over_open311(cities: TestClient) -> None:
    http = cities
    discovery = http.get("/open311/v2/discovery.json").json()
    listed = {j["jurisdiction_id"]: j for j in discovery["jurisdictions"]}
    assert listed["karaganda"]["name_kk"] == "Қарағанды" and listed["temirtau"]["services"] == 13
    for code in ("karaganda", "temirtau"):
        services = http.get(
            "/open311/v2/services.json", params={"jurisdiction_id": code, "locale": "kk"}
        ).json()
        assert len(services) == 13
        assert {"service_code": "heating", "service_name": "Жылу беру ақауы"}.items() <= next(
            s for s in services if s["service_code"] == "heating"
        ).items()
    snow = _post(
        http,
        "karaganda",
        KARAGANDA_EAST,
        service_code="snow_removal",
        **{"attribute[surface]": "road"},
    )
    assert snow.status_code == 200, snow.text
    made = snow.json()[0]
    read = http.get(
        f"/open311/v2/requests/{made['service_request_id']}.json",
        params={"jurisdiction_id": "karaganda", "locale": "en"},
    ).json()[0]
    assert read["agency_responsible"] == "Akimat of Alikhan Bokeikhan district"
    steel = _post(
        http,
        "temirtau",
        TEMIRTAU_CENTRE,
        service_code="air_quality",
        **{"attribute[source]": "steel_plant"},
    )
    assert steel.status_code == 200, steel.text
    # The same answer Karaganda's catalogue would not accept: Temirtau's own question.
    assert (
        _post(
            http,
            "karaganda",
            KARAGANDA_CENTRE,
            service_code="air_quality",
            **{"attribute[source]": "steel_plant"},
        ).status_code
        == 400
    )


@pytest.mark.parametrize(
    ("city", "point"),
    [("karaganda", ALMATY_CENTRE), ("karaganda", TEMIRTAU_CENTRE), ("temirtau", KARAGANDA_CENTRE)],
)
def test_a_point_outside_the_city_is_refused_with_400(
    cities: TestClient, city: str, point: tuple[str, str]
) -> None:
    answer = _post(cities, city, point, service_code="pothole", **{"attribute[size]": "small"})
    assert answer.status_code == 400
    [error] = answer.json()
    assert error["code"] == 400 and error["description"].startswith("lat: the point is outside")
    data = {"jurisdiction_id": city, "lat": point[0], "long": point[1], "service_code": "pothole"}
    xml = cities.post("/open311/v2/requests.xml", data={**data, "attribute[size]": "small"})
    assert xml.status_code == 400 and "<errors><error><code>400</code>" in xml.text
    assert "the point is outside" in xml.text


def _form_token(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "form without a CSRF token"
    return found.group(1)


def test_residents_report_on_the_web_form_of_their_city(cities: TestClient) -> None:
    http = cities
    headers = {"accept": "text/html", "accept-language": "kk"}
    picker = http.get("/requests/new", headers=headers)
    assert picker.status_code == 200
    assert 'href="/requests/new?city=karaganda"' in picker.text and "Теміртау" in picker.text
    assert 'name="service_code"' not in picker.text  # no city's form opened silently
    unknown = http.get("/requests/new?city=atlantis", headers=headers)
    assert unknown.status_code == 404 and "atlantis" in unknown.text
    for city, point in (("karaganda", KARAGANDA_CENTRE), ("temirtau", TEMIRTAU_CENTRE)):
        form = http.get(f"/requests/new?city={city}", headers=headers)
        assert form.status_code == 200 and f'name="city" value="{city}"' in form.text
        token = _form_token(form.text)
        fields = {
            "csrf_token": token,
            "city": city,
            "service_code": "street_light",
            "description": "Фонарь не горит у остановки",
        }
        refused = http.post(
            "/requests/new",
            data={**fields, "lat": ALMATY_CENTRE[0], "long": ALMATY_CENTRE[1]},
            headers=headers,
        )
        assert refused.status_code == 422
        assert "қаласының шегінен тыс" in refused.text  # the Kazakh message, not the API's
        sent = http.post(
            "/requests/new", data={**fields, "lat": point[0], "long": point[1]}, headers=headers
        )
        assert sent.status_code == 303, sent.text[:500]
        location = sent.headers["location"]
        assert f"city={city}" in location
        # The follow link works without naming the city (the token finds it).
        followed = http.get(location.split("?")[0], headers=headers)
        assert followed.status_code == 200 and "Көше жарығы жанбайды" in followed.text
