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


def _startup(context: Context) -> None:
    # Appends sign the new ledger head with the key file; cheap: the key is read on first use.
    from qala.components.budgeting.signing import ledger_signer

    ledger_signer(context)


def _demo(context: Context) -> str:
    from qala.components.budgeting.demo import load_demo

    _startup(context)  # demo loading may run in a context nobody started (tests, scripts)

    return load_demo(context).summary()


COMPONENT = ComponentSpec(
    name="budgeting",
    migrations=HERE / "migrations",
    api_router=_api,
    demo_loader=_demo,
    on_startup=_startup,
)
