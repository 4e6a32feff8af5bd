"""The demo loader: what `make demo` shows, and that loading twice changes nothing."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlalchemy import func, select

from qala.components.budgeting.demo import DEMO_CITIZENS, FINISHED, VOTING, load_demo
from qala.components.budgeting.iin import iin_problem
from qala.components.budgeting.ledger import verify_ledger
from qala.components.budgeting.models import Ballot, LedgerEntry, Voter
from qala.components.budgeting.process import get_process
from qala.components.budgeting.projects import list_projects
from qala.components.budgeting.signing import ledger_signer
from qala.runtime import Context

DEMO_NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


@pytest.mark.slow
def test_demo_loads_once_and_is_consistent_on_both_stores(context: Context) -> None:
    check_demo(context)


def test_demo_loads_once_and_is_consistent(sqlite_context: Context) -> None:
    check_demo(sqlite_context)


def check_demo(context: Context) -> None:
    context.clock = lambda: DEMO_NOW
    ledger_signer(context)  # as the component's start-up does
    first = load_demo(context)
    assert first.created == [FINISHED, VOTING]
    assert first.ballots == 240 + 150
    assert first.indicator_values > 0
    with context.database.session() as session:
        finished = get_process(session, FINISHED)
        voting = get_process(session, VOTING)
        assert finished.phase == "implementation"
        assert voting.phase == "voting"
        assert voting.ballots_cast == 150
        # Demo citizens are registered, none has voted yet.
        assert voting.voters_registered == 150 + len(DEMO_CITIZENS)
        projects = list_projects(session, today=DEMO_NOW.date())
        assert {p.origin for p in projects} == {"participatory", "city"}
        assert any(p.status == "delivered" and p.rating is not None for p in projects)
        assert verify_ledger(session, public_key=ledger_signer(context).public_key()).ok
        counts = (
            session.scalar(select(func.count()).select_from(Ballot)),
            session.scalar(select(func.count()).select_from(Voter)),
            session.scalar(select(func.count()).select_from(LedgerEntry)),
        )
    again = load_demo(context)
    assert again.created == [] and again.ballots == 0
    with context.database.session() as session:
        assert counts == (
            session.scalar(select(func.count()).select_from(Ballot)),
            session.scalar(select(func.count()).select_from(Voter)),
            session.scalar(select(func.count()).select_from(LedgerEntry)),
        )


def test_demo_citizens_have_valid_synthetic_iins() -> None:
    for name, iin in DEMO_CITIZENS:
        assert "(demo)" in name
        assert iin_problem(iin, today=date(2026, 11, 23)) is None


def test_the_readme_lists_the_demo_citizens() -> None:
    from pathlib import Path

    import qala.components.budgeting as package

    readme = (Path(package.__file__).parent / "README.md").read_text(encoding="utf-8")
    for name, iin in DEMO_CITIZENS:
        assert f"| {name} | {iin} |" in readme
