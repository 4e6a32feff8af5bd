"""The signed Merkle ledger: an insider with the database but not the key file can neither rewrite
nor re-sign it, a rollback to an older signed state is caught with a witness file, and the proofs
the API and CLI hand out verify with the engine alone."""

from __future__ import annotations

import base64
import json
import stat
from datetime import date
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient
from sqlalchemy import text
from tests.components.budgeting.conftest import NOW, Town
from tests.components.budgeting.test_ledger import build, execute, public_key, rewrite_payment
from typer.testing import CliRunner

from qala.components.budgeting.ledger import (
    append,
    check_inclusion,
    leaf_data,
    list_entries,
    newest_head,
    prove_inclusion,
    verify_ledger,
)
from qala.components.budgeting.projects import record_payment
from qala.components.budgeting.signing import (
    LedgerPublicKey,
    LedgerSigner,
    SignedHead,
    head_message,
)
from qala.core.errors import ConfigurationError, ConflictError
from qala.engines.merkle import leaf_hash, tree_root, verify_consistency, verify_inclusion
from qala.settings import Settings
from qala.store.database import Database


def problems_of(town: Town, *, witness: list[SignedHead] | None = None) -> list[str]:
    key = public_key(town)
    with town.context.database.session() as session:
        return verify_ledger(session, public_key=key, witness=witness or []).problems


def current_head(town: Town) -> SignedHead:
    with town.context.database.session() as session:
        head = newest_head(session)
    assert head is not None
    return head


def pay(town: Town, amount: int) -> None:
    with town.context.database.transaction() as session:
        record_payment(
            session,
            "led-2026",
            paid_on=date(2026, 3, 1),
            amount=amount,
            payee="TOO Svet",
            actor="treasury",
            now=NOW,
        )


def rewritten_root(town: Town) -> str:
    """The Merkle root of the entries as they now are (what an insider would want signed)."""
    with town.context.database.session() as session:
        return tree_root([leaf_hash(leaf_data(row)) for row in list_entries(session)]).hex()


def roll_back_to_five(town: Town) -> None:
    """The insider's rollback: the sixth entry, its signed head and its payment row deleted, the
    chain head moved back — the database is exactly the older, validly signed state."""
    execute(
        town,
        "delete from budgeting_ledger_entry where seq = 6",
        "delete from budgeting_ledger_signed_head where size = 6",
        "delete from budgeting_payment where id = 3",
        "update budgeting_ledger_head set seq = 5, entry_hash = "
        "(select entry_hash from budgeting_ledger_entry where seq = 5)",
    )


def test_every_append_signs_a_head_over_the_tree(town: Town) -> None:
    build(town)
    head = current_head(town)
    assert head.size == 5
    assert public_key(town).verifies(head)
    with town.context.database.session() as session:
        heads = session.execute(
            text("select size from budgeting_ledger_signed_head order by size")
        ).all()
    assert [size for (size,) in heads] == [1, 2, 3, 4, 5]
    assert problems_of(town) == []


def test_the_insiders_rewrite_is_detected_on_both_stores(town: Town) -> None:
    build(town)
    rewrite_payment(town)
    assert problems_of(town) == [
        "the entries do not hash to the signed root of size 5 "
        "(entries rewritten after they were signed)",
        "the entries do not hash to the signed roots of sizes 3, 4 "
        "(entries rewritten after they were signed)",
    ]


def test_moving_the_signed_root_too_breaks_its_signature(town: Town) -> None:
    build(town)
    rewrite_payment(town)
    root = rewritten_root(town)
    execute(
        town,
        f"update budgeting_ledger_signed_head set root_hash = '{root}' where size = 5",
    )
    assert problems_of(town) == [
        "the newest head (size 5) is not signed by the ledger's key "
        "(forged or altered in the database)",
        "the entries do not hash to the signed roots of sizes 3, 4 "
        "(entries rewritten after they were signed)",
    ]


def test_heads_re_signed_with_another_key_are_refused(town: Town, tmp_path: Path) -> None:
    """The insider generates a key of their own and signs the rewritten tree with it."""
    build(town)
    rewrite_payment(town)
    forger = LedgerSigner(tmp_path / "forger")
    root = rewritten_root(town)
    forged = forger.sign(5, root, current_head(town).timestamp)
    execute(
        town,
        f"update budgeting_ledger_signed_head set root_hash = '{forged.root_hash}', "
        f"signature = '{forged.signature}' where size = 5",
    )
    assert forger.public_key().verifies(forged)
    assert problems_of(town) == [
        "the newest head (size 5) is not signed by the ledger's key "
        "(forged or altered in the database)",
        "the entries do not hash to the signed roots of sizes 3, 4 "
        "(entries rewritten after they were signed)",
    ]


