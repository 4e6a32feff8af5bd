"""Staff see and act only inside their place (and, for operators, their departments): a
role × scope × route matrix for two cities, Astana and Karaganda, on SQLite and PostgreSQL.

Each case is one account calling one route on one city's object; refused cases answer 403 (the
city is named and is not theirs) or 404 (an object outside their scope is as if absent)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from itertools import count
from typing import Any

import pytest
from fastapi.testclient import TestClient

from qala.components.accounts.services import create_user, issue_token
from qala.runtime import Context
from qala.settings import Settings

ACCOUNTS = {
    # name: (role, place, departments)
    "op_astana": ("operator", "astana", None),
    "op_karaganda": ("operator", "karaganda", None),
    "op_karaganda_roads": ("operator", "karaganda", "roads_transport"),
    "op_national": ("operator", None, None),
    "an_karaganda": ("analyst", "karaganda", None),
    "an_national": ("analyst", None, None),
    "admin_karaganda": ("administrator", "karaganda", None),
    "admin_national": ("administrator", None, None),
    "citizen": ("citizen", None, None),
}

ASTANA_POINT = (51.125, 71.430)
KARAGANDA_POINT = (49.8047, 73.1094)


@dataclass
class World:
    http: TestClient
    tokens: dict[str, str]
    ids: dict[str, int]
    context: Context


@pytest.fixture(scope="module")
def world(module_database_url: str) -> Iterator[World]:
    """Two cities with requests of two departments, an incident each, and every account."""
    from qala.api import create_app

    context = Context.from_settings(Settings(database_url=module_database_url, secret_key="scope"))
    ids, tokens = _fill(context)
    http = TestClient(create_app(context=context), client=("203.0.113.9", 50000))
    yield World(http, tokens, ids, context)
    context.database.dispose()


def _fill(context: Context) -> tuple[dict[str, int], dict[str, str]]:
    from qala.components.operate import incidents
    from qala.components.requests311.intake import NewRequest, submit_request
    from qala.components.requests311.jurisdictions import load_jurisdictions
    from qala.components.requests311.national import city_catalogue
    from qala.components.requests311.services import load_catalogue

    ids: dict[str, int] = {}
    with context.database.transaction() as session:
        for code in ("astana", "karaganda"):
            load_catalogue(session, city_catalogue(code))
        cities = load_jurisdictions(session)
        for name, city, service, point, attributes in (
            ("ast_heating", "astana", "heating", ASTANA_POINT, {"issue": ["no_heating"]}),
            ("kar_heating", "karaganda", "heating", KARAGANDA_POINT, {"issue": ["no_heating"]}),
            ("kar_pothole", "karaganda", "pothole", KARAGANDA_POINT, {"size": ["large"]}),
        ):
            new = NewRequest(service, lat=point[0], lon=point[1], attributes=attributes)
            submitted = submit_request(session, cities[city], new, now=context.clock())
            ids[name] = int(submitted.service_request_id)
        for name, city in (("ast_incident", "astana"), ("kar_incident", "karaganda")):
            opened = incidents.open_incident(
                session,
                category="water",
                severity="major",
                now=context.clock(),
                actor="test",
                title=f"Burst main in {city}",
                place_code=city,
            )
            ids[name] = opened.incident.id
        tokens = {}
        for username, (role, place, departments) in ACCOUNTS.items():
            user = create_user(
                session,
                username=username,
                password=f"{username}-long-pass-phrase-2026",
                role=role,
                place=place,
                department=departments,
            )
            tokens[username] = issue_token(session, user, label="scope test")
    return ids, tokens


OPERATORS_OF_ASTANA = {"op_astana", "op_national", "admin_national"}
OPERATORS_OF_KARAGANDA = {"op_karaganda", "op_national", "admin_karaganda", "admin_national"}
ANALYSTS_OF_ASTANA = {"an_national", "admin_national"}

_entity_numbers = count(1)


@dataclass(frozen=True)
class Route:
    """One call on one city's object; ``refused`` is the status when the account is in the role
    but not in the scope (role mismatches are always 403)."""

    name: str
    method: str
    path: str
    allowed: frozenset[str]
    roles: frozenset[str]
    refused: int = 403
    body: dict[str, Any] | None = None
    ok: int = 200
    hidden: frozenset[str] = frozenset()
    """Accounts of the city but not of the object's department: for them it does not exist."""

    def call(self, world: World, token: str) -> Any:
        path = self.path.format(**world.ids)
        headers = {"authorization": f"Bearer {token}"}
        if self.name == "ngsi_create_astana":
            number = next(_entity_numbers)
            body = {
                "id": f"urn:ngsi-ld:Streetlight:scope-{number}",
                "type": "Streetlight",
                "placeCode": {"type": "Property", "value": "astana"},
            }
            headers |= {"NGSILD-Tenant": "astana", "content-type": "application/json"}
            return world.http.post(path, json=body, headers=headers)
        if self.name == "import_astana":
            text = "place,indicator,year,value,source\nastana,kz_sc.requests.median_hours_to_close,2025,12.5,akimat\n"
            files = {"file": ("astana.csv", text.encode(), "text/csv")}
            return world.http.post(path, files=files, headers=headers)
        return world.http.request(self.method, path, json=self.body, headers=headers)


