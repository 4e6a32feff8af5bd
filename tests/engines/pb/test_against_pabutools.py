"""Generated elections: every rule must select what pabutools selects (skipped without pabutools,
failed under CI).

Small integers make exact ties frequent, which exercises the tie-breaking and the float tolerance.
"""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from tests.conftest import require_module
from tests.engines.pb.oracle import oracle, welfare

from qala.engines.pb import (
    BallotKind,
    Instance,
    Profile,
    approval_profile,
    cumulative_profile,
    greedy,
    make_instance,
    max_welfare,
    method_of_equal_shares,
    ordinal_profile,
    sequential_phragmen,
)


@pytest.fixture(scope="module", autouse=True)
def _need_pabutools() -> None:
    require_module("pabutools", "the `peers` extra (pabutools, GPL test oracle) is not installed")


IDS = ["p1", "p2", "p3", "p10", "p4", "p5"]


@st.composite
def elections(draw: st.DrawFn, kind: BallotKind = BallotKind.APPROVAL) -> tuple[Instance, Profile]:
    m = draw(st.integers(1, 6))
    ids = IDS[:m]
    costs = {pid: draw(st.integers(1, 12)) for pid in ids}
    budget = draw(st.integers(1, max(2, sum(costs.values()))))
    n = draw(st.integers(1, 7))
    instance = make_instance(costs, budget)
    if kind is BallotKind.APPROVAL:
        ballots = [draw(st.lists(st.sampled_from(ids), unique=True, max_size=m)) for _ in range(n)]
        return instance, approval_profile(ballots)
    if kind is BallotKind.CUMULATIVE:
        dicts = []
        for _ in range(n):
            chosen = draw(st.lists(st.sampled_from(ids), unique=True, min_size=1, max_size=m))
            dicts.append({pid: draw(st.integers(1, 4)) for pid in chosen})
        return instance, cumulative_profile(dicts)
    rankings = [
        draw(st.permutations(ids).map(lambda r, k=draw(st.integers(1, m)): r[:k])) for _ in range(n)
    ]
    return instance, ordinal_profile(rankings, max_length=m)


SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(elections(), st.sampled_from(["cost", "cardinality"]))
def test_greedy_and_mes_approval(election: tuple[Instance, Profile], utility: str) -> None:
    instance, profile = election
    assert sorted(greedy(instance, profile, utility=utility).selected) == oracle(  # type: ignore[arg-type]
        "greedy", instance, profile, utility=utility
    )
    for completion in ("none", "greedy"):
        ours = method_of_equal_shares(instance, profile, utility=utility, completion=completion)  # type: ignore[arg-type]
        assert sorted(ours.selected) == oracle(
            "mes", instance, profile, utility=utility, completion=completion
        )


@SETTINGS
@given(elections(), st.sampled_from(["add1", "add1-exhaustive", "add1-greedy"]))
def test_mes_add1(election: tuple[Instance, Profile], completion: str) -> None:
    instance, profile = election
    ours = method_of_equal_shares(instance, profile, completion=completion)  # type: ignore[arg-type]
    assert sorted(ours.selected) == oracle("mes", instance, profile, completion=completion)


@SETTINGS
@given(elections())
def test_phragmen(election: tuple[Instance, Profile]) -> None:
    instance, profile = election
    assert sorted(sequential_phragmen(instance, profile).selected) == oracle(
        "phragmen", instance, profile
    )


@SETTINGS
@given(elections(), st.sampled_from(["cost", "cardinality"]))
def test_max_welfare_value(election: tuple[Instance, Profile], utility: str) -> None:
    # Optimal sets may tie: compare the welfare reached.
    instance, profile = election
    ours = max_welfare(instance, profile, utility=utility)  # type: ignore[arg-type]
    theirs = oracle("max-welfare", instance, profile, utility=utility)
    assert instance.is_feasible(ours.selected)
    assert ours.details["welfare"] == welfare(instance, profile, theirs, utility, "pabulib")


