"""Statements whose SQL differs between the two stores."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session


def dialect_name(bind: Session | Connection) -> str:
    """``postgresql`` or ``sqlite``: which store a session or connection talks to."""
    return (bind.get_bind() if isinstance(bind, Session) else bind).dialect.name


def dialect_insert(dialect: str, model: Any) -> Any:
    """An ``INSERT`` with the store's ``ON CONFLICT`` clauses (``on_conflict_do_nothing``,
    ``on_conflict_do_update``, ``excluded``), for ``dialect`` (see :func:`dialect_name`)."""
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(model)


def insert_ignoring(bind: Session | Connection, model: Any) -> Any:
    """``INSERT … ON CONFLICT DO NOTHING`` for the store in use (SQLite or PostgreSQL): a row
    that already exists is left as it is, without an error or a savepoint."""
    return _insert_ignoring(dialect_name(bind), model)


@lru_cache(maxsize=256)
def _insert_ignoring(dialect: str, model: Any) -> Any:
    # Statements are immutable (``.values()`` returns a new one), so one per table is shared;
    # pass values to ``execute`` to reuse its compiled form too.
    return dialect_insert(dialect, model).on_conflict_do_nothing()
