"""Accounts: create people, check passwords (argon2), sessions and API tokens."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from qala.components.accounts import throttle
from qala.components.accounts.models import ROLES, AccountSession, ApiToken, User
from qala.components.accounts.scope import StaffScope
from qala.core.clock import utc_now
from qala.core.errors import ConflictError, NotFoundError, PermissionDeniedError, ValidationError
from qala.core.messages import msg

SESSION_LIFETIME = timedelta(hours=12)
USERNAME = re.compile(r"^[a-z0-9_.@-]{3,80}$")
MIN_PASSWORD = 8
_hasher = PasswordHasher()


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def default_display_name(username: str) -> str:
    """The name shown publicly for an account that gave none: the username, unless it is an
    e-mail address, which is never shown (a neutral ``resident-…`` name instead)."""
    if "@" not in username:
        return username
    return f"resident-{secrets.token_hex(3)}"


def public_name(user: User) -> str:
    """How the account is named where others see it (comments, public pages): its display name,
    never a username that may be an e-mail address."""
    name = user.display_name.strip()
    if not name or "@" in name:
        name = f"resident-{user.id}"
    return name[:80]


MIN_PASSWORD_SCORE = 2
"""zxcvbn's scale 0–4; below 2 a password falls to an online guessing attack within days
(``password``, ``12345678``, ``qwertyuiop`` and a name plus digits all score 0 or 1)."""


def password_weakness(password: str, *user_inputs: str) -> str | None:
    """Why ``password`` is too easy to guess, or None. Judged by zxcvbn (common passwords,
    keyboard patterns, dates, the user's own name), not by character-class rules."""
    from zxcvbn import zxcvbn

    # zxcvbn judges at most 72 characters (and refuses longer input); a longer passphrase is
    # judged by its start, which is the conservative side.
    verdict = zxcvbn(password[:72], user_inputs=[u[:72] for u in user_inputs if u])
    if verdict["score"] >= MIN_PASSWORD_SCORE:
        return None
    hint = verdict["feedback"].get("warning") or "it is too easy to guess"
    return f"too easy to guess ({hint.rstrip('.').lower()}); use a longer phrase of several words"


def create_user(
    session: Session,
    *,
    username: str,
    password: str,
    role: str = "citizen",
    display_name: str = "",
    department: str | None = None,
    place: str | None = None,
) -> User:
    username = username.strip().lower()
    problems = scope_problems(place, department)
    if not USERNAME.match(username):
        problems.append("`username`: 3–80 characters of a–z, 0–9, _ . @ -")
    if len(password) < MIN_PASSWORD:
        problems.append(f"`password`: at least {MIN_PASSWORD} characters")
    elif (weakness := password_weakness(password, username, display_name)) is not None:
        problems.append(f"`password`: {weakness}")
    if role not in ROLES:
        problems.append(f"`role`: one of {', '.join(ROLES)}")
    if role == "submitter" and not (place or "").strip():
        problems.append("`place`: a submitter answers a data call for one place; name it")
    if problems:
        from qala.core.errors import Problem

        raise ValidationError([Problem(p) for p in problems], "cannot create the account")
    if session.scalar(select(User).where(User.username == username)) is not None:
        raise ConflictError(f"the username `{username}` is taken").with_message(
            msg("auth.username_taken", username=username)
        )
    user = User(
        username=username,
        password_hash=_hasher.hash(password),
        role=role,
        display_name=display_name.strip() or default_display_name(username),
    )
    apply_scope(user, place, department)
    session.add(user)
    session.flush()
    return user


PLACE_CODE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,79}$")


def scope_problems(place: str | None, departments: str | None) -> list[str]:
    """What is wrong with a staff scope as typed (place code, comma-separated departments)."""
    problems = []
    if place and not PLACE_CODE.match(place.strip().lower()):
        problems.append("`place`: a place code such as karaganda (empty: national)")
    codes = [c.strip() for c in (departments or "").split(",") if c.strip()]
    if any(not PLACE_CODE.match(c) for c in codes) or len(",".join(codes)) > 400:
        problems.append("`departments`: comma-separated department codes, 400 characters in all")
    return problems


def apply_scope(user: User, place: str | None, departments: str | None) -> None:
    """Set where the account works: ``place`` (empty: national) and its departments."""
    user.place = (place or "").strip().lower() or None
    codes = [c.strip() for c in (departments or "").split(",") if c.strip()]
    user.department = ",".join(dict.fromkeys(codes)) or None


def set_scope(session: Session, user: User, place: str | None, departments: str | None) -> User:
    """Change an account's scope (ValidationError naming the field for a malformed one)."""
    problems = scope_problems(place, departments)
    if problems:
        from qala.core.errors import Problem

        raise ValidationError([Problem(p) for p in problems], "cannot change the scope")
    apply_scope(user, place, departments)
    session.flush()
    return user


