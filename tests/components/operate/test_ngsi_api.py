"""The NGSI-LD subset at /ngsi-ld/v1: CRUD, content types, queries, batch, temporal, subscriptions."""

from __future__ import annotations

import json
from typing import Any

OperateApp = Capture = Any  # fixtures from this folder's conftest

SDM_CONTEXT = "https://raw.githubusercontent.com/smart-data-models/dataModel.Environment/master/context.jsonld"
LD = {"Content-Type": "application/ld+json"}
LINK = f'<{SDM_CONTEXT}>; rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"'


def air(
    station: str, pm25: float, lon: float, lat: float, when: str = "2025-12-01T10:00:00+05:00"
) -> dict:
    """A Smart Data Models AirQualityObserved in key-values form, as its examples publish it."""
    return {
        "id": f"urn:ngsi-ld:AirQualityObserved:{station}",
        "type": "AirQualityObserved",
        "dateObserved": when,
        "pm25": pm25,
        "location": {"type": "Point", "coordinates": [lon, lat]},
        "refDevice": f"urn:ngsi-ld:Device:{station}",
        "@context": [SDM_CONTEXT],
    }


def test_create_read_with_ld_json_and_link_header(operate_app: OperateApp) -> None:
    client = operate_app.client
    created = client.post(
        "/ngsi-ld/v1/entities",
        content=json.dumps(air("a1", 41.5, 71.43, 51.13)),
        headers={**operate_app.auth, **LD},
    )
    assert created.status_code == 201
    assert created.headers["location"] == "/ngsi-ld/v1/entities/urn:ngsi-ld:AirQualityObserved:a1"

    plain = client.get("/ngsi-ld/v1/entities/urn:ngsi-ld:AirQualityObserved:a1")
    assert plain.headers["content-type"].startswith("application/json")
    assert "json-ld#context" in plain.headers["link"]
    body = plain.json()
    # Key-values input is stored normalised: Property, GeoProperty, Relationship for ref* URNs.
    assert body["pm25"] == {"type": "Property", "value": 41.5}
    assert body["location"]["type"] == "GeoProperty"
    assert body["refDevice"] == {"type": "Relationship", "object": "urn:ngsi-ld:Device:a1"}
    assert "@context" not in body

    ld = client.get(
        "/ngsi-ld/v1/entities/urn:ngsi-ld:AirQualityObserved:a1",
        headers={"Accept": "application/ld+json"},
    )
    assert ld.headers["content-type"].startswith("application/ld+json")
    assert "@context" in ld.json()

    simple = client.get(
        "/ngsi-ld/v1/entities/urn:ngsi-ld:AirQualityObserved:a1",
        params={"options": "keyValues", "attrs": "pm25"},
    )
    assert simple.json() == {
        "id": "urn:ngsi-ld:AirQualityObserved:a1",
        "type": "AirQualityObserved",
        "pm25": 41.5,
    }


def test_location_goes_out_in_its_registered_spelling(operate_app: OperateApp) -> None:
    """Header names are case-insensitive, but ETSI's suite looks ``Location`` up as written."""
    client, auth = operate_app.client, operate_app.auth
    entity = client.post(
        "/ngsi-ld/v1/entities", json={"id": "urn:ngsi-ld:Thing:loc", "type": "Thing"}, headers=auth
    )
    subscription = client.post(
        "/ngsi-ld/v1/subscriptions",
        json={
            "type": "Subscription",
            "entities": [{"type": "Thing"}],
            "notification": {"endpoint": {"uri": "http://127.0.0.1:9/notify"}},
        },
        headers=auth,
    )
    for response in (entity, subscription):
        assert response.status_code == 201, response.text
        names = [name for name, _ in response.headers.raw]
        assert b"Location" in names and b"location" not in names
    assert entity.headers["location"] == "/ngsi-ld/v1/entities/urn:ngsi-ld:Thing:loc"


def test_application_json_takes_context_from_link_header_only(operate_app: OperateApp) -> None:
    body = air("a2", 10, 71.4, 51.1)
    with_context = operate_app.client.post(
        "/ngsi-ld/v1/entities", json=body, headers=operate_app.auth
    )
    assert with_context.status_code == 400
    assert with_context.json()["type"] == "https://uri.etsi.org/ngsi-ld/errors/BadRequestData"
    del body["@context"]
    ok = operate_app.client.post(
        "/ngsi-ld/v1/entities", json=body, headers={**operate_app.auth, "Link": LINK}
    )
    assert ok.status_code == 201
    ld_without_context = operate_app.client.post(
        "/ngsi-ld/v1/entities",
        content=json.dumps({**body, "id": "urn:ngsi-ld:X:1"}),
        headers={**operate_app.auth, **LD},
    )
    assert ld_without_context.status_code == 400


