"""Statements run straight on the driver's cursor answer as SQLAlchemy's execution would."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
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
    func,
    insert,
    literal,
    select,
    text,
)
from sqlalchemy.orm import Session

from qala.store.direct import (
    DirectStatement,
    begin_with_first_statements as begin_with_first_statements_of,
    enable_sending,
)

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


_COUNT = DirectStatement(select(func.count()).select_from(_NOTES))


def _engine(url: str) -> Iterator[Engine]:
    engine = create_engine(url)
    enable_sending(engine)  # as the platform's Database does; nothing on SQLite
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


def _note(label: str | None) -> dict[str, Any]:
    return {"label": label, "doc": {"by": label}, "at": datetime(2026, 12, 6, tzinfo=UTC)}


def test_sent_statements_run_in_order_before_the_next_statement(engine: Engine) -> None:
    """A sent statement waits (PostgreSQL) or runs at once (SQLite); either way the statements
    after it, direct or SQLAlchemy's, see its row, and its rows come back."""
    seen: list[str] = []

    def note(_connection: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        seen.append(statement.split()[0])

    event.listen(engine, "before_cursor_execute", note)
    try:
        with Session(engine) as session, session.begin():
            first = _ADD.send(session, _note("first"))
            second = _ADD.send(session, _note("second"))
            waited = not seen
            [(count,)] = _COUNT.rows(session, {})
            assert session.scalar(select(func.count()).select_from(_NOTES)) == 2
            third = _ADD.send(session, _note("third"))
            labels = session.scalars(select(_NOTES.c.label).order_by(_NOTES.c.id)).all()
    finally:
        event.remove(engine, "before_cursor_execute", note)
    assert waited == (engine.dialect.name == "postgresql")
    assert count == 2 and labels == ["first", "second", "third"]
    assert [row[1] for sent in (first, second, third) for row in sent.rows()] == [7, 7, 7]
    assert first.rows()[0][0] < second.rows()[0][0] < third.rows()[0][0]
    assert seen[:3] == ["INSERT", "INSERT", "SELECT"]


def test_statements_sent_last_run_before_the_commit(engine: Engine) -> None:
    with Session(engine) as session, session.begin():
        sent = _ADD.send(session, _note("last"))
    assert sent.rows()[0][1] == 7
    with Session(engine) as session:
        assert session.scalars(select(_NOTES.c.label)).all() == ["last"]


def test_a_failed_sent_statement_fails_the_transaction(engine: Engine) -> None:
    """The failure surfaces where the statements ran (the commit on PostgreSQL, the send on
    SQLite), nothing of the transaction is stored, and the connection serves the next one."""
    broken = []
    with pytest.raises(Exception, match=r"(?i)null"), Session(engine) as session, session.begin():
        _ADD.rows(session, _note("kept only if all are"))
        broken.append(_ADD.send(session, _note(None)))  # label is NOT NULL
    if broken:
        with pytest.raises(Exception, match=r"(?i)null"):
            broken[0].rows()
    with Session(engine) as session, session.begin():
        _ADD.send(session, _note("after"))
    with Session(engine) as session:
        assert session.scalars(select(_NOTES.c.label)).all() == ["after"]


@pytest.mark.postgres
def test_a_statement_that_answers_raises_the_failure_of_those_sent_before(
    postgres_engine: Engine,
) -> None:
    with Session(postgres_engine) as session, session.begin():
        broken = _ADD.send(session, _note(None))
        with pytest.raises(Exception, match=r"(?i)null"):
            _COUNT.rows(session, {})
        with pytest.raises(Exception, match=r"(?i)null"):
            broken.rows()
        session.rollback()


@pytest.mark.postgres
def test_statements_sent_in_a_rolled_back_transaction_never_run(postgres_engine: Engine) -> None:
    with pytest.raises(RuntimeError), Session(postgres_engine) as session, session.begin():
        sent = _ADD.send(session, _note("gone"))
        raise RuntimeError("the caller fails before anything answered")
    with pytest.raises(Exception, match="rolled back"):
        sent.rows()
    with Session(postgres_engine) as session:
        assert session.scalar(select(func.count()).select_from(_NOTES)) == 0


def _round_trips(
    engine: Engine, trace: Path, work: Any, *, begin_with_first_statements: bool = False
) -> int:
    """Round trips of one transaction doing ``work(session)``, counted on the wire (libpq's
    protocol trace): each ends with the server's ReadyForQuery."""
    with Session(engine) as session:
        if begin_with_first_statements:
            begin_with_first_statements_of(session)
        raw: Any = session.connection().connection.dbapi_connection
        with trace.open("w") as out:
            raw.pgconn.trace(out.fileno())
            try:
                work(session)
                session.commit()
            finally:
                raw.pgconn.untrace()
    return len(re.findall(r"\bB\s+\d+\s+ReadyForQuery\b", trace.read_text()))


def _two_then_count(send: bool) -> Any:
    def work(session: Session) -> None:
        for label in ("one", "two"):
            if send:
                _ADD.send(session, _note(label))
            else:
                _ADD.rows(session, _note(label))
        assert _COUNT.rows(session, {})

    return work


@pytest.mark.postgres
def test_sent_statements_share_one_round_trip(postgres_engine: Engine, tmp_path: Path) -> None:
    """Two sent statements and one that answers take one round trip between BEGIN and COMMIT,
    where running each at once takes three; with the BEGIN going with them, two in all."""
    trace = tmp_path / "trace.txt"
    # Warm: psycopg prepares a statement on its fifth run, which would add to the count.
    for _ in range(6):
        _round_trips(postgres_engine, trace, _two_then_count(send=False))
    assert _round_trips(postgres_engine, trace, _two_then_count(send=False)) == 5
    assert _round_trips(postgres_engine, trace, _two_then_count(send=True)) == 3
    one_less = _round_trips(
        postgres_engine, trace, _two_then_count(send=True), begin_with_first_statements=True
    )
    assert one_less == 2  # BEGIN and the three together, COMMIT


@pytest.mark.postgres
def test_a_transaction_of_sent_statements_alone_is_one_round_trip(
    postgres_engine: Engine, tmp_path: Path
) -> None:
    def work(session: Session) -> None:
        for label in ("one", "two"):
            _ADD.send(session, _note(label))

    for _ in range(3):
        trips = _round_trips(
            postgres_engine, tmp_path / "trace.txt", work, begin_with_first_statements=True
        )
    assert trips == 1  # BEGIN, both, COMMIT
    with Session(postgres_engine) as session:
        assert session.scalar(select(func.count()).select_from(_NOTES)) == 6


@pytest.mark.postgres
@pytest.mark.parametrize("first", ["sqlalchemy", "direct", "sent"])
def test_a_transaction_that_begins_with_its_first_statements_is_still_one(
    postgres_engine: Engine, first: str
) -> None:
    """Whatever runs first, the BEGIN goes before it: a failure later rolls back everything the
    transaction wrote (without it, autocommit would have kept the first row). The connection
    then goes back to the pool starting its own transactions again, and is not dropped."""

    def add(session: Session, label: str) -> None:
        if first == "sqlalchemy":
            session.execute(insert(_NOTES), [{**_note(label), "weight": 1}])
        elif first == "direct":
            _ADD.rows(session, _note(label))
        else:
            _ADD.send(session, _note(label))

    with Session(postgres_engine) as session:
        backend = session.scalar(text("SELECT pg_backend_pid()"))
    with pytest.raises(RuntimeError), Session(postgres_engine) as session, session.begin():
        begin_with_first_statements_of(session)
        raw: Any = session.connection().connection.dbapi_connection
        assert raw.autocommit
        add(session, "first")
        _COUNT.rows(session, {})  # runs what was sent
        raise RuntimeError("the caller fails after its statements ran")
    with Session(postgres_engine) as session:
        assert session.scalar(select(func.count()).select_from(_NOTES)) == 0
        assert session.scalar(text("SELECT pg_backend_pid()")) == backend
        assert not session.connection().connection.dbapi_connection.autocommit
    with Session(postgres_engine) as session, session.begin():
        begin_with_first_statements_of(session)
        add(session, "kept")
    with Session(postgres_engine) as session:
        assert session.scalars(select(_NOTES.c.label)).all() == ["kept"]


@pytest.mark.postgres
def test_a_failed_statement_sent_with_the_commit_fails_the_commit(
    postgres_engine: Engine,
) -> None:
    session = Session(postgres_engine)
    with pytest.raises(Exception, match=r"(?i)null"), session, session.begin():
        begin_with_first_statements_of(session)
        _ADD.send(session, _note("kept only if all are"))
        _ADD.send(session, _note(None))
    with Session(postgres_engine) as session:
        assert session.scalar(select(func.count()).select_from(_NOTES)) == 0
