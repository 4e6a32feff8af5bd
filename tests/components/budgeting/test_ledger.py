"""The ledger: every kind of tampering with a stored entry (value, order, deletion anywhere,
forged appends, edits behind its back, a rewritten history) is caught by `verify_ledger`, by
`qala budget ledger verify` and by the public endpoint."""

from __future__ import annotations

import itertools
import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from tests.components.budgeting.conftest import NOW, Town
from typer.testing import CliRunner

from qala.components.budgeting.ledger import (
    GENESIS,
    append,
    canonical_json,
    hash_entry,
    list_entries,
    verify_chain,
    verify_ledger,
)
from qala.components.budgeting.projects import (
    NewProject,
    add_risk,
    create_project,
    record_payment,
    update_project,
)
from qala.components.budgeting.signing import LedgerPublicKey, ledger_signer
from qala.core.errors import ValidationError


def build(town: Town) -> None:
    """A project with a status change, two payments and a risk: 5 ledger entries."""
    with town.context.database.transaction() as session:
        create_project(
            session,
            NewProject(
                code="led-2026",
                place_code="astana",
                title={"en": "LED lights"},
                budget=50_000_000,
                planned_end=date(2026, 12, 1),
                contractor="TOO Svet",
            ),
            actor="akimat",
            now=NOW,
        )
        update_project(session, "led-2026", {"status": "in_progress"}, actor="akimat", now=NOW)
        record_payment(
            session,
            "led-2026",
            paid_on=date(2026, 2, 20),
            amount=15_000_000,
            payee="TOO Svet",
            purpose="advance",
            actor="treasury",
            now=NOW,
        )
        record_payment(
            session,
            "led-2026",
            paid_on=date(2026, 2, 27),
            amount=5_000_000,
            payee="TOO Svet",
            purpose="lamps",
            actor="treasury",
            now=NOW,
        )
        add_risk(
            session,
            "led-2026",
            risk="lamp supply",
            likelihood=3,
            impact=4,
            owner="energy dept",
            actor="akimat",
            now=NOW + timedelta(minutes=1),
        )


def public_key(town: Town) -> LedgerPublicKey:
    return ledger_signer(town.context).public_key()


def verify(town: Town, **kwargs: Any) -> list[str]:
    key = public_key(town)
    with town.context.database.session() as session:
        return verify_ledger(session, public_key=key, **kwargs).problems


def execute(town: Town, *statements: str) -> None:
    with town.context.database.transaction() as session:
        for statement in statements:
            session.execute(text(statement))


def test_the_hash_of_an_entry_by_hand() -> None:
    body = {
        "seq": 1,
        "at": "2026-03-01T09:00:00.000000+00:00",
        "actor": "a",
        "kind": "k",
        "subject": "s",
        "data": {"b": 2, "a": "ә"},
    }
    assert canonical_json(body) == (
        '{"actor":"a","at":"2026-03-01T09:00:00.000000+00:00","data":{"a":"ә","b":2},'
        '"kind":"k","seq":1,"subject":"s"}'
    )
    import hashlib

    assert (
        hash_entry(GENESIS, body)
        == hashlib.sha256((GENESIS + canonical_json(body)).encode()).hexdigest()
    )


def test_an_intact_ledger_verifies(town: Town) -> None:
    build(town)
    key = public_key(town)
    with town.context.database.session() as session:
        result = verify_ledger(session, public_key=key)
        entries = list_entries(session)
    assert result.ok and result.entries == 5 and result.head_seq == 5
    assert [e.kind for e in entries] == [
        "project.created",
        "project.updated",
        "payment.recorded",
        "payment.recorded",
        "risk.added",
    ]
    assert entries[0].prev_hash == GENESIS
    assert all(b.prev_hash == a.entry_hash for a, b in itertools.pairwise(entries))
    # Anyone can verify the published entries without the store.
    assert verify_chain([e.as_dict() for e in entries]).ok