def test_context_given_twice_or_in_the_wrong_place_is_refused(operate_app: OperateApp) -> None:
    client, auth = operate_app.client, operate_app.auth
    # application/ld+json carries its @context: a Link header as well is a bad request (6.3.5)
    both = client.post(
        "/ngsi-ld/v1/entities",
        content=json.dumps(air("c1", 10, 71.4, 51.1)),
        headers={**auth, **LD, "Link": LINK},
    )
    assert both.status_code == 400
    # in a batch, each entity whose @context is in the wrong place fails alone (207)
    good, bad = air("c2", 10, 71.4, 51.1), air("c3", 11, 71.4, 51.1)
    del good["@context"]
    mixed = client.post(
        "/ngsi-ld/v1/entityOperations/create", json=[good, bad], headers={**auth, "Link": LINK}
    )
    assert mixed.status_code == 207, mixed.text
    assert mixed.json()["success"] == ["urn:ngsi-ld:AirQualityObserved:c2"]
    [error] = mixed.json()["errors"]
    assert error["entityId"] == "urn:ngsi-ld:AirQualityObserved:c3"
    assert error["error"]["type"].endswith("/BadRequestData")
    without = {**air("c4", 12, 71.4, 51.1)}
    del without["@context"]
    ld_batch = client.post(
        "/ngsi-ld/v1/entityOperations/create",
        content=json.dumps([air("c5", 13, 71.4, 51.1), without]),
        headers={**auth, **LD},
    )
    assert ld_batch.status_code == 207
    assert ld_batch.json()["success"] == ["urn:ngsi-ld:AirQualityObserved:c5"]
    assert [e["entityId"] for e in ld_batch.json()["errors"]] == [
        "urn:ngsi-ld:AirQualityObserved:c4"
    ]


def test_batch_update_without_overwriting_reports_the_attributes_kept(
    operate_app: OperateApp,
) -> None:
    client, auth = operate_app.client, operate_app.auth
    url = "/ngsi-ld/v1/entityOperations/update?options=noOverwrite"
    for key in ("n1", "n2"):
        created = client.post(
            "/ngsi-ld/v1/entities",
            json={
                "id": f"urn:ngsi-ld:Bin:{key}",
                "type": "Bin",
                "fill": {"type": "Property", "value": 1},
            },
            headers=auth,
        )
        assert created.status_code == 201
    fresh = client.post(
        url,
        json=[
            {
                "id": "urn:ngsi-ld:Bin:n1",
                "type": "Bin",
                "lid": {"type": "Property", "value": "shut"},
            }
        ],
        headers=auth,
    )
    assert fresh.status_code == 204, fresh.text
    kept = client.post(
        url,
        json=[
            {
                "id": "urn:ngsi-ld:Bin:n2",
                "type": "Bin",
                "fill": {"type": "Property", "value": 9},
                "lid": {"type": "Property", "value": "open"},
            }
        ],
        headers=auth,
    )
    assert kept.status_code == 207, kept.text
    assert kept.json()["success"] == []
    [error] = kept.json()["errors"]
    assert error["entityId"] == "urn:ngsi-ld:Bin:n2" and "fill" in error["error"]["detail"]
    bin2 = client.get("/ngsi-ld/v1/entities/urn:ngsi-ld:Bin:n2", params={"options": "keyValues"})
    assert bin2.json()["fill"] == 1 and bin2.json()["lid"] == "open"
    # an instance with a new datasetId is a new instance: appended, not refused (4.5.5)
    other = client.post(
        "/ngsi-ld/v1/entities/urn:ngsi-ld:Bin:n2/attrs?options=noOverwrite",
        json={"fill": {"type": "Property", "value": 5, "datasetId": "urn:ngsi-ld:Sensor:ultra"}},
        headers=auth,
    )
    assert other.status_code == 204, other.text
    fills = client.get("/ngsi-ld/v1/entities/urn:ngsi-ld:Bin:n2").json()["fill"]
    assert sorted(i["value"] for i in fills) == [1, 5]
    # several instances at once: the held one is kept (207), the new ones appended
    several = client.post(
        "/ngsi-ld/v1/entities/urn:ngsi-ld:Bin:n2/attrs?options=noOverwrite",
        json={
            "fill": [
                {"type": "Property", "value": 7},
                {"type": "Property", "value": 8, "datasetId": "urn:ngsi-ld:Sensor:radar"},
                {"type": "Property", "value": 9, "datasetId": "urn:ngsi-ld:Sensor:scale"},
            ]
        },
        headers=auth,
    )
    assert several.status_code == 207, several.text
    fills = client.get("/ngsi-ld/v1/entities/urn:ngsi-ld:Bin:n2").json()["fill"]
    assert sorted(i["value"] for i in fills) == [1, 5, 8, 9]


