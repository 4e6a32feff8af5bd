"""CI keeps the hardening closed: schemathesis over every operation of the published schema, as a
visitor and as an administrator, on demo data; no answer may be a server error or break the
schema it is published with (``not_a_server_error``, ``response_schema_conformance``).

Each operation gets valid and invalid generated requests (derandomised, so a run is repeatable).
The findings of every operation are collected and reported together.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.api.schema_probe import findings_of
from tests.conftest import require_module
from tests.web.conftest import load_small_demo

from qala.runtime import Context
from qala.settings import Settings

EXAMPLES_PER_OPERATION = 6


@pytest.fixture(scope="module")
def demo(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    import shutil

    from qala.api import create_app

    folder = tmp_path_factory.mktemp("schema-gate")
    shutil.copy(sqlite_template, folder / "qala.sqlite")
    settings_ = Settings(database_url=f"sqlite:///{folder}/qala.sqlite", secret_key="gate")
    context = Context.from_settings(settings_)
    app = create_app(settings_, context=context)
    load_small_demo(context, replications=0, years=1)
    yield app
    context.database.dispose()


def _administrator_headers(context: Context) -> dict[str, str]:
    from sqlalchemy import select

    from qala.components.accounts.models import User
    from qala.components.accounts.services import issue_token

    with context.database.transaction() as session:
        admin = session.scalar(select(User).where(User.role == "administrator"))
        assert admin is not None
        return {"Authorization": f"Bearer {issue_token(session, admin, label='schema gate')}"}


@pytest.mark.slow
@pytest.mark.parametrize("role", ["visitor", "administrator"])
def test_no_operation_answers_5xx_or_off_its_schema(demo: Any, role: str) -> None:
    schemathesis = require_module(
        "schemathesis", "the `clients` extra (schemathesis) is not installed"
    )
    headers = {} if role == "visitor" else _administrator_headers(demo.state.context)
    schema = schemathesis.openapi.from_asgi("/openapi.json", demo)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 100, "the schema lost most of its operations"
    findings: dict[str, set[str]] = {}
    for operation in operations:
        found = findings_of(operation, headers, examples=EXAMPLES_PER_OPERATION)
        if found:
            findings[f"{operation.method.upper()} {operation.path}"] = found
    report = [f"{name}\n    " + "\n    ".join(sorted(found)) for name, found in findings.items()]
    assert not findings, f"{len(findings)} operations failed as {role}:\n" + "\n".join(report)
