"""The voter registry: residents registered with their IIN, kept only as a keyed hash.

The registry answers two questions — "is this person registered?" and "have they voted?" — and
nothing else: it never holds the IIN, the date of birth, nor anything about how anyone voted.

A resident acting through an account registers, votes and asks about their status only with the
IIN bound to that account (``qala.components.accounts.identity``): one account cannot register or
vote for other people, and nobody learns whether someone else has voted.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from qala.components.accounts.identity import (
    METHOD_NAMES,
    bind_identity,
    check_identity,
    is_own_iin,
    verified_methods,
)
from qala.components.budgeting.core import check_key, load_process, utc
from qala.components.budgeting.iin import hash_iin, parse_iin
from qala.components.budgeting.models import Process, Voter
from qala.core.errors import ConflictError, PermissionDeniedError, ValidationError
from qala.store.statements import insert_ignoring

REGISTRATION_PHASES = ("proposals", "review", "voting")


@dataclass(frozen=True)
class VoterStatus:
    process: str
    registered: bool
    has_voted: bool
    newly_registered: bool = False


def eligible_voter(process: Process, iin: str, *, now: datetime) -> str:
    """Validate the IIN and the voter's age on the last day of voting; return the normalised IIN."""
    facts = parse_iin(iin, today=utc(now).date())
    if process.min_voter_age is not None:
        closing_day = utc(process.voting_close_at).date()
        if facts.age_on(closing_day) < process.min_voter_age:
            raise ValidationError.single(
                f"voters in `{process.code}` must be at least {process.min_voter_age} years old "
                "by the end of voting",
                column="iin",
            )
    return "".join(iin.split())


def speak_for(
    session: Session,
    process: Process,
    account_id: int | None,
    iin: str,
    *,
    secret_key: str,
    now: datetime,
) -> str:
    """The IIN a resident's account may register or vote with in ``process``: its own.

    The IIN is checked (check digit, age). In a ``declared`` process it is bound to the account
    if the account has none yet; in any other, the account must have been verified the process's
    way (``PermissionDeniedError`` before that) for this very IIN. An IIN bound to another
    account, or an account bound to another IIN, is refused with a ``ConflictError`` and nothing
    is written. ``account_id`` is None only for callers acting for no account (the demo's
    generated voters, an import by the city).
    """
    clean = eligible_voter(process, iin, now=now)
    if account_id is None:
        return clean
    if process.verifier == "declared":
        bind_identity(session, account_id, clean, method="declared", secret_key=secret_key, now=now)
    else:
        check_identity(session, account_id, clean, method=process.verifier, secret_key=secret_key)
    return clean


def require_verified(session: Session, process: Process, account_id: int) -> None:
    """Refuse (``PermissionDeniedError``) an account not yet verified the process's way: in a
    ``declared`` process, one that has not registered with its IIN."""
    methods = verified_methods(session, account_id)
    if process.verifier == "declared" and not methods:
        raise PermissionDeniedError(
            f"register as a voter of `{process.code}` with your IIN first: proposals, like "
            "ballots, count once per person"
        )
    if process.verifier != "declared" and process.verifier not in methods:
        raise PermissionDeniedError(
            f"`{process.code}` takes proposals and ballots from residents verified by "
            f"{METHOD_NAMES[process.verifier]}: verify who you are first (/api/v1/auth/identity)"
        )


def find_voter(session: Session, process: Process, iin_hash: str) -> Voter | None:
    return session.scalar(
        select(Voter).where(Voter.process_id == process.id, Voter.iin_hash == iin_hash)
    )


def register_in(
    session: Session,
    process: Process,
    iin: str,
    *,
    secret_key: str,
    now: datetime,
    illustrative: bool = False,
    account_id: int | None = None,
) -> tuple[Voter, bool]:
    """The voter row of this IIN in ``process``, created if new; ``(voter, created)``.

    With ``account_id``, only the account's own IIN (see :func:`speak_for`).
    """
    check_key(process, secret_key)
    if process.phase not in REGISTRATION_PHASES or utc(now) >= utc(process.voting_close_at):
        raise ConflictError(
            f"registration for `{process.code}` is closed (it is in its {process.phase} phase)"
        )
    clean = speak_for(session, process, account_id, iin, secret_key=secret_key, now=now)
    digest = hash_iin(clean, secret_key)
    voter = find_voter(session, process, digest)
    if voter is not None:
        return voter, False
    # INSERT … ON CONFLICT DO NOTHING: when the same IIN registers at the same moment elsewhere,
    # one insert wins and the other finds its row (no error, no savepoint).
    inserted = session.execute(
        insert_ignoring(session, Voter).values(
            process_id=process.id,
            iin_hash=digest,
            has_voted=False,
            registered_at=now,
            illustrative=illustrative,
        )
    )
    voter = find_voter(session, process, digest)
    assert voter is not None
    return voter, getattr(inserted, "rowcount", 0) == 1


def register_voter(
    session: Session,
    process_code: str,
    iin: str,
    *,
    secret_key: str,
    now: datetime,
    account_id: int | None = None,
) -> VoterStatus:
    """Register a resident for a process (idempotent: a second call reports the same voter)."""
    process = load_process(session, process_code)
    voter, created = register_in(
        session, process, iin, secret_key=secret_key, now=now, account_id=account_id
    )
    return VoterStatus(process.code, True, voter.has_voted, created)


def voter_status(
    session: Session,
    process_code: str,
    iin: str,
    *,
    secret_key: str,
    now: datetime,
    account_id: int | None = None,
) -> VoterStatus:
    """Whether this IIN is registered in the process and has voted (nothing more).

    With ``account_id``, only about the account's own IIN: asking about anyone else's is refused
    (``PermissionDeniedError``) without looking it up.
    """
    process = load_process(session, process_code)
    check_key(process, secret_key)
    parse_iin(iin, today=utc(now).date())
    if account_id is not None and not is_own_iin(session, account_id, iin, secret_key=secret_key):
        raise PermissionDeniedError(
            "you can ask only about your own IIN, the one you registered or voted with"
        )
    voter = find_voter(session, process, hash_iin(iin, secret_key))
    return VoterStatus(process.code, voter is not None, bool(voter and voter.has_voted))
