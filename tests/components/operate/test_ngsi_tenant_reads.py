"""Reads honour ``NGSILD-Tenant`` (a city): they see only that city's entities and its
districts'; without the header every city's (the national view); an unknown tenant is
404 NonexistentTenant (clause 5.5.10)."""

from __future__ import annotations

from typing import Any

OperateApp = Any  # fixture from this folder's conftest

BASE = "/ngsi-ld/v1"
ASTANA = "urn:ngsi-ld:Streetlight:astana-1"
YESIL = "urn:ngsi-ld:Streetlight:astana-yesil-1"
KARAGANDA = "urn:ngsi-ld:Streetlight:karaganda-1"
NOWHERE = "urn:ngsi-ld:Streetlight:no-place"
IN_ASTANA = {"NGSILD-Tenant": "astana"}


def _light(entity_id: str, place: str | None, **extra: Any) -> dict[str, Any]:
    entity: dict[str, Any] = {
        "id": entity_id,
        "type": "Streetlight",
        "powerState": {
            "type": "Property",
            "value": "on",
            "observedAt": "2026-01-05T10:00:00Z",
        },
        **extra,
    }
    if place is not None:
        entity["placeCode"] = {"type": "Property", "value": place}
    return entity


def _fill(app: OperateApp) -> None:
    for entity in (
        _light(ASTANA, "astana"),
        _light(YESIL, "astana-yesil-district"),
        _light(KARAGANDA, "karaganda", lampModel={"type": "Property", "value": "LED-K"}),
        _light(NOWHERE, None),
    ):
        created = app.client.post(f"{BASE}/entities", json=entity, headers=app.auth)
        assert created.status_code == 201, created.text


def _ids(response: Any) -> list[str]:
    assert response.status_code == 200, response.text
    return sorted(e["id"] for e in response.json())


def test_entity_reads_see_only_the_tenants_city(operate_app: OperateApp) -> None:
    app = operate_app
    _fill(app)
    query = {"type": "Streetlight"}
    everything = sorted([ASTANA, YESIL, KARAGANDA, NOWHERE])
    assert _ids(app.client.get(f"{BASE}/entities", params=query)) == everything
    in_astana = app.client.get(f"{BASE}/entities", params=query, headers=IN_ASTANA)
    assert _ids(in_astana) == [ASTANA, YESIL]
    in_karaganda = {"NGSILD-Tenant": "Karaganda"}  # place codes are matched as the writes are
    karaganda = app.client.get(f"{BASE}/entities", params=query, headers=in_karaganda)
    assert _ids(karaganda) == [KARAGANDA]
    counted = app.client.get(
        f"{BASE}/entities", params={**query, "count": "true"}, headers=IN_ASTANA
    )
    assert counted.headers["NGSILD-Results-Count"] == "2"

    assert app.client.get(f"{BASE}/entities/{KARAGANDA}").status_code == 200
    assert app.client.get(f"{BASE}/entities/{YESIL}", headers=IN_ASTANA).status_code == 200
    hidden = app.client.get(f"{BASE}/entities/{KARAGANDA}", headers=IN_ASTANA)
    assert hidden.status_code == 404
    assert hidden.json()["type"].endswith("/ResourceNotFound")

    body = {"type": "Query", "entities": [{"type": "Streetlight"}]}
    posted = app.client.post(f"{BASE}/entityOperations/query", json=body, headers=IN_ASTANA)
    assert _ids(posted) == [ASTANA, YESIL]
    assert _ids(app.client.post(f"{BASE}/entityOperations/query", json=body)) == everything


def test_temporal_reads_see_only_the_tenants_city(operate_app: OperateApp) -> None:
    app = operate_app
    _fill(app)
    query = {"type": "Streetlight"}
    temporal = f"{BASE}/temporal/entities"
    assert _ids(app.client.get(temporal, params=query, headers=IN_ASTANA)) == [ASTANA, YESIL]
    assert len(_ids(app.client.get(temporal, params=query))) == 4
    assert app.client.get(f"{temporal}/{KARAGANDA}").status_code == 200
    hidden = app.client.get(f"{temporal}/{KARAGANDA}", headers=IN_ASTANA)
    assert hidden.status_code == 404
    body = {"type": "Query", "entities": [{"type": "Streetlight"}]}
    posted = app.client.post(
        f"{BASE}/temporal/entityOperations/query", json=body, headers=IN_ASTANA
    )
    assert _ids(posted) == [ASTANA, YESIL]


def test_discovery_counts_only_the_tenants_entities(operate_app: OperateApp) -> None:
    app = operate_app
    _fill(app)
    info = app.client.get(f"{BASE}/types/Streetlight", headers=IN_ASTANA)
    assert info.status_code == 200, info.text
    assert info.json()["entityCount"] == 2
    assert app.client.get(f"{BASE}/types/Streetlight").json()["entityCount"] == 4
    names = app.client.get(f"{BASE}/attributes", headers=IN_ASTANA).json()["attributeList"]
    assert "lampModel" not in names and "powerState" in names
    assert "lampModel" in app.client.get(f"{BASE}/attributes").json()["attributeList"]
    absent = app.client.get(f"{BASE}/attributes/lampModel", headers=IN_ASTANA)
    assert absent.status_code == 404


def test_an_unknown_tenant_is_nonexistent(operate_app: OperateApp) -> None:
    app = operate_app
    _fill(app)
    nowhere = {"NGSILD-Tenant": "atlantis"}
    for path, params in (
        (f"{BASE}/entities", {"type": "Streetlight"}),
        (f"{BASE}/entities/{ASTANA}", {}),
        (f"{BASE}/temporal/entities/{ASTANA}", {}),
        (f"{BASE}/types", {}),
    ):
        answer = app.client.get(path, params=params, headers=nowhere)
        assert answer.status_code == 404, (path, answer.text)
        assert answer.json()["type"] == "https://uri.etsi.org/ngsi-ld/errors/NonexistentTenant"
