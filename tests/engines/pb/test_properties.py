"""Invariants every rule must keep, on generated elections (no oracle needed)."""

from __future__ import annotations

import itertools
from fractions import Fraction

from hypothesis import given, settings, strategies as st

from qala.engines.pb import (
    Instance,
    Outcome,
    Profile,
    approval_profile,
    build_supports,
    greedy,
    make_instance,
    max_welfare,
    method_of_equal_shares,
    sequential_phragmen,
)

IDS = [f"p{k}" for k in range(8)]


@st.composite
def elections(draw: st.DrawFn) -> tuple[Instance, Profile]:
    m = draw(st.integers(1, 8))
    ids = IDS[:m]
    costs = {pid: draw(st.integers(0, 50)) for pid in ids}
    budget = draw(st.integers(0, max(1, sum(costs.values()))))
    ballots = [
        draw(st.lists(st.sampled_from(ids), unique=True, max_size=m))
        for _ in range(draw(st.integers(0, 9)))
    ]
    return make_instance(costs, budget), approval_profile(ballots)


def well_formed(instance: Instance, outcome: Outcome) -> None:
    assert outcome.cost <= instance.budget_limit
    assert len(set(outcome.selected)) == len(outcome.selected)
    assert outcome.cost == instance.total_cost(outcome.selected)
    assert list(outcome.explanations) == [p.id for p in instance]
    for pid, explanation in outcome.explanations.items():
        assert explanation.selected == (pid in outcome.selected)
        assert explanation.reason


def exhaustive(instance: Instance, outcome: Outcome) -> bool:
    return instance.is_exhaustive(outcome.selected)


@settings(max_examples=150, deadline=None)
@given(elections())
def test_every_rule_stays_within_budget_and_explains(election: tuple[Instance, Profile]) -> None:
    instance, profile = election
    outcomes = [
        greedy(instance, profile),
        greedy(instance, profile, utility="cardinality"),
        sequential_phragmen(instance, profile),
        max_welfare(instance, profile),
        *(
            method_of_equal_shares(instance, profile, completion=c)
            for c in ("none", "greedy", "add1", "add1-exhaustive", "add1-greedy")
        ),
    ]
    for outcome in outcomes:
        well_formed(instance, outcome)


@settings(max_examples=150, deadline=None)
@given(elections())
def test_greedy_and_completed_mes_are_exhaustive(election: tuple[Instance, Profile]) -> None:
    instance, profile = election
    assert exhaustive(instance, greedy(instance, profile))
    assert exhaustive(instance, method_of_equal_shares(instance, profile, completion="greedy"))
    assert exhaustive(
        instance, method_of_equal_shares(instance, profile, completion="add1-exhaustive-greedy")
    )


@settings(max_examples=150, deadline=None)
@given(elections(), st.sampled_from(["cost", "cardinality"]))
def test_mes_prices_never_fall_and_float_equals_exact(
    election: tuple[Instance, Profile], utility: str
) -> None:
    instance, profile = election
    fast = method_of_equal_shares(instance, profile, utility=utility)  # type: ignore[arg-type]
    exact = method_of_equal_shares(instance, profile, utility=utility, arithmetic="exact")  # type: ignore[arg-type]
    assert fast.selected == exact.selected
    prices = [r.value for r in fast.rounds]
    assert all(a <= b * (1 + 1e-9) for a, b in itertools.pairwise(prices))
    # MES never spends more than the voters hold: each selected project is paid by supporters.
    supports = build_supports(instance, profile, utility=utility)  # type: ignore[arg-type]
    assert all(
        supports.total[instance.index(pid)] > 0 or instance.project(pid).cost == 0
        for pid in fast.selected
    )


@settings(max_examples=100, deadline=None)
@given(elections())
def test_add1_stops_where_it_should(election: tuple[Instance, Profile]) -> None:
    instance, profile = election
    if len(profile) == 0:
        return
    supports = build_supports(instance, profile)
    supported = [p.id for j, p in enumerate(instance) if supports.total[j] > 0 and p.cost > 0]

    def plain_mes_with_share(share: Fraction) -> Outcome:
        # MES on a budget of n * share gives every voter exactly `share`.
        bigger = Instance(instance.projects, share * len(profile), instance.meta)
        return method_of_equal_shares(bigger, profile)

    first = method_of_equal_shares(instance, profile, completion="add1-exhaustive")
    share = first.details["budget_per_voter"]
    assert isinstance(share, Fraction)
    assert set(plain_mes_with_share(share).selected) == set(first.selected)
    if not instance.is_exhaustive(first.selected, available=supported):
        # It stopped because one more unit per voter overspends.
        assert plain_mes_with_share(share + 1).cost > instance.budget_limit
    keep = method_of_equal_shares(instance, profile, completion="add1")
    share = keep.details["budget_per_voter"]
    assert isinstance(share, Fraction)
    if set(keep.selected) != set(supported):
        assert plain_mes_with_share(share + 1).cost > instance.budget_limit
    assert keep.details["add1_steps"] >= first.details["add1_steps"]  # type: ignore[operator]


@settings(max_examples=100, deadline=None)
@given(elections(), st.sampled_from(["cost", "cardinality"]))
def test_max_welfare_beats_the_other_rules(
    election: tuple[Instance, Profile], utility: str
) -> None:
    instance, profile = election
    supports = build_supports(instance, profile, utility=utility)  # type: ignore[arg-type]

    def welfare(outcome: Outcome) -> object:
        return sum(supports.total[instance.index(pid)] for pid in outcome.selected)

    best = max_welfare(instance, profile, utility=utility, supports=supports)  # type: ignore[arg-type]
    assert best.details["welfare"] == welfare(best)
    for other in (
        greedy(instance, profile, utility=utility),  # type: ignore[arg-type]
        method_of_equal_shares(instance, profile, utility=utility, completion="greedy"),  # type: ignore[arg-type]
        sequential_phragmen(instance, profile),
    ):
        assert welfare(other) <= best.details["welfare"]  # type: ignore[operator]


@settings(max_examples=100, deadline=None)
@given(elections())
def test_phragmen_loads_never_fall(election: tuple[Instance, Profile]) -> None:
    instance, profile = election
    loads = [r.value for r in sequential_phragmen(instance, profile).rounds]
    assert all(a <= b for a, b in itertools.pairwise(loads))
