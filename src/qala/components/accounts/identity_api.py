"""Who the caller is, verified: ``/api/v1/auth/identity…``.

A resident asks for a challenge, signs it with their NCA certificate (NCALayer or any CMS signer)
and sends the signature back; their account is then bound to the IIN in the certificate.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from qala.components.accounts.deps import ContextDep, CurrentUser
from qala.components.accounts.identity import has_identity, verified_methods
from qala.components.accounts.signature import issue_challenge
from qala.components.accounts.verification import verify_by_signature
from qala.core.errors import ValidationError

router = APIRouter(prefix="/api/v1/auth/identity", tags=["accounts"])


class SignedChallenge(BaseModel):
    challenge: str = Field(..., max_length=200, description="The text Qala issued, as signed.")
    signature: str = Field(
        ...,
        max_length=200_000,
        description="The CMS/PKCS#7 SignedData: base64 of its DER, or PEM.",
    )


def _signature_bytes(text: str) -> bytes:
    """PEM as it is; otherwise the base64 of the DER (what NCALayer hands back)."""
    if text.lstrip().startswith("-----"):
        return text.encode("ascii", "replace")
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise ValidationError.single(
            "base64 of a CMS signature, or PEM", column="signature"
        ) from None


@router.get("", summary="Is my account bound to an IIN, and verified how?")
def identity(user: CurrentUser, context: ContextDep) -> dict[str, Any]:
    with context.database.session() as session:
        return {
            "bound": has_identity(session, user.id),
            "methods": sorted(verified_methods(session, user.id)),
        }


@router.post("/challenge", summary="A text to sign with your electronic signature")
def challenge(user: CurrentUser, context: ContextDep) -> dict[str, str]:
    text = issue_challenge(user.id, secret_key=context.settings.secret_key, now=context.clock())
    return {"challenge": text}


@router.post("/signature", summary="Verify who you are with your signed challenge")
def signature(body: SignedChallenge, user: CurrentUser, context: ContextDep) -> dict[str, Any]:
    with context.database.transaction() as session:
        verify_by_signature(
            session,
            user.id,
            challenge=body.challenge,
            signature=_signature_bytes(body.signature),
            settings=context.settings,
            now=context.clock(),
        )
        methods = sorted(verified_methods(session, user.id))
    return {"bound": True, "methods": methods}
