"""The foundation: places, the indicator catalogue, and indicator values with provenance.

Other components write the indicators they compute (request times, turnout, air quality…) through
``import_frame`` so a city's rating reflects services and citizens, not only hardware.
"""

from __future__ import annotations

from pathlib import Path

from qala.runtime import ComponentSpec, Context

HERE = Path(__file__).parent


def _api(context: Context) -> object:
    from fastapi import APIRouter

    from qala.components.catalog.api import router
    from qala.components.catalog.calls_api import router as calls_router

    both = APIRouter()
    both.include_router(router)
    both.include_router(calls_router)
    return both


def _seed(context: Context) -> None:
    from qala.components.catalog.services import sync_reference_data

    with context.database.transaction() as session:
        sync_reference_data(session)


def _demo(context: Context) -> str:
    from qala.components.catalog.air import load_air_quality
    from qala.components.catalog.calls import load_demo_open_call, load_demo_release
    from qala.components.catalog.official import load_official
    from qala.components.catalog.sample import DEMO_YEARS, load_sample_data

    report = load_sample_data(context.database, years=DEMO_YEARS)
    # Official figures go in after the sample, from the copies shipped with Qala: where both exist
    # for a place, indicator and year, the official value replaces the illustrative one (and is
    # never replaced back).
    official = load_official(context.database)
    # AirData.kz is non-commercial: never shipped, read only where QALA_SHARED_DATA points.
    air = load_air_quality(context.database, context.settings.shared_data)
    release = load_demo_release(context.database)
    open_call = load_demo_open_call(context.database, context.clock().date())
    return (
        f"{report.rows_written} illustrative indicator values for "
        f"{DEMO_YEARS.start}–{DEMO_YEARS.stop - 1}; {official.summary()}; {air.summary()}; "
        f"published release {release} of a demo data call; data call {open_call} open for "
        "the demo submitter"
    )


COMPONENT = ComponentSpec(
    name="catalog",
    migrations=HERE / "migrations",
    api_router=_api,
    seed=_seed,
    demo_loader=_demo,
)
