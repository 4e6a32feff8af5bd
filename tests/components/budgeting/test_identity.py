"""Who a ballot, a registration or a status question speaks for: the account's own IIN, bound to
one account only; public answers name people by display name, never by username or e-mail."""

from __future__ import annotations

import base64
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select
from tests.components.budgeting.conftest import KEY, NOW, iin

from qala.components.accounts.identity import bind_identity
from qala.components.accounts.models import User
from qala.components.budgeting.models import Voter

API = "/api/v1/budgeting/processes/astana-2026"


def open_voting(town: Any) -> None:
    town.voting_with([40_000_000, 30_000_000, 50_000_000], max_choices=2)


def registered(town: Any) -> int:
    with town.context.database.session() as session:
        return int(session.scalar(select(func.count()).select_from(Voter)) or 0)


def test_one_account_casts_one_ballot_whatever_iins_it_types(api: Any) -> None:
    http, town, h = api
    open_voting(town)
    answers = [
        http.post(f"{API}/ballots", headers=h["aigerim"], json={"iin": iin(k), "choices": ["P01"]})
        for k in range(1, 6)
    ]
    assert [a.status_code for a in answers].count(201) == 1
    assert {a.status_code for a in answers[1:]} == {409}
    assert "another IIN" in answers[1].json()["detail"]
    assert registered(town) == 1


def test_an_iin_bound_to_another_account_is_refused_and_nothing_is_written(api: Any) -> None:
    http, town, h = api
    open_voting(town)
    mine = http.post(f"{API}/voters", headers=h["aigerim"], json={"iin": iin(1)})
    assert mine.status_code == 200 and mine.json()["registered"] is True
    theirs = http.post(
        f"{API}/ballots", headers=h["nurlan"], json={"iin": iin(1), "choices": ["P01"]}
    )
    assert theirs.status_code == 409 and "another account" in theirs.json()["detail"]
    stolen = http.post(f"{API}/voters", headers=h["nurlan"], json={"iin": iin(1)})
    assert stolen.status_code == 409
    assert registered(town) == 1
    # Nurlan's own IIN still works: the refusal bound nothing to his account.
    own = http.post(f"{API}/ballots", headers=h["nurlan"], json={"iin": iin(2), "choices": ["P02"]})
    assert own.status_code == 201, own.text


def test_voter_status_answers_only_about_the_callers_own_iin(api: Any) -> None:
    http, town, h = api
    open_voting(town)
    assert (
        http.post(
            f"{API}/ballots", headers=h["aigerim"], json={"iin": iin(1), "choices": ["P01"]}
        ).status_code
        == 201
    )
    own = http.post(f"{API}/voters/status", headers=h["aigerim"], json={"iin": iin(1)})
    assert own.status_code == 200 and own.json()["has_voted"] is True
    snooping = http.post(f"{API}/voters/status", headers=h["nurlan"], json={"iin": iin(1)})
    assert snooping.status_code == 403 and "has_voted" not in snooping.text
    other = http.post(f"{API}/voters/status", headers=h["aigerim"], json={"iin": iin(3)})
    assert other.status_code == 403


def test_comments_show_display_names_never_usernames_or_emails(api: Any) -> None:
    http, _town, h = api
    consultation = {
        "code": "roads-2026",
        "place_code": "astana",
        "title": {"ru": "Дороги"},
        "opens_at": NOW.isoformat(),
        "closes_at": NOW.replace(day=6).isoformat(),
        "questions": [{"key": "idea", "kind": "text", "text": {"ru": "Идея"}}],
    }
    assert (
        http.post(
            "/api/v1/budgeting/consultations", json=consultation, headers=h["akimat"]
        ).status_code
        == 201
    )
    made = http.post(
        "/api/v1/budgeting/consultations/roads-2026/comments",
        headers=h["dana@example.kz"],
        json={"text": "More crossings, please"},
    )
    assert made.status_code == 201 and made.json()["author"] == "Dana B."
    public = http.get("/api/v1/budgeting/consultations/roads-2026")
    assert "Dana B." in public.text and "example.kz" not in public.text


def test_an_email_username_is_not_the_default_display_name(api: Any) -> None:
    from qala.components.accounts.services import create_user

    _http, town, _h = api
    with town.context.database.transaction() as session:
        user = create_user(session, username="someone@mail.kz", password="long enough pw")
        assert "@" not in user.display_name and "someone" not in user.display_name


