"""Accounts: people with a role, their browser sessions and their API tokens."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, DateTime, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from qala.store.base import Base, utcnow

ROLES = ("citizen", "operator", "analyst", "administrator", "submitter", "reviewer", "publisher")
"""``submitter`` answers a data call for one place (its ``place``); ``reviewer`` accepts or
returns submitted values and ``publisher`` also publishes releases (both national)."""


class User(Base):
    __tablename__ = "accounts_user"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(80), unique=True, index=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    department: Mapped[str | None] = mapped_column(String(400))
    """For operators: the departments they work in, comma-separated codes (None: every
    department of their place)."""
    place: Mapped[str | None] = mapped_column(String(80), index=True)
    """For staff: the city they work for (a place code); None is the national level."""
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (
        CheckConstraint(
            "role in ('citizen','operator','analyst','administrator',"
            "'submitter','reviewer','publisher')",
            name="role_known",
        ),
    )


class AccountSession(Base):
    """A browser session: the cookie carries a random token, the store keeps only its hash."""

    __tablename__ = "accounts_session"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("accounts_user.id", ondelete="CASCADE"), index=True
    )
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    user: Mapped[User] = relationship()


class ApiToken(Base):
    """A bearer token for API clients and scripts; only its hash is stored."""

    __tablename__ = "accounts_api_token"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("accounts_user.id", ondelete="CASCADE"), index=True
    )
    label: Mapped[str] = mapped_column(String(120), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)

    user: Mapped[User] = relationship()


VERIFICATION_METHODS = ("declared", "signature", "oidc")
"""How a person showed who they are: an IIN typed in (demos and trainings only), an electronic
signature with an NCA-style certificate, or an OpenID Connect identity provider."""


class Identity(Base):
    """The one person behind an account: a keyed hash of their IIN, never the number.

    Both columns are unique: an account speaks for one IIN, and an IIN for one account.
    """

    __tablename__ = "accounts_identity"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("accounts_user.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    iin_hash: Mapped[str] = mapped_column(String(64), unique=True)
    bound_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Verification(Base):
    """One way an account's IIN was shown to be its holder's (a process names the way it needs)."""

    __tablename__ = "accounts_verification"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("accounts_identity.user_id", ondelete="CASCADE"), primary_key=True
    )
    method: Mapped[str] = mapped_column(String(16), primary_key=True)
    verified_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (
        CheckConstraint("method in ('declared','signature','oidc')", name="method_known"),
    )


class AuthAttempt(Base):
    """One sign-in failure or registration, by the key it is limited under (``login:<username>``,
    ``register:<address>``…); rows older than the longest window are deleted as new ones come."""

    __tablename__ = "accounts_auth_attempt"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(120), index=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class OidcLogin(Base):
    """A sign-in at an OpenID provider that a resident started to verify their IIN.

    Kept until it is finished, so that the provider's answer is taken once: the ``state`` names
    the login (stored as a hash), the ``nonce`` must come back inside the ID token, and
    ``finished_at`` set means a replayed answer is refused.
    """

    __tablename__ = "accounts_oidc_login"

    state_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("accounts_user.id", ondelete="CASCADE"))
    nonce: Mapped[str] = mapped_column(String(100))
    code_verifier: Mapped[str] = mapped_column(String(128))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
