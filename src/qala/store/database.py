"""Engine and session factory for SQLite (embedded default) and PostgreSQL (production)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from qala.core.errors import ConfigurationError
from qala.store import direct

# PostgreSQL's SQLSTATEs for a table or column that does not exist.
_MISSING_SCHEMA_STATES = {"42P01", "42703"}


def is_missing_schema(error: BaseException) -> bool:
    """Whether a failed call found no table or column where Qala's schema has one: the database
    was never migrated, or is behind this version (``qala db upgrade`` fixes both). Trying again
    does not help, so it is not :func:`is_transient`."""
    original = getattr(error, "orig", None) or error
    if getattr(original, "sqlstate", None) in _MISSING_SCHEMA_STATES:
        return True
    text = str(original)
    return type(original).__name__ == "OperationalError" and (
        text.startswith("no such table") or text.startswith("no such column")
    )


def is_transient(error: BaseException) -> bool:
    """Whether a failed database call may succeed when tried again: the database was down, busy,
    locked, deadlocked or dropped the connection. Anything else (a constraint, a bug) fails again
    the same way."""
    from sqlalchemy.exc import DBAPIError

    if is_missing_schema(error):
        return False
    if isinstance(error, DBAPIError) and error.connection_invalidated:
        return True
    if isinstance(error, ConnectionError | TimeoutError):
        return True
    # DB-API classes by name: SQLAlchemy's wrappers and the drivers' own (psycopg's, sqlite3's)
    # from raw cursors; deadlocks and serialization failures are OperationalErrors.
    names = {cls.__name__ for cls in type(error).__mro__}
    return bool(names & {"OperationalError", "InterfaceError", "TimeoutError"})


def is_postgres_url(url: str) -> bool:
    return make_url(url).get_backend_name() == "postgresql"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers (the dashboard) run while a writer imports; foreign keys are off by default.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def _loop_aware_connection(
    _dialect: Any, _record: Any, cargs: tuple[Any, ...], cparams: dict[str, Any]
) -> Any:
    """Every PostgreSQL connection of the store can wait on the event loop (store/on_loop.py;
    imported here, with psycopg, only by a store that connects to PostgreSQL)."""
    from qala.store.on_loop import LoopAwareConnection, await_on_loop, on_loop

    if on_loop():
        # psycopg connects with blocking waits of its own: on the loop's thread they would stop
        # every request of the worker for the connection's round trips (pools grow under load).
        return await_on_loop(asyncio.to_thread(LoopAwareConnection.connect, *cargs, **cparams))
    return LoopAwareConnection.connect(*cargs, **cparams)


class Database:
    """An engine plus a session factory; ``transaction()`` wraps a unit of work."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        try:
            parsed = make_url(url)
        except Exception as exc:  # sqlalchemy raises ArgumentError with a terse message
            raise ConfigurationError(f"database URL {url!r} is not a valid SQLAlchemy URL") from exc
        self.url = url
        self.disposed = False
        backend = parsed.get_backend_name()
        kwargs: dict[str, Any] = {"echo": echo, "future": True}
        if backend == "sqlite":
            if parsed.database and parsed.database != ":memory:":
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"check_same_thread": False}
        elif backend == "postgresql":
            if parsed.drivername == "postgresql":
                parsed = parsed.set(drivername="postgresql+psycopg")
            kwargs["pool_size"] = 10
            kwargs["max_overflow"] = 20
            # Recycling old connections instead of pinging before every checkout saves a round
            # trip per request (measured in bench/requests311_load.py).
            kwargs["pool_recycle"] = 1800
        else:
            raise ConfigurationError(
                f"database backend {backend!r} is not supported; use sqlite or postgresql"
            )
        self.backend = backend
        self.engine: Engine = create_engine(parsed, **kwargs)
        if backend == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        else:
            direct.enable_sending(self.engine)
            event.listen(self.engine, "do_connect", _loop_aware_connection)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        # SQLAlchemy initialises its dialect on an engine's first connection under a lock held
        # while it asks the server: done on the event loop (store/on_loop.py), a second report
        # there would wait for that lock on the loop's own thread for ever.
        self._first_connection_pending = backend == "postgresql"

    def ensure_connected(self) -> None:
        """Called on the event loop (store/on_loop.py) before the engine's first connection,
        make that connection on a thread; elsewhere the first session makes it as usual.
        Sessions and transactions ask for it themselves; code taking connections straight from
        ``engine`` on the loop asks first."""
        if not self._first_connection_pending:
            return
        from qala.store.on_loop import await_on_loop, on_loop

        if on_loop():
            await_on_loop(asyncio.to_thread(self._connect_once))
        self._first_connection_pending = False

    def _connect_once(self) -> None:
        with self.engine.connect():
            pass

    @contextmanager
    def transaction(self, *, begin_with_first_statements: bool = False) -> Iterator[Session]:
        """A session whose work is committed at the end, or rolled back entirely on error.

        ``begin_with_first_statements``: on PostgreSQL the BEGIN goes to the server with the
        transaction's first statements, one round trip less
        (:func:`qala.store.direct.begin_with_first_statements`: only for work that runs no
        statement on the driver's connection itself)."""
        self.ensure_connected()
        with self.sessions.begin() as session:
            if begin_with_first_statements:
                direct.begin_with_first_statements(session)
            yield session

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A read session (nothing is committed)."""
        self.ensure_connected()
        with self.sessions() as session:
            yield session

    def dispose(self) -> None:
        self.disposed = True  # background threads of this store (the notifier) end
        self.engine.dispose()
