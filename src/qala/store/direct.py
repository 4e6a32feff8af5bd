"""Statements run straight on the driver's cursor, compiled once.

For the few statements on a hot path (a citizen's report writes three), SQLAlchemy's work around
each call — the cache key, the parameters' processing, the execution context and the result's
set-up — cost more CPU than the driver's own (``bench/requests311_cpu.py``: about half of a
statement's Python). A :class:`DirectStatement` does that work once, when first run on a dialect,
and then hands the SQL and the processed values to the cursor of the session's connection, inside
the session's transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Dialect
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
        """Run the statement with ``parameters`` in ``session``'s transaction; its rows."""
        connection = session.connection()
        compiled = self._compiled.get(connection.dialect.name)
        if compiled is None:
            compiled = self._compiled[connection.dialect.name] = _compile(
                self.statement, connection.dialect
            )
        values = {**compiled.constants, **parameters}
        for name, process in compiled.processors:
            values[name] = process(values[name])
        if compiled.order is None:
            return _run(connection, compiled.sql, values)
        return _run(connection, compiled.sql, tuple(values[name] for name in compiled.order))


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


def _cursor_of(connection: Connection, raw: Any) -> Any:
    """The connection's cursor for direct statements, made on first use and then reused: a new
    psycopg cursor copies the connection's adapters each time."""
    info = connection.connection.info
    cursor = info.get(_CURSOR_KEY)
    if cursor is None or cursor.connection is not raw or getattr(cursor, "closed", False):
        cursor = info[_CURSOR_KEY] = raw.cursor()
    return cursor


def _run(connection: Connection, sql: str, values: Any) -> list[tuple[Any, ...]]:
    raw: Any = connection.connection.dbapi_connection
    cursor = _cursor_of(connection, raw)
    try:
        # The engine's listeners, as SQLAlchemy's own execution calls them (no context here).
        for listener in connection.dispatch.before_cursor_execute:
            listener(connection, cursor, sql, values, None, False)
        cursor.execute(sql, values)
        # psycopg tells whether rows came from its result without building the columns'
        # descriptions (5 % of a report's instructions under callgrind); others by description.
        result = getattr(cursor, "pgresult", None)
        answered = result.nfields > 0 if result is not None else cursor.description is not None
        rows: list[tuple[Any, ...]] = cursor.fetchall() if answered else []
        return rows
    except connection.dialect.loaded_dbapi.Error as exc:
        if connection.dialect.is_disconnect(exc, raw, cursor):
            connection.invalidate(exc)
        raise
