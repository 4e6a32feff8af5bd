"""An append-only, hash-chained ledger of every change to tracked projects and their money.

Each entry holds ``seq`` (1, 2, 3, … without gaps), ``at`` (ISO time, as hashed), ``actor``,
``kind`` (``project.created``, ``payment.recorded``, …), ``subject`` (a project or process code)
and ``data``; its hash is

    entry_hash = sha256_hex(prev_hash + canonical_json({seq, at, actor, kind, subject, data}))

with ``prev_hash`` the previous entry's hash (64 zeros for the first) and canonical JSON = keys
sorted, no spaces, UTF-8 (no floats are ever written: money is whole tenge, dates ISO text).

:func:`verify_chain` needs nothing but the entries (anyone can run it on the public export);
:func:`verify_ledger` also checks the stored head (a deleted tail) and replays the ledger into the
projects, milestones, payments and risks it describes and compares them with the tables (a change
made behind the ledger's back).

A hash chain alone can be recomputed by whoever can write the database. So the entries are also
the leaves of a Merkle tree in the manner of Certificate Transparency (RFC 9162, ``qala.engines.
merkle``; leaf data = the UTF-8 canonical JSON of the published entry, ``as_dict()``), and every
append signs the new tree head (size, root, time) with an Ed25519 key kept in a file outside the
database (``QALA_LEDGER_KEY_FILE``; ``signing.head_message`` is what is signed). Verification
checks the newest head's signature with a public key the verifier configures (never one read from
the database), that the entries hash to its root, and — given heads saved earlier (a *witness*
file) — that today's tree extends each of them (a rollback or rewrite of signed history).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from qala.components.budgeting.models import (
    LedgerEntry,
    LedgerHead,
    LedgerSignedHead,
    Milestone,
    Payment,
    Project,
    Risk,
)
from qala.components.budgeting.signing import (
    SIGNER,
    LedgerPublicKey,
    LedgerSigner,
    SignedHead,
    canonical_json,
)
from qala.core.errors import ConfigurationError, ConflictError, NotFoundError, ValidationError
from qala.engines.merkle import (
    Frontier,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    tree_root,
    verify_consistency,
    verify_inclusion,
)
from qala.store.statements import insert_ignoring

GENESIS = "0" * 64
PROJECT_FIELDS = (
    "code",
    "place_code",
    "title",
    "description",
    "origin",
    "process_id",
    "proposal_id",
    "budget",
    "contractor",
    "status",
    "planned_start",
    "planned_end",
    "actual_end",
    "impact_note",
    "lat_e6",
    "lon_e6",
)
"""A project's fields in the ledger (entries written before ``lat_e6``/``lon_e6`` existed replay
them as None, which is what the new columns hold for those projects)."""
MILESTONE_FIELDS = ("id", "title", "due_on", "done_on")
PAYMENT_FIELDS = ("id", "paid_on", "amount", "payee", "purpose", "reference")
RISK_FIELDS = ("id", "risk", "likelihood", "impact", "owner", "mitigation", "status")


def hash_entry(prev_hash: str, body: Mapping[str, Any]) -> str:
    """``sha256(prev_hash + canonical_json(body))`` as hex."""
    return hashlib.sha256((prev_hash + canonical_json(dict(body))).encode("utf-8")).hexdigest()


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, float):
        raise TypeError("the ledger holds no floats (money is whole tenge)")
    return value


def snapshot(row: object, fields: Sequence[str]) -> dict[str, Any]:
    """A row's fields in ledger form (dates as ISO text)."""
    return {name: _plain(getattr(row, name)) for name in fields}


@dataclass(frozen=True)
class LedgerRecord:
    """One entry as stored and published."""

    seq: int
    at: str
    actor: str
    kind: str
    subject: str
    data: dict[str, Any]
    prev_hash: str
    entry_hash: str

    def body(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "at": self.at,
            "actor": self.actor,
            "kind": self.kind,
            "subject": self.subject,
            "data": self.data,
        }

    def as_dict(self) -> dict[str, Any]:
        return {**self.body(), "prev_hash": self.prev_hash, "entry_hash": self.entry_hash}


