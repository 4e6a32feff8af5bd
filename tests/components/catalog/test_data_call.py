"""The yearly data call on both backends: a submitter writes for its own place only, plausibility
checks flag without refusing, reviewers accept or return with a reason, an incomplete call is
published only with a reason, releases are numbered, immutable and diffed; every step audited."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import select

from qala.components.catalog.calls import (
    answer_return,
    call_events,
    get_release,
    list_releases,
    open_call,
    place_sheet,
    publish,
    release_diff,
    release_values,
    review,
    review_queue,
    status_board,
    submit_file,
    submit_values,
)
from qala.components.catalog.models import (
    CallEvent,
    CallValue,
    IndicatorValue,
    Place,
    ReleaseValue,
)
from qala.components.catalog.services import import_frame
from qala.core.errors import ConflictError, PermissionDeniedError, ValidationError

UNEMPLOYMENT = "iso37120.5.1"
LIFE = "iso37120.11.1"


def _call(context) -> int:
    with context.database.transaction() as session:
        call = open_call(
            session,
            year=2024,
            indicators=[UNEMPLOYMENT, LIFE],
            places=["taraz", "aktau"],
            deadline=date(2025, 3, 1),
            actor="team",
        )
        return call.id


def _submit(context, call_id: int, place: str, rows: list[tuple[str, float]], **kw) -> object:
    frame = pd.DataFrame(
        {
            "place": [place] * len(rows),
            "indicator": [r[0] for r in rows],
            "value": [r[1] for r in rows],
            "evidence": ["akimat letter 12/2025"] * len(rows),
        }
    )
    with context.database.transaction() as session:
        return submit_values(session, call_id, frame, actor=f"{place}-akimat", **kw)


def test_submitter_writes_only_for_its_place_and_nothing_is_written_otherwise(context) -> None:
    call_id = _call(context)
    frame = pd.DataFrame(
        {"place": ["taraz", "aktau"], "indicator": [UNEMPLOYMENT] * 2, "value": [4.5, 4.6]}
    )
    with (
        pytest.raises(PermissionDeniedError, match="submits for taraz only"),
        context.database.transaction() as session,
    ):
        submit_values(session, call_id, frame, actor="taraz-akimat", scope_place="taraz")
    with context.database.session() as session:
        assert status_board(session, call_id, today=date(2025, 1, 1))[0]["submitted"] == 0
    # A value outside the unit's range is refused with its row; a place outside the call too.
    with pytest.raises(ValidationError) as bad:
        _submit(context, call_id, "taraz", [(UNEMPLOYMENT, 140.0)], scope_place="taraz")
    assert bad.value.problems[0].row == 2
    with pytest.raises(ValidationError, match="rows outside the call"):
        _submit(context, call_id, "astana", [(UNEMPLOYMENT, 4.0)], scope_place="astana")


def test_plausibility_flags_warn_and_do_not_refuse(context) -> None:
    history = pd.DataFrame(
        {
            "place": ["taraz", "astana", "almaty", "shymkent"],
            "indicator": [UNEMPLOYMENT] * 4,
            "year": [2023] * 4,
            "value": [4.0, 4.6, 5.0, 5.1],
        }
    )
    import_frame(context.database, history, file="history.csv")
    call_id = _call(context)
    result = _submit(context, call_id, "taraz", [(UNEMPLOYMENT, 12.5)], scope_place="taraz")
    (flags,) = result.flags.values()  # type: ignore[attr-defined]
    assert [f["text"] for f in flags] == [
        "year-on-year change +212% (previous year 4)",
        "outside the range of the other places (4.6–5.1)",
    ]
    calm = _submit(context, call_id, "aktau", [(UNEMPLOYMENT, 4.8)], scope_place="aktau")
    assert list(calm.flags.values()) == [[]]  # type: ignore[attr-defined]


def test_review_publish_immutability_and_diff(context, tmp_path: Path) -> None:
    call_id = _call(context)
    _submit(context, call_id, "taraz", [(UNEMPLOYMENT, 4.5), (LIFE, 72.1)], scope_place="taraz")
    csv = tmp_path / "aktau.csv"
    csv.write_text(
        "place,indicator,year,value,evidence\naktau,iso37120.5.1,2024,4.9,https://example.kz/a.pdf\n",
        encoding="utf-8",
    )
    with context.database.transaction() as session:
        submit_file(session, call_id, csv, actor="aktau-akimat", scope_place="aktau")
    with context.database.transaction() as session:
        with pytest.raises(ValidationError, match="needs a reason"):
            review(session, call_id, "taraz", LIFE, "return", actor="reviewer")
        review(session, call_id, "taraz", UNEMPLOYMENT, "accept", actor="reviewer")
        review(session, call_id, "taraz", LIFE, "return", actor="reviewer", reason="no source")
        review(session, call_id, "aktau", UNEMPLOYMENT, "accept", actor="reviewer")
    with context.database.session() as session:
        board = {r["place"]: r for r in status_board(session, call_id, today=date(2025, 3, 2))}
    assert board["taraz"] == {
        "place": "taraz",
        "submitted": 0,
        "accepted": 1,
        "returned": 1,
        "missing": 0,
        "overdue": False,
    }
    assert board["aktau"]["missing"] == 1 and board["aktau"]["overdue"] is True

    # Incomplete: refused without a reason, and nothing is written.
    with (
        pytest.raises(ConflictError, match="2 of 4 asked values are not accepted"),
        context.database.transaction() as session,
    ):
        publish(session, call_id, actor="publisher")
    with context.database.session() as session:
        assert list_releases(session) == []
    with context.database.transaction() as session:
        first = publish(
            session, call_id, actor="publisher", incomplete_reason="life expectancy due in May"
        )
        assert first.number == 1
    with context.database.session() as session:
        values = release_values(session, get_release(session, 1).id)
        stored = session.scalar(
            select(IndicatorValue.source)
            .join(Place)
            .where(Place.code == "taraz", IndicatorValue.indicator_id == UNEMPLOYMENT)
        )
    assert [(v["place_code"], v["indicator_id"], v["value"]) for v in values] == [
        ("aktau", UNEMPLOYMENT, 4.9),
        ("taraz", UNEMPLOYMENT, 4.5),
    ]
    assert stored == f"Qala release 1 (data call {call_id})"

    # Nothing in a published release can change through the store's sessions.
    with (
        pytest.raises(ConflictError, match="cannot be changed"),
        context.database.transaction() as session,
    ):
        row = session.scalars(select(ReleaseValue)).first()
        assert row is not None
        row.value = 99.0
    with (
        pytest.raises(ConflictError, match="cannot be changed"),
        context.database.transaction() as session,
    ):
        session.delete(get_release(session, 1))

    # A correction is a new release with its changelog; the first stays as it was.
    with context.database.transaction() as session:
        review(session, call_id, "aktau", UNEMPLOYMENT, "return", actor="reviewer", reason="typo")
    _submit(context, call_id, "aktau", [(UNEMPLOYMENT, 4.7)], scope_place="aktau")
    _submit(context, call_id, "taraz", [(LIFE, 72.4)], scope_place="taraz")
    with context.database.transaction() as session:
        review(session, call_id, "aktau", UNEMPLOYMENT, "accept", actor="chief")
        review(session, call_id, "taraz", LIFE, "accept", actor="chief")
        second = publish(session, call_id, actor="publisher", incomplete_reason="aktau life")
        assert second.number == 2
    with context.database.session() as session:
        diff = release_diff(session, 1, 2)
        again = release_values(session, get_release(session, 1).id)
        events = [e.action for e in session.scalars(select(CallEvent).order_by(CallEvent.id))]
    assert diff["changed"] == [
        {
            "place": "aktau",
            "indicator": UNEMPLOYMENT,
            "old": 4.9,
            "new": 4.7,
            "approved_by": "chief",
        }
    ]
    assert diff["added"] == [
        {"place": "taraz", "indicator": LIFE, "value": 72.4, "approved_by": "chief"}
    ]
    assert diff["removed"] == []
    assert again == values
    assert events.count("publish") == 2 and events[0] == "open" and "return" in events
    with context.database.transaction() as session, pytest.raises(ConflictError, match="nothing"):
        publish(session, call_id, actor="publisher", incomplete_reason="aktau life")


def test_the_cycle_through_the_command_line(sqlite_url: str, tmp_path: Path, monkeypatch) -> None:
    """`--as` names a real account held to the API's rules: its role, and a submitter's place."""
    import json

    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session
    from typer.testing import CliRunner

    from qala.cli.main import app
    from qala.components.accounts.services import create_user

    engine = create_engine(sqlite_url)
    with Session(engine) as session, session.begin():
        for username, role, place in [
            ("team", "reviewer", None),
            ("chief", "publisher", None),
            ("taraz-akimat", "submitter", "taraz"),
            ("aktau-akimat", "submitter", "aktau"),
            ("karaganda-team", "reviewer", "karaganda"),
        ]:
            create_user(
                session, username=username, password="Zx9!long-enough", role=role, place=place
            )
    engine.dispose()
    monkeypatch.setenv("QALA_DATABASE_URL", sqlite_url)
    runner = CliRunner()

    def invoke(*args: str) -> tuple[int, str]:
        result = runner.invoke(app, ["releases", *args], env={"COLUMNS": "250"})
        return result.exit_code, " ".join(result.output.split())

    def run(*args: str) -> str:
        code, output = invoke(*args)
        assert code == 0, output
        return output

    call = ["call", "--year", "2024", "--indicator", UNEMPLOYMENT, "--place", "taraz"]
    refused = invoke(*call, "--deadline", "2025-03-01", "--as", "nobody")
    assert refused[0] != 0 and "no user `nobody`" in refused[1]
    refused = invoke(*call, "--deadline", "2025-03-01", "--as", "team")
    assert refused[0] != 0 and "needs the role publisher" in refused[1]
    assert "Opened data call 1" in run(*call, "--deadline", "2025-03-01", "--as", "chief")
    upload = tmp_path / "taraz.csv"
    upload.write_text("place,indicator,year,value\ntaraz,iso37120.5.1,2024,4.5\n", encoding="utf-8")
    refused = invoke("submit", "1", str(upload), "--as", "aktau-akimat")
    assert refused[0] != 0 and "submits for aktau only" in refused[1]
    assert "Submitted 1 value(s)." in run("submit", "1", str(upload), "--as", "taraz-akimat")
    refused = invoke("submit", "1", str(upload), "--as", "team")
    assert refused[0] != 0 and "needs the role submitter" in refused[1]
    refused = invoke("review", "1", "taraz", UNEMPLOYMENT, "accept", "--as", "taraz-akimat")
    assert refused[0] != 0 and "needs the role" in refused[1]
    refused = invoke("review", "1", "taraz", UNEMPLOYMENT, "accept", "--as", "karaganda-team")
    assert refused[0] != 0 and "national staff only" in refused[1]
    assert "taraz iso37120.5.1: accepted." in run(
        "review", "1", "taraz", UNEMPLOYMENT, "accept", "--as", "team"
    )
    board = json.loads(run("board", "1", "--json"))
    assert board[0]["accepted"] == 1 and board[0]["missing"] == 0
    refused = invoke("publish", "1", "--as", "team")
    assert refused[0] != 0 and "needs the role publisher" in refused[1]
    assert "Published release 1: 1 added, 0 changed, 0 removed." in run(
        "publish", "1", "--as", "chief"
    )
    listed = json.loads(run("list", "--json"))
    assert [(r["id"], r["values"]) for r in listed] == [(1, 1)]
    shown = json.loads(run("show", "1"))
    assert shown["values"][0]["value"] == 4.5
    assert shown["values"][0]["submitted_by"] == "taraz-akimat"
    assert shown["values"][0]["approved_by"] == "team"


def test_a_part_above_its_whole_is_flagged(context) -> None:
    """Karaganda's doctors are a part of Karaganda Region's: a count above the region's is
    flagged (share above 100 %), one below is not; a rate (per cent) is never compared."""
    import_frame(
        context.database,
        pd.DataFrame(
            {
                "place": ["karaganda-region"],
                "indicator": ["kz_bns.doctors"],
                "year": [2024],
                "value": [6000],
            }
        ),
        file="region.csv",
    )
    with context.database.transaction() as session:
        call = open_call(
            session,
            year=2024,
            indicators=["kz_bns.doctors", UNEMPLOYMENT],
            places=["karaganda", "temirtau"],
            deadline=date(2025, 3, 1),
            actor="team",
        )
    too_many = _submit(
        context,
        call.id,
        "karaganda",
        [("kz_bns.doctors", 6300), (UNEMPLOYMENT, 4.1)],
        scope_place="karaganda",
    )
    fine = _submit(context, call.id, "temirtau", [("kz_bns.doctors", 1200)], scope_place="temirtau")
    flags = too_many.flags  # type: ignore[attr-defined]
    (share,) = flags[("karaganda", "kz_bns.doctors")]
    assert share["code"] == "share" and share["share"] == 105
    assert share["parent"] == "karaganda-region" and share["whole"] == 6000
    assert flags[("karaganda", UNEMPLOYMENT)] == []
    assert fine.flags == {("temirtau", "kz_bns.doctors"): []}  # type: ignore[attr-defined]
    # Flags never refuse: the flagged value is stored as submitted, with its flag.
    with context.database.session() as session:
        stored = session.scalars(select(CallValue).where(CallValue.value == 6300)).one()
        assert stored.status == "submitted" and stored.flags[0]["code"] == "share"


def test_a_returned_value_is_answered_and_corrected(context) -> None:
    call_id = _call(context)
    _submit(context, call_id, "taraz", [(UNEMPLOYMENT, 4.5)], scope_place="taraz")
    with context.database.transaction() as session:
        review(session, call_id, "taraz", UNEMPLOYMENT, "return", actor="rev", reason="source?")
    with (
        pytest.raises(PermissionDeniedError, match="answers for aktau only"),
        context.database.transaction() as session,
    ):
        answer_return(
            session, call_id, "taraz", UNEMPLOYMENT, actor="a", scope_place="aktau", answer="x"
        )
    with context.database.transaction() as session:
        answer_return(
            session,
            call_id,
            "taraz",
            UNEMPLOYMENT,
            actor="taraz-akimat",
            scope_place="taraz",
            answer="corrected after the labour survey's revision",
            value=4.4,
            evidence="https://stat.gov.kz/revision.pdf",
        )
    with context.database.session() as session:
        (row,) = place_sheet(session, call_id, "taraz")[:1]
        queue = review_queue(session, call_id)
        trail = [e["action"] for e in call_events(session, call_id)]
    assert row["status"] == "submitted" and row["value"] == 4.4
    assert row["answer"] == "corrected after the labour survey's revision"
    assert row["evidence"] == "https://stat.gov.kz/revision.pdf"
    assert [(q["place"], q["review_reason"]) for q in queue] == [("taraz", "source?")]
    assert trail == ["open", "submit", "return", "submit", "answer"]
    # An answer is for a returned value only.
    with pytest.raises(ConflictError, match="not returned"), context.database.transaction() as s:
        answer_return(s, call_id, "taraz", UNEMPLOYMENT, actor="t", scope_place="taraz", answer="x")


def test_the_demo_has_an_open_call_the_demo_submitter_answers(context) -> None:
    """The demo's open call asks last year's values, is due after today, has nothing made up in
    it, and its Astana row is the demo submitter's to fill; loading again adds nothing."""
    from datetime import date

    from qala.components.catalog.calls import (
        DEMO_OPEN_CALL_INDICATORS,
        list_calls,
        load_demo_open_call,
        status_board,
        submit_values,
    )

    today = date(2026, 12, 6)
    call_id = load_demo_open_call(context.database, today)
    assert load_demo_open_call(context.database, today) == call_id
    with context.database.session() as session:
        (listed,) = [
            c for c in list_calls(session, place="astana", today=today) if c["id"] == call_id
        ]
        board = status_board(session, call_id, today=today)
    assert listed["year"] == 2025
    assert date.fromisoformat(str(listed["deadline"])) == date(2027, 3, 31)
    assert {r["place"] for r in board} >= {"astana", "almaty"}
    assert all(r["missing"] == len(DEMO_OPEN_CALL_INDICATORS) for r in board)
    assert not any(r["overdue"] for r in board)
    frame = pd.DataFrame(
        {"place": "astana", "indicator": DEMO_OPEN_CALL_INDICATORS[:1], "value": [87.0]}
    )
    with context.database.transaction() as session:
        submit_values(session, call_id, frame, actor="submitter", scope_place="astana")
    with context.database.session() as session:
        astana = [r for r in status_board(session, call_id, today=today) if r["place"] == "astana"]
    assert astana[0]["submitted"] == 1
