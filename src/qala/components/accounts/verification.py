"""Verifiers, each ending in :func:`~qala.components.accounts.identity.bind_identity`."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from qala.components.accounts.identity import bind_identity
from qala.components.accounts.signature import check_challenge, load_trust, signed_iin
from qala.settings import Settings


def verify_by_signature(
    session: Session,
    user_id: int,
    *,
    challenge: str,
    signature: bytes,
    settings: Settings,
    now: datetime,
) -> str:
    """Bind the IIN of the certificate that signed the account's challenge to the account, and
    return that IIN.

    ``PermissionDeniedError`` for a challenge not issued to this account (or expired) and for any
    failed check of the signature (see ``signature.signed_iin``); ``ConflictError`` when that IIN
    belongs to another account or the account to another IIN.
    """
    check_challenge(challenge, user_id=user_id, secret_key=settings.secret_key, now=now)
    trust = load_trust(settings.signature_roots, settings.signature_crl)
    iin = signed_iin(signature, challenge=challenge, trust=trust, now=now)
    bind_identity(
        session, user_id, iin, method="signature", secret_key=settings.secret_key, now=now
    )
    return iin
