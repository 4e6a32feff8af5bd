"""The CLI's store: migrated and seeded when behind the newest schema, used as it is when current."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import select, update
from typer.testing import CliRunner

from qala.cli.main import app
from qala.components.catalog.models import Place
from qala.runtime import Context
from qala.settings import Settings

runner = CliRunner()


def place_names(url: str) -> dict[str, str]:
    result = runner.invoke(app, ["places", "list", "--json"], env={"QALA_DATABASE_URL": url})
    assert result.exit_code == 0, result.output
    return {row["code"]: row["name"]["en"] for row in json.loads(result.output)}


def test_an_empty_store_is_migrated_and_seeded_first(tmp_path: Path) -> None:
    names = place_names(f"sqlite:///{tmp_path / 'new.sqlite'}")
    assert len(names) > 20


def test_a_current_store_is_used_as_it_is_until_db_upgrade(database_url: str) -> None:
    context = Context.from_settings(Settings(database_url=database_url))
    code = next(iter(place_names(database_url)))
    with context.database.transaction() as session:
        original = session.scalars(select(Place.name_en).where(Place.code == code)).one()
        session.execute(update(Place).where(Place.code == code).values(name_en="Renamed"))
    context.database.dispose()

    assert place_names(database_url)[code] == "Renamed"  # no re-seeding on every command
    upgrade = runner.invoke(app, ["db", "upgrade"], env={"QALA_DATABASE_URL": database_url})
    assert upgrade.exit_code == 0, upgrade.output
    assert place_names(database_url)[code] == original  # `qala db upgrade` refreshes
