"""Who the caller is, verified: ``/api/v1/auth/identity…``.

A resident asks for a challenge, signs it with their NCA certificate (NCALayer or any CMS signer)
and sends the signature back; their account is then bound to the IIN in the certificate. Or they
sign in at the city's OpenID provider (``/oidc/start``), which sends them back to ``/oidc/callback``
with a code vouching for their IIN.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse
from pydantic import BaseModel, Field

from qala.components.accounts.deps import CallerFirstRoute, ContextDep, CurrentUser
from qala.components.accounts.identity import has_identity, masked_iin, verified_methods
from qala.components.accounts.signature import issue_challenge
from qala.components.accounts.verification import verify_by_signature
from qala.core.errors import ValidationError
from qala.runtime import Context

router = APIRouter(route_class=CallerFirstRoute, prefix="/api/v1/auth/identity", tags=["accounts"])


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
    """Binds the certificate's IIN to the account; answers with it masked (last four digits).
    Refusals name their reason as a catalogue id too (``reason.key``: ``identity.refused.…``)."""
    with context.database.transaction() as session:
        iin = verify_by_signature(
            session,
            user.id,
            challenge=body.challenge,
            signature=_signature_bytes(body.signature),
            settings=context.settings,
            now=context.clock(),
        )
        methods = sorted(verified_methods(session, user.id))
    return {"bound": True, "methods": methods, "iin_masked": masked_iin(iin)}


def _callback_url(context: Context) -> str:
    return context.settings.public_base_url.rstrip("/") + f"{router.prefix}/oidc/callback"


@router.get(
    "/oidc/start",
    summary="Verify who you are at the city's OpenID provider",
    response_model=None,
)
def oidc_start(
    user: CurrentUser, context: ContextDep, redirect: bool = False
) -> dict[str, str] | RedirectResponse:
    """The provider's sign-in URL; with ``redirect=true`` (a link on a page), a redirect to it."""
    from qala.components.accounts.oidc import start_login

    with context.database.transaction() as session:
        url = start_login(
            session,
            user.id,
            settings=context.settings,
            redirect_uri=_callback_url(context),
            now=context.clock(),
        )
    if redirect:
        return RedirectResponse(url, status_code=303)
    return {"authorization_url": url}


@router.get(
    "/oidc/callback", summary="Where the OpenID provider sends you back", response_model=None
)
def oidc_callback(
    request: Request,
    code: Annotated[str, Query(max_length=2000)],
    state: Annotated[str, Query(max_length=200)],
    user: CurrentUser,
    context: ContextDep,
) -> dict[str, Any] | RedirectResponse:
    """Bind the IIN the provider vouches for; a browser goes on to the budgeting pages."""
    from qala.components.accounts.oidc import finish_login, take_login

    with context.database.transaction() as session:  # taken once, whatever the checks say
        nonce, verifier = take_login(session, user.id, state=state, now=context.clock())
    with context.database.transaction() as session:
        finish_login(
            session,
            user.id,
            code=code,
            nonce=nonce,
            verifier=verifier,
            settings=context.settings,
            redirect_uri=_callback_url(context),
            now=context.clock(),
        )
        methods = sorted(verified_methods(session, user.id))
    if "text/html" in request.headers.get("accept", ""):
        return RedirectResponse("/budgeting", status_code=303)
    return {"bound": True, "methods": methods}
