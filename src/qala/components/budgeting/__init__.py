"""Participation: participatory budgeting processes, consultations and public tracking of city
projects with a hash-chained ledger of their money.

Processes run proposal submission → feasibility review → voting → results → implementation; the
votes are counted by ``qala.engines.pb`` (greedy, Method of Equal Shares, Phragmén, max welfare).
API under ``/api/v1/budgeting/``; ``qala budget …``; service functions listed in ``README.md``.
"""

from __future__ import annotations

from pathlib import Path

from qala.runtime import ComponentSpec, Context

HERE = Path(__file__).parent


def _api(context: Context) -> object:
    from qala.components.budgeting.api import router

    return router


def _demo(context: Context) -> str:
    from qala.components.budgeting.demo import load_demo

    return load_demo(context).summary()


COMPONENT = ComponentSpec(
    name="budgeting",
    migrations=HERE / "migrations",
    api_router=_api,
    demo_loader=_demo,
)