def test_a_signature_process_counts_ballots_only_from_signature_verified_accounts(
    api: Any, tmp_path: Any
) -> None:
    from tests.components.accounts import nca

    http, town, h = api
    root = nca.root("city-root", NOW)
    national = nca.intermediate("city-national", root, NOW)
    (tmp_path / "roots.pem").write_bytes(nca.pem(root.certificate))
    town.context.settings.signature_roots = tmp_path / "roots.pem"
    town.voting_with([40_000_000, 30_000_000], max_choices=2, verifier="signature")

    ballot = {"iin": iin(1), "choices": ["P01"]}
    unverified = http.post(f"{API}/ballots", headers=h["aigerim"], json=ballot)
    assert unverified.status_code == 403 and "electronic signature" in unverified.json()["detail"]
    assert registered(town) == 0

    def verify(who: str, holder_iin: str) -> Any:
        challenge = http.post("/api/v1/auth/identity/challenge", headers=h[who]).json()["challenge"]
        certificate = nca.resident(holder_iin, national, town.clock(), label=f"r{holder_iin}")
        signature = nca.sign(challenge, certificate, national.certificate)
        return http.post(
            "/api/v1/auth/identity/signature",
            headers=h[who],
            json={"challenge": challenge, "signature": base64.b64encode(signature).decode()},
        )

    signed = verify("aigerim", iin(1))
    assert signed.status_code == 200 and signed.json()["methods"] == ["signature"]
    assert signed.json()["iin_masked"] == "••••••••" + iin(1)[-4:]  # shown back, masked
    assert http.get("/api/v1/auth/identity", headers=h["aigerim"]).json()["bound"] is True
    other = http.post(f"{API}/ballots", headers=h["aigerim"], json={**ballot, "iin": iin(2)})
    assert other.status_code == 409 and "not the IIN verified" in other.json()["detail"]
    assert http.post(f"{API}/ballots", headers=h["aigerim"], json=ballot).status_code == 201
    # Nurlan's certificate names Aigerim's IIN (say, a forged request): refused, nothing bound.
    taken = verify("nurlan", iin(1))
    assert taken.status_code == 409
    # The reason as a catalogue id too, for the identity page to say in the reader's language.
    assert taken.json()["reason"] == {"key": "identity.refused.iin_taken", "params": {}}
    assert http.get("/api/v1/auth/identity", headers=h["nurlan"]).json() == {
        "bound": False,
        "methods": [],
    }
    garbage = http.post(
        "/api/v1/auth/identity/signature",
        headers=h["nurlan"],
        json={"challenge": "x", "signature": "%%%"},
    )
    assert garbage.status_code == 422


def test_proposals_come_only_from_accounts_verified_the_process_way(
    api: Any, tmp_path: Any
) -> None:
    http, town, h = api
    town.process(verifier="signature")
    proposal = {"title": {"ru": "Сквер"}, "estimated_cost": 1_000_000}
    refused = http.post(f"{API}/proposals", headers=h["aigerim"], json=proposal)
    assert refused.status_code == 403 and "electronic signature" in refused.json()["detail"]
    # A declared IIN (from a demo process) is not a signature.
    with town.context.database.transaction() as session:
        aigerim = session.scalar(select(User.id).where(User.username == "aigerim"))
        bind_identity(session, aigerim, iin(1), method="declared", secret_key=KEY, now=NOW)
    assert http.post(f"{API}/proposals", headers=h["aigerim"], json=proposal).status_code == 403
    with town.context.database.transaction() as session:
        bind_identity(session, aigerim, iin(1), method="signature", secret_key=KEY, now=NOW)
    made = http.post(f"{API}/proposals", headers=h["aigerim"], json=proposal)
    assert made.status_code == 201, made.text


def test_simultaneous_ballots_of_one_account_with_different_iins_admit_one(api: Any) -> None:
    import threading

    from qala.components.budgeting.ballots import cast_ballot
    from qala.core.errors import ConflictError

    _http, town, _h = api
    open_voting(town)
    with town.context.database.session() as session:
        aigerim = session.scalar(select(User.id).where(User.username == "aigerim"))
    outcomes: list[str] = []
    barrier = threading.Barrier(8)

    def vote(number: int) -> None:
        barrier.wait()
        try:
            with town.context.database.transaction() as session:
                cast_ballot(
                    session,
                    town.code,
                    iin=iin(number),
                    choices=["P01"],
                    secret_key=KEY,
                    now=town.clock(),
                    account_id=aigerim,
                )
            outcomes.append("accepted")
        except ConflictError:
            outcomes.append("conflict")
        except Exception as exc:  # the test reports whatever else happened
            outcomes.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=vote, args=(k,)) for k in range(1, 9)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(outcomes) == ["accepted"] + ["conflict"] * 7, outcomes
    assert registered(town) == 1


def test_an_account_is_told_that_it_voted_but_nothing_of_how(api: Any) -> None:
    """The process page tells a returning resident their ballot is in (issue 15's walk): the
    account's mark holds when, never which ballot."""
    from sqlalchemy import inspect

    from qala.components.budgeting.ballots import account_vote, cast_ballot

    _http, town, _h = api
    open_voting(town)
    with town.context.database.session() as session:
        users = dict(session.execute(select(User.username, User.id)).all())
        assert account_vote(session, town.code, users["aigerim"]) is None

    def vote(choices: list[str], receipt: str | None = None) -> str:
        with town.context.database.transaction() as session:
            return cast_ballot(
                session,
                town.code,
                iin=iin(3),
                choices=choices,
                secret_key=KEY,
                now=town.clock(),
                receipt=receipt,
                account_id=users["aigerim"],
            ).receipt

    receipt = vote(["P01"])
    with town.context.database.session() as session:
        mark = account_vote(session, town.code, users["aigerim"])
        assert mark is not None and mark.voted_at == town.clock() and mark.changed_at is None
        assert account_vote(session, town.code, users["admin"]) is None
    town.clock.set(town.clock() + timedelta(hours=2))
    vote(["P02"], receipt)
    with town.context.database.session() as session:
        mark = account_vote(session, town.code, users["aigerim"])
        assert mark is not None and mark.changed_at == town.clock()
    columns = inspect(town.context.database.engine).get_columns("budgeting_account_vote")
    assert {c["name"] for c in columns} == {"process_id", "account_id", "voted_at", "changed_at"}
