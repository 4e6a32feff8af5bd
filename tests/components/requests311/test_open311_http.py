"""Posting and tokens with plain HTTP, as a mobile app would: form-encoded POSTs, JSON and XML,
the standard's errors, api keys, rate limits, size limits and the privacy of reporters."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update
from tests.components.requests311.conftest import YESIL, City, LiveServer

from qala.components.requests311.models import Jurisdiction, Request
from qala.components.requests311.services import create_api_client

HEATING = {
    "jurisdiction_id": "astana",
    "service_code": "heating",
    "lat": str(YESIL[0]),
    "long": str(YESIL[1]),
    "attribute[issue]": "no_heating",
    "attribute[indoor_temperature]": "14.5",
    "description": "Батареи холодные с утра",
    "email": "aigerim@example.kz",
    "phone": "+7 701 123 45 67",
    "first_name": "Айгерим",
    "last_name": "Садыкова",
    "device_id": "android-42",
    "media_url": "https://example.kz/photo.jpg",
}


def test_anonymous_post_then_token_then_read_back_in_json_and_xml(
    live_city: tuple[City, LiveServer],
) -> None:
    city, live = live_city
    with httpx.Client(base_url=live.open311) as http:
        posted = http.post("/requests.json", data=HEATING)
        assert posted.status_code == 200, posted.text
        assert posted.headers["content-type"].startswith("application/json")
        [created] = posted.json()
        assert set(created) == {"service_request_id", "token", "service_notice", "account_id"}
        assert created["account_id"] is None
        assert "24 h" in created["service_notice"]

        token = http.get(f"/tokens/{created['token']}.json")
        assert token.json() == [
            {"service_request_id": created["service_request_id"], "token": created["token"]}
        ]
        token_xml = ET.fromstring(http.get(f"/tokens/{created['token']}.xml").content)
        assert token_xml.tag == "service_requests"
        assert token_xml.find("request/service_request_id").text == created["service_request_id"]  # type: ignore[union-attr]

        read = http.get(f"/requests/{created['service_request_id']}.json").json()[0]
        assert read["status"] == "open"
        assert read["description"] == "Батареи холодные с утра"
        assert read["media_url"] == "https://example.kz/photo.jpg"
        assert (
            read["agency_responsible"] == "Управление энергетики и жилищно-коммунального хозяйства"
        )
        english = http.get(
            f"/requests/{created['service_request_id']}.json", params={"locale": "en"}
        ).json()[0]
        assert english["service_name"] == "Heating failure"
        kazakh = http.get(
            f"/requests/{created['service_request_id']}.json",
            headers={"Accept-Language": "kk-KZ,kk;q=0.9"},
        ).json()[0]
        assert kazakh["service_name"] == "Жылу беру ақауы"

        posted_xml = http.post("/requests.xml", data={**HEATING, "attribute[issue]": "leak"})
        assert posted_xml.headers["content-type"].startswith("text/xml")
        assert posted_xml.text.startswith('<?xml version="1.0" encoding="utf-8"?>')
        root = ET.fromstring(posted_xml.content)
        assert root.tag == "service_requests" and [child.tag for child in root] == ["request"]
        assert root.find("request/token") is not None

        whole = http.get("/requests.xml").text
        for secret in ("aigerim@example.kz", "701 123", "Айгерим", "Садыкова", "android-42"):
            assert secret not in whole
            assert secret not in http.get("/requests.json").text

    with city.context.database.session() as session:
        stored = session.get(Request, int(created["service_request_id"]))
        assert stored is not None
        assert (stored.email, stored.device_id, stored.district) == (
            "aigerim@example.kz",
            "android-42",
            "yesil",
        )
        assert stored.attributes == {"issue": "no_heating", "indoor_temperature": 14.5}


def test_multivaluelist_addresses_and_every_validation_problem_at_once(
    live_city: tuple[City, LiveServer],
) -> None:
    _city, live = live_city
    with httpx.Client(base_url=live.open311) as http:
        snow = http.post(
            "/requests.json",
            content="service_code=snow_removal&address_string=Mangilik+El+55&attribute[surface][]=road&attribute[surface][]=bus_stop",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert snow.status_code == 200, snow.text
        by_address_id = http.post(
            "/requests.json",
            data={
                "service_code": "pothole",
                "address_id": "KZ-AST-000123",
                "attribute[size]": "small",
            },
        )
        assert by_address_id.status_code == 200

        bad = http.post(
            "/requests.json",
            data={
                "service_code": "public_transport",
                "lat": "95",
                "long": "71.4",
                "attribute[issue]": "teleported",
                "attribute[happened_at]": "yesterday",
                "attribute[colour]": "red",
                "email": "not-an-address",
                "media_url": "ftp://x/y.jpg",
            },
        )
        assert bad.status_code == 400
        errors = bad.json()
        assert all(e["code"] == 400 for e in errors)
        text = " | ".join(e["description"] for e in errors)
        for expected in (
            "lat: expected a latitude between -90 and 90",
            "attribute[route]: is required",
            "attribute[issue]: expected one of",
            "attribute[happened_at]: expected a date-time",
            "attribute[colour]: unknown attribute",
            "email: expected an e-mail address",
            "media_url: expected an http(s) URL",
        ):
            assert expected in text
        assert len(errors) == 7

        xml = http.post(
            "/requests.xml", data={"service_code": "nope", "lat": "51.1", "long": "71.4"}
        )
        assert xml.status_code == 400
        root = ET.fromstring(xml.content)
        assert root.tag == "errors"
        assert [child.tag for child in root[0]] == ["code", "description"]
        assert "service_code: no such service in astana" in root[0].findtext("description", "")

        no_location = http.post("/requests.json", data={"service_code": "street_light"})
        assert no_location.json() == [
            {
                "code": 400,
                "description": "lat: a location is required: lat and long, address_string or address_id",
            }
        ]
        half = http.post("/requests.json", data={"service_code": "street_light", "lat": "51.1"})
        assert "long: give both lat and long" in half.text
        assert (
            http.post(
                "/requests.json", data={"service_code": "street_light", "lat": "north", "long": "1"}
            )
            .json()[0]["description"]
            .startswith("lat: expected a decimal number")
        )
        assert http.post("/requests.json", json={"service_code": "street_light"}).status_code == 400

        assert http.get("/requests/999999.json").status_code == 404
        assert http.get("/requests/999999.xml").text.startswith(
            '<?xml version="1.0" encoding="utf-8"?><errors><error><code>404</code>'
        )
        assert http.get("/requests/abc.json").status_code == 404
        assert http.get("/tokens/unknown-token.json").json()[0]["code"] == 404
        assert http.get("/services/no_such_service.json").status_code == 404
        assert http.get("/services.yaml").json() == [
            {"code": 404, "description": "unknown format `yaml`; use .json or .xml"}
        ]
        assert http.get("/services.json", params={"jurisdiction_id": "atlantis"}).status_code == 404
        assert (
            http.get("/requests.json", params={"start_date": "last week"})
            .json()[0]["description"]
            .startswith("start_date: expected a W3C date-time")
        )
        assert http.get("/requests.json", params={"status": "lost"}).status_code == 400
        assert http.get("/requests.json", params={"page_size": "0"}).status_code == 400
        assert (
            http.get(
                "/requests.json",
                params={"start_date": "2026-02-02T00:00:00Z", "end_date": "2026-01-01T00:00:00Z"},
            ).status_code
            == 400
        )


def test_discovery_lists_the_endpoint_and_formats(live_city: tuple[City, LiveServer]) -> None:
    _city, live = live_city
    discovery = httpx.get(f"{live.open311}/discovery.json").json()
    [endpoint] = discovery["endpoints"]
    assert endpoint["specification"] == "http://wiki.open311.org/GeoReport_v2"
    assert endpoint["formats"] == ["text/xml", "application/json"]
    assert "109" in discovery["contact"]
    root = ET.fromstring(httpx.get(f"{live.open311}/discovery.xml").content)
    assert root.tag == "discovery"
    assert [f.text for f in root.findall("endpoints/endpoint/formats/format")] == [
        "text/xml",
        "application/json",
    ]


def _client(app: Any) -> TestClient:
    return TestClient(app, client=("203.0.113.7", 50000))


def test_api_keys_for_trusted_clients_where_anonymous_reports_are_refused(app_factory: Any) -> None:
    app, city = app_factory()
    with city.context.database.transaction() as session:
        session.execute(update(Jurisdiction).values(anonymous_allowed=False))
        key = create_api_client(session, "eGov mobile")
    city.context.extras["requests311.catalogue_cache"].invalidate()
    http = _client(app)
    form = {"service_code": "street_light", "lat": "51.15", "long": "71.5"}
    refused = http.post("/open311/v2/requests.json", data=form)
    assert refused.status_code == 403
    assert refused.json() == [
        {"code": 403, "description": "astana accepts requests only from clients with an api_key"}
    ]
    wrong = http.post("/open311/v2/requests.json", data={**form, "api_key": "guess"})
    assert wrong.status_code == 403 and wrong.json()[0]["description"] == "api_key is not valid"
    accepted = http.post("/open311/v2/requests.json", data={**form, "api_key": key})
    assert accepted.status_code == 200
    with city.context.database.session() as session:
        stored = session.get(Request, int(accepted.json()[0]["service_request_id"]))
        assert stored is not None and stored.api_client_id is not None


def test_rate_limit_per_client_answers_429_with_retry_after(app_factory: Any) -> None:
    app, _city = app_factory(rate_limit_per_minute=3)
    http = _client(app)
    form = {"service_code": "street_light", "lat": "51.15", "long": "71.5"}
    answers = [http.post("/open311/v2/requests.json", data=form).status_code for _ in range(3)]
    assert answers == [200, 200, 200]
    limited = http.post("/open311/v2/requests.xml", data=form)
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) >= 1
    assert ET.fromstring(limited.content).findtext("error/code") == "429"
    # Reading is not limited, and another client still may post.
    assert http.get("/open311/v2/requests.json").status_code == 200
    other = TestClient(app, client=("198.51.100.9", 50000))
    assert other.post("/open311/v2/requests.json", data=form).status_code == 200


def test_oversized_bodies_and_fields_are_refused(app_factory: Any) -> None:
    app, _city = app_factory()
    http = _client(app)
    huge = http.post(
        "/open311/v2/requests.json",
        data={"service_code": "street_light", "description": "x" * 70_000},
    )
    assert huge.status_code == 413
    assert huge.json()[0]["code"] == 413
    long_text = http.post(
        "/open311/v2/requests.json",
        data={
            "service_code": "street_light",
            "lat": "51.1",
            "long": "71.4",
            "description": "я" * 4001,
        },
    )
    assert long_text.status_code == 400
    assert long_text.json() == [
        {"code": 400, "description": "description: at most 4000 characters (got '4001 characters')"}
    ]
    many_ids = ",".join(str(i) for i in range(1, 300))
    assert http.get("/open311/v2/requests.json", params={"service_request_id": many_ids}).json()[0][
        "description"
    ] == ("service_request_id: at most 200 values")


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_paging_extension(app_factory: Any, fmt: str) -> None:
    app, city = app_factory()
    made = [city.submit("street_light").service_request_id for _ in range(5)]
    http = _client(app)
    first = http.get(f"/open311/v2/requests.{fmt}", params={"page_size": 2, "page": 1})
    third = http.get(f"/open311/v2/requests.{fmt}", params={"page_size": 2, "page": 3})
    if fmt == "json":
        assert [r["service_request_id"] for r in first.json()] == made[::-1][:2]
        assert [r["service_request_id"] for r in third.json()] == made[:1]
    else:
        assert [
            e.text for e in ET.fromstring(first.content).findall("request/service_request_id")
        ] == made[::-1][:2]
        assert [
            e.text for e in ET.fromstring(third.content).findall("request/service_request_id")
        ] == made[:1]


ALMATY = """
jurisdiction: {code: almaty, name: {kk: Алматы, ru: Алматы, en: Almaty}, anonymous_allowed: false}
departments:
  - {code: roads, name: {kk: Жолдар, ru: Дороги, en: Roads}}
