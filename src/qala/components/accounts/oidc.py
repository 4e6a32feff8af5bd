"""Verify a resident's IIN at an OpenID provider (eGov's or the city's): OpenID Connect's
authorization-code flow with PKCE.

:func:`start_login` records a login (a random ``state``, ``nonce`` and PKCE verifier, the state
kept only as a hash) and gives the provider's authorization URL; the provider sends the resident
back with a code. :func:`take_login` takes that answer once (the login must be the caller's,
recent and not finished), then :func:`finish_login` checks it: the code is exchanged at the token endpoint; the ID token must be signed
by a key in the provider's JWKS and name the configured issuer, this client as audience, the
login's nonce and an unexpired time. The IIN comes from the ID token's claim or, when the provider
keeps it for the userinfo endpoint, from there (for the same subject); it is then bound to the
account (:func:`~qala.components.accounts.identity.bind_identity`, method ``oidc``).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import httpx
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from sqlalchemy.orm import Session

from qala.components.accounts.identity import bind_identity
from qala.components.accounts.models import Identity, OidcLogin
from qala.core.clock import as_utc
from qala.core.errors import ConfigurationError, PermissionDeniedError
from qala.settings import Settings

LOGIN_LIFETIME = timedelta(minutes=10)
"""How long a resident has to sign in at the provider and come back."""
DISCOVERY_TTL_S = 3600.0
SIGNING_ALGORITHMS = ("RS256", "PS256", "ES256", "EdDSA")
HTTP_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class ProviderDocument:
    """What Qala uses of a provider's discovery document and keys."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    userinfo_endpoint: str | None
    keys: KeySet


_documents: dict[str, tuple[float, ProviderDocument]] = {}
_documents_lock = threading.Lock()


def provider_document(settings: Settings, *, refresh: bool = False) -> ProviderDocument:
    """The configured provider's endpoints and keys, read once an hour (``refresh`` reads them
    again at once: a token signed by a key not seen yet may follow a key rotation)."""
    issuer = settings.oidc_issuer
    if not issuer:
        raise ConfigurationError("no OpenID provider is configured (QALA_OIDC_ISSUER)")
    with _documents_lock:
        cached = _documents.get(issuer)
        if cached and not refresh and time.monotonic() - cached[0] < DISCOVERY_TTL_S:
            return cached[1]
    url = issuer.rstrip("/") + "/.well-known/openid-configuration"
    try:
        with httpx.Client(timeout=HTTP_TIMEOUT_S) as client:
            found = client.get(url).raise_for_status().json()
            # The issuer the document names must be the one configured (OpenID Discovery 4.3):
            # a document served for another issuer would make its tokens look like ours.
            if found.get("issuer") != issuer:
                raise PermissionDeniedError(
                    f"the OpenID provider at {url} names the issuer {found.get('issuer')!r}, "
                    f"not the configured {issuer!r}"
                )
            keys = KeySet.import_key_set(client.get(found["jwks_uri"]).raise_for_status().json())
    except (httpx.HTTPError, ValueError, KeyError) as exc:
        raise ConfigurationError(
            f"cannot read the OpenID provider's document at {url}: {exc}"
        ) from None
    document = ProviderDocument(
        issuer=issuer,
        authorization_endpoint=found["authorization_endpoint"],
        token_endpoint=found["token_endpoint"],
        userinfo_endpoint=found.get("userinfo_endpoint"),
        keys=keys,
    )
    with _documents_lock:
        _documents[issuer] = (time.monotonic(), document)
    return document


def _utc(moment: datetime) -> datetime:
    aware = as_utc(moment)
    assert aware is not None
    return aware


def _digest(state: str) -> str:
    return hashlib.sha256(state.encode("utf-8")).hexdigest()


def _challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def start_login(
    session: Session, user_id: int, *, settings: Settings, redirect_uri: str, now: datetime
) -> str:
    """Record a login for the account and return the provider's authorization URL."""
    document = provider_document(settings)
    state, nonce, verifier = (secrets.token_urlsafe(32) for _ in range(3))
    session.add(
        OidcLogin(
            state_hash=_digest(state),
            user_id=user_id,
            nonce=nonce,
            code_verifier=verifier,
            started_at=now,
        )
    )
    query = {
        "response_type": "code",
        "client_id": settings.oidc_client_id,
        "redirect_uri": redirect_uri,
        "scope": " ".join(dict.fromkeys(["openid", *settings.oidc_scopes.split()])),
        "state": state,
        "nonce": nonce,
        "code_challenge": _challenge(verifier),
        "code_challenge_method": "S256",
    }
    return f"{document.authorization_endpoint}?{urlencode(query)}"


