"""Scopes (clauses 4.18, 4.19: ``scope``, ``scopeQ``) and entities of several types (4.16) at
/ngsi-ld/v1."""

from __future__ import annotations

from typing import Any

OperateApp = Any  # fixture from this folder's conftest

BASE = "/ngsi-ld/v1"


def _create(app: OperateApp, entity: dict[str, Any]) -> None:
    response = app.client.post(f"{BASE}/entities", json=entity, headers=app.auth)
    assert response.status_code == 201, response.text


def _read(app: OperateApp, entity_id: str) -> dict[str, Any]:
    response = app.client.get(f"{BASE}/entities/{entity_id}")
    assert response.status_code == 200, response.text
    return dict(response.json())


def _ids(app: OperateApp, **params: str) -> list[str]:
    response = app.client.get(f"{BASE}/entities", params=params)
    assert response.status_code == 200, response.text
    return [e["id"] for e in response.json()]


def test_scopes_are_kept_written_and_queried(operate_app: OperateApp) -> None:
    app = operate_app
    _create(app, {"id": "urn:ngsi-ld:Park:p1", "type": "Park", "scope": "/Astana/Parks/Central"})
    _create(
        app,
        {
            "id": "urn:ngsi-ld:Park:p2",
            "type": "Park",
            "scope": ["/Astana/Parks/Central", "/Akimat/Green"],
        },
    )
    _create(app, {"id": "urn:ngsi-ld:Park:p3", "type": "Park"})
    assert _read(app, "urn:ngsi-ld:Park:p1")["scope"] == "/Astana/Parks/Central"
    assert _read(app, "urn:ngsi-ld:Park:p2")["scope"] == ["/Astana/Parks/Central", "/Akimat/Green"]
    assert "scope" not in _read(app, "urn:ngsi-ld:Park:p3")

    both = ["urn:ngsi-ld:Park:p1", "urn:ngsi-ld:Park:p2"]
    assert _ids(app, type="Park", scopeQ="/Astana/Parks/Central") == both
    assert _ids(app, type="Park", scopeQ="/Astana/+/Central") == both
    assert _ids(app, type="Park", scopeQ="/Akimat/#") == ["urn:ngsi-ld:Park:p2"]
    assert _ids(app, type="Park", scopeQ="/#") == both
    assert _ids(app, type="Park", scopeQ="/Astana/Parks/Central;/Akimat/Green") == [both[1]]
    assert _ids(app, type="Park", scopeQ="/Astana/Parks/Central,/Akimat/Green") == both
    assert _ids(app, type="Park", scopeQ="/Astana") == []
    bad = app.client.get(f"{BASE}/entities", params={"type": "Park", "scopeQ": "Astana"})
    assert bad.status_code == 400

    attrs = f"{BASE}/entities/urn:ngsi-ld:Park:p1/attrs"
    added = app.client.post(
        attrs, params={"options": "noOverwrite"}, json={"scope": "/Akimat/Green"}, headers=app.auth
    )
    assert added.status_code == 204, added.text
    assert _read(app, "urn:ngsi-ld:Park:p1")["scope"] == ["/Astana/Parks/Central", "/Akimat/Green"]
    assert app.client.post(attrs, json={"scope": "/Only"}, headers=app.auth).status_code == 204
    assert _read(app, "urn:ngsi-ld:Park:p1")["scope"] == "/Only"
    # An update changes only the scopes an entity has.
    not_there = app.client.patch(
        f"{BASE}/entities/urn:ngsi-ld:Park:p3/attrs", json={"scope": "/X"}, headers=app.auth
    )
    assert not_there.status_code == 207
    deleted = app.client.delete(f"{attrs}/scope", headers=app.auth)
    assert deleted.status_code == 204
    assert "scope" not in _read(app, "urn:ngsi-ld:Park:p1")
    refused = app.client.post(
        f"{BASE}/entities",
        json={"id": "urn:ngsi-ld:Park:p4", "type": "Park", "scope": "no-slash"},
        headers=app.auth,
    )
    assert refused.status_code == 400


def test_an_entity_may_have_several_types(operate_app: OperateApp) -> None:
    app = operate_app
    _create(app, {"id": "urn:ngsi-ld:Thing:t1", "type": ["Building", "Museum"]})
    _create(app, {"id": "urn:ngsi-ld:Thing:t2", "type": "Building"})
    assert _read(app, "urn:ngsi-ld:Thing:t1")["type"] == ["Building", "Museum"]
    assert _ids(app, type="Museum") == ["urn:ngsi-ld:Thing:t1"]
    assert _ids(app, type="Building") == ["urn:ngsi-ld:Thing:t1", "urn:ngsi-ld:Thing:t2"]
    added = app.client.patch(
        f"{BASE}/entities/urn:ngsi-ld:Thing:t2/attrs",
        json={"type": ["Building", "School"]},
        headers=app.auth,
    )
    assert added.status_code == 204, added.text
    assert _read(app, "urn:ngsi-ld:Thing:t2")["type"] == ["Building", "School"]
    assert _ids(app, type="School") == ["urn:ngsi-ld:Thing:t2"]
    refused = app.client.post(
        f"{BASE}/entities",
        json={"id": "urn:ngsi-ld:Thing:t3", "type": ["Ok", "not ok"]},
        headers=app.auth,
    )
    assert refused.status_code == 400