def test_an_append_behind_the_signers_back_is_detected(town: Town) -> None:
    """An entry chained correctly (and its table row) but with no signed head for it."""
    build(town)
    pay(town, 7)
    execute(town, "delete from budgeting_ledger_signed_head where size = 6")
    assert problems_of(town) == [
        "the newest signed head covers 5 entries but the ledger has 6 "
        "(entries added or removed without the signing key)"
    ]


def test_a_rollback_is_caught_by_a_witness_only(town: Town) -> None:
    build(town)
    witness = [current_head(town)]
    pay(town, 7)
    witness.append(current_head(town))
    assert problems_of(town, witness=witness) == []
    roll_back_to_five(town)
    assert problems_of(town) == []  # a validly signed older state, on its own
    problems = problems_of(town, witness=witness)
    assert len(problems) == 1
    assert problems[0].startswith("witness head 2 (size 6, ")
    assert problems[0].endswith(
        "is newer than the ledger, which now has 5 entries (rolled back to an older state?)"
    )


def test_a_rollback_replaced_by_other_entries_breaks_consistency(town: Town) -> None:
    """Rolled back, then a different sixth and seventh entry appended and signed (by a key
    holder): the ledger no longer extends the witnessed head of size 6."""
    build(town)
    pay(town, 7)
    witness = [current_head(town)]
    roll_back_to_five(town)
    pay(town, 8)
    pay(town, 9)
    problems = problems_of(town, witness=witness)
    assert len(problems) == 1 and "is not consistent with witness head 1 (size 6" in problems[0]


def test_a_witness_head_not_signed_by_the_ledger_key_is_refused(town: Town, tmp_path: Path) -> None:
    build(town)
    head = current_head(town)
    forged = LedgerSigner(tmp_path / "other").sign(head.size, head.root_hash, head.timestamp)
    problems = problems_of(town, witness=[forged])
    assert problems == [
        f"witness head 1 (size 5, {head.timestamp}) is not signed by the ledger's key"
    ]


def test_naive_tampering_with_signed_heads_is_detected(town: Town) -> None:
    build(town)
    execute(town, "delete from budgeting_ledger_signed_head where size in (2, 3)")
    assert problems_of(town) == ["signed heads are missing for sizes 2, 3 (deleted?)"]
    # (Heads before the first one kept are not required: a ledger written before signing has
    # none, and the newest head's root covers every entry anyway.)
    execute(town, "update budgeting_ledger_signed_head set signed_at = 'yesterday' where size = 4")
    assert problems_of(town) == [
        "signed heads are missing for sizes 2, 3 (deleted?)",
        "the heads of sizes 4 are not signed by the ledger's key",
    ]
    execute(town, "delete from budgeting_ledger_signed_head")
    assert problems_of(town) == ["no signed head covers the ledger's 5 entries"]


def test_no_append_over_a_missing_or_damaged_head(town: Town) -> None:
    """Rebuilding the tree from the entries would sign whatever they now say."""
    build(town)
    execute(town, "delete from budgeting_ledger_signed_head where size = 5")
    with pytest.raises(ConflictError, match="signed head of size 5 is missing"):
        pay(town, 7)
    execute(town, "delete from budgeting_ledger_signed_head")
    pay(town, 7)  # no head at all: a ledger from before signing, whose tree is built once
    assert problems_of(town) == []


def test_no_append_over_a_damaged_frontier(town: Town) -> None:
    build(town)
    execute(town, "update budgeting_ledger_signed_head set frontier = '[\"zz\"]' where size = 5")
    with pytest.raises(ConflictError, match="signed head of size 5 is damaged"):
        pay(town, 7)


def test_verification_without_a_public_key_is_not_a_pass(town: Town) -> None:
    build(town)
    with town.context.database.session() as session:
        result = verify_ledger(session, public_key=None)
    assert not result.ok
    assert result.problems == [
        "no public key is configured (QALA_LEDGER_PUBLIC_KEY): the signed heads cannot be checked"
    ]


def test_an_append_without_the_signing_key_is_refused(sqlite_url: str) -> None:
    database = Database(sqlite_url)
    try:
        refused = pytest.raises(ConfigurationError, match="signing key is not configured")
        with refused, database.transaction() as session:
            append(session, actor="a", kind="process.created", subject="x", data={}, now=NOW)
        with database.session() as session:
            assert newest_head(session) is None
    finally:
        database.dispose()


