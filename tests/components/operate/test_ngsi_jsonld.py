"""JSON-LD @context handling of the NGSI-LD API: names expanded with the writer's context, kept
in one canonical form, compacted for the reader's; discovery; unavailable contexts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from qala.components.operate import jsonld

OperateApp = Any  # fixture from this folder's conftest

CTX_BASE = "https://contexts.example.org/"
VEHICLES = {
    "@context": {
        "Vehicle": "https://vocab.example.org/Vehicle",
        "speed": "https://vocab.example.org/speed",
        "ex": "https://vocab.example.org/",
    }
}
ALTERNATIVE = {
    "@context": {
        "Car": "https://vocab.example.org/Vehicle",
        "velocity": "https://vocab.example.org/speed",
    }
}
LD = {"Content-Type": "application/ld+json"}
SPEED = "https://vocab.example.org/speed"
VEHICLE = "https://vocab.example.org/Vehicle"


def link(name: str) -> dict[str, str]:
    url = CTX_BASE + name
    return {
        "Link": f'<{url}>; rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"'
    }


@pytest.fixture
def app(operate_app: OperateApp, tmp_path: Path) -> OperateApp:
    (tmp_path / "vehicles.jsonld").write_text(json.dumps(VEHICLES))
    (tmp_path / "alternative.jsonld").write_text(json.dumps(ALTERNATIVE))
    operate_app.context.settings.ngsi_context_files = {CTX_BASE: str(tmp_path)}
    return operate_app


def test_names_between_contexts_without_network(tmp_path: Path) -> None:
    (tmp_path / "vehicles.jsonld").write_text(json.dumps(VEHICLES))
    jsonld.configure(files={CTX_BASE: tmp_path})
    try:
        writer = jsonld.names(CTX_BASE + "vehicles.jsonld")
        core = jsonld.names(None)
        assert writer.canonical("speed") == SPEED
        assert writer.canonical("ex:weight") == "https://vocab.example.org/weight"
        # Terms of the default vocabulary and of the core context stay short.
        assert writer.canonical("colour") == "colour"
        assert writer.canonical("location") == "location"
        assert core.to_reader(SPEED) == SPEED
        assert writer.to_reader(SPEED) == "speed"
        assert writer.to_reader("https://vocab.example.org/weight") == "ex:weight"
        # An inline context, and a context URL Qala does not hold (fetching off): names as sent.
        assert jsonld.names({"speed": "urn:x:speed"}).canonical("speed") == "urn:x:speed"
        assert jsonld.names("https://unknown.example.org/c.jsonld").canonical("speed") == "speed"
        with pytest.raises(jsonld.ContextNotAvailable):
            jsonld.names("https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-none.jsonld")
    finally:
        jsonld.configure()


def test_written_under_one_context_read_under_another(app: OperateApp) -> None:
    client = app.client
    entity = {
        "id": "urn:ngsi-ld:Vehicle:v1",
        "type": "Vehicle",
        "speed": {"type": "Property", "value": 54, "source": {"type": "Property", "value": "gps"}},
        "colour": {"type": "Property", "value": "red"},
        "@context": [CTX_BASE + "vehicles.jsonld"],
    }
    created = client.post(
        "/ngsi-ld/v1/entities", content=json.dumps(entity), headers={**app.auth, **LD}
    )
    assert created.status_code == 201, created.text

    bare = client.get("/ngsi-ld/v1/entities/urn:ngsi-ld:Vehicle:v1").json()
    assert bare["type"] == VEHICLE
    assert bare[SPEED]["value"] == 54
    assert bare["colour"]["value"] == "red"

    same = client.get(
        "/ngsi-ld/v1/entities/urn:ngsi-ld:Vehicle:v1", headers=link("vehicles.jsonld")
    )
    assert same.json()["type"] == "Vehicle" and same.json()["speed"]["value"] == 54
    assert "vehicles.jsonld" in same.headers["link"]

    other = client.get(
        "/ngsi-ld/v1/entities",
        params={"type": "Car", "q": "velocity>50", "attrs": "velocity"},
        headers=link("alternative.jsonld"),
    )
    assert other.status_code == 200
    assert [(e["type"], e["velocity"]["value"]) for e in other.json()] == [("Car", 54)]

    by_iri = client.get("/ngsi-ld/v1/entities", params={"type": VEHICLE})
    assert [e["id"] for e in by_iri.json()] == ["urn:ngsi-ld:Vehicle:v1"]
    assert client.get("/ngsi-ld/v1/entities", params={"type": "Vehicle"}).json() == []

    removed = client.delete(
        "/ngsi-ld/v1/entities/urn:ngsi-ld:Vehicle:v1/attrs/velocity",
        headers={**app.auth, **link("alternative.jsonld")},
    )
    assert removed.status_code == 204
    assert SPEED not in client.get("/ngsi-ld/v1/entities/urn:ngsi-ld:Vehicle:v1").json()


def test_discovery_names_types_and_attributes_for_the_reader(app: OperateApp) -> None:
    client = app.client
    for number, kind in ((1, "Vehicle"), (2, "Vehicle"), (3, "Bicycle")):
        body = {
            "id": f"urn:ngsi-ld:{kind}:d{number}",
            "type": kind,
            "speed": {"type": "Property", "value": number},
        }
        answer = client.post(
            "/ngsi-ld/v1/entities", json=body, headers={**app.auth, **link("vehicles.jsonld")}
        )
        assert answer.status_code == 201, answer.text

    assert client.get("/ngsi-ld/v1/types").json()["typeList"] == ["Bicycle", VEHICLE]
    listed = client.get("/ngsi-ld/v1/types", headers=link("vehicles.jsonld")).json()
    assert listed["typeList"] == ["Bicycle", "Vehicle"]

    info = client.get("/ngsi-ld/v1/types/Vehicle", headers=link("vehicles.jsonld")).json()
    assert info["id"] == VEHICLE and info["entityCount"] == 2
    assert info["attributeDetails"] == [
        {"id": SPEED, "type": "Attribute", "attributeName": "speed", "attributeTypes": ["Property"]}
    ]
    assert client.get("/ngsi-ld/v1/types/Vehicle").status_code == 404

    attribute = client.get("/ngsi-ld/v1/attributes/velocity", headers=link("alternative.jsonld"))
    assert attribute.json()["attributeCount"] == 3
    assert attribute.json()["typeNames"] == ["Bicycle", "Car"]
    names = client.get("/ngsi-ld/v1/attributes").json()["attributeList"]
    assert names == [SPEED]


def test_an_unavailable_core_context_is_503(app: OperateApp) -> None:
    entity = {
        "id": "urn:ngsi-ld:Vehicle:u1",
        "type": "Vehicle",
        "@context": ["https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-non-existing.jsonld"],
    }
    answer = app.client.post(
        "/ngsi-ld/v1/entities", content=json.dumps(entity), headers={**app.auth, **LD}
    )
    assert answer.status_code == 503
    assert answer.json()["type"].endswith("/LdContextNotAvailable")


def _write(app: OperateApp, entity: dict[str, Any]) -> None:
    body = {**entity, "@context": [CTX_BASE + "vehicles.jsonld"]}
    created = app.client.post(
        "/ngsi-ld/v1/entities", content=json.dumps(body), headers={**app.auth, **LD}
    )
    assert created.status_code == 201, created.text


def test_inline_linked_entities_are_named_for_the_reader(app: OperateApp) -> None:
    _write(
        app,
        {
            "id": "urn:ngsi-ld:Vehicle:towing",
            "type": "Vehicle",
            "tows": {"type": "Relationship", "object": "urn:ngsi-ld:Vehicle:towed"},
        },
    )
    _write(
        app,
        {
            "id": "urn:ngsi-ld:Vehicle:towed",
            "type": "Vehicle",
            "speed": {"type": "Property", "value": 3},
        },
    )
    for read in (
        lambda params: app.client.get(
            "/ngsi-ld/v1/entities/urn:ngsi-ld:Vehicle:towing",
            params=params,
            headers=link("vehicles.jsonld"),
        ).json(),
        lambda params: app.client.get(
            "/ngsi-ld/v1/entities",
            params={"type": "Vehicle", "id": "urn:ngsi-ld:Vehicle:towing", **params},
            headers=link("vehicles.jsonld"),
        ).json()[0],
    ):
        normalized = read({"join": "inline"})["tows"]["entity"]
        # part of the linking entity's document: its names compacted, no @context of its own
        assert normalized == {
            "id": "urn:ngsi-ld:Vehicle:towed",
            "type": "Vehicle",
            "speed": {"type": "Property", "value": 3},
        }
        simplified = read({"join": "inline", "options": "keyValues"})["tows"]
        assert simplified == {"id": "urn:ngsi-ld:Vehicle:towed", "type": "Vehicle", "speed": 3}


def test_order_by_and_pick_name_attributes_with_the_readers_context(app: OperateApp) -> None:
    for key, speed in (("a", 30), ("b", 10), ("c", 20)):
        _write(
            app,
            {
                "id": f"urn:ngsi-ld:Vehicle:{key}",
                "type": "Vehicle",
                "speed": {"type": "Property", "value": speed},
            },
        )
    _write(app, {"id": "urn:ngsi-ld:Vehicle:d", "type": "Vehicle"})

    def ids(**params: str) -> list[str]:
        answer = app.client.get(
            "/ngsi-ld/v1/entities",
            params={"type": "Vehicle", **params},
            headers=link("vehicles.jsonld"),
        )
        assert answer.status_code == 200, answer.text
        return [e.get("id", "-") for e in answer.json()]

    assert ids(orderBy="speed") == [f"urn:ngsi-ld:Vehicle:{k}" for k in "bcad"]
    assert ids(orderBy="speed;desc") == [f"urn:ngsi-ld:Vehicle:{k}" for k in "acbd"]
    # the entity without `speed` has nothing to show under pick=speed: it is left out
    assert ids(pick="speed") == ["-", "-", "-"]


def test_replacing_an_attribute_names_it_with_the_writers_context(app: OperateApp) -> None:
    _write(
        app,
        {
            "id": "urn:ngsi-ld:Vehicle:r1",
            "type": "Vehicle",
            "speed": {"type": "Property", "value": 5},
        },
    )
    replaced = app.client.put(
        "/ngsi-ld/v1/entities/urn:ngsi-ld:Vehicle:r1/attrs/speed",
        json={"type": "Property", "value": 60, "source": {"type": "Property", "value": "gps"}},
        headers={**app.auth, **link("vehicles.jsonld")},
    )
    assert replaced.status_code == 204, replaced.text
    stored = app.client.get("/ngsi-ld/v1/entities/urn:ngsi-ld:Vehicle:r1").json()
    assert stored[SPEED]["value"] == 60 and "speed" not in stored