def _record(row: LedgerEntry) -> LedgerRecord:
    return LedgerRecord(
        row.seq, row.at, row.actor, row.kind, row.subject, row.data, row.prev_hash, row.entry_hash
    )


def leaf_data(entry: LedgerRecord | Mapping[str, Any]) -> bytes:
    """What a tree leaf hashes: the published entry (``as_dict()``) as canonical JSON, UTF-8."""
    published = entry.as_dict() if isinstance(entry, LedgerRecord) else dict(entry)
    return canonical_json(published).encode("utf-8")


def _signer_of(session: Session) -> LedgerSigner:
    signer = session.info.get(SIGNER)
    if not isinstance(signer, LedgerSigner):
        raise ConfigurationError(
            "the ledger's signing key is not configured for this database: start the "
            "components (qala.registry.start_components) or call signing.ledger_signer(context)"
        )
    return signer


def _frontier_after(session: Session, size: int) -> Frontier:
    """The right edge of the tree of the first ``size`` entries, from its signed head; for a
    ledger written before heads were signed (no head at all), from the entries, once.

    A missing or damaged head among signed ones is refused rather than rebuilt from the entries:
    rebuilding would sign whatever the entries now say, blessing a rewrite."""
    if size == 0:
        return Frontier()
    row = session.get(LedgerSignedHead, size)
    if row is None:
        if session.scalar(select(LedgerSignedHead.size).limit(1)) is None:
            return Frontier.of([leaf_hash(leaf_data(r)) for r in list_entries(session, limit=size)])
        raise ConflictError(
            f"the ledger's signed head of size {size} is missing (deleted?); nothing is appended "
            "over it: run `qala budget ledger verify`"
        )
    try:
        return Frontier(size, tuple(bytes.fromhex(h) for h in row.frontier))
    except (ValueError, TypeError) as exc:
        raise ConflictError(
            f"the ledger's signed head of size {size} is damaged ({exc}); nothing is appended "
            "over it: run `qala budget ledger verify`"
        ) from None


def append(
    session: Session,
    *,
    actor: str,
    kind: str,
    subject: str,
    data: Mapping[str, Any],
    now: datetime,
) -> LedgerRecord:
    """Add one entry after the current head and sign the new tree head (see the module doc).

    The head row is *updated first* (its number raised by one): that takes the write lock on both
    stores (the row lock in PostgreSQL, the database's write lock in SQLite), so concurrent writers
    queue and each reads the head the previous one committed.
    """
    signer = _signer_of(session)
    session.flush()  # pending table writes first, so a failure shows where it belongs
    session.execute(insert_ignoring(session, LedgerHead).values(id=1, seq=0, entry_hash=GENESIS))
    session.execute(
        update(LedgerHead)
        .where(LedgerHead.id == 1)
        .values(seq=LedgerHead.seq + 1)
        .execution_options(synchronize_session=False)
    )
    seq, previous = session.execute(
        select(LedgerHead.seq, LedgerHead.entry_hash).where(LedgerHead.id == 1)
    ).one()
    moment = now.astimezone(UTC) if now.tzinfo else now.replace(tzinfo=UTC)
    body = {
        "seq": seq,
        "at": moment.isoformat(timespec="microseconds"),
        "actor": actor,
        "kind": kind,
        "subject": subject,
        "data": _plain(dict(data)),
    }
    digest = hash_entry(previous, body)
    row = LedgerEntry(**body, prev_hash=previous, entry_hash=digest)
    frontier = _frontier_after(session, seq - 1)
    session.add(row)
    frontier = frontier.append(leaf_hash(leaf_data(_record(row))))
    head = signer.sign(seq, frontier.root().hex(), body["at"])
    session.add(
        LedgerSignedHead(
            size=seq,
            root_hash=head.root_hash,
            signed_at=head.timestamp,
            signature=head.signature,
            frontier=[h.hex() for h in frontier.hashes],
        )
    )
    session.execute(
        update(LedgerHead)
        .where(LedgerHead.id == 1)
        .values(entry_hash=digest)
        .execution_options(synchronize_session=False)
    )
    session.flush()
    return _record(row)