def test_a_property_value_of_one_element_is_that_element(operate_app: OperateApp) -> None:
    """JSON-LD compaction gives an array of one element back as the element (``value`` has no
    @set/@list container); longer arrays, arrays of one array and ListProperty stay lists."""
    entity = {
        "id": "urn:ngsi-ld:Building:single",
        "type": "Building",
        "category": {"type": "Property", "value": ["commercial"]},
        "tags": ["old"],
        "floors": {"type": "Property", "value": [1, 2]},
        "grid": {"type": "Property", "value": [[1, 2]]},
        "height": {
            "type": "Property",
            "value": 12,
            "source": {"type": "Property", "value": [{"survey": 2024}]},
        },
        "readings": {"type": "ListProperty", "valueList": [3]},
    }
    created = operate_app.client.post("/ngsi-ld/v1/entities", json=entity, headers=operate_app.auth)
    assert created.status_code == 201, created.text
    body = operate_app.client.get("/ngsi-ld/v1/entities/urn:ngsi-ld:Building:single").json()
    assert body["category"] == {"type": "Property", "value": "commercial"}
    assert body["tags"] == {"type": "Property", "value": "old"}
    assert body["floors"]["value"] == [1, 2]
    assert body["grid"]["value"] == [[1, 2]]
    assert body["height"]["source"]["value"] == {"survey": 2024}
    assert body["readings"]["valueList"] == [3]
    patched = operate_app.client.patch(
        "/ngsi-ld/v1/entities/urn:ngsi-ld:Building:single/attrs/floors",
        json={"type": "Property", "value": [3]},
        headers=operate_app.auth,
    )
    assert patched.status_code == 204, patched.text
    found = operate_app.client.get(
        "/ngsi-ld/v1/entities", params={"type": "Building", "q": 'floors==3;category=="commercial"'}
    ).json()
    assert [e["id"] for e in found] == ["urn:ngsi-ld:Building:single"]


def test_errors_are_problem_details(operate_app: OperateApp) -> None:
    client = operate_app.client
    missing = client.get("/ngsi-ld/v1/entities/urn:ngsi-ld:Thing:none")
    assert missing.status_code == 404
    assert missing.json() == {
        "type": "https://uri.etsi.org/ngsi-ld/errors/ResourceNotFound",
        "title": "The referred resource has not been found",
        "detail": "entity urn:ngsi-ld:Thing:none does not exist",
    }
    client.post(
        "/ngsi-ld/v1/entities",
        content=json.dumps(air("a3", 1, 71, 51)),
        headers={**operate_app.auth, **LD},
    )
    again = client.post(
        "/ngsi-ld/v1/entities",
        content=json.dumps(air("a3", 1, 71, 51)),
        headers={**operate_app.auth, **LD},
    )
    assert (again.status_code, again.json()["type"]) == (
        409,
        "https://uri.etsi.org/ngsi-ld/errors/AlreadyExists",
    )
    bad_id = client.post(
        "/ngsi-ld/v1/entities", json={"id": "not a uri", "type": "T"}, headers=operate_app.auth
    )
    assert bad_id.status_code == 400 and "not a URI" in bad_id.json()["detail"]
    bad_q = client.get("/ngsi-ld/v1/entities", params={"type": "T", "q": "pm25>>"})
    assert bad_q.status_code == 400
    assert bad_q.json()["type"].endswith("/InvalidRequest") or bad_q.json()["type"].endswith(
        "/BadRequestData"
    )
    for url in ("/ngsi-ld/v1/entities", "/ngsi-ld/v1/temporal/entities"):
        bad_pattern = client.get(url, params={"idPattern": "("})
        assert bad_pattern.status_code == 400, url
        assert "idPattern is not a regular expression" in bad_pattern.json()["detail"]
    anonymous = client.post(
        "/ngsi-ld/v1/entities", content=json.dumps(air("a4", 1, 71, 51)), headers=LD
    )
    assert anonymous.status_code == 401 and anonymous.json()["type"].endswith("/Unauthorized")
    media = client.post(
        "/ngsi-ld/v1/entities",
        content=b"<x/>",
        headers={**operate_app.auth, "Content-Type": "text/xml"},
    )
    assert media.status_code == 415