@SETTINGS
@given(
    st.sampled_from([BallotKind.CUMULATIVE, BallotKind.ORDINAL]).flatmap(
        lambda kind: st.tuples(elections(kind), st.just(kind))
    ),
    st.sampled_from(["cost", "cardinality"]),
    st.sampled_from(["pabulib", "borda"]),
)
def test_cumulative_and_ordinal(
    drawn: tuple[tuple[Instance, Profile], BallotKind], utility: str, scoring: str
) -> None:
    (instance, profile), _ = drawn
    options = {"utility": utility, "scoring": scoring}
    assert sorted(greedy(instance, profile, **options).selected) == oracle(  # type: ignore[arg-type]
        "greedy", instance, profile, **options
    )
    ours = method_of_equal_shares(instance, profile, **options)  # type: ignore[arg-type]
    assert sorted(ours.selected) == oracle("mes", instance, profile, **options)


@pytest.mark.slow
@pytest.mark.shared
@pytest.mark.parametrize(
    "name",
    [
        "Netherlands_Assen_2024.pb",
        "Poland_Czestochowa_2020_Stare_Miasto.pb",
        "Poland_Krakow_2019_Bienczyce.pb",
        "Poland_Swiecie_2023.pb",
        "Poland_Wieliczka_2023_Green_Budget.pb",
    ],
)
def test_real_files_against_pabutools_live(name: str) -> None:
    from tests.conftest import shared_file

    from qala.engines.pb import parse_pabulib

    e = parse_pabulib(shared_file(f"pabulib/{name}").read_text(encoding="utf-8-sig"))
    instance, profile = e.instance, e.profile
    for utility in ("cost", "cardinality"):
        assert sorted(greedy(instance, profile, utility=utility).selected) == oracle(  # type: ignore[arg-type]
            "greedy", instance, profile, utility=utility
        )
        assert sorted(
            method_of_equal_shares(instance, profile, utility=utility).selected
        ) == oracle(  # type: ignore[arg-type]
            "mes", instance, profile, utility=utility
        )
    if profile.kind is BallotKind.APPROVAL:
        assert sorted(sequential_phragmen(instance, profile).selected) == oracle(
            "phragmen", instance, profile
        )
    ours = max_welfare(instance, profile)
    assert ours.details["welfare"] == welfare(
        instance, profile, oracle("max-welfare", instance, profile), "cost", "pabulib"
    )
    assert ours.details["welfare"] > Fraction(0)


@pytest.mark.slow
def test_larger_generated_elections_against_pabutools() -> None:
    # Realistic sizes (150 voters, 12 projects, costs in thousands) where float error is larger.
    import numpy as np

    rng = np.random.default_rng(2026)
    for _ in range(8):
        m = 12
        ids = [f"p{k}" for k in range(m)]
        costs = {pid: int(c) * 1000 for pid, c in zip(ids, rng.integers(5, 120, m), strict=True)}
        instance = make_instance(costs, int(sum(costs.values()) * rng.uniform(0.2, 0.6)))
        popularity = rng.uniform(0.05, 0.6, m)
        ballots = [
            [pid for pid, q in zip(ids, popularity, strict=True) if rng.random() < q]
            for _ in range(150)
        ]
        profile = approval_profile(ballots)
        for utility in ("cost", "cardinality"):
            for completion in ("none", "greedy"):
                ours = method_of_equal_shares(
                    instance, profile, utility=utility, completion=completion
                )  # type: ignore[arg-type]
                assert sorted(ours.selected) == oracle(
                    "mes", instance, profile, utility=utility, completion=completion
                )
        assert sorted(sequential_phragmen(instance, profile).selected) == oracle(
            "phragmen", instance, profile
        )
    # Add1 with small costs (each step raises every share by one unit).
    for _ in range(4):
        ids = [f"p{k}" for k in range(8)]
        costs = {pid: int(c) for pid, c in zip(ids, rng.integers(20, 200, 8), strict=True)}
        instance = make_instance(costs, int(sum(costs.values()) * 0.5))
        ballots = [[pid for pid in ids if rng.random() < 0.35] for _ in range(60)]
        profile = approval_profile(ballots)
        for completion in ("add1", "add1-exhaustive"):
            ours = method_of_equal_shares(instance, profile, completion=completion)  # type: ignore[arg-type]
            assert sorted(ours.selected) == oracle("mes", instance, profile, completion=completion)