TAMPERING: dict[str, tuple[list[str], str]] = {
    "value changed": (
        ["update budgeting_ledger_entry set actor = 'someone else' where seq = 3"],
        "entry 3: its content does not match its hash",
    ),
    "money changed in the ledger and in the table": (
        [
            'update budgeting_ledger_entry set data = \'{"amount": 1, "id": 1, "paid_on": '
            '"2026-02-20", "payee": "TOO Svet", "purpose": "advance", "reference": ""}\' '
            "where seq = 3",
            "update budgeting_payment set amount = 1 where id = 1",
        ],
        "entry 3: its content does not match its hash",
    ),
    "two entries swapped": (
        [
            "update budgeting_ledger_entry set seq = 100 where seq = 3",
            "update budgeting_ledger_entry set seq = 3 where seq = 4",
            "update budgeting_ledger_entry set seq = 4 where seq = 100",
        ],
        "its prev_hash does not match",
    ),
    "middle entry deleted": (
        ["delete from budgeting_ledger_entry where seq = 2"],
        "entries 2–2 are missing",
    ),
    "last entry deleted": (
        ["delete from budgeting_ledger_entry where seq = 5"],
        "the ledger ends at entry 4 but its head says 5",
    ),
    "last entry deleted and the head moved back": (
        [
            "delete from budgeting_ledger_entry where seq = 5",
            "update budgeting_ledger_head set seq = 4, entry_hash = "
            "(select entry_hash from budgeting_ledger_entry where seq = 4)",
        ],
        "risk 1 differs between the tables",
    ),
    "payment edited behind the ledger's back": (
        ["update budgeting_payment set amount = 25000000 where id = 2"],
        "payment 2 differs between the tables",
    ),
    "payment deleted from the table": (
        ["delete from budgeting_payment where id = 1"],
        "payment 1 differs",
    ),
    "contractor changed in the table": (
        ["update budgeting_project set contractor = 'TOO Other' where code = 'led-2026'"],
        "`contractor` is 'TOO Other' in the tables but 'TOO Svet' in the ledger",
    ),
    "first entry deleted": (
        ["delete from budgeting_ledger_entry where seq = 1"],
        "entries 1–1 are missing before entry 2",
    ),
}


@pytest.mark.parametrize("case", sorted(TAMPERING))
def test_tampering_is_detected(town: Town, case: str) -> None:
    build(town)
    statements, message = TAMPERING[case]
    execute(town, *statements)
    problems = verify(town)
    assert problems, case
    assert any(message in p for p in problems), problems


def test_a_forged_append_with_valid_hashes_is_caught_by_the_tables(town: Town) -> None:
    build(town)
    with town.context.database.transaction() as session:
        append(
            session,
            actor="forger",
            kind="payment.recorded",
            subject="led-2026",
            data={
                "id": 99,
                "paid_on": "2026-02-28",
                "amount": 1_000_000,
                "payee": "X",
                "purpose": "",
                "reference": "",
            },
            now=NOW,
        )
    problems = verify(town)
    assert problems == [
        "project led-2026: payment 99 differs between the tables (None) and the ledger "
        "({'id': 99, 'paid_on': '2026-02-28', 'amount': 1000000, 'payee': 'X', 'purpose': '', "
        "'reference': ''})"
    ]


def rewrite_payment(town: Town, *, amount: int = 1) -> None:
    """The insider's rewrite: payment 1 changed in its table and in its ledger entry (3), every
    later hash recomputed and the head moved, all straight in the database."""
    execute(town, f"update budgeting_payment set amount = {amount} where id = 1")
    with town.context.database.transaction() as session:
        rows = session.execute(
            text(
                "select seq, at, actor, kind, subject, data from budgeting_ledger_entry order by seq"
            )
        ).all()
        previous = GENESIS
        for seq, at, actor, kind, subject, data in rows:
            data = json.loads(data) if isinstance(data, str) else data
            if seq == 3:
                data["amount"] = amount
            body = {
                "seq": seq,
                "at": at,
                "actor": actor,
                "kind": kind,
                "subject": subject,
                "data": data,
            }
            digest = hash_entry(previous, body)
            session.execute(
                text(
                    "update budgeting_ledger_entry set data = :d, prev_hash = :p, entry_hash = :h where seq = :s"
                ),
                {"d": json.dumps(data), "p": previous, "h": digest, "s": seq},
            )
            previous = digest
        session.execute(text("update budgeting_ledger_head set entry_hash = :h"), {"h": previous})


def test_a_rewritten_history_is_caught_by_a_published_head(town: Town) -> None:
    build(town)
    published = verify_ledger_head(town)
    rewrite_payment(town)
    problems = verify(town, expected_head=published)
    assert f"the published head {published} is not in the chain (history rewritten?)" in problems