def _seed(operate_app: OperateApp) -> None:
    stations = [
        ("s1", 12.0, 71.4300, 51.1300),  # reference point
        ("s2", 55.0, 71.4300, 51.1390),  # ~1.0 km north
        ("s3", 160.5, 71.4600, 51.1300),  # ~2.1 km east
        ("s4", 35.0, 71.6000, 51.2000),  # far away
    ]
    batch = [{k: v for k, v in air(*s).items() if k != "@context"} for s in stations]
    response = operate_app.client.post(
        "/ngsi-ld/v1/entityOperations/upsert",
        json=batch,
        headers={**operate_app.auth, "Link": LINK},
    )
    assert response.status_code == 201
    assert sorted(response.json()) == [f"urn:ngsi-ld:AirQualityObserved:s{i}" for i in range(1, 5)]


def _ids(response) -> list[str]:  # type: ignore[no-untyped-def]
    assert response.status_code == 200, response.text
    return [e["id"].rsplit(":", 1)[1] for e in response.json()]


def test_query_by_type_q_attrs_geo_and_pagination(operate_app: OperateApp) -> None:
    _seed(operate_app)
    client = operate_app.client
    url = "/ngsi-ld/v1/entities"
    assert _ids(client.get(url, params={"type": "AirQualityObserved"})) == ["s1", "s2", "s3", "s4"]
    assert _ids(client.get(url, params={"type": "AirQualityObserved", "q": "pm25>35"})) == [
        "s2",
        "s3",
    ]
    assert _ids(
        client.get(url, params={"type": "AirQualityObserved", "q": "pm25>=35;pm25<100"})
    ) == ["s2", "s4"]
    assert _ids(
        client.get(url, params={"type": "AirQualityObserved", "q": "pm25==12|pm25==160.5"})
    ) == ["s1", "s3"]
    assert _ids(client.get(url, params={"type": "AirQualityObserved", "q": "pm25==30..60"})) == [
        "s2",
        "s4",
    ]
    assert _ids(
        client.get(
            url, params={"type": "AirQualityObserved", "q": 'refDevice=="urn:ngsi-ld:Device:s3"'}
        )
    ) == ["s3"]
    # Haversine: 0.009° of latitude ≈ 1,000.8 m; 0.03° of longitude at 51.13° N ≈ 2,097 m.
    near = {
        "type": "AirQualityObserved",
        "georel": "near;maxDistance==1500",
        "geometry": "Point",
        "coordinates": "[71.43,51.13]",
    }
    assert _ids(client.get(url, params=near)) == ["s1", "s2"]
    assert _ids(client.get(url, params={**near, "georel": "near;maxDistance==2200"})) == [
        "s1",
        "s2",
        "s3",
    ]
    assert _ids(client.get(url, params={**near, "georel": "near;minDistance==1500"})) == [
        "s3",
        "s4",
    ]
    within = {
        "type": "AirQualityObserved",
        "georel": "within",
        "geometry": "Polygon",
        "coordinates": "[[[71.42,51.12],[71.44,51.12],[71.44,51.145],[71.42,51.145],[71.42,51.12]]]",
    }
    assert _ids(client.get(url, params=within)) == ["s1", "s2"]
    page = client.get(
        url, params={"type": "AirQualityObserved", "limit": 2, "offset": 1, "count": "true"}
    )
    assert _ids(page) == ["s2", "s3"] and page.headers["NGSILD-Results-Count"] == "4"
    picked = client.get(
        url, params={"type": "AirQualityObserved", "attrs": "pm25", "limit": 1}
    ).json()[0]
    assert set(picked) == {"id", "type", "pm25"}
    too_many = client.get(url, params={"type": "AirQualityObserved", "limit": 5000})
    assert too_many.status_code == 403 and too_many.json()["type"].endswith("/TooManyResults")
    assert _ids(client.get(url, params={"concept": "observation"})) == ["s1", "s2", "s3", "s4"]


