"""Every `qala` sub-command loads on demand, and what the root stores about them stays true."""

from __future__ import annotations

import json

import pytest
from typer import _click as click
from typer.core import TyperGroup
from typer.main import get_command
from typer.testing import CliRunner

from qala.cli.main import SUBCOMMANDS, app, load_subcommand

runner = CliRunner()
root = get_command(app)


def all_command_paths() -> list[list[str]]:
    """Every command and group under `qala`, as the words typed after it."""
    paths: list[list[str]] = []

    def walk(command: click.Command, path: list[str]) -> None:
        paths.append(path)
        if isinstance(command, TyperGroup):
            context = click.Context(command, info_name=path[-1] if path else "qala")
            for name in command.list_commands(context):
                sub = command.get_command(context, name)
                assert sub is not None, f"qala {' '.join([*path, name])} does not load"
                walk(sub, [*path, name])

    walk(root, [])
    return paths


COMMAND_PATHS = all_command_paths()


def root_command(path: list[str]) -> click.Command:
    command: click.Command = root
    for name in path:
        assert isinstance(command, TyperGroup)
        found = command.get_command(click.Context(command), name)
        assert found is not None
        command = found
    return command


def _declared_commands() -> int:
    """How many commands the CLI modules declare (``@app.command(...)`` and the like), read from
    their source, so the walk is checked against something it did not produce itself."""
    import ast
    from pathlib import Path

    import qala.cli

    # A sub-command that is a single function (`qala serve`) is declared by the root's table.
    count = sum(1 for s in SUBCOMMANDS if not isinstance(load_subcommand(s), TyperGroup))
    for path in Path(qala.cli.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef):
                count += sum(
                    isinstance(d, ast.Call)
                    and isinstance(d.func, ast.Attribute)
                    and d.func.attr == "command"
                    for d in node.decorator_list
                )
    return count


def test_the_walk_reaches_every_command() -> None:
    leaves = [p for p in COMMAND_PATHS if not isinstance(root_command(p), TyperGroup)]
    assert len(leaves) == _declared_commands()
    assert [path[0] for path in COMMAND_PATHS if len(path) == 1] == [s.name for s in SUBCOMMANDS]


@pytest.mark.parametrize("path", COMMAND_PATHS, ids=" ".join)
def test_help_works(path: list[str]) -> None:
    result = runner.invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output


@pytest.mark.parametrize("subcommand", SUBCOMMANDS, ids=lambda s: s.name)
def test_stored_help_is_the_sub_apps_own(subcommand: object) -> None:
    command = load_subcommand(subcommand)  # type: ignore[arg-type]
    assert subcommand.help == (command.short_help or command.help)  # type: ignore[attr-defined]


def test_root_help_lists_every_sub_command_with_its_help() -> None:
    result = runner.invoke(app, ["--help"], terminal_width=400)
    assert result.exit_code == 0, result.output
    for subcommand in SUBCOMMANDS:
        assert subcommand.name in result.output
        assert subcommand.help.split(" — ")[0][:40] in result.output


def test_a_mistyped_sub_command_gets_a_suggestion() -> None:
    result = runner.invoke(app, ["plces"])
    assert result.exit_code == 2
    assert "Did you mean 'places'?" in result.output


def test_sub_commands_run_through_the_lazy_root() -> None:
    result = runner.invoke(
        app, ["catalog", "show", "kz_sc.requests.median_hours_to_close", "--json"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["id"] == "kz_sc.requests.median_hours_to_close"


def test_help_constants_equal_what_they_stand_for() -> None:
    """Written in the CLI so that help does not import the engine or the component."""
    from qala.cli import assess, pb
    from qala.components.assessment import services
    from qala.engines import pb as engine

    assert pb.RULES == engine.RULES
    assert pb.COMPLETIONS == engine.COMPLETIONS
    assert assess.DEFAULT_BUDGET == services.DEFAULT_BUDGET
