"""The NGSI-LD q language, geo relations and entity normalisation, without a store."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from qala.components.operate.ngsi import (
    NgsiError,
    haversine_m,
    normalise_attribute,
    parse_entity,
    parse_geo_query,
    parse_q,
    pas182_concept,
    q_matches,
)

finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)


def prop(value: object) -> dict[str, object]:
    return {"type": "Property", "value": value}


@given(value=finite, threshold=finite)
def test_comparisons_agree_with_python(value: float, threshold: float) -> None:
    attrs = {"x": prop(value)}
    text = repr(threshold)
    assert q_matches(parse_q(f"x>{text}"), attrs) == (value > threshold)
    assert q_matches(parse_q(f"x<={text}"), attrs) == (value <= threshold)
    assert q_matches(parse_q(f"x!={text}"), attrs) == (value != threshold)


@given(value=finite, low=finite, high=finite)
def test_range_is_inclusive_on_both_ends(value: float, low: float, high: float) -> None:
    assert q_matches(parse_q(f"x=={low!r}..{high!r}"), {"x": prop(value)}) == (low <= value <= high)


def test_boolean_structure_paths_and_patterns() -> None:
    attrs = {
        "pm25": prop(41.0),
        "status": prop("ok"),
        "address": prop({"addressLocality": "Astana", "district": "Yesil"}),
        "refDevice": {"type": "Relationship", "object": "urn:ngsi-ld:Device:9"},
        "temperature": {"type": "Property", "value": -21.5, "observedAt": "2025-12-01T08:00:00Z"},
    }
    cases = {
        "pm25>40;status==ok": True,
        "pm25>50|status==ok": True,
        "(pm25>50|status==broken);status==ok": False,
        'address[addressLocality]=="Astana"': True,
        "address[district]~=Yes.*": True,
        'refDevice=="urn:ngsi-ld:Device:9"': True,
        'temperature.observedAt>"2025-11-30T00:00:00Z"': True,
        "status==ok,maintenance": True,
        "status!=ok,maintenance": False,
        "noise": False,
        "pm25": True,
        "noise<3": False,
    }
    for text, expected in cases.items():
        assert q_matches(parse_q(text), attrs) is expected, text


@pytest.mark.parametrize("text", ["pm25>>", "(pm25>1", "pm25>1)", ";pm25>1", "pm25=="])
def test_malformed_q_is_an_invalid_request(text: str) -> None:
    with pytest.raises(NgsiError) as caught:
        parse_q(text)
    assert caught.value.kind == "InvalidRequest"


def test_haversine_against_a_hand_computed_distance() -> None:
    # One degree of latitude on the 6,371,008.8 m sphere is 2πR/360 = 111,195.08 m.
    assert haversine_m(51.0, 71.0, 52.0, 71.0) == pytest.approx(111_195.08, abs=0.01)
    # Astana (51.1801, 71.44598) to Almaty (43.2567, 76.9286): about 970 km great-circle.
    assert haversine_m(51.1801, 71.44598, 43.2567, 76.9286) == pytest.approx(970_000, rel=0.01)


def test_geo_query_validation_names_the_problem() -> None:
    with pytest.raises(NgsiError, match="maxDistance or minDistance"):
        parse_geo_query("near", "Point", "[71.4,51.1]", None)
    with pytest.raises(NgsiError, match="JSON array"):
        parse_geo_query("near;maxDistance==10", "Point", "71.4,51.1", None)
    with pytest.raises(NgsiError, match="together"):
        parse_geo_query("near;maxDistance==10", None, None, None)
    query = parse_geo_query("near;maxDistance==1000", "Point", "[71.43,51.13]", None)
    assert query is not None and query.max_distance == 1000.0


def test_key_values_input_becomes_normalised() -> None:
    entity = parse_entity(
        {
            "id": "urn:ngsi-ld:Streetlight:1",
            "type": "Streetlight",
            "powerState": "on",
            "location": {"type": "Point", "coordinates": [71.4, 51.1]},
            "refStreetlightGroup": "urn:ngsi-ld:StreetlightGroup:7",
            "refNote": "not a urn",
        }
    )
    assert entity.attrs == {
        "powerState": {"type": "Property", "value": "on"},
        "location": {
            "type": "GeoProperty",
            "value": {"type": "Point", "coordinates": [71.4, 51.1]},
        },
        "refStreetlightGroup": {"type": "Relationship", "object": "urn:ngsi-ld:StreetlightGroup:7"},
        "refNote": {"type": "Property", "value": "not a urn"},
    }
    with pytest.raises(NgsiError, match="outside"):
        normalise_attribute("location", {"type": "Point", "coordinates": [200, 51]})


def test_pas182_concepts() -> None:
    assert [
        pas182_concept(t)
        for t in (
            "AirQualityObserved",
            "Organization",
            "Building",
            "Streetlight",
            "Alert",
            "Whatever",
        )
    ] == [
        "observation",
        "organisation",
        "place",
        "item",
        "event",
        "item",
    ]
