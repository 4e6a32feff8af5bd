"""Property (fuzz) tests: schemathesis generates requests from our OpenAPI schema — valid and
invalid — for every Open311 and staff operation; none may answer with a server error (5xx).

Runs on SQLite and PostgreSQL, with an administrator's token so staff operations are exercised
beyond the 401.
"""

from __future__ import annotations

import pytest
from tests.api.schema_probe import findings_of
from tests.components.requests311.conftest import City
from tests.conftest import require_module

from qala.components.accounts.services import create_user, issue_token

EXAMPLES_PER_OPERATION = 25


def _ours(path: str) -> bool:
    return path.startswith(("/open311/v2/", "/api/v1/requests"))


@pytest.mark.slow
def test_no_operation_answers_5xx_to_generated_requests(city: City) -> None:
    schemathesis = require_module(
        "schemathesis", "the `clients` extra (schemathesis) is not installed"
    )
    from qala.api import create_app

    for _ in range(20):  # some data for GET requests, follow, merge… to find
        city.submit("heating")
    with city.context.database.transaction() as session:
        admin = create_user(
            session, username="fuzz.admin", password="long enough pw", role="administrator"
        )
        headers = {"Authorization": f"Bearer {issue_token(session, admin)}"}
    app = create_app(context=city.context)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    ours = [op for op in operations if _ours(op.path)]
    assert len(ours) >= 20, [op.path for op in ours]
    failures: list[str] = []
    for operation in ours:
        found = findings_of(
            operation, headers, examples=EXAMPLES_PER_OPERATION, schema_checks=False
        )
        failures += sorted(found)
    assert not failures, "\n".join(failures)
