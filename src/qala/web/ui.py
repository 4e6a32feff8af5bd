"""What every page shares: the template renderer, the language, the user and the role checks."""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, pass_context, select_autoescape
from markupsafe import Markup

from qala import __version__
from qala.components.accounts.models import User
from qala.components.assessment.services import SAMPLE_QUESTIONNAIRE
from qala.components.catalog.sample import SAMPLE_SOURCE
from qala.runtime import Context
from qala.web.charts import sparkline
from qala.web.data import incident_title, unit_name
from qala.web.i18n import LANGUAGE_COOKIE, LANGUAGE_NAMES, Translator, choose_language

HERE = Path(__file__).parent
ANON_CSRF_COOKIE = "qala_form"
"""Double-submit token for forms sent before there is a session (sign in, register)."""


class LoginRequired(Exception):
    """Raised by a page that needs a signed-in user; the shell redirects to the sign-in page."""

    def __init__(self, next_url: str) -> None:
        super().__init__(next_url)
        self.next_url = next_url


class RoleRequired(Exception):
    """Raised by a page the signed-in user's role may not see; the shell answers 403."""

    def __init__(self, roles: Sequence[str]) -> None:
        super().__init__(", ".join(roles))
        self.roles = tuple(roles)


@dataclass(frozen=True)
class NavItem:
    key: str
    path: str
    roles: tuple[str, ...] = ()
    """Empty: everyone sees it; else the roles that do (administrators see everything)."""


def role_allows(user: User | None, roles: Sequence[str]) -> bool:
    if not roles:
        return True
    return user is not None and (user.role in roles or user.role == "administrator")


def anon_form_token_ok(request: Request, sent: object) -> bool:
    """Whether a form sent before there is a session carries the double-submit token of its
    ``qala_form`` cookie (sign in, register, an anonymous citizen's request)."""
    expected = request.cookies.get(ANON_CSRF_COOKIE)
    return bool(expected) and isinstance(sent, str) and hmac.compare_digest(sent, expected or "")


def flash_signature(secret: str, message: str, kind: str) -> str:
    """What proves a message in the URL came from this server: a link anyone writes cannot
    make a page show a system message of its choosing."""
    digest = hmac.new(secret.encode(), f"flash\x00{kind}\x00{message}".encode(), "sha256")
    return digest.hexdigest()[:32]


def flash_url(path: str, message: str, kind: str = "ok", *, secret: str) -> str:
    """``path`` with a one-time, signed message for the page to show (any earlier one dropped)."""
    base = path.split("flash=")[0].rstrip("&?")
    joiner = "&" if "?" in base else "?"
    signature = flash_signature(secret, message, kind)
    return f"{base}{joiner}flash={quote(message)}&kind={kind}&fsig={signature}"


def _translator(context: Any) -> Translator:
    found = context.get("t")
    return found if isinstance(found, Translator) else Translator("en")


@pass_context
def _format_number(context: Any, value: Any, digits: int = 1) -> str:
    return _translator(context).number(value, digits)


@pass_context
def _format_money(context: Any, value: Any, short: bool = False) -> str:
    return _translator(context).money(value, short=short)


@pass_context
def _format_time(context: Any, value: datetime | None) -> str:
    """A stored (UTC) time in the place's zone, the zone named."""
    return _translator(context).when(value)


@pass_context
def _format_day(context: Any, value: datetime | None) -> str:
    return _translator(context).day(value)


GENERATED_SOURCES = {
    SAMPLE_SOURCE: "illustrative.sample_source",
    SAMPLE_QUESTIONNAIRE: "illustrative.sample_questionnaire",
}
"""Sources Qala itself writes on generated data, shown in the reader's language."""


@pass_context
def _format_source(context: Any, value: Any) -> str:
    """A value's source: Qala's own generated sources translated, others' titles as given."""
    key = GENERATED_SOURCES.get(str(value or ""))
    return _translator(context)(key) if key else str(value or "")


@pass_context
def _incident_title(context: Any, incident: Any) -> str:
    """An incident's title: the policy's title for its category in the reader's language; a title
    an operator typed stays as typed."""
    return incident_title(incident, _translator(context))


@pass_context
def _incident_text(context: Any, incident: Any) -> str:
    """An incident's description: a rule's finding in the reader's language (its message), a
    description a person wrote as written."""
    message = getattr(incident, "description_message", None)
    if message is not None:
        return _translator(context).message(message)
    return str(getattr(incident, "description", "") or "")


@pass_context
def _format_message(context: Any, value: Any) -> str:
    """A generated message (id and parameters) in the page's language."""
    return _translator(context).message(value)


PLACE_ZONE = "Asia/Almaty"
"""Where Qala's residents live: times shown to them are in this zone (UTC+5)."""