def test_the_insiders_rewrite_fails_verification(sqlite_town: Town, sqlite_url: str) -> None:
    """Changed in the table and in the entry, chain recomputed, head moved: the CLI says so."""
    from qala.cli.budget import app

    build(sqlite_town)
    rewrite_payment(sqlite_town)
    result = CliRunner().invoke(app, ["ledger", "verify"], env={"QALA_DATABASE_URL": sqlite_url})
    assert result.exit_code == 1, result.output
    assert "ledger intact" not in result.output
    assert "the entries do not hash to the signed root of size 5" in result.output


def verify_ledger_head(town: Town) -> str:
    key = public_key(town)
    with town.context.database.session() as session:
        return verify_ledger(session, public_key=key).head_hash


def test_cli_and_public_endpoint_report_tampering(
    sqlite_town: Town, sqlite_url: str, tmp_path: Path
) -> None:
    from qala.api import create_app
    from qala.cli.budget import app

    town = sqlite_town
    build(town)
    runner = CliRunner()
    env = {"QALA_DATABASE_URL": sqlite_url}
    ok = runner.invoke(app, ["ledger", "verify", "--json"], env=env)
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.output)["ok"] is True
    exported = tmp_path / "ledger.json"
    assert runner.invoke(app, ["ledger", "export", "-o", str(exported)], env=env).exit_code == 0
    http = TestClient(create_app(context=town.context))
    assert http.get("/api/v1/budgeting/ledger/verify").json()["ok"] is True
    assert len(http.get("/api/v1/budgeting/ledger").json()) == 5

    execute(town, "update budgeting_ledger_entry set kind = 'payment.cancelled' where seq = 4")
    bad = runner.invoke(app, ["ledger", "verify"], env=env)
    assert bad.exit_code == 1
    assert "entry 4: its content does not match its hash" in bad.output
    body = http.get("/api/v1/budgeting/ledger/verify").json()
    assert body["ok"] is False and any("entry 4" in p for p in body["problems"])
    # The exported copy taken before the tampering still verifies on its own.
    assert runner.invoke(app, ["ledger", "verify", "--file", str(exported)], env=env).exit_code == 0
    copy = json.loads(exported.read_text())
    copy[1]["data"]["changes"]["status"][1] = "delivered"
    exported.write_text(json.dumps(copy))
    assert runner.invoke(app, ["ledger", "verify", "--file", str(exported)], env=env).exit_code == 1


def test_concurrent_writers_queue_on_the_head(town: Town) -> None:
    import threading

    build(town)
    failures: list[str] = []
    barrier = threading.Barrier(4)

    def pay(worker: int) -> None:
        barrier.wait()
        for k in range(5):
            try:
                with town.context.database.transaction() as session:
                    record_payment(
                        session,
                        "led-2026",
                        paid_on=date(2026, 2, 28),
                        amount=1_000 + 10 * worker + k,
                        payee=f"worker {worker}",
                        actor="treasury",
                        now=NOW,
                    )
            except Exception as exc:  # the test reports whatever went wrong
                failures.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=pay, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert failures == []
    key = public_key(town)
    with town.context.database.session() as session:
        result = verify_ledger(session, public_key=key)
    assert result.ok, result.problems
    assert result.entries == 5 + 20


def test_a_projects_position_is_kept_in_the_ledger_and_a_moved_marker_is_caught(
    town: Town,
) -> None:
    with town.context.database.transaction() as session:
        create_project(
            session,
            NewProject(
                code="square",
                place_code="astana",
                title={"ru": "Сквер"},
                budget=1_000_000,
                planned_end=date(2026, 9, 1),
                lat=51.128207,
                lon=71.430411,
            ),
            actor="akimat",
            now=NOW,
        )
        moved = update_project(
            session, "square", {"lat": 51.1, "lon": 71.4}, actor="akimat", now=NOW
        )
        with pytest.raises(ValidationError) as refused:
            update_project(session, "square", {"lat": 95}, actor="akimat", now=NOW)
    assert (moved.lat, moved.lon) == (51.1, 71.4)
    assert {p.column for p in refused.value.problems} == {"lat", "lon"}  # out of range, alone
    with town.context.database.session() as session:
        created, updated = [e.data for e in list_entries(session)][:2]
    assert (created["lat_e6"], created["lon_e6"]) == (51_128_207, 71_430_411)
    assert updated["changes"]["lat_e6"] == [51_128_207, 51_100_000]
    assert verify(town) == []
    execute(town, "UPDATE budgeting_project SET lon_e6 = 76000000 WHERE code = 'square'")
    assert any("`lon_e6`" in problem for problem in verify(town))
