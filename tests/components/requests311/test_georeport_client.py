"""The API as a real Open311 client sees it: PyPI's `georeport` 0.3.1 over HTTP, JSON and XML,
against the app served by uvicorn on loopback, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from types import ModuleType
from typing import Any

import pytest
from tests.components.requests311.conftest import NOW, SARYARKA, City, LiveServer
from tests.conftest import require_module


@pytest.fixture(scope="module")
def georeport() -> ModuleType:
    return require_module("georeport", "the `clients` extra (georeport) is not installed")


def _as_list(value: Any) -> list[Any]:
    """xmltodict gives one child as a dict, several as a list."""
    return value if isinstance(value, list) else [value]


@pytest.mark.parametrize("output_format", ["json", "xml"])
def test_services_and_definitions_through_georeport(
    georeport: ModuleType, live_city: tuple[City, LiveServer], output_format: str
) -> None:
    _city, live = live_city
    client = georeport.GeoReport(live.open311, jurisdiction="astana", output_format=output_format)

    services = client.get_service_list()
    codes = {s["service_code"] for s in services}
    assert len(services) == 13
    assert {
        "heating",
        "hot_water",
        "cold_water",
        "electricity",
        "street_light",
        "pothole",
        "snow_removal",
    } <= codes
    assert {
        "waste_collection",
        "illegal_dumping",
        "air_quality",
        "public_transport",
        "stray_animals",
        "public_safety",
    } <= codes
    heating = next(s for s in services if s["service_code"] == "heating")
    # Default language is Russian (settings.default_language).
    assert heating["service_name"] == "Нет отопления или слабое отопление"
    assert heating["group"] == "utilities"
    assert heating["type"] == "realtime"
    assert str(heating["metadata"]).lower() == "true"

    definition = client.get_service_definition("public_transport")
    assert definition["service_code"] == "public_transport"
    attributes = (
        definition["attributes"]
        if output_format == "json"
        else _as_list(definition["attributes"]["attribute"])
    )
    by_code = {a["code"]: a for a in attributes}
    assert list(by_code) == ["route", "issue", "happened_at"]
    assert by_code["route"]["datatype"] == "string"
    assert str(by_code["route"]["required"]).lower() == "true"
    assert by_code["happened_at"]["datatype"] == "datetime"
    assert str(by_code["happened_at"]["required"]).lower() == "false"
    assert str(by_code["issue"]["order"]) == "2"
    values = (
        by_code["issue"]["values"]
        if output_format == "json"
        else _as_list(by_code["issue"]["values"]["value"])
    )
    assert [v["key"] for v in values] == [
        "late",
        "skipped_stop",
        "overcrowded",
        "driver_conduct",
        "vehicle_condition",
    ]
    assert values[0]["name"] == "Опоздание"

    snow = client.get_service_definition("snow_removal")
    snow_attributes = (
        snow["attributes"] if output_format == "json" else _as_list(snow["attributes"]["attribute"])
    )
    assert snow_attributes[0]["datatype"] == "multivaluelist"


@pytest.mark.parametrize("output_format", ["json", "xml"])
def test_reading_requests_with_every_filter_through_georeport(
    georeport: ModuleType, live_city: tuple[City, LiveServer], output_format: str
) -> None:
    city, live = live_city
    day = timedelta(days=1)
    heating_old = city.submit("heating", at=NOW - 10 * day, description="Cold flat, block 12")
    heating_new = city.submit("heating", at=NOW - 2 * day, description="Radiators cold")
    pothole = city.submit(
        "pothole", at=NOW - 3 * day, address_string="Kabanbay Batyr 10", lat=None, lon=None
    )
    snow = city.submit(
        "snow_removal",
        at=NOW - 1 * day,
        lat=SARYARKA[0],
        lon=SARYARKA[1],
        email="secret@example.kz",
        phone="+7 701 000 0000",
    )
    with city.context.database.transaction() as session:
        from qala.components.requests311.services import Requests

        Requests(session, city.jurisdiction, actor="op", now=NOW - day).close(
            int(heating_old.service_request_id), reason="resolved", note="Valve replaced"
        )
    client = georeport.GeoReport(live.open311, jurisdiction="astana", output_format=output_format)

    def ids(found: object) -> list[str]:
        return [r["service_request_id"] for r in _as_list(found)]

    # Default window (90 days), newest first.
    everything = client.get_service_requests()
    assert ids(everything) == [
        snow.service_request_id,
        heating_new.service_request_id,
        pothole.service_request_id,
        heating_old.service_request_id,
    ]

    assert ids(client.get_service_requests(service_code="heating")) == [
        heating_new.service_request_id,
        heating_old.service_request_id,
    ]
    assert ids(client.get_service_requests(service_code="heating,pothole", status="open")) == [
        heating_new.service_request_id,
        pothole.service_request_id,
    ]
    closed = _as_list(client.get_service_requests(status="closed"))
    assert ids(closed) == [heating_old.service_request_id]
    assert closed[0]["status"] == "closed" and closed[0]["status_notes"] == "Valve replaced"
    window = client.get_service_requests(
        start_date=(NOW - 4 * day).strftime("%Y-%m-%dT%H:%M:%SZ"),
        end_date=(NOW - 2 * day).isoformat(),
    )
    assert ids(window) == [heating_new.service_request_id, pothole.service_request_id]
    wanted = f"{pothole.service_request_id},{snow.service_request_id}"
    # ids override every other filter (status=closed would exclude both)
    assert ids(client.get_service_requests(service_request_id=wanted, status="closed")) == [
        pothole.service_request_id,
        snow.service_request_id,
    ]

    one = client.get_service_request(snow.service_request_id)
    assert one["service_request_id"] == snow.service_request_id
    assert one["service_code"] == "snow_removal"
    assert one["status"] == "open"
    # Snow in Saryarka is routed by district to the district akimat.
    assert one["agency_responsible"] == "Аким района Сарыарка"
    assert float(one["lat"]) == pytest.approx(SARYARKA[0]) and float(one["long"]) == pytest.approx(
        SARYARKA[1]
    )
    assert one["requested_datetime"] == (NOW - day).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert one["expected_datetime"] == NOW.strftime("%Y-%m-%dT%H:%M:%SZ")  # 24 h SLA
    # Personal data never leaves through the public API.
    flat = str(one)
    assert "secret@example.kz" not in flat and "701" not in flat
    assert not {"email", "phone", "first_name", "last_name", "device_id"} & set(one)

    addressed = client.get_service_request(pothole.service_request_id)
    assert addressed["address"] == "Kabanbay Batyr 10"
    assert addressed["lat"] in (None, "")  # no coordinates given
