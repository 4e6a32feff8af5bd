"""`qala budget …` on a store with a counted process."""

from __future__ import annotations

import json
from pathlib import Path

from tests.components.budgeting.conftest import Town, iin
from typer.testing import CliRunner

from qala.cli.budget import app


def test_cli_lists_counts_exports_and_writes_indicators(
    sqlite_town: Town, sqlite_url: str, tmp_path: Path
) -> None:
    town = sqlite_town
    town.voting_with([40_000_000, 30_000_000, 50_000_000], rule="greedy", eligible_voters=100)
    for k, choices in enumerate([["P01"], ["P01", "P02"], ["P03"]]):
        town.vote(iin(k), choices)
    town.to_results()
    runner = CliRunner()
    env = {"QALA_DATABASE_URL": sqlite_url}

    listed = runner.invoke(app, ["processes", "--json"], env=env)
    assert listed.exit_code == 0, listed.output
    assert [(p["code"], p["phase"], p["ballots_cast"]) for p in json.loads(listed.output)] == [
        ("astana-2026", "results", 3)
    ]
    results = runner.invoke(app, ["results", "astana-2026", "--json"], env=env)
    # P01 has 2 votes; P02 and P03 one each, the tie goes to the smaller id: P02 (30M) fits in
    # the 60M left, then P03 (50M) no longer does.
    assert json.loads(results.output)["selected"] == ["P01", "P02"]
    table = runner.invoke(app, ["results", "astana-2026"], env=env)
    assert table.exit_code == 0 and "greedy" in table.output
    path = tmp_path / "out.pb"
    assert runner.invoke(app, ["export", "astana-2026", "-o", str(path)], env=env).exit_code == 0
    assert path.read_text(encoding="utf-8").startswith("META")
    early = runner.invoke(app, ["advance", "astana-2026", "closed"], env=env)
    assert early.exit_code == 2 and "can only move to `implementation`" in flat(early.output)
    indicators = runner.invoke(app, ["indicators", "--write", "--json"], env=env)
    assert indicators.exit_code == 0, indicators.output
    data = json.loads(indicators.output)
    assert data["rows_written"] == 2  # turnout and proposals per 1,000 (no capital budget)
    turnout = next(r for r in data["rows"] if r["indicator"] == "kz_sc.pb.turnout")
    assert turnout["value"] == 3.0  # 3 of 100 eligible
    missing = runner.invoke(app, ["process", "nowhere"], env=env)
    assert missing.exit_code == 2
    assert "no participatory budgeting process `nowhere`" in flat(missing.output)


def flat(text: str) -> str:
    """Rich wraps long messages; compare them on one line."""
    return " ".join(text.split())
