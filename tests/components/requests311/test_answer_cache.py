"""GET one request answered from each server process's cache, and forgotten there the moment
another process changes the request (PostgreSQL NOTIFY from a trigger); none on SQLite."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient
from tests.components.requests311.conftest import make_city
from tests.conftest import unreachable_postgres_url

from qala.api.app import create_app
from qala.components.requests311.answer_cache import CachedAnswer, PublicAnswerCache
from qala.components.requests311.lifecycle import Requests
from qala.components.requests311.open311 import Open311Desk
from qala.runtime import Context
from qala.settings import Settings


def _until(condition: Callable[[], bool], seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def _route_asked(*_args: object) -> None:
    """Put in place of what only the route calls: its use fails the request."""
    raise RuntimeError("the route was asked")


@pytest.fixture
def postgres_url(postgres_server: object, postgres_template: str) -> Iterator[str]:
    url = postgres_server.create(template=postgres_template)  # type: ignore[attr-defined]
    yield url
    postgres_server.drop(url)  # type: ignore[attr-defined]


@pytest.mark.postgres
def test_a_change_made_by_another_process_drops_the_cached_answer(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The writer is one process (a staff member's), the app another one answering the public.
    writer = Context.from_settings(Settings(database_url=postgres_url, secret_key="t"))
    city = make_city(writer)
    request_id = int(city.submit("heating", description="Холодно").service_request_id)
    app = create_app(Settings(database_url=postgres_url, secret_key="t"), migrate=False)
    desk = Open311Desk.for_context(app.state.context)
    answers = desk.answers
    path = f"/open311/v2/requests/{request_id}.json?locale=en"
    try:
        with TestClient(app) as http:
            assert http.get(path).json()[0]["status_notes"] is None
            assert _until(lambda: answers.enabled), "the listener never connected"
            routed = http.get(path)  # read through the route, and kept
            first = routed.json()
            assert answers.get(request_id, "json", "en") is not None  # kept
            again = http.get(path)
            assert again.json() == first  # and served from memory
            # Before routing, as the route sent it: the route is not asked for a kept answer,
            # but is for anything unusual (another parameter).
            monkeypatch.setattr(Open311Desk, "one_request", _route_asked)
            kept = http.get(path)
            assert kept.content == routed.content
            assert dict(kept.headers) == dict(routed.headers)
            assert "content-security-policy" in kept.headers
            with pytest.raises(RuntimeError, match="route was asked"):
                http.get(path + "&page=2")
            monkeypatch.undo()
            assert answers.get(request_id, "xml", "en") is None  # by format and language
            assert http.get(path.replace(".json", ".xml")).status_code == 200
            with writer.database.transaction() as session:
                Requests(session, city.jurisdiction, actor="operator", now=city.clock()).add_note(
                    request_id, text="Бригада выехала", public=True
                )
            assert _until(lambda: answers.get(request_id, "json", "en") is None)
            assert answers.get(request_id, "xml", "en") is None
            assert http.get(path).json()[0]["status_notes"] == "Бригада выехала"
            # Requests nobody could read yet are never cached, and neither is a 404.
            assert http.get("/open311/v2/requests/999999.json").status_code == 404
            assert answers.get(999999, "json", "en") is None
    finally:
        answers.stop()
        app.state.context.database.dispose()
        writer.database.dispose()


class _Listening(PublicAnswerCache):
    """A cache whose listener is connected (no database needed)."""

    enabled = True  # type: ignore[assignment]


def test_an_answer_read_across_a_change_is_not_kept() -> None:
    answers = _Listening(None)
    answer = CachedAnswer(1, {}, b"[]", "application/json")
    before = answers.generation()
    answers.forget(7)  # a change arrives while the answer is read
    answers.put(7, "json", "en", answer, before)
    assert answers.get(7, "json", "en") is None
    answers.put(7, "json", "en", answer, answers.generation())
    assert answers.get(7, "json", "en") is answer
    answers.clear()
    assert answers.get(7, "json", "en") is None


def test_sqlite_keeps_no_answers(sqlite_url: str) -> None:
    context = Context.from_settings(Settings(database_url=sqlite_url, secret_key="t"))
    city = make_city(context)
    request_id = int(city.submit("heating").service_request_id)
    app = create_app(Settings(database_url=sqlite_url, secret_key="t"), migrate=False)
    with TestClient(app) as http:
        assert http.get(f"/open311/v2/requests/{request_id}.json").status_code == 200
    assert not Open311Desk.for_context(app.state.context).answers.enabled


def test_a_plain_read_the_cache_misses_is_answered_without_routing_as_the_route_would(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite keeps no answers, so every read misses: the middleware reads it through the desk
    and answers what the route answers, byte for byte; an unusual query still goes to the
    route (only the route picks the language from the FastAPI request)."""
    from qala.components.requests311 import open311

    context = Context.from_settings(Settings(database_url=sqlite_url, secret_key="t"))
    city = make_city(context)
    request_id = int(city.submit("heating", description="Холодно").service_request_id)
    app = create_app(Settings(database_url=sqlite_url, secret_key="t"), migrate=False)
    path = f"/open311/v2/requests/{request_id}.xml?locale=ru"
    with TestClient(app) as http:
        routed = http.get(path + "&unasked=1")  # not plain: the route answers
        assert routed.status_code == 200 and "<service_requests>" in routed.text
        monkeypatch.setattr(open311, "pick_language", _route_asked)
        plain = http.get(path)
        assert plain.content == routed.content
        assert dict(plain.headers) == dict(routed.headers)
        missing = http.get("/open311/v2/requests/999999.json")
        assert missing.status_code == 404 and missing.json()[0]["code"] == 404
        with pytest.raises(RuntimeError, match="route was asked"):
            http.get(path + "&unasked=1")


