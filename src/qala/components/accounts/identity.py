"""Who the person behind an account is: one IIN per account, one account per IIN.

A verifier (a typed-in IIN, an electronic signature, an OpenID provider) tells which IIN an
account's holder showed; :func:`bind_identity` records it as a keyed hash, refusing an IIN that
another account holds and an account that already speaks for another IIN. A process then asks
:func:`check_identity` whether the IIN a resident uses is their account's, shown the way the
process requires.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from qala.components.accounts.models import VERIFICATION_METHODS, Identity, Verification
from qala.core.errors import ConflictError, PermissionDeniedError
from qala.core.messages import msg
from qala.store.statements import insert_ignoring

METHOD_NAMES = {
    "declared": "a declared IIN",
    "signature": "an electronic signature",
    "oidc": "an identity provider (OpenID Connect)",
}


def identity_hash(iin: str, secret_key: str) -> str:
    """The keyed hash an IIN is bound under (apart from the voter registry's own hash)."""
    return hmac.new(
        secret_key.encode("utf-8"),
        b"qala.accounts.identity:" + "".join(iin.split()).encode("utf-8"),
        hashlib.sha256,
    ).hexdigest()


def _identity(session: Session, user_id: int) -> Identity | None:
    return session.get(Identity, user_id, populate_existing=True)


def bind_identity(
    session: Session, user_id: int, iin: str, *, method: str, secret_key: str, now: datetime
) -> Identity:
    """Bind ``iin`` (already checked by a verifier using ``method``) to the account.

    Idempotent for the same account and IIN. Raises ``ConflictError``, writing nothing, when the
    IIN is bound to another account or the account to another IIN; of two simultaneous bindings
    one wins and the other is refused the same way.
    """
    if method not in VERIFICATION_METHODS:
        raise ValueError(f"unknown verification method {method!r}")
    digest = identity_hash(iin, secret_key)
    _refuse_other_bindings(session, user_id, digest)
    session.execute(
        insert_ignoring(session, Identity).values(user_id=user_id, iin_hash=digest, bound_at=now)
    )
    bound = _refuse_other_bindings(session, user_id, digest)
    if bound is None:  # the IIN went to another account in the same instant
        raise ConflictError("this IIN is bound to another account").with_message(
            msg("identity.refused.iin_taken")
        )
    session.execute(
        insert_ignoring(session, Verification).values(
            user_id=user_id, method=method, verified_at=now
        )
    )
    return bound


def _refuse_other_bindings(session: Session, user_id: int, digest: str) -> Identity | None:
    """The account's binding to ``digest`` if there is one; an error if either is bound elsewhere."""
    mine = _identity(session, user_id)
    if mine is not None and mine.iin_hash != digest:
        raise ConflictError(
            "this account is bound to another IIN: a ballot, a proposal or an answer counts only "
            "for the person the account belongs to"
        ).with_message(msg("identity.refused.account_bound"))
    holder = session.scalar(select(Identity.user_id).where(Identity.iin_hash == digest))
    if holder is not None and holder != user_id:
        raise ConflictError(
            "this IIN is bound to another account; if it is yours, ask the city to check that "
            "account"
        ).with_message(msg("identity.refused.iin_taken"))
    return mine


def verified_methods(session: Session, user_id: int) -> set[str]:
    """How the account's IIN was shown (empty for an account bound to no IIN)."""
    rows = session.scalars(select(Verification.method).where(Verification.user_id == user_id))
    return set(rows)


def check_identity(
    session: Session, user_id: int, iin: str, *, method: str, secret_key: str
) -> None:
    """Refuse unless ``iin`` is the account's own, shown by ``method``.

    ``PermissionDeniedError`` when the account has not been verified that way yet,
    ``ConflictError`` when the IIN is not the one bound to the account.
    """
    mine = _identity(session, user_id)
    if mine is None or method not in verified_methods(session, user_id):
        raise PermissionDeniedError(
            f"verify who you are with {METHOD_NAMES[method]} first (see /api/v1/auth/identity)"
        )
    if not hmac.compare_digest(mine.iin_hash, identity_hash(iin, secret_key)):
        raise ConflictError(
            "this is not the IIN verified for your account: a ballot, a proposal or an answer "
            "counts only for the person the account belongs to"
        )


def is_own_iin(session: Session, user_id: int, iin: str, *, secret_key: str) -> bool:
    """Whether ``iin`` is the one bound to the account (by any method)."""
    mine = _identity(session, user_id)
    return mine is not None and hmac.compare_digest(mine.iin_hash, identity_hash(iin, secret_key))


def masked_iin(iin: str) -> str:
    """An IIN shown back to its holder: only the last four digits (the first six are the birth
    date)."""
    return "•" * 8 + iin[-4:]


def has_identity(session: Session, user_id: int) -> bool:
    return _identity(session, user_id) is not None
