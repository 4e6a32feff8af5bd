"""Assessment: balance diagnosis, readiness and maturity, gaps and roadmap, stakeholders' weights,
peer and mentor matching.

It reads the stored catalogue values (the foundation) and shares the national rating's method
through the rating's spec file, read as package data; it never imports the rating component.
API under ``/api/v1/assessment/``; ``qala assess …`` on the command line.
"""

from __future__ import annotations

from pathlib import Path

from qala.runtime import ComponentSpec, Context

HERE = Path(__file__).parent


def _api(context: Context) -> object:
    from qala.components.assessment.api import router

    return router


def _demo(context: Context) -> str:
    from qala.components.assessment.services import sample_sheet, stored_sheet, submit_readiness

    sheet = sample_sheet()
    assert sheet.place is not None and sheet.year is not None
    with context.database.session() as session:
        existing = stored_sheet(session, sheet.place, sheet.year)
    if existing is not None and existing.source.endswith("(sample_readiness.yaml)"):
        return f"sample readiness questionnaire for {sheet.place} {sheet.year} already stored"
    response = submit_readiness(context.database, sheet, submitted_by="qala-demo")
    return (
        f"sample readiness questionnaire for {sheet.place} {sheet.year} stored as #{response} "
        "(ILLUSTRATIVE answers)"
    )


COMPONENT = ComponentSpec(
    name="assessment",
    migrations=HERE / "migrations",
    api_router=_api,
    demo_loader=_demo,
)