def test_a_plain_read_while_the_database_is_down_gets_the_open311_503() -> None:
    """The middleware leaves a failed read to the route, whose handlers answer a store outage
    with 503, ``Retry-After`` and the Open311 error list, never a bare 500."""
    settings = Settings(database_url=unreachable_postgres_url(), secret_key="t")
    app = create_app(context=Context.from_settings(settings), migrate=False)
    with TestClient(app) as http:
        answer = http.get("/open311/v2/requests/5.json?locale=kk")
    assert answer.status_code == 503
    assert answer.headers["retry-after"] == "5"
    assert answer.json()[0]["code"] == 503


class _NoThreads:
    """Put in place of the desk's database threads: work handed to them fails."""

    def submit(self, *_args: object, **_kwargs: object) -> None:
        raise RuntimeError("a database thread was asked")


@pytest.mark.postgres
def test_reports_and_missed_reads_on_postgresql_run_on_the_event_loop(
    postgres_url: str,
) -> None:
    """A report without photos, and a read of one request the answers' cache missed, run on
    the event loop (store/on_loop.py), no database thread asked; a report the shared limit
    refuses (counted by two server processes) rolls back what every component wrote for it."""
    from sqlalchemy import text

    settings = Settings(database_url=postgres_url, secret_key="t", rate_limit_per_minute=2)
    make_city(Context.from_settings(settings))
    form = {"service_code": "heating", "lat": "51.13", "long": "71.43", "email": "a@example.kz"}
    form |= {"attribute[issue]": "no_heating", "attribute[indoor_temperature]": "14"}
    answers = []
    for posts in (2, 1):  # two processes, each under its own in-memory count
        app = create_app(settings, migrate=False)
        with TestClient(app) as http:
            Open311Desk.for_context(app.state.context).executor = _NoThreads()  # type: ignore[assignment]
            answers += [http.post("/open311/v2/requests.json", data=form) for _ in range(posts)]
            # A read the answers' cache misses (this process never saw the request) too.
            first = answers[0].json()[0]["service_request_id"]
            read = http.get(f"/open311/v2/requests/{first}.json")
            assert read.status_code == 200 and read.json()[0]["service_code"] == "heating"
    assert [a.status_code for a in answers] == [200, 200, 429], answers[-1].text
    stored = {int(a.json()[0]["service_request_id"]) for a in answers[:2]}
    with app.state.context.database.session() as session:
        requests = set(session.execute(text("SELECT id FROM requests311_request")).scalars())
        entities = session.execute(
            text("SELECT count(*) FROM operate_entity WHERE type = 'ServiceRequest'")
        ).scalar_one()
        followed = session.execute(text("SELECT count(*) FROM notify_subscription")).scalar_one()
    assert requests == stored and entities == 2 and followed == 2
