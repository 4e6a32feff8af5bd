"""Citizen service requests over Open311 GeoReport v2: a city's "109" service.

A per-city service catalogue (kk/ru/en, department, SLA, form attributes), the GeoReport v2 API at
``/open311/v2/``, the request lifecycle with routing, escalation and an audit trail, the operator
API at ``/api/v1/requests/``, and the indicators written back to the catalogue.
"""

from __future__ import annotations

from pathlib import Path

from qala.runtime import ComponentSpec, Context

HERE = Path(__file__).parent


def _api(context: Context) -> object:
    from fastapi import APIRouter

    from qala.components.requests311 import open311, operator_api, photo_api
    from qala.components.requests311.photos import photo_store

    # The photo store is chosen now, so a bucket configured without boto3 stops the start.
    photo_store(context)

    # The platform's shared Open311 state (catalogue cache, rate limits, database threads) is made
    # now, once per context, rather than by the first request.
    open311.Open311Desk.for_context(context)
    router = APIRouter()
    router.include_router(open311.router)
    router.include_router(photo_api.router)
    router.include_router(operator_api.router)
    return router


def _middleware() -> object:
    from qala.components.requests311.open311 import Open311BeforeRouting

    return Open311BeforeRouting


def _demo(context: Context) -> str:
    from qala.components.requests311.demo import load_demo

    return load_demo(context).summary()


COMPONENT = ComponentSpec(
    name="requests311",
    migrations=HERE / "migrations",
    api_router=_api,
    # GET one request from each worker's cache of answers, before routing.
    api_middleware=_middleware,
    # Apps and city portals poll the public Open311 reads: the platform's busiest endpoints.
    route_priority=2,
    demo_loader=_demo,
)
