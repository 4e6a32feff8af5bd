"""The six real elections in ../shared/data/pabulib: pabutools' outcomes and the official ones.

pabutools' outcomes were computed once with pabutools 1.2.3 (``expected_pabutools.py``); the
official outcome is each file's ``selected`` column, reproduced with the rule its META names.
"""

from __future__ import annotations

import pytest
from tests.conftest import shared_file
from tests.engines.pb.expected_pabutools import PABUTOOLS
from typer.testing import CliRunner

from qala.engines.pb import (
    Election,
    greedy,
    max_welfare,
    method_of_equal_shares,
    official_rule,
    parse_pabulib,
    sequential_phragmen,
    solve,
)

pytestmark = pytest.mark.shared

_CACHE: dict[str, Election] = {}


def election(name: str) -> Election:
    if name not in _CACHE:
        path = shared_file(f"pabulib/{name}")
        _CACHE[name] = parse_pabulib(path.read_text(encoding="utf-8-sig"), source=name)
    return _CACHE[name]


def run(name: str, spec: str) -> list[str]:
    rule, utility, scoring, completion = spec.split(":")
    e = election(name)
    kwargs = {"utility": utility, "scoring": scoring}
    if rule == "greedy":
        outcome = greedy(e.instance, e.profile, **kwargs)  # type: ignore[arg-type]
    elif rule == "mes":
        outcome = method_of_equal_shares(e.instance, e.profile, completion=completion, **kwargs)  # type: ignore[arg-type]
    elif rule == "phragmen":
        outcome = sequential_phragmen(e.instance, e.profile)
    else:
        outcome = max_welfare(e.instance, e.profile, **kwargs)  # type: ignore[arg-type]
    assert outcome.cost <= e.instance.budget_limit
    return sorted(outcome.selected)


CASES = [
    pytest.param(
        name,
        spec,
        marks=[pytest.mark.slow] if "Warszawa" in name and "add1" in spec else [],
        id=f"{name.split('_')[1]}-{spec}",
    )
    for name, specs in PABUTOOLS.items()
    for spec in specs
]


@pytest.mark.parametrize(("name", "spec"), CASES)
def test_reproduces_pabutools(name: str, spec: str) -> None:
    assert run(name, spec) == PABUTOOLS[name][spec]


OFFICIAL = [
    ("Netherlands_Assen_2024.pb", "mes[cost]+add1", 9),
    ("Poland_Krakow_2019_Bienczyce.pb", "greedy[cost]", 7),
    ("Poland_Swiecie_2023.pb", "mes[cost]+add1", 17),
    ("Poland_Warszawa_2020_Praga-Poludnie.pb", "greedy[cost]", 26),
    ("Poland_Wieliczka_2023_Green_Budget.pb", "mes[cost]+add1+comparison[satisfaction]", 30),
]


@pytest.mark.parametrize(("name", "rule", "count"), OFFICIAL)
def test_reproduces_the_official_outcome(name: str, rule: str, count: int) -> None:
    e = election(name)
    spec = official_rule(e.instance.meta)
    outcome = solve(
        e.instance, e.profile, spec.rule, completion=spec.completion, comparison=spec.comparison
    )
    official = {p.id for p in e.instance if p.meta["selected"] == "1"}
    assert outcome.rule == rule
    assert set(outcome.selected) == official
    assert len(official) == count


def test_wieliczka_needs_add1_that_keeps_raising() -> None:
    # SOURCE.md: the official result keeps raising shares while the outcome fits; stopping at
    # the first exhaustive outcome (pabutools' Add1) gives a different set.
    e = election("Poland_Wieliczka_2023_Green_Budget.pb")
    official = {p.id for p in e.instance if p.meta["selected"] == "1"}
    keep = method_of_equal_shares(e.instance, e.profile, completion="add1")
    first = method_of_equal_shares(e.instance, e.profile, completion="add1-exhaustive")
    assert set(keep.selected) == official
    assert set(first.selected) != official
    assert keep.details["add1_steps"] > first.details["add1_steps"]


