"""The role matrix of the yearly data call over HTTP, on SQLite and PostgreSQL.

Submitters answer for one place (Taraz or Aktau), the reviewer accepts or returns, the publisher
publishes; every refused call answers 403 (wrong role or place), 409 (an incomplete call published
without saying so, a published release) or 422, and writes nothing: the call's audit trail, its
values and the releases are the same before and after."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from qala.components.accounts.services import create_user, issue_token
from qala.components.catalog.calls import open_call
from qala.components.catalog.models import CallEvent, CallValue, Release
from qala.runtime import Context
from qala.settings import Settings

UNEMPLOYMENT = "iso37120.5.1"
LIFE = "iso37120.11.1"
ACCOUNTS = {
    # name: (role, place)
    "sub_taraz": ("submitter", "taraz"),
    "sub_aktau": ("submitter", "aktau"),
    "reviewer": ("reviewer", None),
    "reviewer_taraz": ("reviewer", "taraz"),
    "publisher": ("publisher", None),
    "analyst": ("analyst", None),
    "op_taraz": ("operator", "taraz"),
    "citizen": ("citizen", None),
    "admin": ("administrator", None),
}


@dataclass
class World:
    http: TestClient
    tokens: dict[str, str]
    context: Context

    def as_(self, who: str, method: str, path: str, body: Any = None) -> Any:
        headers = {"Authorization": f"Bearer {self.tokens[who]}"} if who != "anonymous" else {}
        return self.http.request(method, path, json=body, headers=headers)

    def new_call(self) -> int:
        with self.context.database.transaction() as session:
            return open_call(
                session,
                year=2024,
                indicators=[UNEMPLOYMENT, LIFE],
                places=["taraz", "aktau"],
                deadline=date(2025, 3, 1),
                actor="team",
            ).id

    def state(self, call: int) -> tuple[int, list[tuple[Any, ...]], int]:
        """What a refused request must leave alone: the call's events, values and releases."""
        with self.context.database.session() as session:
            events = session.scalar(
                select(func.count()).select_from(CallEvent).where(CallEvent.call_id == call)
            )
            values = [
                (v.place_id, v.indicator_id, v.value, v.status, v.evidence, v.answer)
                for v in session.scalars(
                    select(CallValue).where(CallValue.call_id == call).order_by(CallValue.id)
                )
            ]
            releases = session.scalar(
                select(func.count()).select_from(Release).where(Release.call_id == call)
            )
        return events or 0, values, releases or 0


@pytest.fixture(scope="module")
def world(module_database_url: str) -> Iterator[World]:
    """Every account, once per backend; each test opens its own call."""
    from qala.api import create_app

    context = Context.from_settings(Settings(database_url=module_database_url, secret_key="calls"))
    with context.database.transaction() as session:
        tokens = {}
        for username, (role, place) in ACCOUNTS.items():
            user = create_user(
                session,
                username=username,
                password=f"{username}-long-pass-phrase-2026",
                role=role,
                place=place,
            )
            tokens[username] = issue_token(session, user, label="call roles")
    http = TestClient(create_app(context=context), client=("203.0.113.7", 50000))
    yield World(http, tokens, context)
    context.database.dispose()


@pytest.fixture(scope="module")
def matrix_call(world: World) -> int:
    """A call where Taraz has submitted life expectancy, and nothing else happened."""
    call = world.new_call()
    sent = world.as_(
        "sub_taraz", "POST", f"/api/v1/calls/{call}/values", _values("taraz", (LIFE, 71.5))
    )
    assert sent.status_code == 200, sent.text
    return call


def _values(place: str, *rows: tuple[str, float]) -> dict[str, Any]:
    return {
        "values": [
            {"place": place, "indicator": i, "value": v, "evidence": "akimat letter 7/2025"}
            for i, v in rows
        ]
    }


def test_a_submitter_cannot_write_another_place(world: World, matrix_call: int) -> None:
    path = f"/api/v1/calls/{matrix_call}"
    before = world.state(matrix_call)
    for who, body in (
        ("sub_aktau", _values("taraz", (UNEMPLOYMENT, 4.5))),
        ("sub_taraz", _values("aktau", (UNEMPLOYMENT, 4.5))),
        # one row of its own and one of another place: all refused, nothing written
        (
            "sub_taraz",
            {
                "values": [
                    *_values("taraz", (LIFE, 71.0))["values"],
                    *_values("aktau", (LIFE, 71.0))["values"],
                ]
            },
        ),
    ):
        answer = world.as_(who, "POST", f"{path}/values", body)
        assert answer.status_code == 403, answer.text
        assert "submits for" in answer.json()["detail"]
    assert world.as_("sub_taraz", "GET", f"{path}/places/aktau").status_code == 403
    assert world.state(matrix_call) == before


