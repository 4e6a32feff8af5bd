"""The catalogue as data, attribute checking per datatype, the rate limiter, the XML documents."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from hypothesis import given, settings, strategies as st

from qala.components.requests311.catalogue import DATATYPES, check_attributes, parse_catalogue
from qala.components.requests311.demo import astana_catalogue
from qala.components.requests311.formats import w3_datetime, xml_document
from qala.components.requests311.ratelimit import RateLimiter
from qala.core.errors import ValidationError


def test_astana_catalogue_has_the_109_services_in_three_languages() -> None:
    catalogue = astana_catalogue()
    assert catalogue.code == "astana" and catalogue.anonymous_allowed
    assert len(catalogue.services) == 13
    assert {d.code for d in catalogue.districts} == {
        "almaty",
        "baikonur",
        "saryarka",
        "yesil",
        "nura",
    }
    used = {a.datatype for s in catalogue.services for a in s.attributes}
    assert used == set(DATATYPES)  # every Open311 datatype appears
    for service in catalogue.services:
        assert all(service.name[lang] for lang in ("kk", "ru", "en")), service.code
        assert service.sla_hours > 0 and service.department
    air = next(s for s in catalogue.services if s.code == "air_quality")
    assert air.description["ru"] == "Дым, запах или пыль"  # a comma inside a name stays inside


def test_a_broken_catalogue_reports_every_problem() -> None:
    text = """
jurisdiction: {code: "", name: {kk: Қала, ru: Город}}
departments:
  - {code: roads, name: Roads}
services:
  - code: holes
    department: bridges
    sla_hours: -1
    name: Holes
    attributes:
      - {code: size, datatype: colour, description: Size}
      - {code: kind, datatype: singlevaluelist, description: Kind}
  - {code: holes, department: roads, sla_hours: 5, name: Again}
routing:
  - {service: holes, district: nowhere, department: roads}
"""
    with pytest.raises(ValidationError) as caught:
        parse_catalogue(text, file="city.yaml")
    reasons = [p.reason for p in caught.value.problems]
    assert any("`code` is required" in r for r in reasons)
    assert any("missing name in en" in r for r in reasons)
    assert any("unknown department `bridges`" in r for r in reasons)
    assert any("`sla_hours` must be a positive number" in r for r in reasons)
    assert any("datatype must be one of" in r for r in reasons)
    assert any("a singlevaluelist needs `values`" in r for r in reasons)
    assert any("must be present and unique" in r for r in reasons)
    assert any("unknown district `nowhere`" in r for r in reasons)
    assert all(p.file == "city.yaml" for p in caught.value.problems)


def test_attribute_values_are_checked_and_cleaned_by_datatype() -> None:
    transport = next(s for s in astana_catalogue().services if s.code == "public_transport")
    clean, problems = check_attributes(
        transport.attributes,
        {"route": ["32"], "issue": ["late"], "happened_at": ["2026-01-15T08:30:00+05:00"]},
    )
    assert problems == []
    assert clean == {"route": "32", "issue": "late", "happened_at": "2026-01-15T03:30:00Z"}

    dumping = next(s for s in astana_catalogue().services if s.code == "illegal_dumping")
    clean, problems = check_attributes(
        dumping.attributes, {"waste_kind": ["tyres", "household", "tyres"], "volume_m3": ["2.5"]}
    )
    assert problems == [] and clean == {"waste_kind": ["tyres", "household"], "volume_m3": 2.5}
    _, problems = check_attributes(
        dumping.attributes, {"waste_kind": ["gold"], "volume_m3": ["inf"]}
    )
    assert [(p.column, p.reason.split(";")[0]) for p in problems] == [
        ("attribute[waste_kind]", "expected keys among construction, hazardous, household, tyres"),
        ("attribute[volume_m3]", "expected a number"),
    ]
    _, problems = check_attributes(
        transport.attributes, {"issue": ["late", "overcrowded"], "route": ["x" * 1001]}
    )
    assert sorted(p.reason for p in problems) == [
        "at most 1000 characters",
        "expected one value, got several",
    ]


@given(limit=st.integers(1, 20), gaps=st.lists(st.floats(0, 30), min_size=1, max_size=120))
@settings(max_examples=80, deadline=None)
def test_rate_limiter_never_allows_more_than_the_limit_in_any_window(
    limit: int, gaps: list[float]
) -> None:
    now = [0.0]
    limiter = RateLimiter(limit, window=60.0, clock=lambda: now[0])
    allowed: list[float] = []
    for gap in gaps:
        now[0] += gap
        wait = limiter.hit("client")
        if wait == 0:
            allowed.append(now[0])
        else:
            # Refused only when the window really is full, and the wait is exact.
            in_window = [t for t in allowed if t > now[0] - 60.0]
            assert len(in_window) == limit
            assert wait == pytest.approx(in_window[0] + 60.0 - now[0], abs=1e-9) or wait == 0.001
    for i, moment in enumerate(allowed):
        assert sum(1 for t in allowed[: i + 1] if t > moment - 60.0) <= limit
    assert limiter.hit("another client") == 0  # clients are counted apart


def test_rate_limiter_zero_means_unlimited_and_memory_is_bounded() -> None:
    assert all(RateLimiter(0).hit("x") == 0 for _ in range(1000))
    now = [0.0]
    limiter = RateLimiter(5, clock=lambda: now[0], max_clients=100)
    for i in range(1000):
        now[0] += 0.001
        limiter.hit(f"client-{i}")
    assert len(limiter._events) <= 100


def test_xml_documents_escape_text_and_name_list_items() -> None:
    document = xml_document(
        "services",
        [{"service_code": "a&b", "service_name": "<Жарық>", "metadata": True, "keywords": None}],
    )
    root = ET.fromstring(document.encode())
    assert root.tag == "services" and root[0].tag == "service"
    assert root.findtext("service/service_code") == "a&b"
    assert root.findtext("service/service_name") == "<Жарық>"
    assert root.findtext("service/metadata") == "true"
    assert root.find("service/keywords") is not None and root.findtext("service/keywords") == ""
    errors = ET.fromstring(xml_document("errors", [{"code": 400, "description": "x"}]).encode())
    assert [e.tag for e in errors] == ["error"]


def test_w3_datetimes_are_utc_with_z() -> None:
    from datetime import datetime, timedelta, timezone

    astana = timezone(timedelta(hours=5))
    assert w3_datetime(datetime(2026, 1, 15, 8, 30, tzinfo=astana)) == "2026-01-15T03:30:00Z"
    assert w3_datetime(datetime(2026, 1, 15, 8, 30)) == "2026-01-15T08:30:00Z"  # naive = stored UTC
    assert w3_datetime(None) is None