def list_entries(
    session: Session, *, after: int = 0, limit: int | None = None, subject: str | None = None
) -> list[LedgerRecord]:
    """Entries in order (``after`` a sequence number; optionally of one subject)."""
    query = select(LedgerEntry).where(LedgerEntry.seq > after).order_by(LedgerEntry.seq)
    if subject is not None:
        query = query.where(LedgerEntry.subject == subject)
    if limit is not None:
        query = query.limit(limit)
    return [_record(row) for row in session.scalars(query)]


def _signed_head(row: LedgerSignedHead) -> SignedHead:
    return SignedHead(row.size, row.root_hash, row.signed_at, row.signature)


def newest_head(session: Session) -> SignedHead | None:
    """The newest signed tree head (None for an empty ledger)."""
    row = session.scalars(
        select(LedgerSignedHead).order_by(LedgerSignedHead.size.desc()).limit(1)
    ).first()
    return None if row is None else _signed_head(row)


def head_of_size(session: Session, size: int) -> SignedHead | None:
    """The head signed when the ledger had ``size`` entries."""
    row = session.get(LedgerSignedHead, size)
    return None if row is None else _signed_head(row)


def published_head(session: Session) -> SignedHead:
    """The newest signed tree head; :class:`NotFoundError` while the ledger is empty."""
    head = newest_head(session)
    if head is None:
        raise NotFoundError("the ledger has no signed head yet")
    return head


def _tree_size(session: Session, size: int | None) -> int:
    return published_head(session).size if size is None else size


def _leaves_of_first(session: Session, size: int) -> tuple[list[LedgerRecord], list[bytes]]:
    records = list_entries(session, limit=size)
    if len(records) < size:
        raise NotFoundError(f"the ledger has {len(records)} entries, not {size}")
    return records, [leaf_hash(leaf_data(r)) for r in records]


def prove_inclusion(session: Session, seq: int, *, size: int | None = None) -> dict[str, Any]:
    """Entry ``seq`` with the RFC 9162 audit path that puts it into the tree of ``size`` entries
    (the newest signed head's size by default), and that size's signed head."""
    size = _tree_size(session, size)
    if not 1 <= seq <= size:
        raise ValidationError.single(f"entry {seq} is not in a tree of {size} entries")
    records, leaves = _leaves_of_first(session, size)
    head = head_of_size(session, size)
    return {
        "entry": records[seq - 1].as_dict(),
        "leaf_index": seq - 1,
        "leaf_hash": leaves[seq - 1].hex(),
        "tree_size": size,
        "root_hash": tree_root(leaves).hex(),
        "signed_head": None if head is None else head.as_dict(),
        "proof": [h.hex() for h in inclusion_proof(leaves, seq - 1)],
    }


def prove_consistency(session: Session, first: int, *, second: int | None = None) -> dict[str, Any]:
    """The RFC 9162 consistency proof that the tree of ``first`` entries is a prefix of the tree
    of ``second`` (the newest signed head's size by default), with both signed heads."""
    second = _tree_size(session, second)
    if not 1 <= first <= second:
        raise ValidationError.single(
            f"no consistency proof from {first} to {second} entries (need 1 ≤ first ≤ second)"
        )
    _records, leaves = _leaves_of_first(session, second)
    heads = (head_of_size(session, first), head_of_size(session, second))
    return {
        "first": first,
        "second": second,
        "first_root_hash": tree_root(leaves[:first]).hex(),
        "second_root_hash": tree_root(leaves).hex(),
        "first_signed_head": None if heads[0] is None else heads[0].as_dict(),
        "second_signed_head": None if heads[1] is None else heads[1].as_dict(),
        "proof": [h.hex() for h in consistency_proof(leaves, first)],
    }


