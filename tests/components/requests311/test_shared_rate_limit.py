"""The rate limit holds across server processes: counted in the store, in the write's transaction."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings, strategies as st
from sqlalchemy import create_engine, event, func, select
from sqlalchemy.orm import Session
from tests.components.requests311.conftest import City, make_city

from qala.api import create_app
from qala.components.requests311.intake import Counted, NewRequest, RateLimited, submit_request
from qala.components.requests311.models import AuditEntry, RateWindow, Request
from qala.components.requests311.ratelimit import SharedRateLimit
from qala.runtime import Context
from qala.settings import Settings

FORM = {"service_code": "street_light", "lat": "51.15", "long": "71.5"}


def test_two_workers_share_one_limit(database_url: str) -> None:
    # Two apps on one store stand for two uvicorn workers: each alone would allow 3 a minute.
    settings = Settings(database_url=database_url, secret_key="t", rate_limit_per_minute=3)
    first = create_app(settings)
    make_city(first.state.context)
    second = create_app(settings, migrate=False)
    clients = [
        TestClient(app, client=("203.0.113.7", 50000)) for app in (first, second, first, second)
    ]
    answers = [c.post("/open311/v2/requests.json", data=FORM) for c in clients]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert int(answers[3].headers["retry-after"]) >= 1
    assert answers[3].json()[0]["code"] == 429
    # The refused write left neither a request nor a count behind.
    with first.state.context.database.session() as session:
        windows = session.scalars(select(RateWindow)).all()
    assert [(w.client_key, w.count) for w in windows] == [("ip:203.0.113.7", 3)]
    # Another client is counted apart.
    other = TestClient(second, client=("198.51.100.9", 50000))
    assert other.post("/open311/v2/requests.json", data=FORM).status_code == 200


@pytest.fixture(scope="module")
def window_store(tmp_path_factory: pytest.TempPathFactory) -> Any:
    path = Path(tmp_path_factory.mktemp("rate")) / "rate.sqlite"
    engine = create_engine(f"sqlite:///{path}")
    RateWindow.metadata.create_all(engine, tables=[RateWindow.__table__])  # type: ignore[list-item]
    yield engine
    engine.dispose()


@given(
    limit=st.integers(1, 12),
    gaps=st.lists(st.floats(0, 45, allow_nan=False), min_size=1, max_size=80),
    key=st.uuids(),
)
@settings(max_examples=60, deadline=None)
def test_shared_limit_bounds_every_window_and_its_wait_is_exact(
    window_store: Any, limit: int, gaps: list[float], key: Any
) -> None:
    now = [1_764_547_200.0 + 17.0]
    limiter = SharedRateLimit(limit, window=60, clock=lambda: now[0])
    client = str(key)

    def attempt(at: float, *, keep: bool) -> float:
        now[0] = at
        with Session(window_store) as session, session.begin():
            wait = limiter.hit(session, client)
            if wait or not keep:
                session.rollback()
        return wait

    allowed: list[float] = []
    moment = now[0]
    for gap in gaps:
        moment += gap
        wait = attempt(moment, keep=True)
        if wait == 0:
            allowed.append(moment)
            continue
        # Refused: a write just before the wait ends is refused too, one just after is allowed.
        if wait > 0.01:
            assert attempt(moment + wait - 0.005, keep=False) > 0
        assert attempt(moment + wait + 0.005, keep=False) == 0
    for moment in allowed:
        start = moment // 60 * 60
        assert sum(1 for t in allowed if t // 60 * 60 == start) <= limit  # any clock minute
        assert sum(1 for t in allowed if moment - 60 < t <= moment) <= 2 * limit  # any 60 s


def test_zero_limit_touches_no_table(sqlite_context: Context) -> None:
    with sqlite_context.database.transaction() as session:
        assert SharedRateLimit(0).hit(session, "x") == 0
        assert session.scalars(select(RateWindow)).all() == []


def test_stale_windows_are_deleted_now_and_then(sqlite_context: Context) -> None:
    now = [1_764_547_200.0]
    limiter = SharedRateLimit(5, clock=lambda: now[0], cleanup_every=10)
    with sqlite_context.database.transaction() as session:
        for i in range(9):
            limiter.hit(session, f"old-{i}")
    now[0] += 600
    with sqlite_context.database.transaction() as session:
        limiter.hit(session, "new")  # the tenth hit cleans up
    with sqlite_context.database.session() as session:
        assert [w.client_key for w in session.scalars(select(RateWindow))] == ["new"]


def test_trusted_applications_have_their_own_higher_limit(sqlite_url: str) -> None:
    from qala.components.requests311.services import create_api_client

    settings = Settings(
        database_url=sqlite_url,
        secret_key="t",
        rate_limit_per_minute=2,
        trusted_rate_limit_per_minute=4,
    )
    app = create_app(settings)
    make_city(app.state.context)
    with app.state.context.database.transaction() as session:
        key = create_api_client(session, "city app")

    def post(address: str, **extra: str) -> int:
        http = TestClient(app, client=(address, 50000))
        return http.post("/open311/v2/requests.json", data={**FORM, **extra}).status_code

    assert [post("203.0.113.7") for _ in range(3)] == [200, 200, 429]  # an address: 2 a minute
    # The app's server: 4 a minute, however many residents it posts for.
    assert [post("198.51.100.1", api_key=key) for _ in range(5)] == [200] * 4 + [429]
    # Made-up keys count against their address until one is found valid: no flood of lookups.
    assert [post("192.0.2.5", api_key=f"guess-{i}") for i in range(3)] == [403, 403, 429]


def test_concurrent_posts_of_one_client_store_no_more_than_its_limit(city: City) -> None:
    # Eight posts of one client at once, each in its own transaction and connection. On
    # PostgreSQL the count travels in the statement that stores the report: the row lock it
    # takes on the client's window still orders them, so exactly the limit is stored.
    limiter = SharedRateLimit(3)
    start = threading.Barrier(8)

    def post(_: int) -> str:
        start.wait()
        try:
            with city.context.database.transaction() as session:
                submit_request(
                    session,
                    city.jurisdiction,
                    NewRequest("street_light", lat=51.15, lon=71.5),
                    now=city.clock(),
                    counted=Counted(limiter, "ip:203.0.113.7"),
                )
        except RateLimited:
            return "refused"
        return "stored"

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(post, range(8)))
    assert sorted(outcomes) == ["refused"] * 5 + ["stored"] * 3
    with city.context.database.session() as session:
        assert session.scalar(select(func.count()).select_from(Request)) == 3
        assert session.scalar(select(func.count()).select_from(AuditEntry)) == 3
        assert [(w.client_key, w.count) for w in session.scalars(select(RateWindow))] == [
            ("ip:203.0.113.7", 3)
        ]


def test_a_report_is_counted_and_stored_in_one_statement_on_postgresql(city: City) -> None:
    # The count, the report and its audit row: one round trip on PostgreSQL (three on SQLite,
    # which has no INSERT inside WITH). An invalid report is counted first, apart. Not counted:
    # the draw of the next 64 reports' ids (PostgreSQL), one statement per block.
    statements: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        if "requests311_" in statement and "nextval" not in statement:
            statements.append(statement)

    engine = city.context.database.engine
    limiter = SharedRateLimit(3)
    event.listen(engine, "before_cursor_execute", note)
    try:
        with city.context.database.transaction() as session:
            submitted = submit_request(
                session,
                city.jurisdiction,
                NewRequest("street_light", lat=51.15, lon=71.5),
                now=city.clock(),
                counted=Counted(limiter, "ip:203.0.113.7"),
            )
    finally:
        event.remove(engine, "before_cursor_execute", note)
    postgres = city.context.database.backend == "postgresql"
    assert len(statements) == (1 if postgres else 3)
    with city.context.database.session() as session:
        stored = session.get(Request, int(submitted.service_request_id))
        assert stored is not None and stored.supporters == 0 and stored.status == "open"
        audit = session.scalars(select(AuditEntry).where(AuditEntry.request_id == stored.id)).one()
        assert (audit.actor, audit.action) == ("citizen", "created")
        assert audit.changes["status"] == [None, "open"]
        assert session.get(RateWindow, "ip:203.0.113.7").count == 1  # type: ignore[union-attr]
