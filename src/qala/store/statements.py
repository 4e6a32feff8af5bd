"""Statements whose SQL differs between the two stores."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session


def insert_ignoring(bind: Session | Connection, model: Any) -> Any:
    """``INSERT … ON CONFLICT DO NOTHING`` for the store in use (SQLite or PostgreSQL): a row
    that already exists is left as it is, without an error or a savepoint."""
    dialect = bind.get_bind().dialect if isinstance(bind, Session) else bind.dialect
    return _insert_ignoring(dialect.name, model)


@lru_cache(maxsize=256)
def _insert_ignoring(dialect_name: str, model: Any) -> Any:
    # Statements are immutable (``.values()`` returns a new one), so one per table is shared;
    # pass values to ``execute`` to reuse its compiled form too.
    insert = postgresql.insert if dialect_name == "postgresql" else sqlite.insert
    return insert(model).on_conflict_do_nothing()