ROLE_CASES = [
    # (who, method, route under the call, body, expected status)
    ("anonymous", "GET", "", None, 401),
    ("citizen", "GET", "", None, 403),
    ("op_taraz", "GET", "", None, 403),
    ("citizen", "POST", "/values", _values("taraz", (UNEMPLOYMENT, 4.5)), 403),
    ("op_taraz", "POST", "/values", _values("taraz", (UNEMPLOYMENT, 4.5)), 403),
    ("reviewer", "POST", "/values", _values("taraz", (UNEMPLOYMENT, 4.5)), 403),
    ("publisher", "POST", "/values", _values("taraz", (UNEMPLOYMENT, 4.5)), 403),
    ("analyst", "POST", "/values", _values("taraz", (UNEMPLOYMENT, 4.5)), 403),
    ("sub_taraz", "GET", "/queue", None, 403),
    (
        "sub_taraz",
        "POST",
        "/review",
        {"place": "taraz", "indicator": UNEMPLOYMENT, "decision": "accept"},
        403,
    ),
    (
        "reviewer_taraz",
        "POST",
        "/review",
        {"place": "taraz", "indicator": UNEMPLOYMENT, "decision": "accept"},
        403,
    ),
    (
        "analyst",
        "POST",
        "/review",
        {"place": "taraz", "indicator": UNEMPLOYMENT, "decision": "accept"},
        403,
    ),
    ("sub_taraz", "POST", "/publish", {"force": True, "reason": "x"}, 403),
    ("reviewer", "POST", "/publish", {"force": True, "reason": "x"}, 403),
    ("analyst", "POST", "/publish", {"force": True, "reason": "x"}, 403),
    (
        "sub_aktau",
        "POST",
        "/answer",
        {"place": "taraz", "indicator": UNEMPLOYMENT, "answer": "x"},
        403,
    ),
    # the right role, but the call is incomplete and nobody said so
    ("publisher", "POST", "/publish", {}, 409),
    ("publisher", "POST", "/publish", {"force": True}, 422),
    ("publisher", "POST", "/publish", {"force": True, "reason": "  "}, 422),
    (
        "reviewer",
        "POST",
        "/review",
        {"place": "taraz", "indicator": UNEMPLOYMENT, "decision": "return", "reason": "?"},
        404,
    ),
]


@pytest.mark.parametrize(("who", "method", "route", "body", "expected"), ROLE_CASES)
def test_the_role_matrix_refuses_and_writes_nothing(
    world: World, matrix_call: int, who: str, method: str, route: str, body: Any, expected: int
) -> None:
    before = world.state(matrix_call)
    answer = world.as_(who, method, f"/api/v1/calls/{matrix_call}{route}", body)
    assert answer.status_code == expected, answer.text
    assert world.state(matrix_call) == before


def test_the_cycle_by_role(world: World) -> None:
    call = world.new_call()
    path = f"/api/v1/calls/{call}"
    # Each submitter sees the calls asking its place and its own row of the board.
    assert [c["id"] for c in world.as_("sub_taraz", "GET", "/api/v1/calls").json()][:1] == [call]
    board = world.as_("sub_taraz", "GET", path).json()["board"]
    assert [r["place"] for r in board] == ["taraz"]
    assert len(world.as_("reviewer", "GET", path).json()["board"]) == 2

    sent = world.as_(
        "sub_taraz", "POST", f"{path}/values", _values("taraz", (UNEMPLOYMENT, 4.5), (LIFE, 71.5))
    )
    assert sent.status_code == 200, sent.text
    assert sent.json()["written"] == 2
    upload = world.as_(
        "sub_aktau", "POST", f"{path}/values", _values("aktau", (UNEMPLOYMENT, 4.9), (LIFE, 70.1))
    )
    assert upload.status_code == 200, upload.text

    queue = world.as_("reviewer", "GET", f"{path}/queue").json()
    assert len(queue) == 4
    for place, indicator in (("taraz", UNEMPLOYMENT), ("taraz", LIFE), ("aktau", UNEMPLOYMENT)):
        decided = world.as_(
            "reviewer",
            "POST",
            f"{path}/review",
            {"place": place, "indicator": indicator, "decision": "accept"},
        )
        assert decided.json()["status"] == "accepted"
    returned = world.as_(
        "reviewer",
        "POST",
        f"{path}/review",
        {"place": "aktau", "indicator": LIFE, "decision": "return"},
    )
    assert returned.status_code == 422 and "reason" in returned.text
    returned = world.as_(
        "reviewer",
        "POST",
        f"{path}/review",
        {"place": "aktau", "indicator": LIFE, "decision": "return", "reason": "which survey?"},
    )
    assert returned.json()["status"] == "returned"

    # Incomplete: refused without force and a reason; nothing written.
    before = world.state(call)
    refused = world.as_("publisher", "POST", f"{path}/publish", {})
    assert refused.status_code == 409 and "not accepted" in refused.json()["detail"]
    assert world.state(call) == before

    answered = world.as_(
        "sub_aktau",
        "POST",
        f"{path}/answer",
        {
            "place": "aktau",
            "indicator": LIFE,
            "answer": "BNS table 6521, corrected",
            "value": 70.4,
            "evidence": "https://stat.gov.kz/6521",
        },
    )
    assert answered.json()["status"] == "submitted"
    mine = world.as_("sub_aktau", "GET", f"{path}/places/aktau").json()
    assert [(v["indicator"], v["status"], v.get("answer")) for v in mine] == [
        (UNEMPLOYMENT, "accepted", None),
        (LIFE, "submitted", "BNS table 6521, corrected"),
    ]
    world.as_(
        "reviewer",
        "POST",
        f"{path}/review",
        {"place": "aktau", "indicator": LIFE, "decision": "accept"},
    )
    published = world.as_("publisher", "POST", f"{path}/publish", {})
    assert published.status_code == 201, published.text
    assert published.json()["changelog"]["previous"] is None
    trail = [e["action"] for e in world.as_("publisher", "GET", f"{path}/events").json()]
    assert trail == [
        "open",
        "submit",
        "submit",
        "submit",
        "submit",
        "accept",
        "accept",
        "accept",
        "return",
        "submit",
        "answer",
        "accept",
        "publish",
    ]
    # Publishing again with nothing changed: 409, nothing written.
    before = world.state(call)
    assert world.as_("publisher", "POST", f"{path}/publish", {}).status_code == 409
    assert world.state(call) == before


