"""`qala users` gives staff a place and departments, checks the place exists, and lists both."""

from __future__ import annotations

from typing import Any

from typer.testing import CliRunner


def test_users_create_and_scope(sqlite_url: str, monkeypatch: Any) -> None:
    from qala.cli.main import app

    monkeypatch.setenv("QALA_DATABASE_URL", sqlite_url)
    runner = CliRunner()
    password = ["--password", "karaganda-roads-crew-2026"]
    scope = ["--place", "karaganda", "--departments", "roads_transport,akimat_kazybek_bi"]
    made = runner.invoke(
        app, ["users", "create", "roads1", "--role", "operator", *scope, *password]
    )
    assert made.exit_code == 0, made.output
    said = " ".join(made.output.split())  # the console wraps long lines
    assert "karaganda; departments roads_transport,akimat_kazybek_bi" in said
    unknown = runner.invoke(
        app, ["users", "create", "x1", "--role", "analyst", "--place", "atlantis", *password]
    )
    assert unknown.exit_code != 0 and "no place `atlantis`" in " ".join(unknown.output.split())
    national = runner.invoke(app, ["users", "scope", "roads1"])
    assert national.exit_code == 0 and "roads1: national" in national.output
    bad = runner.invoke(app, ["users", "scope", "roads1", "--departments", "roads transport"])
    assert bad.exit_code != 0 and "`departments`" in " ".join(bad.output.split())
    scoped = runner.invoke(app, ["users", "scope", "roads1", "--place", "temirtau"])
    assert scoped.exit_code == 0 and "roads1: temirtau" in scoped.output
    listed = runner.invoke(app, ["users", "list"])
    assert "temirtau" in listed.output