def test_geo_queries_relate_shapes_not_their_centres(operate_app: OperateApp) -> None:
    client, url = operate_app.client, "/ngsi-ld/v1/entities"
    square = [[[71.40, 51.10], [71.44, 51.10], [71.44, 51.14], [71.40, 51.14], [71.40, 51.10]]]
    created = client.post(
        url,
        json={
            "id": "urn:ngsi-ld:Park:p1",
            "type": "Park",
            "location": {
                "type": "GeoProperty",
                "value": {"type": "Polygon", "coordinates": square},
            },
        },
        headers=operate_app.auth,
    )
    assert created.status_code == 201, created.text

    def found(georel: str, geometry: str, coordinates: Any) -> list[str]:
        params = {"type": "Park", "georel": georel, "geometry": geometry}
        return _ids(client.get(url, params={**params, "coordinates": json.dumps(coordinates)}))

    # a point near a corner: inside the park, far from its centre
    assert found("contains", "Point", [71.401, 51.101]) == ["p1"]
    assert found("contains", "Point", [71.45, 51.12]) == []
    assert found("equals", "Polygon", square) == ["p1"]
    # a polygon across one edge: they overlap and intersect, neither contains the other
    across = [[[71.43, 51.11], [71.50, 51.11], [71.50, 51.13], [71.43, 51.13], [71.43, 51.11]]]
    assert found("overlaps", "Polygon", across) == ["p1"]
    assert found("intersects", "Polygon", across) == ["p1"]
    assert found("contains", "Polygon", across) == []
    assert found("disjoint", "LineString", [[72.0, 51.0], [72.1, 51.1]]) == ["p1"]
    # near measures to the park's nearest point: from inside it, 1.2 km from the mean of its
    # vertices (the entity's stored point, which the database's box filter reads), it is 0
    assert found("near;maxDistance==1000", "Point", [71.428, 51.124]) == ["p1"]
    assert found("near;minDistance==1000", "Point", [71.428, 51.124]) == []
    unclosed = client.get(
        url,
        params={
            "type": "Park",
            "georel": "within",
            "geometry": "Polygon",
            "coordinates": "[[[1,1],[2,2],[1,2]]]",
        },
    )
    assert unclosed.status_code == 400


def test_near_finds_a_long_road_or_a_large_park_by_its_nearest_point(
    operate_app: OperateApp,
) -> None:
    """The SQL pre-filter reads each entity's box, not the mean of its vertices: a 19.5 km road
    passing 100 m from the query point has its vertex mean 9.4 km away, a 21 km park with a
    point 70 m outside its west edge 10.5 km."""
    client, url = operate_app.client, "/ngsi-ld/v1/entities"
    road = {"type": "LineString", "coordinates": [[71.30, 51.13], [71.58, 51.13]]}
    park = {
        "type": "Polygon",
        "coordinates": [
            [[71.30, 51.00], [71.60, 51.00], [71.60, 51.20], [71.30, 51.20], [71.30, 51.00]]
        ],
    }
    for entity_id, geometry in (("urn:ngsi-ld:Road:r1", road), ("urn:ngsi-ld:Park:p1", park)):
        created = client.post(
            url,
            json={
                "id": entity_id,
                "type": entity_id.split(":")[2],
                "location": {"type": "GeoProperty", "value": geometry},
            },
            headers=operate_app.auth,
        )
        assert created.status_code == 201, created.text

    def found(kind: str, georel: str, coordinates: list[float]) -> list[str]:
        params = {"type": kind, "georel": georel, "geometry": "Point"}
        return _ids(client.get(url, params={**params, "coordinates": json.dumps(coordinates)}))

    beside_the_road = [71.305, 51.1309]  # 0.0009° of latitude north of it: 100.1 m
    assert found("Road", "near;maxDistance==200", beside_the_road) == ["r1"]
    assert found("Road", "near;maxDistance==50", beside_the_road) == []
    assert found("Road", "near;minDistance==50", beside_the_road) == ["r1"]
    outside_the_park = [71.299, 51.10]  # 0.001° of longitude west of its edge: 69.8 m
    assert found("Park", "near;maxDistance==100", outside_the_park) == ["p1"]
    assert found("Park", "near;maxDistance==50", outside_the_park) == []
    # within: the road's box must lie inside the query shape's box, and shapely decides
    around = [[[71.29, 51.12], [71.59, 51.12], [71.59, 51.14], [71.29, 51.14], [71.29, 51.12]]]
    half = [[[71.29, 51.12], [71.45, 51.12], [71.45, 51.14], [71.29, 51.14], [71.29, 51.12]]]
    for shape, expected in ((around, ["r1"]), (half, [])):
        params = {"type": "Road", "georel": "within", "geometry": "Polygon"}
        answer = client.get(url, params={**params, "coordinates": json.dumps(shape)})
        assert _ids(answer) == expected