def test_a_forced_publication_states_its_reason(world: World) -> None:
    call = world.new_call()
    path = f"/api/v1/calls/{call}"
    world.as_("sub_taraz", "POST", f"{path}/values", _values("taraz", (UNEMPLOYMENT, 4.5)))
    world.as_(
        "reviewer",
        "POST",
        f"{path}/review",
        {"place": "taraz", "indicator": UNEMPLOYMENT, "decision": "accept"},
    )
    forced = world.as_(
        "publisher", "POST", f"{path}/publish", {"force": True, "reason": "Aktau reports in May"}
    )
    assert forced.status_code == 201, forced.text
    number = forced.json()["release"]
    listed = world.as_("anonymous", "GET", "/api/v1/releases").json()
    assert [r["incomplete_reason"] for r in listed if r["id"] == number] == ["Aktau reports in May"]


def test_a_submitter_needs_a_place(world: World) -> None:
    from qala.core.errors import ValidationError

    with (
        pytest.raises(ValidationError, match="submitter answers a data call for one place"),
        world.context.database.transaction() as session,
    ):
        create_user(
            session,
            username="nowhere",
            password="nowhere-long-pass-phrase-2026",
            role="submitter",
        )


def test_an_uploaded_file_is_scoped_to_the_place_too(world: World) -> None:
    call = world.new_call()
    path = f"/api/v1/calls/{call}/upload"
    headers = {"Authorization": f"Bearer {world.tokens['sub_taraz']}"}
    mixed = (
        "place,indicator,year,value,evidence\n"
        f"taraz,{UNEMPLOYMENT},2024,4.5,letter 1\n"
        f"aktau,{UNEMPLOYMENT},2024,4.9,letter 2\n"
    )
    before = world.state(call)
    refused = world.http.post(
        path, files={"file": ("values.csv", mixed, "text/csv")}, headers=headers
    )
    assert refused.status_code == 403 and "submits for taraz only" in refused.json()["detail"]
    assert world.state(call) == before
    own = "\n".join(mixed.splitlines()[:2]) + "\n"
    sent = world.http.post(path, files={"file": ("values.csv", own, "text/csv")}, headers=headers)
    assert sent.status_code == 200, sent.text
    assert sent.json()["written"] == 1


def test_only_a_publisher_opens_a_call(world: World) -> None:
    body = {
        "year": 2025,
        "indicators": [UNEMPLOYMENT],
        "places": ["Taraz"],
        "deadline": "2026-03-01",
    }
    for who in ("sub_taraz", "reviewer", "analyst"):
        assert world.as_(who, "POST", "/api/v1/calls", body).status_code == 403
    opened = world.as_("publisher", "POST", "/api/v1/calls", body)
    assert opened.status_code == 201, opened.text
    unknown = world.as_("publisher", "POST", "/api/v1/calls", {**body, "places": ["atlantis"]})
    assert unknown.status_code == 422 and "unknown place 'atlantis'" in unknown.text
    listed = world.as_("sub_taraz", "GET", "/api/v1/calls").json()
    assert opened.json()["id"] in [c["id"] for c in listed]
