"""Alembic migrations run programmatically.

Each component keeps its own migration folder with its own branch label, so components evolve
independently; ``upgrade`` applies every branch to its head.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import inspect

from qala.store.database import Database

STORE_MIGRATIONS = str(resources.files("qala.store") / "migrations")


def alembic_config(database: Database, version_locations: Sequence[str]) -> Config:
    config = Config()
    config.set_main_option("script_location", STORE_MIGRATIONS)
    locations = [str(Path(STORE_MIGRATIONS) / "versions"), *map(str, version_locations)]
    # A separator that cannot occur in paths, so folders with spaces work.
    config.set_main_option("path_separator", ";")
    config.set_main_option("version_locations", ";".join(locations))
    config.set_main_option("sqlalchemy.url", database.url.replace("%", "%%"))
    config.attributes["engine"] = database.engine
    return config


def upgrade(database: Database, version_locations: Sequence[str]) -> None:
    """Bring the schema to the newest revision of every component."""
    command.upgrade(alembic_config(database, version_locations), "heads")


def is_current(database: Database, version_locations: Sequence[str]) -> bool:
    """Whether the store is already at the newest revision of every branch (nothing to apply)."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config(database, version_locations))
    with database.engine.connect() as connection:
        applied = MigrationContext.configure(connection).get_current_heads()
    # The version table keeps only the leaves: a branch head that another branch depends on
    # (the catalogue's) is applied when it is among their ancestors.
    reached = {revision.revision for revision in script.iterate_revisions(applied, "base")}
    return set(script.get_heads()) <= reached


def applied_heads(database: Database) -> set[str]:
    """The revisions the store's version table records (one query; raises if unreachable)."""
    from alembic.runtime.migration import MigrationContext

    with database.engine.connect() as connection:
        return set(MigrationContext.configure(connection).get_current_heads())


def newest_heads(
    database: Database, version_locations: Sequence[str]
) -> tuple[set[str], dict[str, set[str]]]:
    """The newest revision of every branch, and each revision's ancestors with itself (the
    version table keeps only leaves: a head another branch depends on is applied when it is
    among their ancestors)."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config(database, version_locations))
    ancestors = {
        revision.revision: {r.revision for r in script.iterate_revisions(revision.revision, "base")}
        for revision in script.walk_revisions()
    }
    return set(script.get_heads()), ancestors


def table_names(database: Database) -> list[str]:
    return sorted(inspect(database.engine).get_table_names())
