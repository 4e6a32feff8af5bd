"""Properties over generated elections run through the store: the stored results equal the engine
on the same ballots, fit the budget, and the exported file holds exactly the ballots cast."""

from __future__ import annotations

import shutil
import uuid
from collections import Counter
from pathlib import Path

from hypothesis import HealthCheck, given, settings, strategies as st
from tests.components.budgeting.conftest import iin, make_town

from qala.components.budgeting.ballots import add1_increment, export_pabulib, get_results
from qala.engines.pb import (
    approval_profile,
    make_instance,
    method_of_equal_shares,
    parse_pabulib,
    solve,
)
from qala.runtime import Context
from qala.settings import Settings

BUDGET = 100_000_000


@st.composite
def elections(draw: st.DrawFn) -> tuple[list[int], list[list[int]], str]:
    costs = draw(st.lists(st.integers(1, 60).map(lambda m: m * 1_000_000), min_size=2, max_size=7))
    ballots = draw(
        st.lists(
            st.lists(st.integers(0, len(costs) - 1), min_size=1, max_size=3, unique=True),
            min_size=1,
            max_size=25,
        )
    )
    rule = draw(st.sampled_from(["greedy", "mes", "phragmen", "max-welfare"]))
    return costs, ballots, rule


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(election=elections())
def test_stored_results_are_the_engines(
    election: tuple[list[int], list[list[int]], str], sqlite_template: Path, tmp_path: Path
) -> None:
    costs, ballots, rule = election
    path = tmp_path / f"{uuid.uuid4().hex}.sqlite"
    shutil.copy(sqlite_template, path)
    context = Context.from_settings(Settings(database_url=f"sqlite:///{path}", secret_key="k"))
    try:
        town = make_town(context)
        codes = town.voting_with(costs, rule=rule, completion="add1" if rule == "mes" else "none")
        cast = [[codes[j] for j in ballot] for ballot in ballots]
        for k, choices in enumerate(cast):
            town.vote(iin(k), choices)
        town.to_results()
        with context.database.session() as session:
            stored = get_results(session, town.code)
            exported = parse_pabulib(export_pabulib(session, town.code))
    finally:
        context.database.dispose()
    instance = make_instance(dict(zip(codes, costs, strict=True)), BUDGET)
    profile = approval_profile(cast, max_length=3)
    if rule == "mes":
        expected = method_of_equal_shares(
            instance, profile, completion="add1", increment=add1_increment(BUDGET, len(cast))
        )
    else:
        expected = solve(instance, profile, rule)
    assert stored.selected == expected.selected
    assert stored.cost == expected.cost <= BUDGET
    assert Counter(frozenset(b.projects) for b in exported.profile) == Counter(
        frozenset(b) for b in cast
    )
    assert {p.id: int(p.cost) for p in exported.instance} == dict(zip(codes, costs, strict=True))
