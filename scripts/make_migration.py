"""Write a new Alembic revision for one component from the difference between its models and the
schema that the existing revisions build.

    python scripts/make_migration.py catalog "add import batches"
"""

from __future__ import annotations

import contextlib
import importlib
import sys
import tempfile
from pathlib import Path

from alembic import command

from qala.registry import COMPONENTS, migration_locations
from qala.store.base import Base
from qala.store.database import Database
from qala.store.migrate import alembic_config, upgrade


def main(component_name: str, message: str) -> None:
    spec = next(c for c in COMPONENTS if c.name == component_name)
    for component in COMPONENTS:  # every model must be known for the comparison
        with contextlib.suppress(ModuleNotFoundError):
            importlib.import_module(f"qala.components.{component.name}.models")
    assert spec.migrations is not None, f"{component_name} declares no migrations folder"
    tables = {
        mapper.local_table.name
        for mapper in Base.registry.mappers
        if mapper.class_.__module__.startswith(f"qala.components.{component_name}.")
    }

    def include_object(obj, name, type_, reflected, compare_to):  # type: ignore[no-untyped-def]
        table = obj if type_ == "table" else getattr(obj, "table", None)
        return table is None or table.name in tables

    with tempfile.TemporaryDirectory() as folder:
        database = Database(f"sqlite:///{Path(folder) / 'schema.sqlite'}")
        upgrade(database, migration_locations())
        config = alembic_config(database, migration_locations())
        config.attributes["include_object"] = include_object
        existing = list(spec.migrations.glob("*.py"))
        head = f"{component_name}@head" if existing else "base"
        command.revision(
            config,
            message=message,
            autogenerate=True,
            head=head,
            branch_label=None if existing else component_name,
            version_path=str(spec.migrations),
            rev_id=f"{component_name}_{len(existing) + 1:04d}",
        )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
