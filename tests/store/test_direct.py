"""Statements run straight on the driver's cursor answer as SQLAlchemy's execution would."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    bindparam,
    create_engine,
    event,
    insert,
    literal,
    select,
    text,
)
from sqlalchemy.orm import Session

from qala.store.direct import DirectStatement

_METADATA = MetaData()
_NOTES = Table(
    "direct_test_note",
    _METADATA,
    Column("id", Integer, primary_key=True),
    Column("label", String(40), nullable=False),
    Column("doc", JSON, nullable=False),
    Column("weight", Integer, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
)
# The weight is a constant the statement carries itself; the rest are parameters.
_ADD = DirectStatement(
    insert(_NOTES)
    .values(
        label=bindparam("label", type_=String),
        doc=bindparam("doc", type_=JSON),
        weight=literal(7),
        at=bindparam("at", type_=DateTime(timezone=True)),
    )
    .returning(_NOTES.c.id, _NOTES.c.weight)
)


def _engine(url: str) -> Iterator[Engine]:
    engine = create_engine(url)
    _METADATA.create_all(engine)
    yield engine
    _METADATA.drop_all(engine)
    engine.dispose()


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    yield from _engine(database_url)


@pytest.fixture
def postgres_engine(postgres_server: Any, postgres_template: str) -> Iterator[Engine]:
    url = postgres_server.create(template=postgres_template)
    yield from _engine(url)
    postgres_server.drop(url)


def test_a_direct_statement_stores_and_answers_as_sqlalchemy_would(engine: Engine) -> None:
    at = datetime(2026, 12, 6, 9, 30, tzinfo=UTC)
    doc = {"heating": [15, "холодно"], "nested": {"ok": True}}
    with Session(engine) as session, session.begin():
        [(first, weight)] = _ADD.rows(session, {"label": "бірінші", "doc": doc, "at": at})
        [(second, _)] = _ADD.rows(session, {"label": "second", "doc": [], "at": at})
    assert weight == 7 and second == first + 1
    with Session(engine) as session:
        stored = session.execute(select(_NOTES).where(_NOTES.c.id == first)).one()
    assert (stored.label, stored.doc, stored.weight) == ("бірінші", doc, 7)
    assert stored.at.replace(tzinfo=stored.at.tzinfo or UTC) == at


def test_a_direct_statement_rolls_back_with_its_session(engine: Engine) -> None:
    at = datetime(2026, 12, 6, tzinfo=UTC)
    with pytest.raises(RuntimeError), Session(engine) as session, session.begin():
        _ADD.rows(session, {"label": "gone", "doc": {}, "at": at})
        raise RuntimeError("the caller fails after the statement")
    with Session(engine) as session:
        assert session.scalar(select(_NOTES.c.id)) is None


def test_the_engines_listeners_see_a_direct_statement(engine: Engine) -> None:
    seen: list[str] = []

    def note(_connection: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", note)
    try:
        with Session(engine) as session, session.begin():
            _ADD.rows(session, {"label": "x", "doc": {}, "at": datetime.now(UTC)})
    finally:
        event.remove(engine, "before_cursor_execute", note)
    assert len([s for s in seen if "direct_test_note" in s]) == 1


def test_expanding_parameters_are_refused(engine: Engine) -> None:
    among = DirectStatement(
        select(_NOTES.c.id).where(_NOTES.c.id.in_(bindparam("ids", expanding=True)))
    )
    with Session(engine) as session, pytest.raises(ValueError, match="expanding"):
        among.rows(session, {"ids": [1, 2]})


@pytest.mark.postgres
def test_a_connection_the_statement_found_broken_is_invalidated(postgres_engine: Engine) -> None:
    """The pool must not hand out a connection the server dropped: the statement's failure
    invalidates it at once, as SQLAlchemy's own execution does."""
    import psycopg

    engine = postgres_engine
    with Session(engine) as session:
        connection = session.connection()
        backend = session.scalar(text("SELECT pg_backend_pid()"))
        with engine.connect() as other:
            other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": backend})
        with pytest.raises(psycopg.OperationalError):
            _ADD.rows(session, {"label": "x", "doc": {}, "at": datetime.now(UTC)})
        assert connection.invalidated
    with Session(engine) as session, session.begin():
        assert _ADD.rows(session, {"label": "y", "doc": {}, "at": datetime.now(UTC)})


def test_a_connection_goes_on_after_a_direct_statement_failed(engine: Engine) -> None:
    """The cursor kept for a pooled connection serves the next transaction after an error."""
    at = datetime(2026, 12, 6, tzinfo=UTC)
    with pytest.raises(Exception, match=r"(?i)null"), Session(engine) as session, session.begin():
        _ADD.rows(session, {"label": None, "doc": {}, "at": at})  # label is NOT NULL
    for label in ("after", "again"):
        with Session(engine) as session, session.begin():
            assert _ADD.rows(session, {"label": label, "doc": {}, "at": at})
    with Session(engine) as session:
        assert session.scalars(select(_NOTES.c.label).order_by(_NOTES.c.id)).all() == [
            "after",
            "again",
        ]