def check_inclusion(found: Mapping[str, Any], public_key: LedgerPublicKey | None) -> list[str]:
    """What is wrong with a proof from :func:`prove_inclusion` (or the API), checked the way
    anyone can: the entry's leaf hash, its audit path, the signed head (empty when all holds)."""
    problems: list[str] = []
    try:
        head = SignedHead.from_dict(found.get("signed_head"))
        entry = dict(found["entry"])
        leaf = leaf_hash(leaf_data(entry))
        path = [bytes.fromhex(h) for h in found["proof"]]
        root = bytes.fromhex(head.root_hash)
        index = int(found["leaf_index"])
    except (ValidationError, KeyError, TypeError, ValueError) as exc:
        return [f"the proof is malformed ({exc})"]
    if entry.get("seq") != index + 1:
        problems.append(
            f"entry {entry.get('seq')!r} is offered as leaf {index} (entry {index + 1})"
        )
    if public_key is None:
        problems.append("no public key is configured: the head's signature was not checked")
    elif not public_key.verifies(head):
        problems.append(f"the head of size {head.size} is not signed by the ledger's key")
    if not verify_inclusion(leaf, index, head.size, path, root):
        problems.append(
            f"entry {entry.get('seq')} is not in the signed tree of {head.size} entries "
            "(changed after it was signed?)"
        )
    return problems


@dataclass
class Verification:
    """What :func:`verify_chain` / :func:`verify_ledger` found; ``ok`` when ``problems`` is empty."""

    entries: int
    head_seq: int
    head_hash: str
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "entries": self.entries,
            "head_seq": self.head_seq,
            "head_hash": self.head_hash,
            "problems": list(self.problems),
        }


def verify_chain(
    entries: Iterable[Mapping[str, Any] | LedgerRecord], *, expected_head: str | None = None
) -> Verification:
    """Check the chain itself: numbering without gaps, each link, each hash.

    ``entries`` may be records or the published dictionaries (``GET /api/v1/budgeting/ledger``),
    in stored order. ``expected_head`` is a head hash published earlier (e.g. in a newspaper or on
    another site): the chain must still contain it.
    """
    problems: list[str] = []
    previous = GENESIS
    expected_seq = 1
    count = 0
    seen_head = expected_head is None
    for item in entries:
        entry = item.as_dict() if isinstance(item, LedgerRecord) else dict(item)
        count += 1
        seq = entry.get("seq")
        if seq != expected_seq:
            if isinstance(seq, int) and seq > expected_seq:
                problems.append(
                    f"entries {expected_seq}–{seq - 1} are missing before entry {seq} (deleted?)"
                )
            else:
                problems.append(
                    f"entry at position {count} has number {seq!r}, expected {expected_seq} (reordered?)"
                )
        if entry.get("prev_hash") != previous:
            problems.append(
                f"entry {seq}: its prev_hash does not match the hash of the entry before it "
                "(an entry was removed, inserted or reordered)"
            )
        body = {k: entry.get(k) for k in ("seq", "at", "actor", "kind", "subject", "data")}
        recomputed = hash_entry(str(entry.get("prev_hash")), body)
        if recomputed != entry.get("entry_hash"):
            problems.append(
                f"entry {seq}: its content does not match its hash (changed after it was written)"
            )
        previous = str(entry.get("entry_hash"))
        if expected_head is not None and previous == expected_head:
            seen_head = True
        expected_seq = (seq if isinstance(seq, int) else expected_seq) + 1
    if not seen_head:
        problems.append(
            f"the published head {expected_head} is not in the chain (history rewritten?)"
        )
    return Verification(count, expected_seq - 1, previous, problems)


def replay(entries: Iterable[LedgerRecord]) -> dict[str, dict[str, Any]]:
    """The state of every project the ledger describes: fields, milestones, payments, risks."""
    projects: dict[str, dict[str, Any]] = {}
    for entry in entries:
        data = entry.data
        if entry.kind == "project.created":
            projects[entry.subject] = {
                "fields": {k: data.get(k) for k in PROJECT_FIELDS},
                "milestones": {},
                "payments": {},
                "risks": {},
            }
            continue
        state = projects.get(entry.subject)
        if state is None:
            continue  # process entries, or an entry about an unknown project (reported below)
        if entry.kind == "project.updated":
            for name, (_old, new) in data["changes"].items():
                state["fields"][name] = new
        elif entry.kind in ("milestone.added", "payment.recorded", "risk.added"):
            bucket = {"milestone": "milestones", "payment": "payments", "risk": "risks"}[
                entry.kind.split(".")[0]
            ]
            state[bucket][str(data["id"])] = dict(data)
        elif entry.kind in ("milestone.updated", "risk.updated"):
            bucket = "milestones" if entry.kind.startswith("milestone") else "risks"
            target = state[bucket].setdefault(str(data["id"]), {"id": data["id"]})
            for name, (_old, new) in data["changes"].items():
                target[name] = new
    return projects