def take_login(session: Session, user_id: int, *, state: str, now: datetime) -> tuple[str, str]:
    """Mark the account's login named by ``state`` finished; its nonce and PKCE verifier.

    Commit this before the provider's answer is checked: whatever the outcome, the same answer
    is then never taken twice. ``PermissionDeniedError`` for an unknown, someone else's, expired
    or already finished login.
    """
    login = session.get(OidcLogin, _digest(state), with_for_update=True)
    if login is None or login.user_id != user_id:
        raise PermissionDeniedError("this sign-in was not started from your account")
    if login.finished_at is not None:
        raise PermissionDeniedError("this sign-in has been used already; start again")
    if _utc(login.started_at) + LOGIN_LIFETIME < _utc(now):
        raise PermissionDeniedError("this sign-in took too long; start again")
    login.finished_at = now
    return login.nonce, login.code_verifier


def finish_login(
    session: Session,
    user_id: int,
    *,
    code: str,
    nonce: str,
    verifier: str,
    settings: Settings,
    redirect_uri: str,
    now: datetime,
) -> Identity:
    """Check the provider's answer to a taken login; bind the IIN it vouches for.

    ``PermissionDeniedError`` for any failed check of the tokens; ``ConflictError`` (from
    ``bind_identity``) when the IIN belongs to another account or the account to another IIN.
    """
    document = provider_document(settings)
    tokens = _exchange(document, settings, code=code, verifier=verifier, redirect_uri=redirect_uri)
    claims = id_token_claims(
        tokens.get("id_token"), document=document, settings=settings, nonce=nonce, now=now
    )
    iin = claims.get(settings.oidc_iin_claim)
    if iin is None and document.userinfo_endpoint and tokens.get("access_token"):
        info = _userinfo(document.userinfo_endpoint, str(tokens["access_token"]))
        if info.get("sub") != claims["sub"]:
            raise PermissionDeniedError("the provider's userinfo names another subject")
        iin = info.get(settings.oidc_iin_claim)
    text = "".join(str(iin or "").split())
    if not (len(text) == 12 and text.isascii() and text.isdigit()):
        raise PermissionDeniedError(
            f"the OpenID provider gave no 12-digit IIN in its `{settings.oidc_iin_claim}` claim"
        )
    return bind_identity(
        session, user_id, text, method="oidc", secret_key=settings.secret_key, now=now
    )


def id_token_claims(
    token: Any, *, document: ProviderDocument, settings: Settings, nonce: str, now: datetime
) -> dict[str, Any]:
    """The claims of an ID token that passed every check (``PermissionDeniedError`` otherwise)."""
    if not isinstance(token, str) or not token:
        raise PermissionDeniedError("the OpenID provider returned no ID token")
    try:
        try:
            decoded = jwt.decode(token, document.keys, algorithms=list(SIGNING_ALGORITHMS))
        except JoseError:  # maybe a key the provider rotated in since the keys were read
            fresh = provider_document(settings, refresh=True)
            decoded = jwt.decode(token, fresh.keys, algorithms=list(SIGNING_ALGORITHMS))
        registry = jwt.JWTClaimsRegistry(
            now=int(_utc(now).timestamp()),
            leeway=60,
            iss={"essential": True, "value": document.issuer},
            aud={"essential": True, "value": settings.oidc_client_id},
            nonce={"essential": True, "value": nonce},
            sub={"essential": True},
            exp={"essential": True},
        )
        registry.validate(decoded.claims)
    except (JoseError, ValueError) as exc:
        raise PermissionDeniedError(f"the ID token was refused: {exc}") from None
    return dict(decoded.claims)


def _exchange(
    document: ProviderDocument, settings: Settings, *, code: str, verifier: str, redirect_uri: str
) -> dict[str, Any]:
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "code_verifier": verifier,
    }
    auth = (settings.oidc_client_id, settings.oidc_client_secret or "")
    try:
        with httpx.Client(timeout=HTTP_TIMEOUT_S) as client:
            answer = client.post(document.token_endpoint, data=form, auth=auth)
    except httpx.HTTPError as exc:
        raise ConfigurationError(f"the OpenID provider's token endpoint failed: {exc}") from None
    if answer.status_code != 200:
        raise PermissionDeniedError(
            f"the OpenID provider refused the code ({answer.status_code}): {answer.text[:200]}"
        )
    found: dict[str, Any] = answer.json()
    return found


def _userinfo(url: str, access_token: str) -> dict[str, Any]:
    try:
        with httpx.Client(timeout=HTTP_TIMEOUT_S) as client:
            answer = client.get(url, headers={"Authorization": f"Bearer {access_token}"})
            answer.raise_for_status()
    except httpx.HTTPError as exc:
        raise PermissionDeniedError(f"the OpenID provider's userinfo failed: {exc}") from None
    found: dict[str, Any] = answer.json()
    return found
