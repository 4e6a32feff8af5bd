"""`qala notify list|retry` for administrators, and delivery running inside the server process."""

from __future__ import annotations

import json
import time
from typing import Any

from tests.components.notify.conftest import MailBox
from typer.testing import CliRunner

from qala.components.notify.sender import Sender, start_background_delivery


def test_notify_list_shows_waiting_messages_with_their_last_error(
    sqlite_city: Any, monkeypatch: Any
) -> None:
    from qala.cli.main import app

    context = sqlite_city.context
    context.settings.smtp_url = "smtp://127.0.0.1:9"  # discard port: nobody answers
    submitted = sqlite_city.submit("pothole", email="erlan@example.kz", language="kk")
    context.settings.notify_max_attempts = 1
    assert Sender.for_context(context).run_once() == {"failed": 1}
    monkeypatch.setenv("QALA_DATABASE_URL", context.settings.database_url)
    runner = CliRunner()
    listed = runner.invoke(app, ["notify", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    (row,) = json.loads(listed.output)
    assert row["status"] == "failed" and row["recipient"] == "er…@example.kz"
    assert row["subject"] == f"Өтініш №{submitted.service_request_id} қабылданды"
    assert "Connection refused" in row["last_error"]
    assert runner.invoke(app, ["notify", "retry", str(row["id"])]).exit_code == 0
    (again,) = json.loads(runner.invoke(app, ["notify", "list", "--json"]).output)
    assert again["status"] == "queued" and again["attempts"] == 0
    wrong = runner.invoke(app, ["notify", "list", "--status", "lost"])
    assert wrong.exit_code == 2 and "status" in wrong.output


def test_the_server_process_delivers_in_the_background(sqlite_city: Any, mailbox: MailBox) -> None:
    context = sqlite_city.context
    context.settings.smtp_url = mailbox.url
    context.settings.notify_poll_seconds = 0.1
    delivery = start_background_delivery(context)
    assert delivery is not None
    try:
        sqlite_city.submit("pothole", email="gulnar@example.kz", language="ru")
        deadline = time.monotonic() + 20
        while not mailbox.messages and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        delivery.stop()
    assert [m["To"] for m in mailbox.messages] == ["gulnar@example.kz"]
    assert not delivery.thread.is_alive()
