"""The count: a process's results equal the engine's outcome on the same ballots (through the
store, through the pabulib export and through `qala pb solve`), and a small case by hand."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from tests.components.budgeting.conftest import Town, iin
from typer.testing import CliRunner

from qala.components.budgeting.ballots import add1_increment, export_pabulib, get_results
from qala.core.errors import ConflictError, NotFoundError
from qala.engines.pb import (
    approval_profile,
    cumulative_profile,
    make_instance,
    method_of_equal_shares,
    ordinal_profile,
    parse_pabulib,
    solve,
)

HAND_COSTS = [60_000_000, 50_000_000, 30_000_000, 20_000_000]


def test_greedy_by_votes_by_hand(town: Town) -> None:
    town.voting_with(HAND_COSTS, rule="greedy")
    # Votes: P01 4, P02 3, P03 2, P04 1.
    ballots = [["P01", "P02"], ["P01", "P02"], ["P01", "P03"], ["P01", "P02", "P03"], ["P04"]]
    for k, choices in enumerate(ballots):
        town.vote(iin(k), choices)
    town.to_results()
    with town.context.database.session() as session:
        results = get_results(session, town.code)
    # P01 (60M) fits; P02 (50M) does not fit in the 40M left; P03 (30M) does; P04 (20M) not in 10M.
    assert results.selected == ["P01", "P03"]
    assert results.cost == 90_000_000 and results.ballots == 5
    votes = {row.code: row.votes for row in results.projects}
    assert votes == {"P01": 4, "P02": 3, "P03": 2, "P04": 1}
    reasons = {row.code: row.reason for row in results.projects}
    assert "selected" in reasons["P01"] and "selected" not in reasons["P02"].split(":")[0]


def random_ballots(seed: int, voters: int, codes: list[str], most: int) -> list[list[str]]:
    rng = np.random.default_rng(seed)
    weights = rng.uniform(0.2, 3.0, len(codes))
    out = []
    for _ in range(voters):
        size = int(rng.integers(1, most + 1))
        picked = rng.choice(len(codes), size=size, replace=False, p=weights / weights.sum())
        out.append([codes[int(j)] for j in picked])
    return out


COSTS = [18_000_000, 42_000_000, 25_000_000, 9_000_000, 31_000_000, 12_000_000, 27_000_000]


@pytest.mark.parametrize(
    ("rule", "completion"),
    [
        ("greedy", "none"),
        ("mes", "none"),
        ("mes", "add1"),
        ("mes", "add1-exhaustive"),
        ("mes", "greedy"),
        ("phragmen", "none"),
        ("max-welfare", "none"),
    ],
)
def test_approval_results_equal_the_engine(sqlite_town: Town, rule: str, completion: str) -> None:
    town = sqlite_town
    codes = town.voting_with(COSTS, rule=rule, completion=completion, max_choices=3)
    ballots = random_ballots(7, 60, codes, 3)
    for k, choices in enumerate(ballots):
        town.vote(iin(k), choices)
    town.to_results()
    with town.context.database.session() as session:
        stored = get_results(session, town.code)
        exported = export_pabulib(session, town.code)
    # The engine on data built here, independently of the store (voters in casting order).
    instance = make_instance(dict(zip(codes, COSTS, strict=True)), 100_000_000)
    profile = approval_profile(ballots, max_length=3)
    if rule == "mes":
        expected = method_of_equal_shares(
            instance,
            profile,
            completion=completion,  # type: ignore[arg-type]
            increment=add1_increment(100_000_000, len(ballots)),
        )
    else:
        expected = solve(instance, profile, rule)
    assert stored.selected == expected.selected
    assert stored.cost == expected.cost
    # ... and on the exported pabulib file.
    election = parse_pabulib(exported)
    assert election.instance.meta["rule"] == (
        rule
        if rule != "mes"
        else ("equalshares" if completion == "none" else f"equalshares/{completion}")
    )
    if rule == "mes":
        again = method_of_equal_shares(
            election.instance,
            election.profile,
            completion=completion,  # type: ignore[arg-type]
            increment=int(election.instance.meta.get("add1_increment", "1")),
        )
    else:
        again = solve(election.instance, election.profile, rule)
    assert again.selected == stored.selected
    assert [p.meta["selected"] for p in election.instance] == [
        "1" if p.id in stored.selected else "0" for p in election.instance
    ]


@pytest.mark.parametrize("rule", ["greedy", "mes"])
def test_cumulative_and_ordinal_results_equal_the_engine(sqlite_town: Town, rule: str) -> None:
    town = sqlite_town
    codes = town.voting_with(
        COSTS,
        rule=rule,
        completion="greedy" if rule == "mes" else "add1",
        ballot_kind="cumulative",
        points_total=10,
        max_choices=None,
    )
    rng = np.random.default_rng(3)
    ballots = []
    for k in range(40):
        chosen = rng.choice(len(codes), size=int(rng.integers(1, 4)), replace=False)
        points = rng.multinomial(10 - len(chosen), np.ones(len(chosen)) / len(chosen)) + 1
        ballot = {codes[int(j)]: int(p) for j, p in zip(chosen, points, strict=True)}
        ballots.append(ballot)
        town.vote(iin(k), ballot)
    town.to_results()
    with town.context.database.session() as session:
        stored = get_results(session, town.code)
    instance = make_instance(dict(zip(codes, COSTS, strict=True)), 100_000_000)
    profile = cumulative_profile(ballots, max_sum_points=10)
    kwargs = {"completion": "greedy"} if rule == "mes" else {}
    expected = solve(instance, profile, rule, **kwargs)  # type: ignore[arg-type]
    assert (stored.selected, stored.cost) == (expected.selected, expected.cost)


def test_ordinal_results_equal_the_engine(sqlite_town: Town) -> None:
    town = sqlite_town
    codes = town.voting_with(COSTS, rule="greedy", ballot_kind="ordinal", max_choices=3)
    rankings = random_ballots(11, 50, codes, 3)
    for k, ranking in enumerate(rankings):
        town.vote(iin(k), ranking)
    town.to_results()
    with town.context.database.session() as session:
        stored = get_results(session, town.code)
    expected = solve(
        make_instance(dict(zip(codes, COSTS, strict=True)), 100_000_000),
        ordinal_profile(rankings, max_length=3),
        "greedy",
    )
    assert stored.selected == expected.selected
    assert Fraction(stored.cost) == expected.cost


def test_export_waits_for_voting_to_close_and_qala_pb_solves_it(
    sqlite_town: Town, tmp_path: Path
) -> None:
    from qala.cli.pb import app as pb_app

    town = sqlite_town
    codes = town.voting_with(COSTS, rule="greedy")
    with town.context.database.session() as session:
        with pytest.raises(ConflictError, match="published once voting has closed"):
            export_pabulib(session, town.code)
        with pytest.raises(NotFoundError, match="no results yet"):
            get_results(session, town.code)
    for k, choices in enumerate(random_ballots(5, 30, codes, 3)):
        town.vote(iin(k), choices)
    town.to_results()
    with town.context.database.session() as session:
        path = tmp_path / "astana.pb"
        path.write_text(export_pabulib(session, town.code), encoding="utf-8")
        stored = get_results(session, town.code)
    run = CliRunner().invoke(pb_app, ["solve", str(path), "--rule", "greedy", "--json"])
    assert run.exit_code == 0, run.output
    assert json.loads(run.output) == {"selected": stored.selected, "cost": stored.cost}


def test_the_add1_step_is_one_tenge_for_small_shares() -> None:
    assert add1_increment(8_000_000, 14_897) == 1  # a Warsaw-sized vote in tenge: 537 per voter
    assert add1_increment(150_000_000, 150) == 1000  # 1,000,000 per voter: 0.1 %
    assert add1_increment(100, 0) == 1
