"""Operate: the city's context data (NGSI-LD entities for PAS 182 concepts), sensor observations
over HTTP and MQTT, rules on ingest (through ``qala.engines.detect``), incidents routed to the
responsible service, and the indicators they yield written back to the catalogue.

See ``README.md`` in this folder for the service functions the dashboard builds on.
"""

from __future__ import annotations

from pathlib import Path

from qala.runtime import ComponentSpec, Context

HERE = Path(__file__).parent


def _api(context: Context) -> object:
    from fastapi import APIRouter

    from qala.components.operate.api import router as operator_router
    from qala.components.operate.csources_api import router as csources_router
    from qala.components.operate.ngsi_api import router as ngsi_router
    from qala.components.operate.subscriptions import resume_notifications

    # Notifications left in the outbox and periodic ones run in the processes that serve the API.
    resume_notifications(context)
    router = APIRouter()
    router.include_router(ngsi_router)
    router.include_router(csources_router)
    router.include_router(operator_router)
    return router


def _startup(context: Context) -> None:
    from qala.components.operate.gauges import register_gauges
    from qala.components.operate.links import subscribe_to_citizen_requests

    subscribe_to_citizen_requests(context)
    register_gauges(context)


def _demo(context: Context) -> str:
    from qala.components.operate.demo import load_demo

    return load_demo(context)


COMPONENT = ComponentSpec(
    name="operate",
    migrations=HERE / "migrations",
    api_router=_api,
    # Sensor data arrives over NGSI-LD all day; second only to the public Open311 reads.
    route_priority=1,
    on_startup=_startup,
    demo_loader=_demo,
)