def test_type_selection_joins_types_with_and_or(operate_app: OperateApp) -> None:
    app = operate_app
    _create(app, {"id": "urn:ngsi-ld:Thing:a", "type": "Building"})
    _create(app, {"id": "urn:ngsi-ld:Thing:b", "type": "Parking"})
    _create(app, {"id": "urn:ngsi-ld:Thing:c", "type": ["Building", "Museum"]})
    assert _ids(app, type="(Building;Museum)") == ["urn:ngsi-ld:Thing:c"]
    assert _ids(app, type="(Building;Parking),Museum") == ["urn:ngsi-ld:Thing:c"]
    assert _ids(app, type="Parking|Museum") == ["urn:ngsi-ld:Thing:b", "urn:ngsi-ld:Thing:c"]
    assert app.client.get(f"{BASE}/entities", params={"type": "(Building"}).status_code == 400


def test_lang_answers_language_properties_in_one_language(operate_app: OperateApp) -> None:
    app = operate_app
    street = {
        "type": "LanguageProperty",
        "languageMap": {"kk": "Абай даңғылы", "ru": "проспект Абая"},
    }
    _create(app, {"id": "urn:ngsi-ld:Road:r1", "type": "Road", "street": street})
    path = f"{BASE}/entities/urn:ngsi-ld:Road:r1"
    assert app.client.get(path).json()["street"] == street
    russian = app.client.get(path, params={"lang": "ru"}).json()["street"]
    assert russian == {"type": "Property", "value": "проспект Абая", "lang": "ru"}
    ranked = app.client.get(path, params={"lang": "en;q=0.9,ru-KZ,kk;q=0.5"}).json()["street"]
    assert ranked["lang"] == "ru"
    assert app.client.get(path, params={"lang": "*"}).json()["street"]["lang"] == "kk"
    simple = app.client.get(path, params={"lang": "kk", "options": "keyValues"}).json()
    assert simple["street"] == "Абай даңғылы"
    listed = app.client.get(f"{BASE}/entities", params={"type": "Road", "lang": "ru"}).json()
    assert listed[0]["street"]["value"] == "проспект Абая"
    assert app.client.get(path, params={"lang": "ru;q=x"}).status_code == 400


def test_order_by_sorts_the_answer(operate_app: OperateApp) -> None:
    app = operate_app
    for key, name, rank in (("1", "C", 2), ("2", "A", 3), ("3", "B", 1)):
        _create(
            app,
            {
                "id": f"urn:ngsi-ld:Stop:{key}",
                "type": "Stop",
                "name": {
                    "type": "Property",
                    "value": name,
                    "rank": {"type": "Property", "value": rank},
                },
            },
        )
    _create(app, {"id": "urn:ngsi-ld:Stop:4", "type": "Stop"})
    stops = ["urn:ngsi-ld:Stop:" + k for k in "1234"]
    assert _ids(app, type="Stop", orderBy="name") == [stops[1], stops[2], stops[0], stops[3]]
    assert _ids(app, type="Stop", orderBy="name;desc") == [stops[0], stops[2], stops[1], stops[3]]
    assert _ids(app, type="Stop", orderBy="name.rank") == [stops[2], stops[0], stops[1], stops[3]]
    assert _ids(app, type="Stop", orderBy="id;desc") == stops[::-1]
    assert _ids(app, type="Stop", orderBy="type,name;desc", limit="1") == [stops[0]]
    bad = app.client.get(f"{BASE}/entities", params={"type": "Stop", "orderBy": "name;up"})
    assert bad.status_code == 400


def test_batch_update_adds_the_types_an_item_names(operate_app: OperateApp) -> None:
    app = operate_app
    _create(app, {"id": "urn:ngsi-ld:Thing:u1", "type": "Building"})
    response = app.client.post(
        f"{BASE}/entityOperations/update",
        json=[{"id": "urn:ngsi-ld:Thing:u1", "type": "Vehicle"}],
        headers=app.auth,
    )
    assert response.status_code == 204, response.text
    assert _read(app, "urn:ngsi-ld:Thing:u1")["type"] == ["Building", "Vehicle"]


def test_dataset_id_selects_attribute_instances(operate_app: OperateApp) -> None:
    app = operate_app
    names = [
        {"type": "Property", "value": "Bayterek"},
        {"type": "Property", "value": "Бәйтерек", "datasetId": "urn:ngsi-ld:Dataset:kk"},
        {"type": "Property", "value": "Байтерек", "datasetId": "urn:ngsi-ld:Dataset:ru"},
    ]
    _create(app, {"id": "urn:ngsi-ld:Tower:t1", "type": "Tower", "name": names})

    def names_for(datasets: str) -> Any:
        response = app.client.get(
            f"{BASE}/entities", params={"type": "Tower", "datasetId": datasets}
        )
        assert response.status_code == 200, response.text
        return response.json()[0].get("name")

    assert names_for("urn:ngsi-ld:Dataset:kk")["value"] == "Бәйтерек"
    assert names_for("@none") == names[0]
    assert [n["value"] for n in names_for("urn:ngsi-ld:Dataset:kk,urn:ngsi-ld:Dataset:ru")] == [
        "Бәйтерек",
        "Байтерек",
    ]
    assert names_for("urn:ngsi-ld:Dataset:en") is None
    bad = app.client.get(f"{BASE}/entities", params={"type": "Tower", "datasetId": "not a uri"})
    assert bad.status_code == 400