def test_attrs_patch_post_and_delete(operate_app: OperateApp) -> None:
    _seed(operate_app)
    client, auth = operate_app.client, operate_app.auth
    entity = "/ngsi-ld/v1/entities/urn:ngsi-ld:AirQualityObserved:s1"
    assert (
        client.patch(
            f"{entity}/attrs", json={"pm25": {"type": "Property", "value": 20.0}}, headers=auth
        ).status_code
        == 204
    )
    # An update appends the attributes the entity lacks (clause 5.6.2, GS CIM 009 V1.9.1)
    updated = client.patch(f"{entity}/attrs", json={"pm25": 21.0, "no2": 5.0}, headers=auth)
    assert updated.status_code == 204
    assert client.get(entity, params={"options": "keyValues"}).json()["no2"] == 5.0
    assert (
        client.post(
            f"{entity}/attrs", json={"no2": {"type": "Property", "value": 7.5}}, headers=auth
        ).status_code
        == 204
    )
    kept = client.post(
        f"{entity}/attrs", params={"options": "noOverwrite"}, json={"no2": 99}, headers=auth
    )
    # UpdateResult names attributes by their full IRI (the ETSI suite's 010_04)
    default_vocab = "https://uri.etsi.org/ngsi-ld/default-context/"
    assert kept.status_code == 207
    assert kept.json()["notUpdated"][0]["attributeName"] == default_vocab + "no2"
    assert client.get(entity, params={"options": "keyValues"}).json()["no2"] == 7.5
    assert (
        client.patch(f"{entity}/attrs/pm25", json={"value": 30.0}, headers=auth).status_code == 204
    )
    assert client.get(entity).json()["pm25"]["value"] == 30.0
    assert client.delete(f"{entity}/attrs/no2", headers=auth).status_code == 204
    assert "no2" not in client.get(entity).json()
    assert client.delete(entity, headers=auth).status_code == 204
    assert client.get(entity).status_code == 404
    deleted = client.post(
        "/ngsi-ld/v1/entityOperations/delete",
        json=["urn:ngsi-ld:AirQualityObserved:s2", "urn:ngsi-ld:AirQualityObserved:nope"],
        headers=auth,
    )
    assert deleted.status_code == 207
    assert deleted.json()["success"] == ["urn:ngsi-ld:AirQualityObserved:s2"]
    assert deleted.json()["errors"][0]["error"]["type"].endswith("/ResourceNotFound")


def test_temporal_history_of_observed_values(operate_app: OperateApp) -> None:
    client, auth = operate_app.client, operate_app.auth
    for hour, value in ((8, 20.0), (9, 25.5), (10, 31.0)):
        body = {
            k: v
            for k, v in air("t1", value, 71.43, 51.13, f"2025-12-01T{hour:02d}:00:00+05:00").items()
            if k != "@context"
        }
        assert client.post(
            "/ngsi-ld/v1/entityOperations/upsert", json=[body], headers={**auth, "Link": LINK}
        ).status_code in (201, 204)
    history = client.get("/ngsi-ld/v1/temporal/entities/urn:ngsi-ld:AirQualityObserved:t1").json()
    assert [(i["value"], i["observedAt"]) for i in history["pm25"]] == [
        (20.0, "2025-12-01T03:00:00Z"),
        (25.5, "2025-12-01T04:00:00Z"),
        (31.0, "2025-12-01T05:00:00Z"),
    ]
    between = client.get(
        "/ngsi-ld/v1/temporal/entities",
        params={
            "type": "AirQualityObserved",
            "timerel": "between",
            "timeAt": "2025-12-01T04:00:00Z",
            "endTimeAt": "2025-12-01T06:00:00Z",
            "options": "temporalValues",
        },
    ).json()
    assert between[0]["pm25"] == {
        "type": "Property",
        "values": [[25.5, "2025-12-01T04:00:00Z"], [31.0, "2025-12-01T05:00:00Z"]],
    }
    last = client.get(
        "/ngsi-ld/v1/temporal/entities/urn:ngsi-ld:AirQualityObserved:t1", params={"lastN": 1}
    ).json()
    assert [i["value"] for i in last["pm25"]] == [31.0]
    # The same upsert again is not a new observation: history stays at three values.
    body = {
        k: v
        for k, v in air("t1", 31.0, 71.43, 51.13, "2025-12-01T10:00:00+05:00").items()
        if k != "@context"
    }
    client.post("/ngsi-ld/v1/entityOperations/upsert", json=[body], headers={**auth, "Link": LINK})
    assert (
        len(
            client.get("/ngsi-ld/v1/temporal/entities/urn:ngsi-ld:AirQualityObserved:t1").json()[
                "pm25"
            ]
        )
        == 3
    )