def stored_state(session: Session) -> dict[str, dict[str, Any]]:
    """The same shape as :func:`replay`, read from the project tables."""
    projects: dict[str, dict[str, Any]] = {}
    by_id: dict[int, dict[str, Any]] = {}
    for project in session.scalars(select(Project)):
        state = {
            "fields": snapshot(project, PROJECT_FIELDS),
            "milestones": {},
            "payments": {},
            "risks": {},
        }
        projects[project.code] = state
        by_id[project.id] = state

    def add(
        project_id: int, bucket: str, row: Milestone | Payment | Risk, fields: Sequence[str]
    ) -> None:
        owner = by_id.get(project_id)
        if owner is not None:
            owner[bucket][str(row.id)] = snapshot(row, fields)

    for milestone in session.scalars(select(Milestone)):
        add(milestone.project_id, "milestones", milestone, MILESTONE_FIELDS)
    for payment in session.scalars(select(Payment)):
        add(payment.project_id, "payments", payment, PAYMENT_FIELDS)
    for risk in session.scalars(select(Risk)):
        add(risk.project_id, "risks", risk, RISK_FIELDS)
    return projects


def _compare(replayed: dict[str, Any], stored: dict[str, Any]) -> list[str]:
    problems = []
    for code in sorted(set(replayed) | set(stored)):
        if code not in stored:
            problems.append(f"project {code}: in the ledger but missing from the tables")
            continue
        if code not in replayed:
            problems.append(f"project {code}: in the tables but never recorded in the ledger")
            continue
        want, have = replayed[code], stored[code]
        for name in PROJECT_FIELDS:
            if want["fields"].get(name) != have["fields"].get(name):
                problems.append(
                    f"project {code}: `{name}` is {have['fields'].get(name)!r} in the tables "
                    f"but {want['fields'].get(name)!r} in the ledger"
                )
        for bucket in ("milestones", "payments", "risks"):
            for key in sorted(set(want[bucket]) | set(have[bucket]), key=int):
                if want[bucket].get(key) != have[bucket].get(key):
                    problems.append(
                        f"project {code}: {bucket[:-1]} {key} differs between the tables "
                        f"({have[bucket].get(key)!r}) and the ledger ({want[bucket].get(key)!r})"
                    )
    return problems


def verify_ledger(
    session: Session,
    *,
    public_key: LedgerPublicKey | None,
    expected_head: str | None = None,
    witness: Sequence[SignedHead] = (),
) -> Verification:
    """Check the stored chain, its head, the signed tree heads, and that the project tables are
    what the ledger says.

    ``public_key`` checks the newest head's signature (``None``: reported as a problem, since an
    unsigned check proves nothing against an insider). ``witness`` are heads saved earlier: today's
    tree must extend each of them (a rollback to an older signed state, or signed history
    rewritten, is caught).
    """
    records = list_entries(session)
    result = verify_chain(records, expected_head=expected_head)
    head = session.get(LedgerHead, 1)
    if head is None:
        if records:
            result.problems.append("the ledger head is missing while entries exist")
    elif (head.seq, head.entry_hash) != (result.head_seq, result.head_hash):
        result.problems.append(
            f"the ledger ends at entry {result.head_seq} but its head says {head.seq} "
            "(entries at the end were deleted, or added behind the ledger's back)"
        )
    result.problems.extend(_check_signed_tree(session, records, public_key, witness))
    result.problems.extend(_compare(replay(records), stored_state(session)))
    return result