def test_czestochowa_greedy_by_points() -> None:
    # Cumulative ballots: greedy by the points in the file's `score` column.
    e = election("Poland_Czestochowa_2020_Stare_Miasto.pb")
    outcome = greedy(e.instance, e.profile)
    scores = [int(e.instance.project(pid).meta["score"]) for pid in outcome.selected]
    assert scores == sorted(scores, reverse=True)
    assert outcome.selected == ["411", "276", "494", "460", "290", "437", "423"]


def test_krakow_positional_scores_match_the_score_column() -> None:
    # pabulib scoring 3-2-1 reproduces the `score` column of the ordinal file.
    from qala.engines.pb import build_supports

    e = election("Poland_Krakow_2019_Bienczyce.pb")
    supports = build_supports(e.instance, e.profile, utility="cardinality")
    for j, project in enumerate(e.instance):
        assert supports.total[j] == int(project.meta["score"])


def test_write_and_parse_real_file_round_trip() -> None:
    from qala.engines.pb import write_pabulib

    e = election("Poland_Wieliczka_2023_Green_Budget.pb")
    again = parse_pabulib(write_pabulib(e.instance, e.profile))
    assert again.profile.ballots == e.profile.ballots
    assert [dict(p.meta) for p in again.instance] == [dict(p.meta) for p in e.instance]


runner = CliRunner()


def test_cli_solve_json_and_check() -> None:
    from qala.cli.pb import app  # the `qala pb` sub-app (qala.cli.main mounts it as "pb")

    path = shared_file("pabulib/Netherlands_Assen_2024.pb")
    result = runner.invoke(
        app, ["solve", str(path), "--rule", "mes", "--completion", "add1", "--json"]
    )
    assert result.exit_code == 0, result.output
    import json

    data = json.loads(result.stdout)
    assert data == {"selected": ["3", "9", "11", "2", "13", "14", "5", "6", "12"], "cost": 76700}
    result = runner.invoke(app, ["solve", str(path), "--rule", "greedy"])
    # 2 and 11 both have 24 votes: "11" < "2" as strings, so 11 goes first.
    assert result.stdout.split() == ["3", "9", "8", "11", "2", "13", "14"]
    result = runner.invoke(app, ["check", str(path), "--json"])
    assert result.exit_code == 0 and json.loads(result.stdout)["match"] is True
    result = runner.invoke(
        app, ["check", str(shared_file("pabulib/Poland_Czestochowa_2020_Stare_Miasto.pb"))]
    )
    assert result.exit_code == 2


def test_add1_increment_reaches_solve_and_the_cli() -> None:
    import json

    from qala.cli.pb import app
    from qala.core.errors import SpecificationError
    from qala.engines.pb import method_of_equal_shares, solve

    name = "Netherlands_Assen_2024.pb"
    e = election(name)
    for step in (1, 500, 5000):
        direct = method_of_equal_shares(e.instance, e.profile, completion="add1", increment=step)
        via_solve = solve(e.instance, e.profile, "mes", completion="add1", increment=step)
        assert via_solve.selected == direct.selected
    coarse = solve(e.instance, e.profile, "mes", completion="add1", increment=5000)
    # Coarser steps stop raising shares sooner: here they fund fewer projects.
    assert coarse.selected != solve(e.instance, e.profile, "mes", completion="add1").selected
    result = runner.invoke(
        app,
        [
            "solve",
            str(shared_file(f"pabulib/{name}")),
            "--rule",
            "mes",
            "--completion",
            "add1",
            "--add1-increment",
            "5000",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["selected"] == list(coarse.selected)
    with pytest.raises(SpecificationError, match="apply to mes only"):
        solve(e.instance, e.profile, "greedy", increment=10)
    with pytest.raises(SpecificationError, match="must be positive"):
        solve(e.instance, e.profile, "mes", completion="add1", increment=0)
    bad = runner.invoke(
        app, ["solve", str(shared_file(f"pabulib/{name}")), "--add1-increment", "a lot"]
    )
    assert bad.exit_code == 2 and "--add1-increment" in bad.output