def test_an_update_appends_the_instance_of_a_new_dataset_id(operate_app: OperateApp) -> None:
    """Clause 5.6.2: an instance with a datasetId the attribute lacks is appended, and the
    default instance stays (it was replaced before)."""
    client, auth = operate_app.client, operate_app.auth
    vehicle = {
        "id": "urn:ngsi-ld:Vehicle:v1",
        "type": "Vehicle",
        "speed": {"type": "Property", "value": 55},
    }
    assert client.post("/ngsi-ld/v1/entities", json=vehicle, headers=auth).status_code == 201
    gps = {"type": "Property", "value": 54.5, "datasetId": "urn:ngsi-ld:Dataset:gps"}
    updated = client.patch(
        "/ngsi-ld/v1/entities/urn:ngsi-ld:Vehicle:v1/attrs", json={"speed": gps}, headers=auth
    )
    assert updated.status_code == 204, updated.text
    speed = client.get("/ngsi-ld/v1/entities/urn:ngsi-ld:Vehicle:v1").json()["speed"]
    assert sorted((i["value"], i.get("datasetId")) for i in speed) == [
        (54.5, "urn:ngsi-ld:Dataset:gps"),
        (55, None),
    ]


def test_subscription_notifies_http_endpoint(
    operate_app: OperateApp, capture_server: Capture
) -> None:
    from qala.components.operate.subscriptions import notifier_for

    client, auth = operate_app.client, operate_app.auth
    subscription = {
        "type": "Subscription",
        "entities": [{"type": "AirQualityObserved"}],
        "q": "pm25>100",
        "notification": {
            "format": "keyValues",
            "attributes": ["pm25"],
            "endpoint": {"uri": capture_server.url, "accept": "application/json"},
        },
    }
    created = client.post("/ngsi-ld/v1/subscriptions", json=subscription, headers=auth)
    assert created.status_code == 201
    location = created.headers["location"]
    _seed(operate_app)  # s3 has pm25 160.5, the only one above 100
    notifier_for(operate_app.context).drain()
    assert capture_server.event.wait(5)
    notification = capture_server.received[0]
    assert notification["type"] == "Notification"
    assert notification["subscriptionId"] == location.rsplit("/", 1)[1]
    assert notification["data"] == [
        {"id": "urn:ngsi-ld:AirQualityObserved:s3", "type": "AirQualityObserved", "pm25": 160.5}
    ]
    stored = client.get(location, headers=auth).json()
    assert stored["notification"]["timesSent"] == 1
    bad = client.post(
        "/ngsi-ld/v1/subscriptions",
        json={"type": "Subscription", "entities": [{"type": "T"}]},
        headers=auth,
    )
    assert bad.status_code == 400 and "endpoint" in bad.json()["detail"]
    assert client.delete(location, headers=auth).status_code == 204
    assert client.get(location, headers=auth).status_code == 404


def test_sdm_payloads_accepted_as_they_are(operate_app: OperateApp) -> None:
    """Normalised Smart Data Models examples (WaterQualityObserved, Streetlight, TrafficFlowObserved, Device)."""
    payloads = [
        {
            "id": "urn:ngsi-ld:WaterQualityObserved:waterqualityobserved:Astana:01",
            "type": "WaterQualityObserved",
            "dateObserved": {
                "type": "Property",
                "value": {"@type": "DateTime", "@value": "2025-12-01T08:00:00Z"},
            },
            "temperature": {"type": "Property", "value": 4.2},
            "pH": {"type": "Property", "value": 7.4},
            "location": {
                "type": "GeoProperty",
                "value": {"type": "Point", "coordinates": [71.41, 51.15]},
            },
        },
        {
            "id": "urn:ngsi-ld:Streetlight:streetlight:astana:4567",
            "type": "Streetlight",
            "status": {"type": "Property", "value": "ok"},
            "powerState": {"type": "Property", "value": "on"},
            "refStreetlightGroup": {
                "type": "Relationship",
                "object": "urn:ngsi-ld:StreetlightGroup:g1",
            },
            "location": {
                "type": "GeoProperty",
                "value": {"type": "Point", "coordinates": [71.42, 51.16]},
            },
        },
        {
            "id": "urn:ngsi-ld:TrafficFlowObserved:TrafficFlowObserved-Astana-1",
            "type": "TrafficFlowObserved",
            "dateObserved": {"type": "Property", "value": "2025-12-01T08:00:00Z"},
            "intensity": {"type": "Property", "value": 197},
            "averageVehicleSpeed": {"type": "Property", "value": 52.5, "unitCode": "KMH"},
            "location": {
                "type": "GeoProperty",
                "value": {"type": "LineString", "coordinates": [[71.40, 51.10], [71.41, 51.11]]},
            },
        },
        {
            "id": "urn:ngsi-ld:Device:device-9845A",
            "type": "Device",
            "controlledProperty": {"type": "Property", "value": ["pm25"]},
            "deviceState": {"type": "Property", "value": "ok"},
        },
    ]
    response = operate_app.client.post(
        "/ngsi-ld/v1/entityOperations/create",
        content=json.dumps([{**p, "@context": SDM_CONTEXT} for p in payloads]),
        headers={**operate_app.auth, **LD},
    )
    assert response.status_code == 201, response.text
    concepts = {
        e["id"].split(":")[2]: e
        for e in operate_app.client.get(
            "/ngsi-ld/v1/entities",
            params={"type": "WaterQualityObserved,Streetlight,TrafficFlowObserved,Device"},
        ).json()
    }
    assert set(concepts) == {"WaterQualityObserved", "Streetlight", "TrafficFlowObserved", "Device"}
    traffic = operate_app.client.get(
        "/ngsi-ld/v1/temporal/entities/urn:ngsi-ld:TrafficFlowObserved:TrafficFlowObserved-Astana-1"
    ).json()
    assert (
        traffic["intensity"][0]["value"] == 197
        and traffic["averageVehicleSpeed"][0]["unitCode"] == "KMH"
    )
    from sqlalchemy import select

    from qala.components.operate.models import Entity

    with operate_app.context.database.session() as session:
        kinds = dict(session.execute(select(Entity.type, Entity.concept)).all())
    assert kinds == {
        "WaterQualityObserved": "observation",
        "Streetlight": "item",
        "TrafficFlowObserved": "observation",
        "Device": "item",
    }


