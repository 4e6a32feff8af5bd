"""What every component receives: the running context, and how a component declares itself.

A component is declared by one ``ComponentSpec`` (like a Decidim manifest) listed in
``qala.registry``; the shells (API, web, CLI) read the registry and mount what each declares.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qala.core.clock import utc_now
from qala.events import BUS_KEY, EventBus

if TYPE_CHECKING:  # imported when used: a component's light modules (e.g. the catalogue) and
    # the CLI's file-only commands then start without SQLAlchemy and pydantic-settings
    from qala.core.metrics import Metrics
    from qala.settings import Settings
    from qala.store.database import Database


METRICS_KEY = "qala.metrics"
READINESS_KEY = "qala.readiness"


@dataclass
class Context:
    """The running platform as components see it: settings, database, event bus and clock."""

    settings: Settings
    database: Database
    bus: EventBus = field(default_factory=EventBus)
    clock: Callable[[], datetime] = utc_now
    extras: dict[str, Any] = field(default_factory=dict)
    """Objects the shells share with components (e.g. the web templates renderer)."""

    def __post_init__(self) -> None:
        # Every session of this platform carries its bus, so a component can announce a change
        # inside the change's own transaction (qala.events.publish_in_transaction).
        sessions = getattr(self.database, "sessions", None)
        if sessions is not None:
            sessions.configure(info={BUS_KEY: self.bus})

    @classmethod
    def from_settings(cls, settings: Settings) -> Context:
        from qala.store.database import Database

        return cls(settings=settings, database=Database(settings.database_url))

    def metrics(self) -> Metrics:
        """This platform's metrics (``/metrics``), created on first use."""
        from qala.core.metrics import Metrics

        metrics = self.extras.get(METRICS_KEY)
        if metrics is None:
            metrics = self.extras[METRICS_KEY] = Metrics()
        return metrics

    def readiness_checks(self) -> dict[str, Callable[[], bool]]:
        """Checks ``/readyz`` runs besides the database's, by name (a running MQTT ingester
        adds ``mqtt``: connected to its broker)."""
        checks: dict[str, Callable[[], bool]] = self.extras.setdefault(READINESS_KEY, {})
        return checks


@dataclass(frozen=True)
class ComponentSpec:
    """One capability's declaration to the shells."""

    name: str
    migrations: Path | None = None
    """Folder of this component's Alembic revisions (its own branch label)."""
    api_router: Callable[[Context], Any] | None = None
    """Builds the FastAPI router mounted by ``create_app``; paths are absolute."""
    route_priority: int = 0
    """Higher is matched first (registry order among equals). Routes are tried one by one, each
    costing microseconds, so the busiest public endpoints come before the rest."""
    api_middleware: Callable[[], Any] | None = None
    """An ASGI middleware class (given the inner app) that may answer some requests before
    routing, as a cache would; ``create_app`` adds it inside the security headers and metrics."""
    web_router: Callable[[Context], Any] | None = None
    """Builds the router of server-rendered pages."""
    templates: Path | None = None
    """Folder of this component's Jinja templates."""
    seed: Callable[[Context], None] | None = None
    """Writes this component's reference data to the store; run by ``prepare`` after the
    migrations, once per upgrade (never by each serving worker: they would race)."""
    on_startup: Callable[[Context], None] | None = None
    """Readies a process: subscribes to events, fills caches. Runs once in every process that
    opens a context (CLI, each API worker), migrated or not; must be idempotent."""
    demo_loader: Callable[[Context], str] | None = None
    """Loads this component's bundled sample data for `make demo`; returns a one-line summary."""
    nav: tuple[tuple[str, str], ...] = ()
    """(i18n key, path) entries for the dashboard's navigation."""
