"""The database itself refuses any change to a published release (triggers of migration
``catalog_0004_release_guard``), on SQLite and PostgreSQL: raw SQL that bypasses Qala's sessions
cannot update or delete a release or its values."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from qala.components.catalog.calls import open_call, publish, review, submit_values

STATEMENTS = (
    "UPDATE data_release_value SET value = 99",
    "DELETE FROM data_release_value",
    "UPDATE data_release SET published_by = 'someone else'",
    "DELETE FROM data_release",
)


@pytest.fixture
def published(context) -> object:
    with context.database.transaction() as session:
        call = open_call(
            session,
            year=2024,
            indicators=["iso37120.5.1"],
            places=["taraz"],
            deadline=date(2025, 3, 1),
            actor="team",
        )
        frame = pd.DataFrame({"place": ["taraz"], "indicator": ["iso37120.5.1"], "value": [4.5]})
        submit_values(session, call.id, frame, actor="taraz-akimat", scope_place="taraz")
        review(session, call.id, "taraz", "iso37120.5.1", "accept", actor="reviewer")
        publish(session, call.id, actor="publisher")
    return context


@pytest.mark.parametrize("statement", STATEMENTS)
def test_raw_sql_cannot_change_a_published_release(published, statement: str) -> None:
    engine = published.database.engine  # type: ignore[attr-defined]
    with (
        pytest.raises(DBAPIError, match="a published release cannot be changed"),
        engine.begin() as connection,
    ):
        connection.execute(text(statement))
    with engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT r.number, r.published_by, v.value FROM data_release r "
                "JOIN data_release_value v ON v.release_id = r.id"
            )
        ).all()
    assert [tuple(r) for r in rows] == [(1, "publisher", 4.5)]


def test_a_new_release_can_still_be_written(published) -> None:
    """The guard refuses changes, not new rows: a correction is inserted as release 2."""
    context = published
    with context.database.transaction() as session:  # type: ignore[attr-defined]
        review(session, 1, "taraz", "iso37120.5.1", "return", actor="reviewer", reason="typo")
        frame = pd.DataFrame({"place": ["taraz"], "indicator": ["iso37120.5.1"], "value": [4.6]})
        submit_values(session, 1, frame, actor="taraz-akimat", scope_place="taraz")
        review(session, 1, "taraz", "iso37120.5.1", "accept", actor="reviewer")
        assert publish(session, 1, actor="publisher").number == 2