def test_regular_expressions_run_in_linear_time_or_are_refused(operate_app: OperateApp) -> None:
    """The backtracking pattern that held Python's ``re`` for seconds answers right away on RE2;
    what RE2 cannot run (backreferences, lookaround) is refused with BadRequestData."""
    import time

    client = operate_app.client
    names = {"urn:ngsi-ld:Station:plain": "x" * 40, "urn:ngsi-ld:Station:Quay": "abcdQ"}
    for entity_id, name in names.items():
        created = client.post(
            "/ngsi-ld/v1/entities",
            json={"id": entity_id, "type": "Station", "name": {"type": "Property", "value": name}},
            headers=operate_app.auth,
        )
        assert created.status_code == 201, created.text
    started = time.monotonic()
    by_name = client.get(
        "/ngsi-ld/v1/entities", params={"type": "Station", "q": 'name~="^(?:(?:[^Q]+)+)+Q"'}
    )
    by_id = client.get(
        "/ngsi-ld/v1/entities",
        params={"type": "Station", "idPattern": "(?:(?:[^Q]+)+)+Q.*"},
    )
    # A guard against a return to exponential time, not a measurement (bench/ measures).
    assert time.monotonic() - started < 2.0
    assert [e["id"] for e in by_name.json()] == ["urn:ngsi-ld:Station:Quay"]
    assert [e["id"] for e in by_id.json()] == ["urn:ngsi-ld:Station:Quay"]
    plain = client.get("/ngsi-ld/v1/entities", params={"type": "Station", "q": 'name!~="Q"'}).json()
    assert [e["id"] for e in plain] == ["urn:ngsi-ld:Station:plain"]
    for params in (
        {"type": "Station", "q": 'name~="(a)\\1"'},
        {"type": "Station", "idPattern": "urn:(?=ngsi).*"},
    ):
        refused = client.get("/ngsi-ld/v1/entities", params=params)
        assert refused.status_code == 400, params
        assert refused.json()["type"] == "https://uri.etsi.org/ngsi-ld/errors/BadRequestData"
        assert "RE2" in refused.json()["detail"]
    subscription = client.post(
        "/ngsi-ld/v1/subscriptions",
        json={
            "type": "Subscription",
            "entities": [{"type": "Station", "idPattern": "(a)\\1"}],
            "notification": {"endpoint": {"uri": "http://127.0.0.1:9/notify"}},
        },
        headers=operate_app.auth,
    )
    assert subscription.status_code == 400


def test_an_entity_whose_observation_no_device_can_make_is_refused(
    operate_app: OperateApp,
) -> None:
    client = operate_app.client
    for body, reason in (
        (air("bad1", 5e7, 71, 51), "outside what a pm25 sensor can report"),
        (air("bad2", 20, 71, 51, when="1970-01-01T00:00:00Z"), "before 2000-01-01"),
    ):
        refused = client.post(
            "/ngsi-ld/v1/entities", content=json.dumps(body), headers={**operate_app.auth, **LD}
        )
        assert refused.status_code == 400, refused.text
        assert refused.json()["type"].endswith("/BadRequestData")
        assert "attribute `pm25`" in refused.json()["detail"] and reason in refused.json()["detail"]
        missing = client.get(f"/ngsi-ld/v1/entities/{body['id']}")
        assert missing.status_code == 404  # nothing of the write was kept
