"""Fixtures for the requests component: a city with Astana's catalogue, a fixed clock, and the
whole app served by uvicorn on a free loopback port (for real HTTP clients)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
import uvicorn

from qala.components.requests311.demo import astana_catalogue
from qala.components.requests311.services import (
    JurisdictionInfo,
    NewRequest,
    Submitted,
    load_catalogue,
    submit_request,
)
from qala.runtime import Context
from qala.settings import Settings

NOW = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
"""The tests' clock: a winter morning in Astana (UTC)."""

# Centres of districts from the bundled catalogue.
YESIL = (51.125, 71.430)
SARYARKA = (51.180, 71.395)


class Clock:
    """A settable clock for ``Context.clock``."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@dataclass
class City:
    context: Context
    jurisdiction: JurisdictionInfo
    clock: Clock

    def submit(
        self, service_code: str, *, at: datetime | None = None, **fields: object
    ) -> Submitted:
        attributes = fields.pop("attributes", None) or default_attributes(service_code)
        new = NewRequest(service_code=service_code, attributes=attributes, **fields)  # type: ignore[arg-type]
        if new.lat is None and new.address_string is None and new.address_id is None:
            new.lat, new.lon = YESIL
        with self.context.database.transaction() as session:
            return submit_request(
                session, self.jurisdiction, new, now=at or self.clock(), bus=self.context.bus
            )


def default_attributes(service_code: str) -> dict[str, list[str]]:
    required = {
        "heating": {"issue": ["no_heating"]},
        "hot_water": {"scope": ["building"]},
        "cold_water": {"issue": ["leak"]},
        "electricity": {"scope": ["street"]},
        "pothole": {"size": ["large"]},
        "snow_removal": {"surface": ["road", "sidewalk"]},
        "waste_collection": {"container": ["mixed"]},
        "illegal_dumping": {"waste_kind": ["construction"]},
        "air_quality": {"source": ["private_stove"]},
        "public_transport": {"route": ["10"], "issue": ["late"]},
        "stray_animals": {"animal": ["dog"]},
        "public_safety": {"hazard": ["open_manhole"]},
    }
    return dict(required.get(service_code, {}))


def make_city(context: Context) -> City:
    clock = Clock(NOW)
    context.clock = clock
    with context.database.transaction() as session:
        jurisdiction = load_catalogue(session, astana_catalogue())
    return City(context, jurisdiction, clock)


@pytest.fixture
def city(context: Context) -> City:
    """Astana's catalogue on a fresh store (SQLite and PostgreSQL), clock at ``NOW``."""
    return make_city(context)


@pytest.fixture
def sqlite_city(sqlite_context: Context) -> City:
    return make_city(sqlite_context)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class LiveServer:
    base_url: str
    server: uvicorn.Server
    thread: threading.Thread

    @property
    def open311(self) -> str:
        return f"{self.base_url}/open311/v2"


def serve(app: object) -> LiveServer:
    """Start uvicorn in a background thread; the caller stops it with ``stop_server``."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")  # type: ignore[arg-type]
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    return LiveServer(f"http://127.0.0.1:{port}", server, thread)


def stop_server(live: LiveServer) -> None:
    live.server.should_exit = True
    live.thread.join(10)


@pytest.fixture
def live_city(city: City) -> Iterator[tuple[City, LiveServer]]:
    """Astana on each store, served over HTTP on loopback."""
    from qala.api import create_app

    app = create_app(context=city.context)
    live = serve(app)
    yield city, live
    stop_server(live)


@pytest.fixture
def app_factory(sqlite_url: str) -> Callable[..., tuple[object, City]]:
    """Builds the app on a fresh SQLite store with settings overrides (e.g. a rate limit)."""
    from qala.api import create_app

    def build(**overrides: object) -> tuple[object, City]:
        settings = Settings(database_url=sqlite_url, secret_key="t", **overrides)  # type: ignore[arg-type]
        context = Context.from_settings(settings)
        city = make_city_after_migrate(context)
        return create_app(context=context), city

    def make_city_after_migrate(context: Context) -> City:
        from qala.registry import prepare

        prepare(context)
        return make_city(context)

    return build