def authenticate(
    session: Session, username: str, password: str, *, now: datetime | None = None
) -> User:
    """The user with this username and password; one vague error for every failure.

    After ``FAILED_LOGINS_PER_ACCOUNT`` failures within its window, every attempt on the
    username is refused (``TooManyAttemptsError``) until the oldest leaves the window, so a
    password cannot be guessed online, from however many addresses.
    """
    name = username.strip().lower()
    moment = now or utc_now()
    throttle.check(session, throttle.FAILED_LOGINS_PER_ACCOUNT, name, now=moment)
    user = session.scalar(select(User).where(User.username == name))
    try:
        if user is None or not user.active:
            raise VerificationError
        _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        throttle.record(session, throttle.FAILED_LOGINS_PER_ACCOUNT, name, now=moment)
        raise PermissionDeniedError("wrong username or password") from None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    return user


@dataclass(frozen=True)
class NewSession:
    token: str
    csrf_token: str
    expires_at: datetime


def start_session(session: Session, user: User, *, now: datetime | None = None) -> NewSession:
    now = now or utc_now()
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
    expires = now + SESSION_LIFETIME
    session.add(
        AccountSession(
            token_hash=_digest(token), user_id=user.id, csrf_token=csrf, expires_at=expires
        )
    )
    session.flush()
    return NewSession(token, csrf, expires)


def resolve_session(
    session: Session, token: str, *, now: datetime | None = None
) -> AccountSession | None:
    record = session.get(AccountSession, _digest(token))
    if record is None:
        return None
    expires = (
        record.expires_at if record.expires_at.tzinfo else record.expires_at.replace(tzinfo=UTC)
    )
    if expires < (now or utc_now()) or not record.user.active:
        return None
    return record


def end_session(session: Session, token: str) -> None:
    record = session.get(AccountSession, _digest(token))
    if record is not None:
        session.delete(record)


def issue_token(session: Session, user: User, *, label: str = "") -> str:
    """A new bearer token for ``user``; shown once, stored only as a hash."""
    token = "qala_" + secrets.token_urlsafe(32)
    session.add(ApiToken(token_hash=_digest(token), user_id=user.id, label=label))
    session.flush()
    return token


def resolve_token(session: Session, token: str) -> User | None:
    record = session.scalar(select(ApiToken).where(ApiToken.token_hash == _digest(token)))
    if record is None or record.revoked or not record.user.active:
        return None
    return record.user


def get_user(session: Session, username: str) -> User:
    user = session.scalar(select(User).where(User.username == username.strip().lower()))
    if user is None:
        raise NotFoundError(f"no user `{username}`")
    return user


def acting_account(session: Session, username: str, *roles: str, national: bool = False) -> User:
    """The account a command-line action is taken as (``--as``), held to the same rules as the
    API holds a signed-in caller: it exists and is active, has one of ``roles`` (administrators
    always) and, when ``national``, works for the whole country. The audit trail then names a
    real account, never free text."""
    user = get_user(session, username)
    if not user.active:
        raise PermissionDeniedError(f"the account `{user.username}` is disabled")
    if roles and user.role not in roles and user.role != "administrator":
        raise PermissionDeniedError(
            f"`{user.username}` is a {user.role}; this needs the role {' or '.join(roles)}"
        )
    if national and not StaffScope.of(user).national:
        raise PermissionDeniedError(
            f"national staff only; `{user.username}` works for {user.place}"
        )
    return user


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.role, User.username)))


def set_password(session: Session, user: User, password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise ValidationError.single(f"at least {MIN_PASSWORD} characters", column="password")
    user.password_hash = _hasher.hash(password)


DEMO_USERS = (
    ("admin", "administrator", "Администратор", None),
    ("analyst", "analyst", "Аналитик рейтинга", None),
    ("operator", "operator", "Оператор ситуационного центра", "astana"),
    ("citizen", "citizen", "Айгерим (житель)", None),
    ("submitter", "submitter", "Акимат Астаны (данные)", "astana"),
    ("reviewer", "reviewer", "Рейтинговая группа (проверка)", None),
    ("publisher", "publisher", "Рейтинговая группа (публикация)", None),
)
"""Username, role, display name and place (None: national)."""
DEMO_PASSWORD_SUFFIX = "-demo-2026"


def ensure_demo_users(session: Session) -> list[str]:
    """Demo accounts (password: `<username>-demo-2026`) — for the bundled demo only."""
    created = []
    for username, role, name, place in DEMO_USERS:
        if session.scalar(select(User).where(User.username == username)) is None:
            create_user(
                session,
                username=username,
                password=username + DEMO_PASSWORD_SUFFIX,
                role=role,
                display_name=name,
                place=place,
            )
            created.append(username)
    return created
