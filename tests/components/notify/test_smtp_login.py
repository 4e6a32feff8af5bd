"""QALA_SMTP_URL as written by administrators: login on a real SMTP server, and the URL forms."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from tests.components.notify.conftest import MailBox, free_port
from tests.conftest import require_module

from qala.components.notify.channels import DeliveryFailed, Outgoing, SmtpChannel, SmtpServer
from qala.core.errors import ConfigurationError


@pytest.fixture
def guarded_mailbox() -> Iterator[tuple[MailBox, list[tuple[str, str]]]]:
    controller_module = require_module("aiosmtpd.controller", "aiosmtpd is not installed")
    smtp_module = require_module("aiosmtpd.smtp", "aiosmtpd is not installed")
    logins: list[tuple[str, str]] = []

    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
        login, password = data.login.decode(), data.password.decode()
        logins.append((login, password))
        accepted = (login, password) == ("qala", "p@ss:word")
        # handled=False: the server answers the refusal itself (535).
        return smtp_module.AuthResult(success=accepted, handled=False)

    box = MailBox(port=free_port())
    controller = controller_module.Controller(
        box,
        hostname="127.0.0.1",
        port=box.port,
        authenticator=authenticator,
        auth_required=True,
        auth_require_tls=False,
    )
    controller.start()
    yield box, logins
    controller.stop()


MESSAGE = Outgoing("request:astana:1:received:s1:email", "a@example.kz", "Тест", "Мәтін", "kk")


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_the_url_login_is_used_and_a_wrong_password_is_reported(
    guarded_mailbox: tuple[MailBox, list[tuple[str, str]]],
) -> None:
    box, logins = guarded_mailbox
    SmtpChannel(
        f"smtp://qala:p%40ss%3Aword@127.0.0.1:{box.port}", "noreply@qala.kz", timeout=5
    ).send(MESSAGE)
    (mail,) = box.messages
    assert mail["Subject"] == "Тест" and mail.get_content().strip() == "Мәтін"
    assert "request-astana-1-received-s1-email" in mail["Message-ID"]
    with pytest.raises(DeliveryFailed) as refused:
        SmtpChannel(f"smtp://qala:wrong@127.0.0.1:{box.port}", "noreply@qala.kz", timeout=5).send(
            MESSAGE
        )
    assert "535" in str(refused.value) and not refused.value.permanent
    # smtplib tries each mechanism the server offers (PLAIN, then LOGIN) before giving up.
    assert logins[0] == ("qala", "p@ss:word") and set(logins[1:]) == {("qala", "wrong")}
    with pytest.raises(DeliveryFailed) as anonymous:
        SmtpChannel(f"smtp://127.0.0.1:{box.port}", "noreply@qala.kz", timeout=5).send(MESSAGE)
    assert "530" in str(anonymous.value) and len(box.messages) == 1


def test_smtp_urls_say_how_to_connect() -> None:
    assert SmtpServer.from_url("smtps://mail.kz") == SmtpServer(
        "mail.kz", 465, True, False, None, None
    )
    assert SmtpServer.from_url("smtp://u:p@mail.kz?starttls=true") == SmtpServer(
        "mail.kz", 587, False, True, "u", "p"
    )
    assert SmtpServer.from_url("smtp://mail.kz:2525").port == 2525
    for bad in ("http://mail.kz", "smtp://", "smtp://mail.kz:port"):
        with pytest.raises(ConfigurationError):
            SmtpServer.from_url(bad)
