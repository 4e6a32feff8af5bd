"""How a message leaves Qala: e-mail over SMTP, SMS through a provider's HTTP gateway.

A channel raises :class:`DeliveryFailed` with ``permanent=True`` when sending again cannot help
(the server refused the address), otherwise the sender retries later with back-off.
"""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Protocol
from urllib.parse import parse_qs, unquote, urlsplit

import httpx

from qala.core.errors import ConfigurationError


class DeliveryFailed(Exception):
    def __init__(self, reason: str, *, permanent: bool = False) -> None:
        super().__init__(reason)
        self.permanent = permanent


@dataclass(frozen=True)
class Outgoing:
    """What a channel needs of a message."""

    idempotency_key: str
    recipient: str
    subject: str
    body: str
    language: str


class Channel(Protocol):
    def send(self, message: Outgoing) -> None: ...


@dataclass(frozen=True)
class SmtpServer:
    """Where mail goes, from ``QALA_SMTP_URL``: ``smtp://[user:password@]host[:port]``
    (``?starttls=true`` to upgrade the connection), or ``smtps://…`` for TLS from the start."""

    host: str
    port: int
    tls: bool
    starttls: bool
    username: str | None
    password: str | None

    @classmethod
    def from_url(cls, url: str) -> SmtpServer:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ConfigurationError(
                f"QALA_SMTP_URL {parts.scheme or '(no scheme)'}://… is not an SMTP URL: expected "
                "smtp://user:password@host:port (add ?starttls=true) or smtps://host:port"
            )
        query = parse_qs(parts.query)
        starttls = query.get("starttls", ["false"])[0].lower() in ("1", "true", "yes")
        tls = parts.scheme == "smtps"
        try:
            port = parts.port or (465 if tls else 587 if starttls else 25)
        except ValueError:
            raise ConfigurationError("QALA_SMTP_URL has a port that is not a number") from None
        return cls(
            parts.hostname,
            port,
            tls,
            starttls,
            unquote(parts.username) if parts.username else None,
            unquote(parts.password) if parts.password else None,
        )


class SmtpChannel:
    """E-mail over SMTP; the idempotency key becomes the Message-ID, so a copy re-sent after a
    crash can be recognised by the receiving mail system."""

    def __init__(self, url: str, sender: str, *, timeout: float = 30.0) -> None:
        self.server = SmtpServer.from_url(url)
        self.sender = sender
        self.timeout = timeout

    def send(self, message: Outgoing) -> None:
        mail = EmailMessage()
        mail["From"] = self.sender
        mail["To"] = message.recipient
        mail["Subject"] = message.subject
        mail["Date"] = formatdate(localtime=False)
        domain = self.sender.rpartition("@")[2].strip(">") or "qala.local"
        mail["Message-ID"] = make_msgid(idstring=_safe_id(message.idempotency_key), domain=domain)
        mail["Auto-Submitted"] = "auto-generated"
        mail.set_content(message.body)
        mail["Content-Language"] = message.language  # set_content drops Content-* headers
        server = self.server
        try:
            smtp: smtplib.SMTP
            if server.tls:
                smtp = smtplib.SMTP_SSL(
                    server.host,
                    server.port,
                    timeout=self.timeout,
                    context=ssl.create_default_context(),
                )
            else:
                smtp = smtplib.SMTP(server.host, server.port, timeout=self.timeout)
            with smtp:
                if server.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if server.username:
                    smtp.login(server.username, server.password or "")
                smtp.send_message(mail)
        except smtplib.SMTPRecipientsRefused as exc:
            raise DeliveryFailed(
                f"the SMTP server refused the address: {exc}", permanent=True
            ) from None
        except smtplib.SMTPResponseException as exc:
            raise DeliveryFailed(
                f"SMTP {exc.smtp_code}: {_reply(exc.smtp_error)}",
                permanent=500 <= exc.smtp_code < 600 and exc.smtp_code not in (530, 535),
            ) from None
        except (OSError, smtplib.SMTPException) as exc:
            raise DeliveryFailed(f"{exc.__class__.__name__}: {exc}") from None


def _reply(error: bytes | str) -> str:
    return error.decode("utf-8", "replace") if isinstance(error, bytes) else str(error)


def _safe_id(key: str) -> str:
    return "".join(c if c.isalnum() or c in "-._" else "-" for c in key)[:120]


class SmsGateway:
    """SMS through a provider's HTTP API: a JSON POST of ``{"to", "text", "reference"}`` with the
    key as a bearer token and the idempotency key as ``Idempotency-Key`` (providers that honour
    it drop a repeated send)."""

    def __init__(self, url: str, key: str, *, timeout: float = 20.0) -> None:
        if not url.lower().startswith(("http://", "https://")):
            raise ConfigurationError("QALA_SMS_GATEWAY_URL must be an http(s) URL")
        self.url = url
        self.key = key
        self.timeout = timeout

    def send(self, message: Outgoing) -> None:
        try:
            answer = httpx.post(
                self.url,
                json={
                    "to": message.recipient,
                    "text": message.body,
                    "reference": message.idempotency_key,
                },
                headers={
                    "Authorization": f"Bearer {self.key}",
                    "Idempotency-Key": message.idempotency_key,
                },
                timeout=self.timeout,
            )
        except httpx.HTTPError as exc:
            raise DeliveryFailed(
                f"SMS gateway unreachable: {exc.__class__.__name__}: {exc}"
            ) from None
        if answer.is_success:
            return
        permanent = 400 <= answer.status_code < 500 and answer.status_code not in (408, 429)
        raise DeliveryFailed(
            f"SMS gateway answered {answer.status_code}: {answer.text[:300]}", permanent=permanent
        )
