"""The NGSI-LD temporal API (clauses 5.6.11-5.6.16, 5.7.3-5.7.4, 6.3.10): instances of every
attribute kind with instanceIds, one instance modified or deleted, aggregations, time
properties, datasetId filters, pages cut with 206 and Content-Range; on both stores."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from qala.components.operate.models import AttributeInstance

OperateApp = Any  # fixture from this folder's conftest

TEMPORAL = "/ngsi-ld/v1/temporal/entities"
VEHICLE = "urn:ngsi-ld:Vehicle:t1"


def _vehicle() -> dict[str, Any]:
    return {
        "id": VEHICLE,
        "type": "Vehicle",
        "speed": [
            {"type": "Property", "value": 120, "observedAt": "2020-08-01T12:03:00Z"},
            {"type": "Property", "value": 80, "observedAt": "2020-08-01T12:05:00Z"},
            {"type": "Property", "value": 50, "observedAt": "2020-08-01T13:10:00Z"},
        ],
        "status": [
            {"type": "Property", "value": "moving", "observedAt": "2020-08-01T12:03:00Z"},
            {"type": "Property", "value": "parked", "observedAt": "2020-08-01T13:10:00Z"},
        ],
        "isParkedIn": [
            {
                "type": "Relationship",
                "object": "urn:ngsi-ld:Parking:a",
                "observedAt": "2020-08-01T12:03:00Z",
            },
            {
                "type": "Relationship",
                "object": "urn:ngsi-ld:Parking:b",
                "observedAt": "2020-08-01T13:10:00Z",
            },
        ],
        "name": [
            {
                "type": "LanguageProperty",
                "languageMap": {"en": "My car", "ru": "Моя машина"},
                "observedAt": "2020-08-01T12:03:00Z",
            }
        ],
        "fuelLevel": [
            {"type": "Property", "value": 67, "observedAt": "2020-08-01T12:03:00Z"},
            {
                "type": "Property",
                "value": 40,
                "observedAt": "2020-08-01T12:04:00Z",
                "datasetId": "urn:ngsi-ld:Dataset:tank2",
            },
        ],
    }


def _create(operate_app: OperateApp) -> None:
    created = operate_app.client.post(TEMPORAL, json=_vehicle(), headers=operate_app.auth)
    assert created.status_code == 201, created.text


def test_every_attribute_kind_has_a_history_with_instance_ids(operate_app: OperateApp) -> None:
    _create(operate_app)
    client = operate_app.client
    history = client.get(f"{TEMPORAL}/{VEHICLE}").json()
    assert [i["value"] for i in history["status"]] == ["moving", "parked"]
    assert [i["object"] for i in history["isParkedIn"]] == [
        "urn:ngsi-ld:Parking:a",
        "urn:ngsi-ld:Parking:b",
    ]
    assert history["name"][0]["languageMap"]["ru"] == "Моя машина"
    # The numeric instances are readings too, yet each is answered once.
    assert [i["value"] for i in history["speed"]] == [120, 80, 50]
    ids = [i["instanceId"] for attr in ("speed", "status", "isParkedIn") for i in history[attr]]
    assert len(set(ids)) == len(ids) == 7
    assert all(i.startswith("urn:ngsi-ld:attribute:instance:") for i in ids)

    simplified = client.get(f"{TEMPORAL}/{VEHICLE}", params={"format": "temporalValues"}).json()
    assert simplified["isParkedIn"] == {
        "type": "Relationship",
        "objects": [
            ["urn:ngsi-ld:Parking:a", "2020-08-01T12:03:00Z"],
            ["urn:ngsi-ld:Parking:b", "2020-08-01T13:10:00Z"],
        ],
    }
    assert simplified["name"]["languageMaps"][0][0] == {
        "languageMap": {"en": "My car", "ru": "Моя машина"}
    }
    # One group per datasetId.
    assert simplified["fuelLevel"] == [
        {"type": "Property", "values": [[67, "2020-08-01T12:03:00Z"]]},
        {
            "type": "Property",
            "datasetId": "urn:ngsi-ld:Dataset:tank2",
            "values": [[40, "2020-08-01T12:04:00Z"]],
        },
    ]


def test_one_instance_is_modified_or_deleted_by_its_instance_id(operate_app: OperateApp) -> None:
    _create(operate_app)
    client, auth = operate_app.client, operate_app.auth
    first = client.get(f"{TEMPORAL}/{VEHICLE}").json()["speed"][0]
    patched = client.patch(
        f"{TEMPORAL}/{VEHICLE}/attrs/speed/{first['instanceId']}",
        json={"type": "Property", "value": 129, "observedAt": "2020-08-01T12:03:00Z"},
        headers=auth,
    )
    assert patched.status_code == 204, patched.text
    speed = client.get(f"{TEMPORAL}/{VEHICLE}").json()["speed"]
    assert [(i["value"], i["instanceId"] == first["instanceId"]) for i in speed] == [
        (129, True),
        (80, False),
        (50, False),
    ]

    second = speed[1]["instanceId"]
    moved = client.patch(
        f"{TEMPORAL}/{VEHICLE}/attrs/speed/{second}",
        json={"type": "Property", "value": 81, "observedAt": "2020-08-01T12:06:00Z"},
        headers=auth,
    )
    assert moved.status_code == 204
    speed = client.get(f"{TEMPORAL}/{VEHICLE}").json()["speed"]
    # moved in time: the reading stored at the former time is not answered any more
    assert [(i["value"], i["observedAt"]) for i in speed] == [
        (129, "2020-08-01T12:03:00Z"),
        (81, "2020-08-01T12:06:00Z"),
        (50, "2020-08-01T13:10:00Z"),
    ]

    gone = client.delete(f"{TEMPORAL}/{VEHICLE}/attrs/speed/{first['instanceId']}", headers=auth)
    assert gone.status_code == 204
    # The reading stored with it went too: it does not come back from the observation history.
    assert [i["value"] for i in client.get(f"{TEMPORAL}/{VEHICLE}").json()["speed"]] == [81, 50]

    again = client.delete(f"{TEMPORAL}/{VEHICLE}/attrs/speed/{first['instanceId']}", headers=auth)
    assert again.status_code == 404
    assert again.json()["type"].endswith("/ResourceNotFound")
    bad = client.delete(f"{TEMPORAL}/{VEHICLE}/attrs/speed/not-a-uri", headers=auth)
    assert bad.status_code == 400
    # What the path names is looked up before the body is judged.
    unknown = client.patch(
        f"{TEMPORAL}/{VEHICLE}/attrs/speed/{first['instanceId']}", json=[1], headers=auth
    )
    assert unknown.status_code == 404


def test_aggregations_per_period(operate_app: OperateApp) -> None:
    _create(operate_app)
    answer = operate_app.client.get(
        f"{TEMPORAL}/{VEHICLE}",
        params={
            "options": "aggregatedValues",
            "aggrMethods": "avg,max,totalCount,distinctCount",
            "aggrPeriodDuration": "PT1H",
            "attrs": "speed,status",
        },
    )
    assert answer.status_code == 200, answer.text
    speed = answer.json()["speed"]
    assert speed["avg"] == [
        [100.0, "2020-08-01T12:03:00Z", "2020-08-01T13:03:00Z"],
        [50.0, "2020-08-01T13:03:00Z", "2020-08-01T14:03:00Z"],
    ]
    assert [v for v, _s, _e in speed["max"]] == [120.0, 50.0]
    status = answer.json()["status"]
    assert [v for v, _s, _e in status["totalCount"]] == [1, 1]
    assert [v for v, _s, _e in status["distinctCount"]] == [1, 1]
    missing = operate_app.client.get(
        f"{TEMPORAL}/{VEHICLE}", params={"options": "aggregatedValues"}
    )
    assert missing.status_code == 400
    endless = operate_app.client.get(
        f"{TEMPORAL}/{VEHICLE}",
        params={
            "options": "aggregatedValues",
            "aggrMethods": "sum",
            "aggrPeriodDuration": "P9999999Y",
        },
    )
    assert endless.status_code == 400
    wrong = operate_app.client.get(
        f"{TEMPORAL}/{VEHICLE}",
        params={"options": "aggregatedValues", "aggrMethods": "median"},
    )
    assert wrong.status_code == 400


def test_time_property_and_dataset_filters(operate_app: OperateApp) -> None:
    _create(operate_app)
    client = operate_app.client
    created = client.get(
        f"{TEMPORAL}/{VEHICLE}",
        params={"timeproperty": "createdAt", "timerel": "after", "timeAt": "2021-01-01T00:00:00Z"},
    )
    assert created.status_code == 200, created.text
    assert all("createdAt" in i for i in created.json()["status"])
    none_yet = client.get(
        f"{TEMPORAL}/{VEHICLE}",
        params={"timeproperty": "createdAt", "timerel": "before", "timeAt": "2021-01-01T00:00:00Z"},
    ).json()
    assert set(none_yet) == {"id", "type"}
    assert client.get(f"{TEMPORAL}/{VEHICLE}", params={"timeproperty": "seenAt"}).status_code == 400

    tank2 = client.get(
        f"{TEMPORAL}/{VEHICLE}", params={"datasetId": "urn:ngsi-ld:Dataset:tank2"}
    ).json()
    assert set(tank2) == {"id", "type", "fuelLevel"}
    assert [i["value"] for i in tank2["fuelLevel"]] == [40]
    default = client.get(
        f"{TEMPORAL}/{VEHICLE}", params={"datasetId": "@none", "attrs": "fuelLevel"}
    ).json()
    assert [i["value"] for i in default["fuelLevel"]] == [67]


def test_a_long_history_is_cut_with_206_and_content_range(operate_app: OperateApp) -> None:
    operate_app.context.settings.operate_temporal_instances = 2
    _create(operate_app)
    client = operate_app.client
    page = client.get(f"{TEMPORAL}/{VEHICLE}", params={"attrs": "speed,status"})
    assert page.status_code == 206
    # speed had three instances: the page ends at its second, and status is cut there too.
    assert page.headers["content-range"] == "date-time 2020-08-01T12:03:00Z-2020-08-01T12:05:00Z/*"
    assert [i["value"] for i in page.json()["speed"]] == [120, 80]
    assert [i["value"] for i in page.json()["status"]] == ["moving"]
    latest = client.get(f"{TEMPORAL}/{VEHICLE}", params={"attrs": "speed", "lastN": 3})
    assert latest.status_code == 206
    assert latest.headers["content-range"] == (
        "date-time 2020-08-01T13:10:00Z-2020-08-01T12:05:00Z/3"
    )
    whole = client.get(f"{TEMPORAL}/{VEHICLE}", params={"attrs": "speed", "lastN": 2})
    assert whole.status_code == 200
    assert "content-range" not in whole.headers


def test_entity_api_writes_and_deletions_enter_the_history(operate_app: OperateApp) -> None:
    client, auth = operate_app.client, operate_app.auth
    entity = {
        "id": "urn:ngsi-ld:Building:b1",
        "type": "Building",
        "name": {"type": "Property", "value": "Akimat"},
        "owner": {"type": "Relationship", "object": "urn:ngsi-ld:Organisation:city"},
    }
    assert client.post("/ngsi-ld/v1/entities", json=entity, headers=auth).status_code == 201
    patch = {"name": {"type": "Property", "value": "Akimat of Astana"}}
    assert (
        client.patch(
            "/ngsi-ld/v1/entities/urn:ngsi-ld:Building:b1/attrs", json=patch, headers=auth
        ).status_code
        == 204
    )
    history = client.get(
        f"{TEMPORAL}/urn:ngsi-ld:Building:b1", params={"timeproperty": "createdAt"}
    ).json()
    assert [i["value"] for i in history["name"]] == ["Akimat", "Akimat of Astana"]

    deleted = client.delete(
        "/ngsi-ld/v1/entities/urn:ngsi-ld:Building:b1/attrs/owner", headers=auth
    )
    assert deleted.status_code == 204
    deletions = client.get(
        f"{TEMPORAL}/urn:ngsi-ld:Building:b1", params={"timeproperty": "deletedAt"}
    ).json()
    assert set(deletions) == {"id", "type", "owner"}
    assert deletions["owner"][0]["object"] == "urn:ngsi-ld:null"
    assert "deletedAt" in deletions["owner"][0]


def test_post_query_and_empty_ids(operate_app: OperateApp) -> None:
    _create(operate_app)
    client, auth = operate_app.client, operate_app.auth
    found = client.post(
        "/ngsi-ld/v1/temporal/entityOperations/query",
        json={
            "type": "Query",
            "entities": [{"type": "Vehicle"}],
            "attrs": ["status"],
            "temporalQ": {"timerel": "after", "timeAt": "2020-08-01T13:00:00Z"},
        },
    )
    assert found.status_code == 200, found.text
    assert [i["value"] for i in found.json()[0]["status"]] == ["parked"]
    nothing_before = client.post(
        "/ngsi-ld/v1/temporal/entityOperations/query",
        json={
            "type": "Query",
            "entities": [{"type": "Vehicle"}],
            "temporalQ": {"timerel": "before", "timeAt": "2019-01-01T00:00:00Z"},
        },
    )
    assert nothing_before.json() == []
    empty = client.delete(f"{TEMPORAL}//attrs/speed", headers=auth)
    assert empty.status_code == 400
    assert (
        client.get(
            TEMPORAL, params={"timerel": "after", "timeAt": "2020-01-01T00:00:00Z"}
        ).status_code
        == 400
    )


def test_temporal_query_order_by(operate_app: OperateApp) -> None:
    client, auth = operate_app.client, operate_app.auth
    for suffix, name, rank in (("2", "B", 2), ("1", "A", 1), ("3", "C", 3)):
        body = {
            "id": f"urn:ngsi-ld:Building:{suffix}",
            "type": "Building",
            "name": {
                "type": "Property",
                "value": name,
                "subProperty": {"type": "Property", "value": rank},
            },
        }
        assert client.post("/ngsi-ld/v1/entities", json=body, headers=auth).status_code == 201

    def order(order_by: str) -> list[str]:
        found = client.get(
            TEMPORAL,
            params={
                "type": "Building",
                "timerel": "after",
                "timeAt": "1970-01-01T00:00:00Z",
                "timeproperty": "createdAt",
                "orderBy": order_by,
            },
        )
        assert found.status_code == 200, found.text
        return [e["id"].rsplit(":", 1)[1] for e in found.json()]

    assert order("name;desc") == ["3", "2", "1"]
    assert order("name.createdAt") == ["2", "1", "3"]
    assert order("type;asc,name.subProperty;desc") == ["3", "2", "1"]
    assert order("createdAt") == ["2", "1", "3"]
    assert (
        client.get(TEMPORAL, params={"type": "Building", "orderBy": "name;up"}).status_code == 400
    )


def test_sensor_readings_do_not_enter_the_instance_table(operate_app: OperateApp) -> None:
    """Smart Data Models observations upserted at sensor rate stay on the observation path:
    after the first write only changed non-reading attributes would add instances."""
    client, auth = operate_app.client, operate_app.auth
    for hour, pm25 in ((8, 20.0), (9, 25.5), (10, 31.0)):
        body = {
            "id": "urn:ngsi-ld:AirQualityObserved:s1",
            "type": "AirQualityObserved",
            "dateObserved": {"type": "Property", "value": f"2025-12-01T{hour:02d}:00:00+05:00"},
            "pm25": {"type": "Property", "value": pm25},
            "address": {"type": "Property", "value": "Kabanbay batyr 11"},
        }
        upserted = client.post("/ngsi-ld/v1/entityOperations/upsert", json=[body], headers=auth)
        assert upserted.status_code in (201, 204), upserted.text
    with operate_app.context.database.session() as session:
        rows = session.execute(
            select(AttributeInstance.attr, func.count()).group_by(AttributeInstance.attr)
        ).all()
    assert dict(rows) == {"address": 1}
    history = client.get(f"{TEMPORAL}/urn:ngsi-ld:AirQualityObserved:s1").json()
    assert [i["value"] for i in history["pm25"]] == [20.0, 25.5, 31.0]


def test_scopes_of_a_temporal_entity_are_kept_and_their_deletion_has_a_history(
    operate_app: OperateApp,
) -> None:
    """``scope`` given to the temporal API is the entity's scope; deleting it leaves an instance
    with deletedAt and no scope left (``[]``), seen with ``timeproperty=deletedAt``."""
    client, auth = operate_app.client, operate_app.auth
    entity = {
        "id": "urn:ngsi-ld:Vehicle:scoped",
        "type": "Vehicle",
        "scope": ["/Madrid/Gardens", "/CompanyA/UnitC"],
        "fuelLevel": [{"type": "Property", "value": 67, "observedAt": "2020-08-01T12:03:00Z"}],
    }
    assert client.post(TEMPORAL, json=entity, headers=auth).status_code == 201
    current = client.get("/ngsi-ld/v1/entities/urn:ngsi-ld:Vehicle:scoped").json()
    assert current["scope"] == ["/Madrid/Gardens", "/CompanyA/UnitC"]
    deleted = client.delete(
        "/ngsi-ld/v1/entities/urn:ngsi-ld:Vehicle:scoped/attrs/scope", headers=auth
    )
    assert deleted.status_code == 204, deleted.text
    history = client.get(
        f"{TEMPORAL}/urn:ngsi-ld:Vehicle:scoped", params={"timeproperty": "deletedAt"}
    ).json()
    kept = ("type", "value")
    assert [{k: v for k, v in i.items() if k in kept} for i in history["scope"]] == [
        {"type": "Property", "value": []}
    ]
    assert history["scope"][0]["deletedAt"].endswith("Z")
    simplified = client.get(
        f"{TEMPORAL}/urn:ngsi-ld:Vehicle:scoped",
        params={"timeproperty": "deletedAt", "options": "temporalValues"},
    ).json()
    assert simplified["scope"]["type"] == "Property"
    assert [value for value, _ in simplified["scope"]["values"]] == [[]]
    observed = client.get(f"{TEMPORAL}/urn:ngsi-ld:Vehicle:scoped").json()
    assert "scope" not in observed and observed["fuelLevel"][0]["value"] == 67
