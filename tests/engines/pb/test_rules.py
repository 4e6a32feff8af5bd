"""Rules on small elections computed by hand.

The running example: budget 30, three voters (so MES gives each 10).
Projects: x costs 20 and is approved by voters 1 and 2; z costs 15, approved by 1 and 2; y costs 10,
approved by voter 3.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from qala.core.errors import SpecificationError
from qala.engines.pb import (
    RuleSpec,
    approval_profile,
    cumulative_profile,
    greedy,
    make_instance,
    max_welfare,
    method_of_equal_shares,
    official_rule,
    ordinal_profile,
    sequential_phragmen,
    solve,
)
from qala.engines.pb.mes import _price, _price_uniform

INSTANCE = make_instance({"x": 20, "y": 10, "z": 15}, 30)
PROFILE = approval_profile([["x", "z"], ["x", "z"], ["y"]])


def test_greedy_by_votes_skips_what_no_longer_fits() -> None:
    # Votes: x 2, z 2, y 1. x first (tie with z broken by id), z no longer fits (35 > 30), y fits.
    outcome = greedy(INSTANCE, PROFILE)
    assert outcome.selected == ["x", "y"]
    assert outcome.cost == 30
    z = outcome.explanations["z"]
    assert not z.selected
    assert z.reason.startswith("could not afford: costs 15.00 but only 10.00 was left")


def test_greedy_value_for_money_with_cardinality_utilities() -> None:
    # Votes per unit of cost: y 0.1, x 0.1, z 0.1333 -> z, then x (0.1; 'x' < 'y') does not fit, y.
    assert greedy(INSTANCE, PROFILE, utility="cardinality").selected == ["z", "y"]


def test_mes_cost_utilities_by_hand() -> None:
    # Round 1: rho(x) = 20 / (2 * 20) = 1/2, rho(z) = 15 / (2 * 15) = 1/2, rho(y) = 10 / 10 = 1.
    # Tie x/z broken by id: x; voters 1, 2 pay 10 each and are empty. Round 2: z has no money
    # behind it; y is bought by voter 3 at rho 1.
    outcome = method_of_equal_shares(INSTANCE, PROFILE)
    assert outcome.selected == ["x", "y"]
    assert [r.value for r in outcome.rounds] == [0.5, 1.0]
    x = outcome.explanations["x"]
    assert x.round == 1 and x.numbers["effective_vote_count"] == 2.0
    assert x.numbers["full_payers"] == 2 and x.numbers["money_left"] == 10.0
    assert x.payments == {"1": 10.0, "2": 10.0}
    assert outcome.explanations["y"].payments == {"3": 10.0}
    # Voters 1 and 2 hold exactly x's cost: floats cannot tell "exactly enough" from "just short",
    # so that run was redone in fractions.
    assert outcome.details["exact_reruns"] == 1
    assert "payments" in outcome.as_dict(explain=True, payments=True)["explanations"][0]  # type: ignore[index]
    z = outcome.explanations["z"]
    assert not z.selected and z.round == 2
    assert "its 2 supporters held 0.00 together, less than its cost 15.00" in z.reason


def test_mes_cardinality_utilities_by_hand() -> None:
    # Round 1: rho(x) = 20 / 2 = 10, rho(z) = 15 / 2 = 7.5, rho(y) = 10 -> z; voters 1, 2 keep 2.5.
    # Round 2: x has 5 < 20 behind it; y at rho 10.
    outcome = method_of_equal_shares(INSTANCE, PROFILE, utility="cardinality")
    assert outcome.selected == ["z", "y"]
    assert [r.value for r in outcome.rounds] == [7.5, 10.0]


def test_mes_exact_arithmetic_agrees() -> None:
    for utility in ("cost", "cardinality"):
        fast = method_of_equal_shares(INSTANCE, PROFILE, utility=utility)  # type: ignore[arg-type]
        exact = method_of_equal_shares(INSTANCE, PROFILE, utility=utility, arithmetic="exact")  # type: ignore[arg-type]
        assert fast.selected == exact.selected


def test_price_with_a_poor_supporter() -> None:
    # Budgets 2, 10, 10 for a project costing 18 (utility 1): the poor voter gives 2, the others
    # 8 each (2 + 8 + 8 = 18), so rho = 8.
    budgets = np.array([10.0, 2.0, 10.0])
    assert _price(budgets, np.ones(3), 18.0) == pytest.approx(8.0)
    assert _price_uniform(budgets, 1.0, 18.0) == pytest.approx(8.0)
    # Utilities 1, 1, 2: rich voters pay rho * u; 2 + rho + 2 rho = 18 -> rho = 16/3,
    # but then the utility-2 voter (budget 10) cannot pay 32/3: 2 + 10 + rho = 18 -> rho = 6.
    assert _price(np.array([2.0, 10.0, 10.0]), np.array([1.0, 1.0, 2.0]), 18.0) == pytest.approx(
        6.0
    )


def test_phragmen_by_hand() -> None:
    # Loads: z reaches (0 + 15) / 2 = 7.5 first; then y at 10; then x would need (15 + 20) / 2
    # = 17.5 but costs 20 > 5 left, so the rule stops.
    outcome = sequential_phragmen(INSTANCE, PROFILE)
    assert outcome.selected == ["z", "y"]
    assert [r.value for r in outcome.rounds] == [7.5, 10.0]
    assert "rule stopped" in outcome.explanations["x"].reason


def test_max_welfare_by_hand() -> None:
    # Cost utilities: welfare x 40, z 30, y 10; best feasible {x, y} = 50 (cost 30).
    outcome = max_welfare(INSTANCE, PROFILE)
    assert sorted(outcome.selected) == ["x", "y"]
    assert outcome.details["welfare"] == 50
    # Cardinality: {x, y} and {z, y} both give 3; {x, z} does not fit.
    assert max_welfare(INSTANCE, PROFILE, utility="cardinality").details["welfare"] == 3


def test_max_welfare_branch_and_bound_matches_dynamic_programming() -> None:
    from qala.engines.pb import welfare

    rng = np.random.default_rng(5)
    for _ in range(30):
        n = int(rng.integers(1, 12))
        weights = [int(w) for w in rng.integers(1, 50, n)]
        profits = [int(p) for p in rng.integers(0, 80, n)]
        capacity = int(rng.integers(0, 150))
        by_dp = welfare._knapsack_dp(weights, profits, capacity)
        by_bnb = welfare._knapsack_bnb(weights, profits, capacity)
        assert sum(weights[k] for k in by_bnb) <= capacity
        assert sum(profits[k] for k in by_dp) == sum(profits[k] for k in by_bnb)


def test_ties_follow_string_order_of_ids() -> None:
    # "10" < "9" as strings (pabutools compares names), so "10" wins the tie.
    instance = make_instance({"9": 5, "10": 5}, 5)
    profile = approval_profile([["9", "10"]])
    for rule in ("greedy", "mes", "phragmen"):
        assert solve(instance, profile, rule).selected == ["10"]
    assert solve(instance, profile, "greedy", tie_breaking=["9"]).selected == ["9"]


def test_cumulative_greedy_orders_by_points() -> None:
    instance = make_instance({"a": 50, "b": 50, "c": 40}, 100)
    profile = cumulative_profile([{"a": 7, "b": 3}, {"b": 5, "c": 5}, {"c": 6, "a": 1}])
    # Points: a 8, b 8, c 11 -> c (40), a (90), b no longer fits.
    assert greedy(instance, profile).selected == ["c", "a"]


def test_ordinal_scores_pabulib_and_borda() -> None:
    instance = make_instance({"a": 10, "b": 10, "c": 10}, 10)
    rankings = [["a", "b", "c"], ["b", "c", "a"], ["c", "b", "a"]]
    profile = ordinal_profile(rankings, max_length=3)
    # pabulib 3-2-1: a 3+1+1=5, b 2+3+2=7, c 1+2+3=6 -> b.
    assert greedy(instance, profile).selected == ["b"]
    # Borda 2-1-0: a 2+0+0=2, b 1+2+1=4, c 0+1+2=3 -> b.
    assert greedy(instance, profile, scoring="borda").selected == ["b"]


def test_add1_variants_on_a_small_election() -> None:
    # Budget 10, two voters with 5 each; a (cost 6) approved by both, b (cost 4) by voter 1.
    # MES: a at rho 1/2 (each pays 3); b: voter 1 has 2 < 4. Not exhaustive (4 left, b fits).
    # Add1: shares 6 -> a (3 each), b needs 4 but voter 1 has 3; shares 7 -> a, then b (voter
    # 1 has 4): cost 10, exhaustive.
    instance = make_instance({"a": 6, "b": 4}, 10)
    profile = approval_profile([["a", "b"], ["a"]])
    assert method_of_equal_shares(instance, profile).selected == ["a"]
    for completion in ("add1", "add1-exhaustive"):
        outcome = method_of_equal_shares(instance, profile, completion=completion)  # type: ignore[arg-type]
        assert outcome.selected == ["a", "b"]
        assert outcome.details["budget_per_voter"] == Fraction(7)
        assert outcome.details["add1_steps"] == 3


def test_rule_errors_are_clear() -> None:
    with pytest.raises(SpecificationError, match="unknown rule 'borda'"):
        solve(INSTANCE, PROFILE, "borda")
    with pytest.raises(SpecificationError, match="needs approval ballots"):
        sequential_phragmen(INSTANCE, ordinal_profile([["x"]]))
    with pytest.raises(SpecificationError, match="`completion` must be one of"):
        method_of_equal_shares(INSTANCE, PROFILE, completion="add2")  # type: ignore[arg-type]
    with pytest.raises(SpecificationError, match="tie_breaking"):
        greedy(INSTANCE, PROFILE, tie_breaking="random")


def test_official_rule_names() -> None:
    assert official_rule({"rule": "greedy"}) == RuleSpec("greedy")
    assert official_rule({"rule": "equalshares"}) == RuleSpec("mes")
    assert official_rule({"rule": "equalshares/add1"}) == RuleSpec("mes", completion="add1")
    assert official_rule({"rule": "equalshares/add1-comparison"}) == RuleSpec(
        "mes", completion="add1", comparison="satisfaction"
    )
    with pytest.raises(SpecificationError, match="not one Qala knows"):
        official_rule({"rule": "borda"})


def test_comparison_step_with_greedy() -> None:
    # Budget 10, four voters (2.5 each). A (6) and C (4) approved by voters 1-3, B (4) by voter 4.
    # Greedy: A, then C (3 votes each) = 10. MES: A at rho 1/3 (2 each), then nothing is
    # affordable. Voters 1-3 approve 2 greedy winners but 1 MES winner, so greedy wins 3 to 0 on
    # satisfaction; on exclusion nobody prefers either (all of 1-3 have a winner in both).
    instance = make_instance({"A": 6, "B": 4, "C": 4}, 10)
    profile = approval_profile([["A", "C"], ["A", "C"], ["A", "C"], ["B"]])
    assert method_of_equal_shares(instance, profile).selected == ["A"]
    by_satisfaction = method_of_equal_shares(instance, profile, comparison="satisfaction")
    assert by_satisfaction.selected == ["A", "C"]
    assert by_satisfaction.details["prefers_greedy"] == 3
    assert by_satisfaction.details["prefers_mes"] == 0
    assert by_satisfaction.explanations["C"].selected
    by_exclusion = method_of_equal_shares(instance, profile, comparison="exclusion")
    assert by_exclusion.selected == ["A"]
    assert by_exclusion.details["prefers_greedy"] == by_exclusion.details["prefers_mes"] == 0