services:
  - code: pothole
    department: roads
    sla_hours: 72
    name: {kk: Шұңқыр, ru: Яма, en: Pothole}
"""


def test_several_cities_each_with_its_own_catalogue(app_factory: Any) -> None:
    from qala.components.requests311.catalogue import parse_catalogue
    from qala.components.requests311.services import load_catalogue

    app, city = app_factory()
    with city.context.database.transaction() as session:
        load_catalogue(session, parse_catalogue(ALMATY, file="almaty.yaml"))
    city.context.extras["requests311.catalogue_cache"].invalidate()
    http = _client(app)
    ambiguous = http.get("/open311/v2/services.json")
    assert ambiguous.status_code == 400
    assert ambiguous.json()[0]["description"].startswith(
        "jurisdiction_id: this server serves several cities"
    )
    almaty = http.get(
        "/open311/v2/services.json", params={"jurisdiction_id": "almaty", "locale": "en"}
    ).json()
    assert almaty == [
        {
            "service_code": "pothole",
            "service_name": "Pothole",
            "description": "",
            "metadata": False,
            "type": "realtime",
            "keywords": "",
            "group": "",
        }
    ]
    assert (
        len(http.get("/open311/v2/services.json", params={"jurisdiction_id": "astana"}).json())
        == 13
    )
    # Almaty takes no anonymous reports; Astana does.
    form = {"service_code": "pothole", "lat": "43.24", "long": "76.95", "attribute[size]": "small"}
    assert (
        http.post(
            "/open311/v2/requests.json", data={**form, "jurisdiction_id": "almaty"}
        ).status_code
        == 403
    )
    # Almaty's point is not Astana's: refused in the Open311 error format.
    outside = http.post("/open311/v2/requests.json", data={**form, "jurisdiction_id": "astana"})
    assert outside.status_code == 400
    assert outside.json()[0]["description"].startswith("lat: the point is outside Astana")
    inside = {**form, "lat": "51.125", "long": "71.430"}
    made = http.post(
        "/open311/v2/requests.json", data={**inside, "jurisdiction_id": "astana"}
    ).json()[0]
    # A request is only visible in its own city.
    assert (
        http.get(
            f"/open311/v2/requests/{made['service_request_id']}.json",
            params={"jurisdiction_id": "almaty"},
        ).status_code
        == 404
    )
    assert (
        http.get(
            f"/open311/v2/tokens/{made['token']}.json", params={"jurisdiction_id": "astana"}
        ).status_code
        == 200
    )


def test_error_descriptions_honour_locale_and_accept_language(app_factory: Any) -> None:
    app, _city = app_factory()
    http = _client(app)
    form = {"service_code": "", "lat": "95", "long": "71.4", "description": "я" * 4001}
    english = http.post("/open311/v2/requests.json", data=form).json()
    assert {"code": 400, "description": "service_code: is required"} in english
    russian = http.post("/open311/v2/requests.json?locale=ru", data=form).json()
    assert {"code": 400, "description": "service_code: выберите вид проблемы"} in russian
    assert {
        "code": 400,
        "description": "lat: широта должна быть от −90 до 90 (получено '95.0')",
    } in russian
    assert {
        "code": 400,
        "description": "description: не больше 4000 символов (получено 4001)",
    } in russian
    kazakh = http.post(
        "/open311/v2/requests.json", data=form, headers={"accept-language": "kk-KZ,ru;q=0.5"}
    ).json()
    assert {"code": 400, "description": "service_code: мәселе түрін таңдаңыз"} in kazakh
    in_the_form = http.post("/open311/v2/requests.json", data={**form, "locale": "ru"}).json()
    assert in_the_form == russian


def test_a_report_is_answered_before_routing_under_its_routes_metrics(
    app_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``POST /requests.{format}`` runs the route's handler without FastAPI's routing (a fifth of
    a report's CPU) and is counted under the route's path; everything else is routed."""
    from fastapi.routing import APIRouter

    app, _city = app_factory()

    def routing_asked(*_args: object) -> None:
        raise RuntimeError("routing was asked")

    with TestClient(app) as http:
        assert http.get("/open311/v2/services.json").status_code == 200  # routing works
        monkeypatch.setattr(APIRouter, "__call__", routing_asked)
        posted = http.post("/open311/v2/requests.xml", data=HEATING)
        assert posted.status_code == 200, posted.text
        assert ET.fromstring(posted.content).find("request/token") is not None
        refused = http.post("/open311/v2/requests.json", data={"service_code": "nope"})
        assert refused.status_code == 400 and refused.json()[0]["code"] == 400
        with pytest.raises(RuntimeError, match="routing was asked"):
            http.get("/open311/v2/services.json")
        monkeypatch.undo()
    registry = app.state.context.metrics().registry
    for status in ("200", "400"):
        labels = {"method": "POST", "route": "/open311/v2/requests.{format}", "status": status}
        assert registry.get_sample_value("qala_http_requests_total", labels) == 1, status


def test_a_report_that_fails_is_answered_in_open311s_error_format(
    app_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Answered before routing, a report's failures still meet the app's handlers: the store
    unreachable is a 503 with ``Retry-After``, anything unexpected a 500 naming its log id, both
    as Open311 error lists in the asked format."""
    from tests.conftest import unreachable_postgres_url

    from qala.api.app import create_app
    from qala.components.requests311.open311 import Open311Desk
    from qala.runtime import Context
    from qala.settings import Settings

    settings = Settings(database_url=unreachable_postgres_url(), secret_key="t")
    down = create_app(context=Context.from_settings(settings), migrate=False)
    with TestClient(down) as http:
        answer = http.post("/open311/v2/requests.xml", data=HEATING)
    assert answer.status_code == 503 and answer.headers["retry-after"] == "5"
    assert ET.fromstring(answer.content).find("error/code").text == "503"  # type: ignore[union-attr]

    app, _city = app_factory()

    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(Open311Desk, "store_work", broken)
    with TestClient(app, raise_server_exceptions=False) as http:
        answer = http.post("/open311/v2/requests.json", data=HEATING)
    assert answer.status_code == 500 and answer.headers["x-error-id"]
    assert answer.json()[0]["code"] == 500
