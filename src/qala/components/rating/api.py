"""HTTP API of the rating: ``/api/v1/rating/…`` (reading is public, building needs an analyst)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from qala.components.accounts.deps import (
    CallerFirstRoute,
    ContextDep,
    DatabaseDep,
    RowId,
    Year,
    require_national,
)
from qala.components.rating import services
from qala.core.bounds import Code, Document


class SpecIn(BaseModel):
    name: Code | None = Field(None, description="Name to store it under (default: the spec's own).")
    text: Document = Field(
        ..., description="The spec file (YAML or JSON): store, index, uncertainty."
    )


class BuildIn(BaseModel):
    spec: Code | None = Field(
        None, description="Name of a stored spec (default: the national one)."
    )
    year: int | None = Field(None, ge=1900, le=2100)
    kind: Code | None = Field(None, description="city or single_industry")
    region: Code | None = None
    replications: int | None = Field(None, ge=0, le=20_000)
    seed: int | None = Field(None, ge=0, le=2**32 - 1, description="Random seed (numpy's range).")
    release: int | None = Field(
        None, ge=1, le=2**31 - 1, description="Read this published release only (named in the run)."
    )
    draft_call: int | None = Field(
        None,
        ge=1,
        le=2**31 - 1,
        description="Preview a data call's unpublished values: labelled, never stored.",
    )


def _run_payload(session: Any, run: Any, entries: list[services.EntryView]) -> dict[str, Any]:
    summary = asdict(services.RunSummary.of(run, session))
    return {
        **summary,
        "levels": run.levels,
        "spec_text": run.spec_text,
        "catalogue_version": run.catalogue_version,
        "entries": [asdict(e) for e in entries],
    }


router = APIRouter(route_class=CallerFirstRoute, prefix="/api/v1/rating", tags=["rating"])
ANALYST_ONLY = [Depends(require_national("analyst"))]
"""Specs and runs rank every city: national analysts (and administrators) only."""


@router.get("/specs")
def specs(database: DatabaseDep) -> list[dict[str, Any]]:
    """Stored index specs (the national one is stored by the demo and by `qala rating build`)."""
    with database.session() as session:
        return [
            {"name": s.name, "description": s.description, "text": s.text}
            for s in services.list_specs(session)
        ]


@router.get("/specs/default")
def default_spec() -> dict[str, Any]:
    """The national rating's spec file shipped with Qala."""
    spec = services.national_spec()
    return {"name": spec.name, "text": spec.text, "recipe": spec.spec.to_dict()}


@router.post("/specs", dependencies=ANALYST_ONLY, status_code=201)
def save_spec(body: SpecIn, database: DatabaseDep) -> dict[str, Any]:
    with database.transaction() as session:
        row = services.save_spec(session, body.text, name=body.name)
        return {"name": row.name, "description": row.description}


@router.get("/runs")
def runs(
    database: DatabaseDep, name: Code | None = None, year: Year = None
) -> list[dict[str, Any]]:
    with database.session() as session:
        return [asdict(r) for r in services.list_runs(session, name=name, year=year)]


@router.post("/runs", dependencies=ANALYST_ONLY, status_code=201)
def build(body: BuildIn, context: ContextDep) -> dict[str, Any]:
    """Build and store a rating from the stored values or a published release (with rank
    intervals); a preview of a call's drafts is answered, never stored."""
    if body.spec is None:
        spec_file = services.national_spec()
    else:
        with context.database.session() as session:
            spec_file = services.stored_spec_file(session, body.spec)
    outcome = services.build_rating(
        context.database,
        spec_file,
        year=body.year,
        kind=body.kind,
        region=body.region,
        replications=body.replications,
        seed=body.seed,
        spec_name=body.spec,
        bus=context.bus,
        release=body.release,
        draft_call=body.draft_call,
    )
    return outcome.to_json_dict()


@router.get("/runs/{run_id}")
def run(
    run_id: RowId,
    database: DatabaseDep,
    kind: str | None = Query(None, description="city or single_industry", max_length=100),
    region: str | None = Query(
        None, description="region code, e.g. karaganda-region", max_length=100
    ),
) -> dict[str, Any]:
    with database.session() as session:
        row = services.get_run(session, run_id)
        return _run_payload(
            session, row, services.run_entries(session, row, kind=kind, region=region)
        )


@router.get("/latest")
def latest(
    database: DatabaseDep,
    name: Code = "kz_smart_city",
    year: Year = None,
    kind: str | None = Query(None, description="city or single_industry", max_length=100),
    region: Code | None = None,
) -> dict[str, Any]:
    """The newest whole-country rating, filtered for display by kind and region."""
    with database.session() as session:
        row = services.latest_run(session, name=name, year=year)
        return _run_payload(
            session, row, services.run_entries(session, row, kind=kind, region=region)
        )


@router.get("/places/{code}")
def place(code: Code, database: DatabaseDep, name: Code = "kz_smart_city") -> dict[str, Any]:
    """A place's score, rank and rank interval in each year's stored rating."""
    with database.session() as session:
        return {"place": code, "history": services.place_history(session, code, name=name)}