def test_the_key_file_is_created_once_owner_only(ledger_key_file: Path) -> None:
    signer = LedgerSigner(ledger_key_file)
    key = signer.public_key()
    assert stat.S_IMODE(ledger_key_file.stat().st_mode) == 0o600
    assert LedgerSigner(ledger_key_file).public_key().text == key.text
    assert Settings().ledger_key_file == ledger_key_file  # QALA_LEDGER_KEY_FILE names it
    head = signer.sign(3, "ab" * 32, "2026-03-01T09:00:00.000000+00:00")
    assert head.message() == head_message(3, "ab" * 32, "2026-03-01T09:00:00.000000+00:00")
    assert head.message() == (
        b'qala-ledger-tree-head-v1\n{"root_hash":"' + b"ab" * 32 + b'","size":3,'
        b'"timestamp":"2026-03-01T09:00:00.000000+00:00"}'
    )
    # Anyone can check a head with the published key alone (base64, PEM, or a file).
    for form in (key.text, key.as_dict()["pem"]):
        assert LedgerPublicKey.parse(form).verifies(head)
    raw = Ed25519PrivateKey.generate().public_key()
    assert not LedgerPublicKey(raw).verifies(head)
    with pytest.raises(ConfigurationError, match="neither a key"):
        LedgerPublicKey.parse("no-such-file.pub")
    bad = ledger_key_file.parent / "bad"
    bad.write_text("not a key")
    with pytest.raises(ConfigurationError, match="cannot read the ledger signing key"):
        LedgerSigner(bad).public_key()


def test_api_proofs_verify_with_the_engine(town: Town) -> None:
    from qala.api import create_app

    build(town)
    pay(town, 7)
    http = TestClient(create_app(context=town.context))
    api = "/api/v1/budgeting/ledger"
    published = http.get(f"{api}/public-key").json()
    assert published["algorithm"] == "Ed25519"
    key = LedgerPublicKey.parse(published["public_key"])
    head = SignedHead.from_dict(http.get(f"{api}/head").json())
    assert head.size == 6 and key.verifies(head)
    entries = http.get(api).json()
    for seq in range(1, 7):
        for size in range(seq, 7):
            proof = http.get(f"{api}/proof/inclusion", params={"entry": seq, "size": size}).json()
            signed = SignedHead.from_dict(proof["signed_head"])
            assert key.verifies(signed) and signed.size == size
            assert proof["entry"] == entries[seq - 1]
            assert verify_inclusion(
                leaf_hash(leaf_data(entries[seq - 1])),
                seq - 1,
                size,
                [bytes.fromhex(h) for h in proof["proof"]],
                bytes.fromhex(signed.root_hash),
            )
            assert check_inclusion(proof, key) == []
    for first in range(1, 7):
        found = http.get(f"{api}/proof/consistency", params={"first": first}).json()
        old = SignedHead.from_dict(found["first_signed_head"])
        new = SignedHead.from_dict(found["second_signed_head"])
        assert key.verifies(old) and key.verifies(new) and new == head
        assert verify_consistency(
            first,
            6,
            bytes.fromhex(old.root_hash),
            bytes.fromhex(new.root_hash),
            [bytes.fromhex(h) for h in found["proof"]],
        )
    assert http.get(f"{api}/verify").json()["ok"] is True


def test_api_refuses_proofs_outside_the_ledger(town: Town) -> None:
    from qala.api import create_app

    http = TestClient(create_app(context=town.context))
    api = "/api/v1/budgeting/ledger"
    assert http.get(f"{api}/head").status_code == 404
    build(town)
    assert http.get(f"{api}/proof/inclusion", params={"entry": 6}).status_code == 422
    assert http.get(f"{api}/proof/inclusion", params={"entry": 1, "size": 9}).status_code == 404
    assert http.get(f"{api}/proof/inclusion", params={"entry": 0}).status_code == 422
    assert http.get(f"{api}/proof/inclusion", params={"entry": "x"}).status_code == 422
    bad = http.get(f"{api}/proof/consistency", params={"first": 4, "second": 3})
    assert bad.status_code == 422
    assert http.get(f"{api}/proof/consistency", params={"first": 2, "second": 8}).status_code == 404


def test_a_proof_of_a_changed_entry_fails(town: Town) -> None:
    build(town)
    with town.context.database.session() as session:
        proof = prove_inclusion(session, 3)
    key = public_key(town)
    assert check_inclusion(proof, key) == []
    proof["entry"]["data"]["amount"] = 1
    assert check_inclusion(proof, key) == [
        "entry 3 is not in the signed tree of 5 entries (changed after it was signed?)"
    ]
    proof["signed_head"]["signature"] = base64.b64encode(bytes(64)).decode()
    assert "the head of size 5 is not signed by the ledger's key" in check_inclusion(proof, key)
    assert check_inclusion({"entry": {}}, key)[0].startswith("the proof is malformed")
    with town.context.database.session() as session:
        other = prove_inclusion(session, 2)
    other["leaf_index"] = 2  # entry 2 offered as entry 3's leaf
    assert check_inclusion(other, key)[0] == "entry 2 is offered as leaf 2 (entry 3)"


