"""Voting: one ballot per IIN, revisable with its receipt until the deadline; invalid IINs,
voting outside the phase and over-limit ballots refused with clear messages; secrecy; and no
acknowledged ballot is lost, across a restart, a rolled-back transaction or a kill -9."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from datetime import date, timedelta

import pytest
from sqlalchemy import func, inspect, select, text
from tests.components.budgeting.conftest import KEY, NOW, Town, iin

from qala.components.budgeting.ballots import cast_ballot, check_ballot
from qala.components.budgeting.iin import make_iin
from qala.components.budgeting.models import Ballot, Voter
from qala.components.budgeting.voters import register_voter, voter_status
from qala.core.errors import ConflictError, NotFoundError, ValidationError
from qala.runtime import Context
from qala.settings import Settings

COSTS = [40_000_000, 30_000_000, 50_000_000, 20_000_000]


def counts(context: Context) -> tuple[int, int]:
    """(ballots stored, voters marked as having voted)."""
    with context.database.session() as session:
        ballots = session.scalar(select(func.count()).select_from(Ballot))
        voted = session.scalar(
            select(func.count()).select_from(Voter).where(Voter.has_voted.is_(True))
        )
    return int(ballots or 0), int(voted or 0)


def test_double_voting_is_rejected_and_revision_needs_the_receipt(town: Town) -> None:
    town.voting_with(COSTS)
    first = town.vote(iin(1), ["P01", "P02"])
    with pytest.raises(ConflictError, match=r"already voted in `astana-2026`.*receipt"):
        town.vote(iin(1), ["P03"])
    with pytest.raises(ConflictError, match="already voted"):
        town.vote(" ".join([iin(1)[:6], iin(1)[6:]]), ["P03"])  # same IIN, typed with a space
    assert counts(town.context) == (1, 1)
    revised = town.vote(iin(1), ["P03", "P04"], receipt=first.receipt)
    assert revised.revised and revised.receipt == first.receipt
    with town.context.database.session() as session:
        assert check_ballot(session, town.code, first.receipt).projects == ["P03", "P04"]
    with pytest.raises(NotFoundError, match="no ballot in `astana-2026` has this receipt"):
        town.vote(iin(1), ["P01"], receipt="not-my-receipt")
    with pytest.raises(NotFoundError, match="has not voted yet"):
        town.vote(iin(2), ["P01"], receipt=first.receipt)
    assert counts(town.context) == (1, 1)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("12345", "exactly 12 digits"),
        ("900517401232", "check digit"),
        ("901317401231", "not a date of birth"),
        ("900517901231", "7th digit"),
    ],
)
def test_invalid_iins_are_rejected_and_nothing_is_stored(
    sqlite_town: Town, bad: str, message: str
) -> None:
    sqlite_town.voting_with(COSTS)
    with pytest.raises(ValidationError, match=message) as caught:
        sqlite_town.vote(bad, ["P01"])
    assert caught.value.problems[0].column == "iin"
    assert counts(sqlite_town.context) == (0, 0)


def test_voters_too_young_for_the_process_are_refused(sqlite_town: Town) -> None:
    sqlite_town.voting_with(COSTS, min_voter_age=18)
    # 17 on the last day of voting (5 April 2026).
    young = make_iin(date(2008, 6, 1), sex="male", serial=7)
    with pytest.raises(ValidationError, match="at least 18 years old"):
        sqlite_town.vote(young, ["P01"])
    ok = make_iin(date(2008, 4, 5), sex="male", serial=7)  # 18 on the closing day
    assert not sqlite_town.vote(ok, ["P01"]).revised


def test_voting_outside_the_voting_phase_is_rejected(town: Town) -> None:
    town.process()
    town.propose(COSTS)
    with pytest.raises(ConflictError, match="it is now in its proposals phase"):
        town.vote(iin(1), ["P01"])
    town.to_review()
    town.review_all()
    with pytest.raises(ConflictError, match="review phase"):
        town.vote(iin(1), ["P01"])
    town.to_voting()
    receipt = town.vote(iin(1), ["P01"]).receipt
    town.clock.set(NOW + timedelta(days=35))  # the deadline itself: closed
    with pytest.raises(ConflictError, match="voting has closed"):
        town.vote(iin(2), ["P01"])
    with pytest.raises(ConflictError, match="voting has closed"):
        town.vote(iin(1), ["P02"], receipt=receipt)  # no revision after the deadline
    town.to_results()
    with pytest.raises(ConflictError, match="results phase"):
        town.vote(iin(3), ["P01"])
    assert counts(town.context) == (1, 1)


def test_over_limit_and_malformed_ballots_are_rejected(town: Town) -> None:
    town.process(max_choices=2, min_choices=1)
    town.propose(COSTS)
    town.to_review()
    town.review_all(infeasible=["P03"])
    town.to_voting()
    cases = [
        (["P01", "P02", "P04"], "choose at most 2 projects; this ballot names 3"),
        (["P03"], "not a project on this ballot"),
        (["P99"], "not a project on this ballot"),
        (["P01", "P01"], "named twice"),
        ([], "choose at least 1 project"),
        ({"P01": 2}, "list the chosen projects"),
    ]
    for choices, message in cases:
        with pytest.raises(ValidationError, match=message):
            town.vote(iin(1), choices)
    assert counts(town.context) == (0, 0)
    receipt = town.vote(iin(1), ["p01", "P02"]).receipt  # codes are case-insensitive
    with pytest.raises(ValidationError, match="at most 2"):
        town.vote(iin(1), ["P01", "P02", "P04"], receipt=receipt)
    with town.context.database.session() as session:
        assert check_ballot(session, town.code, receipt).projects == ["P01", "P02"]


def test_cumulative_ballots_respect_their_points(sqlite_town: Town) -> None:
    town = sqlite_town
    town.voting_with(COSTS, ballot_kind="cumulative", points_total=10, max_points_per_project=6)
    with pytest.raises(ValidationError, match="add up to 12, more than the 10"):
        town.vote(iin(1), {"P01": 6, "P02": 6})
    with pytest.raises(ValidationError, match="at most 6 points per project"):
        town.vote(iin(1), {"P01": 7})
    with pytest.raises(ValidationError, match="at least 1"):
        town.vote(iin(1), {"P01": 0})
    with pytest.raises(ValidationError, match="gives points"):
        town.vote(iin(1), ["P01"])
    stored = town.vote(iin(1), {"P01": 6, "P04": 4})
    assert (stored.projects, stored.points) == (["P01", "P04"], [6, 4])


def test_who_voted_is_kept_apart_from_how(town: Town) -> None:
    town.voting_with(COSTS)
    voters = [iin(k) for k in range(1, 6)]
    receipts = [town.vote(v, ["P01", "P04"]).receipt for v in voters]
    columns = {
        table: {c["name"] for c in inspect(town.context.database.engine).get_columns(table)}
        for table in ("budgeting_ballot", "budgeting_voter")
    }
    assert columns["budgeting_ballot"] == {"receipt_hash", "process_id", "projects", "points"}
    assert columns["budgeting_voter"] == {
        "id",
        "process_id",
        "iin_hash",
        "has_voted",
        "registered_at",
        "illustrative",
    }
    # Neither an IIN nor a receipt is stored anywhere in the component's tables.
    with town.context.database.session() as session:
        dump = ""
        for table in inspect(town.context.database.engine).get_table_names():
            if table.startswith("budgeting_"):
                dump += repr(session.execute(text(f"select * from {table}")).all())
    for secret in [*voters, *receipts]:
        assert secret not in dump
    with town.context.database.session() as session:
        status = voter_status(session, town.code, voters[0], secret_key=KEY, now=town.clock())
    assert status.registered and status.has_voted


def test_registration_is_idempotent(sqlite_town: Town) -> None:
    sqlite_town.process()
    with sqlite_town.context.database.transaction() as session:
        first = register_voter(session, sqlite_town.code, iin(1), secret_key=KEY, now=NOW)
        again = register_voter(session, sqlite_town.code, iin(1), secret_key=KEY, now=NOW)
    assert first.newly_registered and not again.newly_registered and not again.has_voted


def test_accepted_ballots_survive_a_restart(town: Town, database_url: str) -> None:
    town.voting_with(COSTS)
    receipts = {town.vote(iin(k), ["P01", "P03"] if k % 2 else ["P04"]).receipt for k in range(20)}
    town.context.database.dispose()
    restarted = Context.from_settings(Settings(database_url=database_url, secret_key=KEY))
    try:
        assert counts(restarted) == (20, 20)
        with restarted.database.session() as session:
            for receipt in receipts:
                check_ballot(session, town.code, receipt)
        # The registry also survived: the same people cannot vote again.
        with restarted.database.transaction() as session, pytest.raises(ConflictError):
            cast_ballot(
                session, town.code, iin=iin(3), choices=["P02"], secret_key=KEY, now=town.clock()
            )
    finally:
        restarted.database.dispose()


def test_a_failed_transaction_loses_nothing_acknowledged(town: Town) -> None:
    town.voting_with(COSTS)
    kept = [town.vote(iin(k), ["P02"]).receipt for k in range(5)]
    with pytest.raises(RuntimeError), town.context.database.transaction() as session:
        cast_ballot(
            session, town.code, iin=iin(99), choices=["P01"], secret_key=KEY, now=town.clock()
        )
        raise RuntimeError("the server dies before the commit")
    assert counts(town.context) == (5, 5)
    with town.context.database.session() as session:
        for receipt in kept:
            assert check_ballot(session, town.code, receipt).projects == ["P02"]
    # The voter of the lost (never acknowledged) ballot may vote: nothing half-written remains.
    assert not town.vote(iin(99), ["P01"]).revised


CHILD = textwrap.dedent(
    """
    import sys
    from datetime import date, datetime, timedelta
    from qala.components.budgeting.ballots import cast_ballot
    from qala.components.budgeting.iin import make_iin
    from qala.runtime import Context
    from qala.settings import Settings

    url, code, moment = sys.argv[1], sys.argv[2], datetime.fromisoformat(sys.argv[3])
    context = Context.from_settings(Settings(database_url=url, secret_key=sys.argv[4]))
    k = 0
    while True:
        voter = make_iin(date(1950, 1, 1) + timedelta(days=k), sex="male", serial=3)
        with context.database.transaction() as session:
            receipt = cast_ballot(session, code, iin=voter, choices=["P01", "P04"],
                                  secret_key=sys.argv[4], now=moment).receipt
        print(receipt, flush=True)  # acknowledged only after the commit
        k += 1
    """
)


def test_kill_9_mid_vote_loses_no_acknowledged_ballot(town: Town, database_url: str) -> None:
    town.voting_with(COSTS)
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, database_url, town.code, town.clock().isoformat(), KEY],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    acknowledged = []
    assert child.stdout is not None
    try:
        while len(acknowledged) < 40:
            line = child.stdout.readline()
            if not line:
                raise AssertionError(
                    f"the voting child died: {child.stderr.read() if child.stderr else ''}"
                )
            acknowledged.append(line.strip())
    finally:
        os.kill(child.pid, signal.SIGKILL)  # most likely in the middle of the next transaction
        child.wait(10)
    acknowledged += [line.strip() for line in child.stdout.read().splitlines() if line.strip()]
    town.context.database.dispose()
    restarted = Context.from_settings(Settings(database_url=database_url, secret_key=KEY))
    try:
        ballots, voted = counts(restarted)
        assert ballots == voted >= len(acknowledged)  # every vote whole: flag and ballot together
        with restarted.database.session() as session:
            for receipt in acknowledged:
                assert check_ballot(session, town.code, receipt).projects == ["P01", "P04"]
    finally:
        restarted.database.dispose()


def test_simultaneous_ballots_of_one_iin_admit_exactly_one(town: Town) -> None:
    import threading

    town.voting_with(COSTS)
    outcomes: list[str] = []
    barrier = threading.Barrier(4)

    def vote() -> None:
        barrier.wait()
        try:
            town.vote(iin(7), ["P01"])
            outcomes.append("accepted")
        except ConflictError:
            outcomes.append("conflict")
        except Exception as exc:  # the test reports whatever else happened
            outcomes.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=vote) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(outcomes) == ["accepted", "conflict", "conflict", "conflict"], outcomes
    assert counts(town.context) == (1, 1)
