"""The national Smart City rating: index specs and results kept in the store.

The composite-index engine (:mod:`qala.engines.index`) does the computing; this component feeds it
the catalogue framework ``kz_smart_city`` as the structure and the stored indicator values as the
data, runs the Monte Carlo that gives each place's rank interval, and stores every result with the
spec text that made it. API under ``/api/v1/rating/``; ``qala rating …`` and, in store mode,
``qala index build SPEC`` on the command line.
"""

from __future__ import annotations

from pathlib import Path

from qala.runtime import ComponentSpec, Context

HERE = Path(__file__).parent
NATIONAL_SPEC = HERE / "data" / "national.yaml"


def _api(context: Context) -> object:
    from qala.components.rating.api import router

    return router


def _demo(context: Context) -> str:
    from qala.components.rating.services import build_rating, national_spec

    spec = national_spec()
    with context.database.transaction() as session:
        from qala.components.rating.services import save_spec

        save_spec(session, spec.text, name=spec.name)
    outcome = build_rating(context.database, spec, spec_name=spec.name, bus=context.bus)
    flag = (
        " (ILLUSTRATIVE: built on generated sample values, not a published release)"
        if outcome.illustrative
        else f" (on published release {outcome.release})"
    )
    runs = outcome.uncertainty.runs if outcome.uncertainty else 0
    # The regional rating reads official values only, loaded by the catalog's demo before this.
    from qala.components.rating.regional import build_regional

    regional, comparison = build_regional(context.database, bus=context.bus)
    return (
        f"national rating {outcome.year}: {len(outcome.result.scores)} cities ranked with "
        f"{runs} Monte Carlo replications{flag}; regional rating on official statistics "
        f"{regional.year} (published release {regional.release}): "
        f"{len(regional.result.scores)} places (Spearman's rho "
        f"{comparison.spearman:.2f} against the volunteer ranking)"
    )


COMPONENT = ComponentSpec(
    name="rating",
    migrations=HERE / "migrations",
    api_router=_api,
    demo_loader=_demo,
)
