"""The migrations build exactly the schema the models declare, on both stores.

A model changed without a migration (or a migration that drifts from its model) would pass every
test that builds tables from the migrations yet break a production upgrade; this compares the two.
"""

from __future__ import annotations

import importlib

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

from qala.registry import COMPONENTS
from qala.store.base import Base


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
    # Alembic's own bookkeeping tables are not models.
    differences = [
        d
        for d in differences
        if not (d[0] == "remove_table" and d[1].name.startswith("alembic_version"))
    ]
    assert differences == [], "models and migrations disagree:\n" + "\n".join(map(str, differences))
