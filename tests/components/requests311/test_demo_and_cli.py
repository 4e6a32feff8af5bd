"""The demo loader (idempotent, illustrative, feeds the indicators) and the CLI."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import func, select
from typer.testing import CliRunner

from qala.components.requests311.demo import load_demo
from qala.components.requests311.models import AuditEntry, Request
from qala.runtime import Context


def test_demo_loads_catalogue_and_illustrative_history_once(context: Context) -> None:
    first = load_demo(context, count=60)
    assert first.services == 13 and first.requests_created == 60
    second = load_demo(context, count=60)
    assert second.requests_created == 0  # safe to run again
    with context.database.session() as session:
        assert session.scalar(select(func.count()).select_from(Request)) == 60
        assert (
            session.scalar(
                select(func.count()).select_from(Request).where(Request.illustrative.is_(False))
            )
            == 0
        )
        statuses = dict(
            session.execute(select(Request.status, func.count()).group_by(Request.status)).all()
        )
        # History since 2023: nearly everything closed, some duplicates, an audit entry per step.
        assert statuses.get("closed", 0) >= 50
        assert (session.scalar(select(func.count()).select_from(AuditEntry)) or 0) > 3 * 60
    assert first.indicator_values >= 5


def test_cli_loads_lists_escalates_and_computes(sqlite_url: str, monkeypatch: Any) -> None:
    from qala.cli.main import app

    monkeypatch.setenv("QALA_DATABASE_URL", sqlite_url)
    runner = CliRunner()
    loaded = runner.invoke(app, ["requests", "load-catalogue", "--json"])
    assert loaded.exit_code == 0, loaded.output
    by_city = {row["jurisdiction"]: row for row in json.loads(loaded.output)}
    # Every city and town of the places catalogue, each with the national template's services.
    assert len(by_city) >= 40 and {"karaganda", "temirtau", "almaty"} <= set(by_city)
    assert by_city["astana"] == {
        "jurisdiction": "astana",
        "services": 13,
        "departments": 11,
        "routing_rules": 6,
    }
    assert by_city["temirtau"]["services"] == 13 and by_city["temirtau"]["routing_rules"] == 0
    one = runner.invoke(app, ["requests", "load-catalogue", "--city", "karaganda", "--json"])
    assert json.loads(one.output) == [
        {"jurisdiction": "karaganda", "services": 13, "departments": 8, "routing_rules": 2}
    ]
    services = json.loads(
        runner.invoke(app, ["requests", "services", "-j", "astana", "--json"]).output
    )
    assert {s["code"]: s["sla_hours"] for s in services}["electricity"] == 12
    key = runner.invoke(app, ["requests", "api-key", "eGov mobile"])
    assert key.exit_code == 0 and "api_key for eGov mobile" in key.output
    escalated = runner.invoke(app, ["requests", "escalate", "--json"])
    assert escalated.exit_code == 0
    assert json.loads(escalated.output) == {code: [] for code in by_city}
    missing = runner.invoke(app, ["requests", "show", "12345", "-j", "astana"])
    assert missing.exit_code == 2 and "no service request 12345" in missing.output
