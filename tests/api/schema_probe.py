"""Generated requests to one operation of the published schema, and what schemathesis's checks
say of the answers (shared by the schema gate and Open311's fuzz test)."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings, strategies as st


def findings_of(
    operation: Any, headers: dict[str, str], *, examples: int, schema_checks: bool = True
) -> set[str]:
    """Valid and invalid requests (derandomised) to ``operation``; a line per failed check, empty
    when every answer passes ``not_a_server_error`` (and ``response_schema_conformance``)."""
    from schemathesis.checks import not_a_server_error
    from schemathesis.generation.modes import GenerationMode
    from schemathesis.specs.openapi.checks import response_schema_conformance

    checks = [not_a_server_error, *([response_schema_conformance] if schema_checks else [])]
    found: set[str] = set()
    strategy = st.one_of(
        operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
        operation.as_strategy(generation_mode=GenerationMode.NEGATIVE),
    )

    @settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def probe(case: Any) -> None:
        response = case.call(headers=headers)
        for check in checks:
            try:
                case.validate_response(response, checks=[check], headers=headers)
            except Exception as exc:
                lines = str(exc).strip().splitlines()
                summary = " ".join(lines[:6])[:300] if lines else type(exc).__name__
                found.add(
                    f"{case.method} {case.formatted_path} → {response.status_code}: {summary}"
                )

    try:
        probe()
    except Exception as exc:
        if not found:
            found.add(str(exc).strip()[:300])
    return found