STAFF = frozenset({"operator", "administrator"})
ANALYSTS = frozenset({"analyst", "administrator"})
ROUTES = [
    Route(
        "request_detail_karaganda",
        "GET",
        "/api/v1/requests/{kar_heating}?jurisdiction=karaganda",
        frozenset(OPERATORS_OF_KARAGANDA),
        STAFF,
        hidden=frozenset({"op_karaganda_roads"}),
    ),
    Route(
        "request_detail_astana",
        "GET",
        "/api/v1/requests/{ast_heating}?jurisdiction=astana",
        frozenset(OPERATORS_OF_ASTANA),
        STAFF,
    ),
    Route(
        "request_note_astana",
        "POST",
        "/api/v1/requests/{ast_heating}/notes?jurisdiction=astana",
        frozenset(OPERATORS_OF_ASTANA),
        STAFF,
        body={"text": "crew on the way", "public": False},
    ),
    Route(
        "request_note_karaganda_heating",
        "POST",
        "/api/v1/requests/{kar_heating}/notes?jurisdiction=karaganda",
        frozenset(OPERATORS_OF_KARAGANDA),
        STAFF,
        body={"text": "crew on the way", "public": False},
        hidden=frozenset({"op_karaganda_roads"}),
    ),
    Route(
        "request_note_karaganda_pothole",
        "POST",
        "/api/v1/requests/{kar_pothole}/notes?jurisdiction=karaganda",
        frozenset(OPERATORS_OF_KARAGANDA | {"op_karaganda_roads"}),
        STAFF,
        body={"text": "patched", "public": True},
    ),
    Route(
        "queue_astana",
        "GET",
        "/api/v1/requests/queue?jurisdiction=astana",
        frozenset(OPERATORS_OF_ASTANA),
        STAFF,
    ),
    Route(
        "incident_astana",
        "GET",
        "/api/v1/operate/incidents/{ast_incident}",
        frozenset(OPERATORS_OF_ASTANA),
        STAFF,
        refused=404,
    ),
    Route(
        "incident_note_karaganda",
        "POST",
        "/api/v1/operate/incidents/{kar_incident}/notes",
        frozenset(OPERATORS_OF_KARAGANDA | {"op_karaganda_roads"}),
        STAFF,
        refused=404,
        body={"text": "valve closed"},
    ),
    Route(
        "incidents_of_astana",
        "GET",
        "/api/v1/operate/incidents?place=astana",
        frozenset(OPERATORS_OF_ASTANA),
        STAFF,
    ),
    Route(
        "import_astana",
        "POST",
        "/api/v1/data/import",
        frozenset(ANALYSTS_OF_ASTANA),
        ANALYSTS,
    ),
    Route(
        "ngsi_create_astana",
        "POST",
        "/ngsi-ld/v1/entities",
        frozenset(OPERATORS_OF_ASTANA),
        STAFF,
        ok=201,
    ),
]


def expected(account: str, route: Route) -> int:
    role = ACCOUNTS[account][0]
    if role not in route.roles:
        return 403
    if account in route.hidden:
        return 404
    return route.ok if account in route.allowed else route.refused


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: r.name)
@pytest.mark.parametrize("account", list(ACCOUNTS))
def test_role_scope_route_matrix(world: World, account: str, route: Route) -> None:
    answer = route.call(world, world.tokens[account])
    assert answer.status_code == expected(account, route), answer.text[:300]
    if answer.status_code == 200 and route.name.startswith("queue"):
        # A queue shows only its own city's requests.
        assert [r["id"] for r in answer.json()] == [world.ids["ast_heating"]]


