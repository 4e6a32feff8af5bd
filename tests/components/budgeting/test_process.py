"""Processes: creation checks, the phase machine with its calendar, proposals and their review."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from tests.components.budgeting.conftest import KEY, NOW, Town

from qala.components.budgeting.ledger import list_entries
from qala.components.budgeting.process import (
    NewProposal,
    get_process,
    list_proposals,
    review_proposal,
    submit_proposal,
)
from qala.core.errors import ConfigurationError, ConflictError, ValidationError


def test_every_problem_of_a_new_process_is_reported(sqlite_town: Town) -> None:
    with pytest.raises(ValidationError) as caught:
        sqlite_town.process(
            code="Bad Code!",
            place_code="atlantis",
            title={},
            budget=0,
            voting_open_at=NOW + timedelta(days=40),  # after voting closes
            ballot_kind="cumulative",
            rule="phragmen",
        )
    columns = {p.column for p in caught.value.problems}
    assert {
        "code",
        "place_code",
        "title",
        "budget",
        "voting_close_at",
        "points_total",
        "rule",
    } <= columns


def test_a_process_belongs_to_a_city_or_district(sqlite_town: Town) -> None:
    with pytest.raises(ValidationError, match="city or a district"):
        sqlite_town.process(place_code="kz")
    info = sqlite_town.process(place_code="astana-yesil-district")
    assert info.place_code == "astana-yesil-district" and info.phase == "proposals"


def test_phases_move_one_step_forward_on_their_calendar(town: Town) -> None:
    town.process()
    town.propose([10_000_000, 20_000_000])
    with pytest.raises(ConflictError, match="only move to `review`"):
        town.advance("voting")
    with pytest.raises(ConflictError, match="proposals are open until"):
        town.advance("review")
    town.to_review()
    with pytest.raises(ConflictError, match="2 proposal\\(s\\) still await"):
        town.to_voting()
    town.review_all(infeasible=["P01", "P02"])
    with pytest.raises(ConflictError, match="nothing to vote on"):
        town.to_voting()
    with town.context.database.transaction() as session:
        review_proposal(
            session,
            town.code,
            "P02",
            feasible=True,
            reason="re-examined",
            actor="e",
            now=town.clock(),
        )
    town.clock.set(NOW + timedelta(days=20))
    with pytest.raises(ConflictError, match="voting opens at"):
        town.advance("voting")
    town.to_voting()
    with pytest.raises(ConflictError, match="ballots may be revised until then"):
        town.advance("results")
    with pytest.raises(ConflictError, match="only move to `results`"):
        town.advance("review")
    town.to_results()
    town.advance("implementation")
    with town.context.database.session() as session:
        info = get_process(session, town.code)
        kinds = [e.kind for e in list_entries(session, subject=town.code)]
    assert [h["to"] for h in info.history] == ["review", "voting", "results", "implementation"]
    assert kinds == ["process.created"] + ["process.phase"] * 2 + [
        "process.phase",
        "process.results",
        "process.phase",
    ]


def test_proposals_only_while_open_and_within_the_budget(sqlite_town: Town) -> None:
    town = sqlite_town
    town.process()
    with town.context.database.transaction() as session, pytest.raises(ValidationError) as caught:
        submit_proposal(
            session,
            town.code,
            NewProposal(title={"xx": "?"}, estimated_cost=200_000_000),
            author="a",
            now=town.clock(),
        )
    assert {p.column for p in caught.value.problems} == {"title.xx", "title", "estimated_cost"}
    assert town.propose([5_000_000]) == ["P01"]
    town.clock.set(NOW + timedelta(days=10))
    with pytest.raises(ConflictError, match="takes proposals from"):
        town.propose([5_000_000])


def test_review_needs_a_public_reason_and_the_review_phase(sqlite_town: Town) -> None:
    town = sqlite_town
    town.process()
    town.propose([5_000_000])
    with town.context.database.transaction() as session, pytest.raises(ConflictError):
        review_proposal(session, town.code, "P01", feasible=True, reason="ok", actor="e", now=NOW)
    town.to_review()
    with (
        town.context.database.transaction() as session,
        pytest.raises(ValidationError, match="say why"),
    ):
        review_proposal(session, town.code, "P01", feasible=False, reason="  ", actor="e", now=NOW)
    with town.context.database.transaction() as session:
        info = review_proposal(
            session,
            town.code,
            "p01",
            feasible=True,
            reason="fits",
            cost=5_500_000,
            actor="e",
            now=NOW,
        )
    assert (info.status, info.cost, info.review_reason) == ("feasible", 5_500_000, "fits")
    with town.context.database.session() as session:
        public = list_proposals(session, town.code)
    assert public[0].author is None  # authors are not published


def test_a_changed_secret_key_is_refused_before_it_lets_people_vote_twice(
    sqlite_town: Town,
) -> None:
    from tests.components.budgeting.conftest import iin

    from qala.components.budgeting.voters import register_voter

    town = sqlite_town
    town.process()
    with town.context.database.transaction() as session:
        register_voter(session, town.code, iin(1), secret_key=KEY, now=town.clock())
    with (
        town.context.database.transaction() as session,
        pytest.raises(ConfigurationError, match="another secret key"),
    ):
        register_voter(session, town.code, iin(1), secret_key="rotated", now=town.clock())
    assert isinstance(NOW, datetime)


def test_an_illustrative_process_adopts_a_new_key(sqlite_town: Town) -> None:
    from tests.components.budgeting.conftest import iin

    from qala.components.budgeting.models import Process
    from qala.components.budgeting.voters import register_voter

    town = sqlite_town
    town.process()
    with town.context.database.transaction() as session:
        session.query(Process).update({Process.illustrative: True})
    with town.context.database.transaction() as session:
        status = register_voter(session, town.code, iin(1), secret_key="rotated", now=town.clock())
    assert status.newly_registered
    with town.context.database.transaction() as session:
        again = register_voter(session, town.code, iin(1), secret_key="rotated", now=town.clock())
    assert not again.newly_registered


def test_authors_withdraw_their_own_proposals_while_proposals_are_open(sqlite_town: Town) -> None:
    from qala.components.budgeting.process import withdraw_proposal

    town = sqlite_town
    town.process()
    town.propose([5_000_000, 6_000_000])  # authors resident0, resident1
    with town.context.database.transaction() as session:
        with pytest.raises(ConflictError, match="only the author"):
            withdraw_proposal(session, town.code, "P01", author="resident1", now=town.clock())
        info = withdraw_proposal(session, town.code, "P01", author="resident0", now=town.clock())
    assert info.status == "withdrawn"
    town.to_review()
    with town.context.database.transaction() as session:
        with pytest.raises(ConflictError, match="while process `astana-2026` takes them"):
            withdraw_proposal(session, town.code, "P02", author="resident1", now=town.clock())
        with pytest.raises(ValidationError, match="withdrew"):
            review_proposal(
                session, town.code, "P01", feasible=True, reason="r", actor="e", now=NOW
            )
