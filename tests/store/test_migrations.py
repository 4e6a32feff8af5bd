"""The migrations build exactly the schema the models declare, on both stores.

A model changed without a migration (or a migration that drifts from its model) would pass every
test that builds tables from the migrations yet break a production upgrade; this compares the two.
"""

from __future__ import annotations

import importlib
from datetime import UTC, datetime
from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import JSON, DateTime, String, column, create_engine, table, text

from qala.registry import COMPONENTS, migration_locations
from qala.store.base import Base
from qala.store.database import Database
from qala.store.migrate import alembic_config


def _load_every_model() -> None:
    for component in COMPONENTS:
        try:
            importlib.import_module(f"qala.components.{component.name}.models")
        except ModuleNotFoundError as exc:
            if exc.name != f"qala.components.{component.name}.models":
                raise


def test_migrated_schema_matches_the_models(database_url: str) -> None:
    _load_every_model()
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection, opts={"compare_type": True, "compare_server_default": False}
            )
            differences = compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()
    # Alembic's own bookkeeping tables are not models, nor are the monthly partitions of the
    # observation history on PostgreSQL (created by `qala operate maintain`).
    differences = [
        d
        for d in differences
        if not (
            d[0] == "remove_table"
            and (
                d[1].name.startswith(("alembic_version", "operate_observation_y"))
                or d[1].name == "operate_observation_default"
            )
        )
    ]
    assert differences == [], "models and migrations disagree:\n" + "\n".join(map(str, differences))


def test_the_upgrade_shows_no_username_or_email_publicly(tmp_path: Path) -> None:
    """Accounts with an e-mail as display name, and comments signed with usernames, written under
    the first revisions, show display names after the upgrade."""
    database = Database(f"sqlite:///{tmp_path / 'old.sqlite'}")
    try:
        config = alembic_config(database, migration_locations())
        command.upgrade(config, "heads")
        command.downgrade(config, "budgeting_0001")
        command.downgrade(config, "accounts_0001")
        with database.engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO accounts_user (id, username, display_name, role, password_hash,"
                    " active, created_at) VALUES (5, 'dana@mail.kz', 'dana@mail.kz', 'citizen',"
                    " 'x', true, '2026-01-01'), (6, 'nurlan', 'Nurlan', 'citizen', 'x', true,"
                    " '2026-01-01')"
                )
            )
            connection.execute(
                text(
                    "INSERT INTO budgeting_consultation (id, code, place_code, kind, title,"
                    " description, opens_at, closes_at, summary, created_by, illustrative)"
                    " VALUES (1, 'c', 'astana', 'survey', '{}', '{}', '2026-01-01',"
                    " '2026-02-01', '{}', 'akimat', false)"
                )
            )
            connection.execute(
                text(
                    "INSERT INTO budgeting_comment (consultation_id, author, language, text,"
                    " created_at, hidden, illustrative) VALUES (1, 'dana@mail.kz', 'ru', 'a',"
                    " '2026-01-02', false, false), (1, 'nurlan', 'ru', 'b', '2026-01-02',"
                    " false, false)"
                )
            )
        command.upgrade(config, "heads")
        with database.engine.connect() as connection:
            names = connection.execute(text("SELECT display_name FROM accounts_user ORDER BY id"))
            authors = connection.execute(text("SELECT author FROM budgeting_comment ORDER BY id"))
            assert [n for (n,) in names] == ["resident-5", "Nurlan"]
            assert [a for (a,) in authors] == ["resident-5", "Nurlan"]
    finally:
        database.dispose()


def test_the_upgrade_gives_stored_entities_the_box_of_their_shape(database_url: str) -> None:
    """Entities stored before the geometry box (operate_0012) get the box around all their
    vertices, so that ``near`` finds a long road by its nearest point once upgraded."""
    database = Database(database_url)
    entity = table(
        "operate_entity",
        column("id", String()),
        column("type", String()),
        column("concept", String()),
        column("attrs", JSON()),
        column("created_at", DateTime(timezone=True)),
        column("modified_at", DateTime(timezone=True)),
    )
    road = {"type": "LineString", "coordinates": [[71.30, 51.13], [71.58, 51.13], [71.44, 51.2]]}
    stamp = datetime(2026, 1, 1, tzinfo=UTC)
    try:
        config = alembic_config(database, migration_locations())
        command.downgrade(config, "operate_0011_notification_outbox")
        with database.engine.begin() as connection:
            connection.execute(
                entity.insert(),
                [
                    {
                        "id": entity_id,
                        "type": "Road",
                        "concept": "place",
                        "attrs": attrs,
                        "created_at": stamp,
                        "modified_at": stamp,
                    }
                    for entity_id, attrs in (
                        ("road", {"location": {"type": "GeoProperty", "value": road}}),
                        ("nowhere", {"name": {"type": "Property", "value": "x"}}),
                    )
                ],
            )
        command.upgrade(config, "heads")
        with database.engine.connect() as connection:
            rows = connection.execute(
                text(
                    "SELECT id, lat_min, lat_max, lon_min, lon_max FROM operate_entity ORDER BY id"
                )
            )
            assert [tuple(row) for row in rows] == [
                ("nowhere", None, None, None, None),
                ("road", 51.13, 51.2, 71.30, 71.58),
            ]
    finally:
        database.dispose()