def test_an_operator_of_karaganda_cannot_act_on_an_astana_request(world: World) -> None:
    """The attack: naming Astana's jurisdiction let any operator acknowledge its requests."""
    headers = {"authorization": f"Bearer {world.tokens['op_karaganda']}"}
    path = f"/api/v1/requests/{world.ids['ast_heating']}/acknowledge?jurisdiction=astana"
    answer = world.http.post(path, json={"note": "taken"}, headers=headers)
    assert answer.status_code == 403
    # Unscoped queue calls default to the account's own city, never another's.
    queue = world.http.get("/api/v1/requests/queue", headers=headers).json()
    assert {r["id"] for r in queue} == {world.ids["kar_heating"], world.ids["kar_pothole"]}
    roads = {"authorization": f"Bearer {world.tokens['op_karaganda_roads']}"}
    only_roads = world.http.get("/api/v1/requests/queue", headers=roads).json()
    assert [r["id"] for r in only_roads] == [world.ids["kar_pothole"]]
    # Nor re-route a request to a department outside theirs.
    moved = world.http.post(
        f"/api/v1/requests/{world.ids['kar_pothole']}/assign?jurisdiction=karaganda",
        json={"department": "energy_housing"},
        headers=roads,
    )
    assert moved.status_code == 403
    # The Astana request is untouched.
    national = {"authorization": f"Bearer {world.tokens['op_national']}"}
    detail = world.http.get(
        f"/api/v1/requests/{world.ids['ast_heating']}?jurisdiction=astana", headers=national
    ).json()
    assert detail["status"] == "open"


def test_a_karaganda_writer_cannot_touch_astana_entities_under_any_tenant(world: World) -> None:
    national = {"authorization": f"Bearer {world.tokens['op_national']}"}
    entity = {
        "id": "urn:ngsi-ld:Streetlight:astana-keep",
        "type": "Streetlight",
        "placeCode": {"type": "Property", "value": "astana"},
    }
    assert world.http.post("/ngsi-ld/v1/entities", json=entity, headers=national).status_code in (
        201,
        409,
    )
    karaganda = {"authorization": f"Bearer {world.tokens['op_karaganda']}"}
    for tenant in ({}, {"NGSILD-Tenant": "karaganda"}):
        deleted = world.http.delete(
            "/ngsi-ld/v1/entities/urn:ngsi-ld:Streetlight:astana-keep", headers=karaganda | tenant
        )
        assert deleted.status_code == 403
        batch = world.http.post(
            "/ngsi-ld/v1/entityOperations/delete",
            json=["urn:ngsi-ld:Streetlight:astana-keep"],
            headers=karaganda | tenant,
        )
        assert batch.status_code == 403
    kept = world.http.get("/ngsi-ld/v1/entities/urn:ngsi-ld:Streetlight:astana-keep")
    assert kept.status_code == 200


def test_an_analyst_of_karaganda_imports_karaganda_only(world: World) -> None:
    headers = {"authorization": f"Bearer {world.tokens['an_karaganda']}"}
    mixed = (
        "place,indicator,year,value,source\n"
        "karaganda,kz_sc.requests.median_hours_to_close,2025,20,akimat\n"
        "astana,kz_sc.requests.median_hours_to_close,2025,1,akimat\n"
    )
    refused = world.http.post(
        "/api/v1/data/import?partial=true",
        files={"file": ("mixed.csv", mixed.encode(), "text/csv")},
        headers=headers,
    )
    assert refused.status_code == 403 and "row 3: `astana`" in refused.text
    own = mixed.rsplit("astana", 1)[0].rsplit("\n", 1)[0] + "\n"
    accepted = world.http.post(
        "/api/v1/data/import",
        files={"file": ("karaganda.csv", own.encode(), "text/csv")},
        headers=headers,
    )
    assert accepted.status_code == 200, accepted.text
    national_rating = world.http.post("/api/v1/rating/runs", json={}, headers=headers)
    assert national_rating.status_code == 403