def _check_signed_tree(
    session: Session,
    records: Sequence[LedgerRecord],
    public_key: LedgerPublicKey | None,
    witness: Sequence[SignedHead],
) -> list[str]:
    problems: list[str] = []
    if public_key is None:
        problems.append(
            "no public key is configured (QALA_LEDGER_PUBLIC_KEY): the signed heads cannot be "
            "checked"
        )
    heads = [
        _signed_head(row)
        for row in session.scalars(select(LedgerSignedHead).order_by(LedgerSignedHead.size))
    ]
    leaves = [leaf_hash(leaf_data(r)) for r in records]
    if not heads:
        if records:
            problems.append(f"no signed head covers the ledger's {len(records)} entries")
        return problems
    signed = heads[-1]
    if public_key is not None and not public_key.verifies(signed):
        problems.append(
            f"the newest head (size {signed.size}) is not signed by the ledger's key "
            "(forged or altered in the database)"
        )
    if signed.size != len(records):
        problems.append(
            f"the newest signed head covers {signed.size} entries but the ledger has "
            f"{len(records)} (entries added or removed without the signing key)"
        )
    elif tree_root(leaves).hex() != signed.root_hash:
        problems.append(
            f"the entries do not hash to the signed root of size {signed.size} "
            "(entries rewritten after they were signed)"
        )
    problems.extend(_check_earlier_heads(heads[:-1], signed.size, leaves, public_key))
    for number, saved in enumerate(witness, start=1):
        problems.extend(_check_witness(number, saved, leaves, public_key))
    return problems


def _check_earlier_heads(
    heads: Sequence[SignedHead],
    newest_size: int,
    leaves: Sequence[bytes],
    public_key: LedgerPublicKey | None,
) -> list[str]:
    """Every head before the newest: present for each size from the first one kept (a ledger
    written before heads were signed has none before), signed, the root of that prefix."""
    sizes = {head.size for head in heads}
    first = heads[0].size if heads else newest_size
    missing = [size for size in range(first, newest_size) if size not in sizes]
    unsigned = [h.size for h in heads if public_key is not None and not public_key.verifies(h)]
    frontier, mismatched = Frontier(), []
    for head in heads:
        if head.size > len(leaves):
            mismatched.append(head.size)
            continue
        while frontier.size < head.size:
            frontier = frontier.append(leaves[frontier.size])
        if frontier.root().hex() != head.root_hash:
            mismatched.append(head.size)
    problems = []
    if missing:
        problems.append(f"signed heads are missing for sizes {_sizes(missing)} (deleted?)")
    if unsigned:
        problems.append(f"the heads of sizes {_sizes(unsigned)} are not signed by the ledger's key")
    if mismatched:
        problems.append(
            f"the entries do not hash to the signed roots of sizes {_sizes(mismatched)} "
            "(entries rewritten after they were signed)"
        )
    return problems


def _sizes(sizes: Sequence[int]) -> str:
    shown = ", ".join(str(size) for size in sizes[:10])
    return shown if len(sizes) <= 10 else f"{shown} … ({len(sizes)} in all)"


def _check_witness(
    number: int, saved: SignedHead, leaves: Sequence[bytes], public_key: LedgerPublicKey | None
) -> list[str]:
    """Does today's tree extend ``saved``? Checked with an RFC 9162 consistency proof, as a
    monitor holding only the two heads would."""
    where = f"witness head {number} (size {saved.size}, {saved.timestamp})"
    if public_key is not None and not public_key.verifies(saved):
        return [f"{where} is not signed by the ledger's key"]
    if saved.size > len(leaves):
        return [
            f"{where} is newer than the ledger, which now has {len(leaves)} entries "
            "(rolled back to an older state?)"
        ]
    consistent = verify_consistency(
        saved.size,
        len(leaves),
        bytes.fromhex(saved.root_hash),
        tree_root(leaves),
        consistency_proof(leaves, saved.size),
    )
    if not consistent:
        return [
            f"the ledger is not consistent with {where}: its first {saved.size} entries were "
            "rewritten (or rolled back and replaced) since that head was saved"
        ]
    return []
