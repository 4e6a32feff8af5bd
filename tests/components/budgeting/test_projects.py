"""Tracked projects (money, milestones, risks, delivery, ratings) and the indicators written back
to the catalogue, computed by hand."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from tests.components.budgeting.conftest import KEY, Town, iin

from qala.components.budgeting.indicators import compute_indicators, write_indicators
from qala.components.budgeting.projects import (
    NewProject,
    add_milestone,
    add_risk,
    complete_milestone,
    create_project,
    get_project,
    list_projects,
    rate_project,
    record_payment,
    update_project,
    update_risk,
)
from qala.core.errors import ConflictError, ValidationError

ASTANA_2026 = 1_638_233
"""Astana's population on 1 January 2026 in the catalogue's population.csv."""


def project(town: Town, code: str, budget: int, planned_end: date) -> None:
    with town.context.database.transaction() as session:
        create_project(
            session,
            NewProject(
                code=code,
                place_code="astana",
                title={"ru": code},
                budget=budget,
                planned_end=planned_end,
                contractor="TOO Demo",
            ),
            actor="akimat",
            now=town.clock(),
        )


def test_a_project_from_start_to_ratings(town: Town) -> None:
    project(town, "park-2026", 10_000_000, date(2026, 2, 1))
    today = town.clock().date()
    with town.context.database.transaction() as session:
        design = add_milestone(
            session,
            "park-2026",
            title="Design",
            due_on=date(2026, 1, 10),
            actor="a",
            now=town.clock(),
        )
        with pytest.raises(ValidationError, match="cannot be done in the future"):
            complete_milestone(
                session,
                "park-2026",
                design["id"],
                done_on=today + timedelta(days=1),
                actor="a",
                now=town.clock(),
            )
        complete_milestone(
            session,
            "park-2026",
            design["id"],
            done_on=date(2026, 1, 8),
            actor="a",
            now=town.clock(),
        )
        with pytest.raises(ValidationError) as caught:
            record_payment(
                session,
                "park-2026",
                paid_on=today + timedelta(days=2),
                amount=-5,
                payee=" ",
                actor="t",
                now=town.clock(),
            )
        assert {p.column for p in caught.value.problems} == {"amount", "payee", "paid_on"}
        record_payment(
            session,
            "park-2026",
            paid_on=date(2026, 1, 5),
            amount=4_000_000,
            payee="TOO Demo",
            actor="t",
            now=town.clock(),
        )
        record_payment(
            session,
            "park-2026",
            paid_on=date(2026, 1, 25),
            amount=5_000_000,
            payee="TOO Demo",
            actor="t",
            now=town.clock(),
        )
        low = add_risk(
            session,
            "park-2026",
            risk="rain",
            likelihood=2,
            impact=2,
            owner="parks",
            actor="a",
            now=town.clock(),
        )
        high = add_risk(
            session,
            "park-2026",
            risk="theft",
            likelihood=4,
            impact=3,
            owner="police",
            mitigation="cameras",
            actor="a",
            now=town.clock(),
        )
        with pytest.raises(ValidationError, match="from 1"):
            add_risk(
                session,
                "park-2026",
                risk="x",
                likelihood=6,
                impact=0,
                owner="o",
                actor="a",
                now=town.clock(),
            )
        update_risk(
            session, "park-2026", low["id"], {"status": "closed"}, actor="a", now=town.clock()
        )
        with pytest.raises(ConflictError, match="residents rate delivered projects"):
            rate_project(
                session, "park-2026", rater="r1", stars=5, secret_key=KEY, now=town.clock()
            )
        update_project(
            session,
            "park-2026",
            {"status": "delivered", "impact_note": "busy"},
            actor="a",
            now=town.clock(),
        )
        with pytest.raises(ValidationError, match="its plan is final"):
            update_project(session, "park-2026", {"budget": 1}, actor="a", now=town.clock())
        with pytest.raises(ValidationError, match="1 to 5"):
            rate_project(
                session, "park-2026", rater="r1", stars=6, secret_key=KEY, now=town.clock()
            )
        rate_project(session, "park-2026", rater="r1", stars=2, secret_key=KEY, now=town.clock())
        rate_project(session, "park-2026", rater="r1", stars=5, secret_key=KEY, now=town.clock())
        summary = rate_project(
            session, "park-2026", rater="r2", stars=4, secret_key=KEY, now=town.clock()
        )
    assert (summary.rating, summary.ratings) == (4.5, 2)  # r1's second rating replaced the first
    with town.context.database.session() as session:
        detail = get_project(session, "park-2026", today=today)
        listed = list_projects(session, today=today, status="delivered")
    assert detail.paid == 9_000_000 and detail.status == "delivered"
    assert detail.actual_end == today  # delivered without a date: today
    assert detail.late is True  # planned for 1 February, delivered on 1 March
    assert [r["id"] for r in detail.risks] == [high["id"], low["id"]]  # open, highest score first
    assert detail.risks[0]["score"] == 12
    assert detail.milestones[0]["done_on"] == "2026-01-08"
    assert [p.code for p in listed] == ["park-2026"]


def test_indicators_by_hand_and_written_to_the_catalogue(town: Town) -> None:
    from qala.components.catalog.services import values_frame

    town.voting_with(
        [40_000_000, 30_000_000, 50_000_000, 20_000_000],
        eligible_voters=1000,
        capital_budget=2_000_000_000,
    )
    for k in range(5):
        town.vote(iin(k), ["P01"])
    town.to_results()  # voting closed on 5 April 2026
    project(town, "a-2026", 10_000_000, date(2026, 2, 1))
    project(town, "b-2026", 20_000_000, date(2026, 2, 1))
    project(town, "c-2026", 30_000_000, date(2026, 9, 1))
    now = town.clock()
    with town.context.database.transaction() as session:
        record_payment(
            session,
            "a-2026",
            paid_on=date(2026, 1, 15),
            amount=9_000_000,
            payee="p",
            actor="t",
            now=now,
        )
        update_project(
            session,
            "a-2026",
            {"status": "delivered", "actual_end": "2026-01-20"},
            actor="a",
            now=now,
        )
        record_payment(
            session,
            "b-2026",
            paid_on=date(2026, 2, 10),
            amount=21_000_000,
            payee="p",
            actor="t",
            now=now,
        )
        update_project(
            session,
            "b-2026",
            {"status": "delivered", "actual_end": "2026-02-15"},
            actor="a",
            now=now,
        )
        for rater, stars, code in [("r1", 5, "a-2026"), ("r2", 4, "a-2026"), ("r3", 2, "b-2026")]:
            rate_project(session, code, rater=rater, stars=stars, secret_key=KEY, now=now)
        result = compute_indicators(session)
    values = {(r.place, r.indicator, r.year): r.value for r in result.rows.itertuples()}
    assert values == pytest.approx(
        {
            ("astana", "kz_sc.pb.turnout", 2026): 100 * 5 / 1000,
            ("astana", "kz_sc.pb.proposals_per_1000", 2026): 1000 * 4 / ASTANA_2026,
            ("astana", "kz_sc.pb.share_of_budget_decided", 2026): 100 * 100_000_000 / 2_000_000_000,
            ("astana", "kz_sc.projects.on_time_share", 2026): 50.0,  # a on time, b late
            ("astana", "kz_sc.projects.on_budget_share", 2026): 50.0,  # a 9M ≤ 10M, b 21M > 20M
            ("astana", "kz_sc.projects.satisfaction", 2026): (5 + 4 + 2) / 3,
        }
    )
    assert write_indicators(town.context.database, result, imported_by="test") == 6
    with town.context.database.session() as session:
        stored = values_frame(
            session, places=["astana"], years=[2026], indicators=sorted({i for _, i, _ in values})
        )
    assert len(stored) == 6
    assert not stored["illustrative"].any()
    assert dict(zip(stored["indicator"], stored["value"], strict=True))["kz_sc.pb.turnout"] == 0.5
