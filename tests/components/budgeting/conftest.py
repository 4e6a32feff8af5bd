"""Fixtures for the budgeting component: a settable clock and an Astana process driven through its
phases by a small helper."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from qala.components.accounts.services import create_user, issue_token
from qala.components.budgeting.ballots import BallotReceipt, cast_ballot
from qala.components.budgeting.iin import make_iin
from qala.components.budgeting.process import (
    NewProcess,
    NewProposal,
    advance,
    create_process,
    review_proposal,
    submit_proposal,
)
from qala.components.budgeting.signing import ledger_signer
from qala.runtime import Context

NOW = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
"""The tests' clock: proposals open a day before."""
KEY = "test-secret"


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def set(self, moment: datetime) -> None:
        self.now = moment


def iin(number: int, *, born: date = date(1960, 1, 1), sex: str = "female") -> str:
    """A synthetic, check-digit-correct IIN (not a real person's), distinct for each ``number``:
    the date of birth moves by ``number`` days (serials alone could repeat, since ``make_iin``
    skips serials without a check digit)."""
    return make_iin(born + timedelta(days=number), sex=sex, serial=1)


@dataclass
class Town:
    """One process on a fresh store, with helpers to walk it through its phases."""

    context: Context
    clock: Clock
    code: str = "astana-2026"

    def process(self, **overrides: Any) -> Any:
        fields: dict[str, Any] = {
            "code": self.code,
            "place_code": "astana",
            "title": {"ru": "Бюджет участия Астаны 2026", "en": "Astana participatory budget 2026"},
            "budget": 100_000_000,
            "proposals_open_at": NOW - timedelta(days=1),
            "proposals_close_at": NOW + timedelta(days=10),
            "review_close_at": NOW + timedelta(days=20),
            "voting_open_at": NOW + timedelta(days=21),
            "voting_close_at": NOW + timedelta(days=35),
            "max_choices": 3,
        }
        fields.update(overrides)
        with self.context.database.transaction() as session:
            return create_process(
                session, NewProcess(**fields), actor="akimat", now=self.clock(), secret_key=KEY
            )

    def propose(self, costs: Sequence[int], *, code: str | None = None) -> list[str]:
        codes = []
        with self.context.database.transaction() as session:
            for k, cost in enumerate(costs):
                info = submit_proposal(
                    session,
                    code or self.code,
                    NewProposal(title={"en": f"Project {k + 1}"}, estimated_cost=cost),
                    author=f"resident{k}",
                    now=self.clock(),
                )
                codes.append(info.code)
        return codes

    def to_review(self) -> None:
        self.clock.set(NOW + timedelta(days=10, hours=1))
        self.advance("review")

    def review_all(self, *, infeasible: Sequence[str] = ()) -> None:
        from qala.components.budgeting.process import list_proposals

        with self.context.database.transaction() as session:
            for proposal in list_proposals(session, self.code):
                review_proposal(
                    session,
                    self.code,
                    proposal.code,
                    feasible=proposal.code not in infeasible,
                    reason="checked by the akimat's engineers",
                    actor="engineer",
                    now=self.clock(),
                )

    def to_voting(self) -> None:
        self.clock.set(NOW + timedelta(days=21, hours=1))
        self.advance("voting")

    def to_results(self) -> None:
        self.clock.set(NOW + timedelta(days=35, hours=1))
        self.advance("results")

    def advance(self, phase: str) -> Any:
        with self.context.database.transaction() as session:
            return advance(session, self.code, to_phase=phase, actor="akimat", now=self.clock())

    def vote(
        self,
        voter_iin: str,
        choices: Sequence[str] | Mapping[str, int],
        *,
        receipt: str | None = None,
    ) -> BallotReceipt:
        with self.context.database.transaction() as session:
            return cast_ballot(
                session,
                self.code,
                iin=voter_iin,
                choices=choices,
                secret_key=KEY,
                now=self.clock(),
                receipt=receipt,
            )

    def voting_with(self, costs: Sequence[int], **overrides: Any) -> list[str]:
        """Create the process, propose ``costs``, review all as feasible, open voting."""
        self.process(**overrides)
        codes = self.propose(costs)
        self.to_review()
        self.review_all()
        self.to_voting()
        return codes


def make_town(context: Context) -> Town:
    clock = Clock(NOW)
    context.clock = clock
    ledger_signer(context)  # as the component's start-up does: appends sign the ledger's heads
    return Town(context, clock)


@pytest.fixture(autouse=True)
def ledger_key_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test's own ledger signing key (created on first append), also for the CLI it runs."""
    path = tmp_path / "keys" / "ledger_key"
    monkeypatch.setenv("QALA_LEDGER_KEY_FILE", str(path))
    return path


@pytest.fixture
def town(context: Context) -> Town:
    """An empty store (SQLite and PostgreSQL) with the tests' clock."""
    return make_town(context)


@pytest.fixture
def sqlite_town(sqlite_context: Context) -> Town:
    return make_town(sqlite_context)


@pytest.fixture
def api(town: Town) -> tuple[TestClient, Town, dict[str, dict[str, str]]]:
    from qala.api import create_app

    headers = {}
    with town.context.database.transaction() as session:
        for username, role in [
            ("akimat", "operator"),
            ("admin", "administrator"),
            ("aigerim", "citizen"),
            ("nurlan", "citizen"),
            ("analyst", "analyst"),
            ("dana@example.kz", "citizen"),
        ]:
            user = create_user(
                session,
                username=username,
                password="long enough pw",
                role=role,
                display_name="Dana B." if "@" in username else "",
            )
            headers[username] = {"Authorization": f"Bearer {issue_token(session, user)}"}
    return TestClient(create_app(context=town.context)), town, headers
