"""Statements run straight on the driver's cursor, compiled once.

For the few statements on a hot path (a citizen's report writes three), SQLAlchemy's work around
each call — the cache key, the parameters' processing, the execution context and the result's
set-up — cost more CPU than the driver's own (``bench/requests311_cpu.py``: about half of a
statement's Python). A :class:`DirectStatement` does that work once, when first run on a dialect,
and then hands the SQL and the processed values to the cursor of the session's connection, inside
the session's transaction.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from sqlalchemy import Connection, Dialect, Engine, event
from sqlalchemy.exc import InvalidRequestError
from sqlalchemy.orm import Session
from sqlalchemy.sql import ClauseElement


@dataclass(frozen=True)
class _Compiled:
    sql: str
    constants: dict[str, Any]
    """Values the statement carries itself (``literal(0)``, a bound value)."""
    processors: tuple[tuple[str, Callable[[Any], Any]], ...]
    """The bind processors of the parameters whose type has one (JSON: serialised)."""
    order: tuple[str, ...] | None
    """The parameters' names in their places, for a driver taking them by position (SQLite);
    None for one taking them by name (psycopg)."""


class DirectStatement:
    """A Core statement compiled once per dialect and run on the driver's cursor.

    What SQLAlchemy would do per call is kept where it matters: parameters go through their
    types' bind processors, the engine's ``before_cursor_execute`` listeners see the statement
    (statement counts in tests, logging), and a driver error that broke the connection
    invalidates it so the pool drops it. Errors are the driver's own (``psycopg.Error``), which
    the API's handlers take as they take SQLAlchemy's. Statements with expanding parameters
    (``IN`` lists) are refused: their SQL changes with the values.
    """

    def __init__(self, statement: ClauseElement) -> None:
        self.statement = statement
        self._compiled: dict[str, _Compiled] = {}

    def rows(self, session: Session, parameters: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """Run the statement with ``parameters`` in ``session``'s transaction; its rows. The
        statements sent on the connection and still waiting go with it, before it."""
        connection = session.connection()
        sql, values = self._bound(connection, parameters)
        due = _due(connection)
        if not due:
            return _run(connection, sql, values)
        sent = Sent(connection, sql, values)
        _run_together(connection, [*due, sent])
        return sent.rows()

    def send(self, session: Session, parameters: Mapping[str, Any]) -> Sent:
        """Hand the statement with ``parameters`` to ``session``'s transaction, to run with the
        next statement that must answer at once, before any other statement on the connection,
        and at the latest before the transaction commits; its rows come from the returned
        :class:`Sent`. Where statements cannot wait (SQLite, an engine not made ready with
        :func:`enable_sending`) it runs now.

        A sent statement's failure surfaces where the statements run together: it fails the
        transaction either way, so send only what the transaction cannot do without."""
        connection = session.connection()
        sql, values = self._bound(connection, parameters)
        sent = Sent(connection, sql, values)
        if connection.engine in _SENDING:
            waiting = _WAITING.get(connection)
            if waiting is None:
                _WAITING[connection] = [sent]
            else:
                waiting.append(sent)
        else:
            sent._rows = _run(connection, sql, values)
        return sent

    def _bound(self, connection: Connection, parameters: Mapping[str, Any]) -> tuple[str, Any]:
        """The statement's SQL on ``connection``'s dialect and the values the driver takes."""
        compiled = self._compiled.get(connection.dialect.name)
        if compiled is None:
            compiled = self._compiled[connection.dialect.name] = _compile(
                self.statement, connection.dialect
            )
        values = {**compiled.constants, **parameters}
        for name, process in compiled.processors:
            values[name] = process(values[name])
        if compiled.order is None:
            return compiled.sql, values
        return compiled.sql, tuple(values[name] for name in compiled.order)


class Sent:
    """A statement handed to :meth:`DirectStatement.send`: its rows once it has run."""

    __slots__ = ("_connection", "_error", "_rows", "_sql", "_values")

    def __init__(self, connection: Connection, sql: str, values: Any) -> None:
        self._connection = connection
        self._sql = sql
        self._values = values
        self._rows: list[tuple[Any, ...]] | None = None
        self._error: BaseException | None = None

    def rows(self) -> list[tuple[Any, ...]]:
        """The statement's rows; it runs now, with the statements sent before it, if it is
        still waiting. Raises the error of the statements it ran with, if they failed."""
        if self._rows is None and self._error is None:
            due = _due(self._connection)
            if due:
                _run_together(self._connection, due)
        if self._error is not None:
            raise self._error
        if self._rows is None:
            raise InvalidRequestError("a sent statement's transaction ended before it ran")
        return self._rows


_WAITING: weakref.WeakKeyDictionary[Connection, list[Sent]] = weakref.WeakKeyDictionary()
"""The statements sent on a connection (one transaction's checkout) and not yet run."""
_BEGIN_DUE: weakref.WeakSet[Connection] = weakref.WeakSet()
"""Connections whose transaction began with :func:`begin_with_first_statements` and has not
yet sent its BEGIN."""
_SENDING: weakref.WeakSet[Engine] = weakref.WeakSet()
"""Engines whose sent statements wait (:func:`enable_sending`)."""
_OWN_BEGIN_KEY = "qala.direct_own_begin"
"""Marks (in the pool's ``info``) a psycopg connection set to autocommit so that its
transaction's BEGIN is ours; set back when the connection returns to the pool."""


def enable_sending(engine: Engine) -> None:
    """Let statements sent on ``engine`` wait and run together, when its driver can pipeline
    them (psycopg with libpq 14 or newer); elsewhere they keep running at once.

    Listeners keep the order the program gave: sent statements run before any other statement
    on their connection and before its COMMIT (their failure then fails the commit), and are
    dropped with a rollback, as everything else the transaction did."""
    if engine in _SENDING or not (engine.dialect.driver == "psycopg" and _pipelines()):
        return
    event.listen(engine, "before_cursor_execute", _run_due)
    event.listen(engine, "commit", _run_due_before_commit)
    event.listen(engine, "rollback", _drop_due)
    event.listen(engine, "checkin", _give_back_begin)
    _SENDING.add(engine)


def begin_with_first_statements(session: Session) -> None:
    """Have ``session``'s new transaction send its BEGIN with its first statements instead of
    alone before them: psycopg starts a transaction in a round trip of its own, even in a
    pipeline, so the connection is set to autocommit and the BEGIN is sent from here — at the
    head of the first statements that run together, or just before any other statement.
    COMMIT and ROLLBACK stay psycopg's, which sends them whenever the server is in a
    transaction. Nothing changes where sending is not enabled, or once the transaction has run
    a statement or asks for its own isolation level.

    Only for transactions whose statements all go through SQLAlchemy or
    :class:`DirectStatement` (whose listeners send the BEGIN): a statement on the driver's own
    connection would run outside the transaction."""
    connection = session.connection()
    if connection.engine not in _SENDING:
        return
    raw: Any = connection.connection.dbapi_connection
    if raw.autocommit or raw.pgconn.transaction_status != _idle():
        return
    if raw.isolation_level is not None or raw.read_only is not None or raw.deferrable is not None:
        return
    raw.autocommit = True
    connection.connection.info[_OWN_BEGIN_KEY] = True
    _BEGIN_DUE.add(connection)


@cache
def _pipelines() -> bool:
    import psycopg

    return bool(psycopg.Pipeline.is_supported())


@cache
def _idle() -> Any:
    from psycopg.pq import TransactionStatus

    return TransactionStatus.IDLE


def _due(connection: Connection) -> list[Sent]:
    """What must run before the connection's next statement, taken from the waiting: the
    transaction's BEGIN if it is still ours to send, then the statements sent."""
    due = _WAITING.pop(connection, None) or []
    if connection in _BEGIN_DUE:
        _BEGIN_DUE.discard(connection)
        due.insert(0, Sent(connection, "BEGIN", None))
    return due


def _run_due(connection: Connection, *_statement: Any) -> None:
    due = _due(connection)
    if due:
        _run_together(connection, due)


def _run_due_before_commit(connection: Connection) -> None:
    """Before COMMIT: the statements still waiting run (a transaction that ran nothing sends
    nothing). When the BEGIN was ours, the COMMIT goes with them: psycopg then finds the
    server out of the transaction and has nothing left to send."""
    waiting = _WAITING.pop(connection, None)
    begin_due = connection in _BEGIN_DUE
    _BEGIN_DUE.discard(connection)
    if not waiting:
        return
    due = [Sent(connection, "BEGIN", None)] if begin_due else []
    due += waiting
    if connection.connection.info.get(_OWN_BEGIN_KEY):
        due.append(Sent(connection, "COMMIT", None))
    _run_together(connection, due)


def _drop_due(connection: Connection) -> None:
    _BEGIN_DUE.discard(connection)
    for sent in _WAITING.pop(connection, None) or ():
        sent._error = InvalidRequestError("a sent statement's transaction rolled back")


def _give_back_begin(dbapi_connection: Any, record: Any) -> None:
    """A connection back in the pool starts its transactions itself again."""
    if record is not None and record.info.pop(_OWN_BEGIN_KEY, False):
        try:
            dbapi_connection.autocommit = False
        except Exception:
            # Left inside a transaction by something else: dropped rather than handed out so.
            record.invalidate()


def _compile(statement: ClauseElement, dialect: Dialect) -> _Compiled:
    compiled: Any = statement.compile(dialect=dialect)
    if compiled.literal_execute_params or compiled.post_compile_params:
        raise ValueError("a direct statement cannot have expanding (IN list) parameters")
    if compiled.escaped_bind_names:
        raise ValueError("a direct statement's parameter names must need no escaping")
    constants: dict[str, Any] = {}
    processors: list[tuple[str, Callable[[Any], Any]]] = []
    for bind in compiled.binds.values():
        name = compiled.bind_names[bind]
        if not bind.required:
            constants[name] = bind.effective_value
        process = bind.type.dialect_impl(dialect).bind_processor(dialect)
        if process is not None:
            processors.append((name, process))
    order = tuple(compiled.positiontup) if compiled.positional else None
    return _Compiled(compiled.string, constants, tuple(processors), order)


_CURSOR_KEY = "qala.direct_cursor"
"""Where a DBAPI connection's reused cursor is kept: the pool's ``info`` of that connection,
which SQLAlchemy clears when it replaces an invalidated connection."""


def _cursors_of(connection: Connection, raw: Any, count: int) -> list[Any]:
    """``count`` cursors of the connection for direct statements (one per statement run
    together), made on first use and then reused: a new psycopg cursor copies the connection's
    adapters each time."""
    info = connection.connection.info
    cursors: list[Any] = info.get(_CURSOR_KEY) or []
    if cursors and (cursors[0].connection is not raw or getattr(cursors[0], "closed", False)):
        cursors = []
    if len(cursors) < count:
        cursors = info[_CURSOR_KEY] = [
            *cursors,
            *(raw.cursor() for _ in range(count - len(cursors))),
        ]
    return cursors[:count]


def _fetched(cursor: Any) -> list[tuple[Any, ...]]:
    """The rows the cursor's last statement answered (none for a statement without any)."""
    # psycopg tells whether rows came from its result without building the columns'
    # descriptions (5 % of a report's instructions under callgrind); others by description.
    result = getattr(cursor, "pgresult", None)
    answered = result.nfields > 0 if result is not None else cursor.description is not None
    return cursor.fetchall() if answered else []


def _run(connection: Connection, sql: str, values: Any) -> list[tuple[Any, ...]]:
    raw: Any = connection.connection.dbapi_connection
    [cursor] = _cursors_of(connection, raw, 1)
    try:
        # The engine's listeners, as SQLAlchemy's own execution calls them (no context here).
        for listener in connection.dispatch.before_cursor_execute:
            listener(connection, cursor, sql, values, None, False)
        cursor.execute(sql, values)
        return _fetched(cursor)
    except connection.dialect.loaded_dbapi.Error as exc:
        if connection.dialect.is_disconnect(exc, raw, cursor):
            connection.invalidate(exc)
        raise


def _run_together(connection: Connection, batch: list[Sent]) -> None:
    """Run ``batch`` in one psycopg pipeline: every statement goes out before any answer is
    awaited, and one Sync brings all the answers back. Each statement gets its rows, or all
    get the first failure (the server skips the rest of a pipeline after an error)."""
    raw: Any = connection.connection.dbapi_connection
    cursors = _cursors_of(connection, raw, len(batch))
    cursor = cursors[0]
    try:
        with raw.pipeline():
            for sent, cursor in zip(batch, cursors, strict=True):
                for listener in connection.dispatch.before_cursor_execute:
                    listener(connection, cursor, sent._sql, sent._values, None, False)
                cursor.execute(sent._sql, sent._values)
        for sent, cursor in zip(batch, cursors, strict=True):
            sent._rows = _fetched(cursor)
    except BaseException as exc:
        for sent in batch:
            sent._error = exc
        dbapi_error = connection.dialect.loaded_dbapi.Error
        if isinstance(exc, dbapi_error) and connection.dialect.is_disconnect(exc, raw, cursor):
            connection.invalidate(exc)
        raise