def test_cli_head_witness_and_prove(
    sqlite_town: Town, sqlite_url: str, tmp_path: Path, ledger_key_file: Path
) -> None:
    from qala.cli.budget import app

    town = sqlite_town
    build(town)
    runner = CliRunner()
    env = {"QALA_DATABASE_URL": sqlite_url}
    witness = tmp_path / "witness.jsonl"

    def run(*args: str, **extra: str) -> tuple[int, str]:
        result = runner.invoke(app, ["ledger", *args], env={**env, **extra})
        return result.exit_code, " ".join(result.output.split())  # unwrapped by Rich

    assert run("head", "--save", str(witness))[0] == 0
    pay(town, 7)
    code, output = run("head", "--save", str(witness), "--json")
    assert code == 0 and json.loads(output)["size"] == 6
    assert [json.loads(line)["size"] for line in witness.read_text().splitlines()] == [5, 6]

    code, output = run("verify", "--witness", str(witness))
    assert code == 0, output
    assert "signed tree verified, consistent with" in output
    code, output = run("prove", "--entry", "3")
    assert code == 0 and "entry 3 is in the signed tree of 6 entries" in output, output
    code, output = run("prove", "--entry", "2", "--size", "4", "--json")
    assert code == 0 and json.loads(output)["problems"] == []

    roll_back_to_five(town)
    assert run("verify")[0] == 0  # the older state is validly signed...
    code, output = run("verify", "--witness", str(witness))
    assert code == 1  # ...and the witness remembers the newer one
    assert "witness head 2 (size 6" in output and "rolled back" in output

    # A verifier holding only the published public key (no key file on this machine).
    published = LedgerSigner(ledger_key_file).public_key().text
    elsewhere = str(tmp_path / "absent_key")
    code, output = run("verify", QALA_LEDGER_KEY_FILE=elsewhere)
    assert code == 1 and "no public key is configured" in output
    code, output = run("verify", QALA_LEDGER_KEY_FILE=elsewhere, QALA_LEDGER_PUBLIC_KEY=published)
    assert code == 0, output
    other = LedgerSigner(tmp_path / "other").public_key().text
    code, output = run("verify", "--public-key", other)
    assert code == 1 and "the newest head (size 5) is not signed by the ledger's key" in output
    code, output = run("prove", "--entry", "1", "--public-key", other)
    assert code == 1 and "the head of size 5 is not signed by the ledger's key" in output

    witness.write_text(witness.read_text() + '{"size": "six"}\n')
    code, output = run("verify", "--witness", str(witness))
    assert code == 2 and "row 3" in output and "not a signed head" in output


def test_the_project_page_shows_the_rewrite(sqlite_town: Town) -> None:
    from qala.api import create_app

    build(sqlite_town)
    http = TestClient(create_app(context=sqlite_town.context), headers={"accept": "text/html"})
    page = http.get("/budgeting/projects/led-2026")
    assert page.status_code == 200 and 'class="check-ok" id="ledger-check"' in page.text
    assert 'href="/budgeting/ledger"' in page.text
    rewrite_payment(sqlite_town)
    page = http.get("/budgeting/projects/led-2026")
    assert 'class="check-bad" id="ledger-check"' in page.text
    assert "the entries do not hash to the signed root of size 5" in page.text


def test_the_residents_page_shows_the_signed_head_in_each_language(sqlite_town: Town) -> None:
    from qala.api import create_app

    app = create_app(context=sqlite_town.context)

    def page(language: str) -> str:
        http = TestClient(app, headers={"accept": "text/html", "accept-language": language})
        response = http.get("/budgeting/ledger")
        assert response.status_code == 200
        return response.text

    assert "The ledger has no signed head yet." in page("en")
    build(sqlite_town)
    head = current_head(sqlite_town)
    key = public_key(sqlite_town).text
    for language, title in (
        ("en", "The signed ledger"),
        ("ru", "Подписанный журнал"),
        ("kk", "Қол қойылған журнал"),
    ):
        html = page(language)
        assert f"<h1>{title}</h1>" in html
        assert head.root_hash in html and head.signature in html and key in html
        assert 'class="check-ok" id="ledger-check"' in html
        assert "qala budget ledger verify --witness heads.jsonl" in html
    rewrite_payment(sqlite_town)
    assert "the entries do not hash to the signed root of size 5" in page("en")