def format_local_time(value: datetime | None) -> str:
    """A stored (UTC) time as residents read it: their zone, dd.mm.yyyy hh:mm."""
    if value is None:
        return "—"
    from zoneinfo import ZoneInfo

    if value.tzinfo is None:  # SQLite returns stored UTC times without their zone
        value = value.replace(tzinfo=UTC)
    return value.astimezone(ZoneInfo(PLACE_ZONE)).strftime("%d.%m.%Y %H:%M")


class UI:
    """The dashboard's renderer, built once per app by ``mount_web``."""

    def __init__(
        self, context: Context, *, nav: Sequence[NavItem], extra_templates: Sequence[Path] = ()
    ) -> None:
        self.context = context
        self.nav = list(nav)
        loaders = [FileSystemLoader(str(HERE / "templates"))]
        loaders += [FileSystemLoader(str(p)) for p in extra_templates]
        self.env = Environment(
            loader=ChoiceLoader(loaders),
            autoescape=select_autoescape(["html", "xml", "svg"]),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters["num"] = _format_number
        self.env.filters["money"] = _format_money
        self.env.filters["when"] = _format_time
        self.env.filters["local"] = format_local_time
        self.env.filters["day"] = _format_day
        self.env.filters["msg"] = _format_message
        self.env.filters["source"] = _format_source
        self.env.tests["illustrative_warning"] = lambda text: str(text).startswith("ILLUSTRATIVE")
        self.env.globals["version"] = __version__
        self.env.globals["unit_name"] = unit_name
        self.env.globals["incident_title"] = _incident_title
        self.env.globals["incident_text"] = _incident_text
        self.env.globals["language_names"] = LANGUAGE_NAMES
        self.env.globals["spark"] = lambda values, label: sparkline(values, label=label)

    # -- per request
    def flash_url(self, path: str, message: str, kind: str = "ok") -> str:
        return flash_url(path, message, kind, secret=self.context.settings.secret_key)

    def flash_in(self, request: Request) -> tuple[str, str] | None:
        """The request's one-time message, if this server signed it (else nothing is shown)."""
        message = request.query_params.get("flash")
        kind = request.query_params.get("kind", "ok")
        sent = request.query_params.get("fsig", "")
        if not message or kind not in ("ok", "error"):
            return None
        expected = flash_signature(self.context.settings.secret_key, message, kind)
        return (kind, message[:500]) if hmac.compare_digest(sent, expected) else None

    def language(self, request: Request) -> str:
        return choose_language(
            request.query_params.get("lang"),
            request.cookies.get(LANGUAGE_COOKIE),
            request.headers.get("accept-language"),
            self.context.settings.default_language,
        )

    def translator(self, request: Request, place_id: str | None = None) -> Translator:
        """The reader's language, times in the place's zone."""
        zone = self.context.settings.zone_of(place_id)
        return Translator(self.language(request), zone=zone)

    def anon_csrf(self, request: Request) -> str:
        token = request.cookies.get(ANON_CSRF_COOKIE) or getattr(
            request.state, "new_anon_csrf", None
        )
        if not token:
            token = secrets.token_urlsafe(24)
            request.state.new_anon_csrf = token
        return token

    def render(
        self,
        request: Request,
        template: str,
        *,
        status_code: int = 200,
        **values: Any,
    ) -> HTMLResponse:
        language = self.language(request)
        t = self.translator(request)
        user: User | None = getattr(request.state, "user", None)
        nav = [item for item in self.nav if role_allows(user, item.roles)]
        if "flash" not in values and (shown := self.flash_in(request)) is not None:
            values["flash"] = [shown]
        shared: dict[str, Any] = {
            "request": request,
            "t": t,
            "lang": language,
            "user": user,
            "nav": nav,
            "current_path": request.url.path,
            "illustrative_note": t("illustrative.banner"),
        }
        if "csrf_token" not in values:
            shared["csrf_token"] = getattr(request.state, "csrf_token", None) or self.anon_csrf(
                request
            )
        page = self.env.get_template(template).render({**shared, **values})
        response = HTMLResponse(page, status_code=status_code)
        self.finish(request, response)
        return response

    def finish(self, request: Request, response: Any) -> None:
        """Remember an explicit ``?lang=`` and hand out the pre-session form token."""
        wanted = request.query_params.get("lang")
        if wanted and wanted in LANGUAGE_NAMES:
            response.set_cookie(
                LANGUAGE_COOKIE,
                wanted,
                max_age=365 * 24 * 3600,
                samesite="lax",
                path="/",
                secure=self.context.settings.secure_cookies,
            )
        token = getattr(request.state, "new_anon_csrf", None)
        if token:
            response.set_cookie(
                ANON_CSRF_COOKIE,
                token,
                httponly=True,
                samesite="strict",
                path="/",
                secure=self.context.settings.secure_cookies,
            )

    def redirect(self, request: Request, url: str) -> RedirectResponse:
        response = RedirectResponse(url, status_code=303)
        self.finish(request, response)
        return response

    def markup(self, text: str) -> Markup:
        return Markup(text)
