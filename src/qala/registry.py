"""The explicit list of components. The shells (API, web, CLI) mount what each declares."""

from __future__ import annotations

from pathlib import Path

from qala.components.accounts import COMPONENT as ACCOUNTS
from qala.components.assessment import COMPONENT as ASSESSMENT
from qala.components.budgeting import COMPONENT as BUDGETING
from qala.components.catalog import COMPONENT as CATALOG
from qala.components.notify import COMPONENT as NOTIFY
from qala.components.operate import COMPONENT as OPERATE
from qala.components.rating import COMPONENT as RATING
from qala.components.requests311 import COMPONENT as REQUESTS311
from qala.runtime import ComponentSpec, Context
from qala.store.migrate import applied_heads, upgrade

# Order matters for start-up and the demo: the foundation first, then Operate and Participate,
# then the components that measure, so the demo's rating includes what the others wrote back.
COMPONENTS: list[ComponentSpec] = [
    CATALOG,
    ACCOUNTS,
    NOTIFY,
    REQUESTS311,
    OPERATE,
    BUDGETING,
    RATING,
    ASSESSMENT,
]


def migration_locations() -> list[Path]:
    return [c.migrations for c in COMPONENTS if c.migrations is not None]


def prepare(context: Context) -> None:
    """Migrate the store to the newest schema, let each component seed its reference data, and
    start the components in this process."""
    upgrade(context.database, [str(p) for p in migration_locations()])
    for component in COMPONENTS:
        if component.seed is not None:
            component.seed(context)
    start_components(context)


def start_components(context: Context) -> None:
    """Run every component's per-process start-up (event subscriptions…) once for ``context``."""
    if context.extras.get(_STARTED):
        return
    context.extras[_STARTED] = True
    for component in COMPONENTS:
        if component.on_startup is not None:
            component.on_startup(context)


_STARTED = "registry.components_started"


_EXPECTED_HEADS = "qala.registry.expected_heads"


def readiness(context: Context) -> tuple[bool, dict[str, str]]:
    """Whether this process can serve: the database answers and has every migration applied,
    and each check a running part registered (an MQTT ingester: its broker) passes. Returns the
    verdict and each check's outcome (``ok`` or what is wrong)."""
    from qala.store.migrate import newest_heads

    checks: dict[str, str] = {}
    try:
        applied = applied_heads(context.database)
    except Exception as exc:  # down, refusing connections, wrong credentials…
        checks["database"] = f"unreachable: {exc.__class__.__name__}"
    else:
        checks["database"] = "ok"
        locations = [str(p) for p in migration_locations()]
        if _EXPECTED_HEADS not in context.extras:  # reading the scripts takes ~0.1 s: once
            context.extras[_EXPECTED_HEADS] = newest_heads(context.database, locations)
        expected, ancestors = context.extras[_EXPECTED_HEADS]
        missing = expected - {r for head in applied for r in ancestors.get(head, {head})}
        checks["migrations"] = "ok" if not missing else f"not applied: {', '.join(sorted(missing))}"
    for name, check in sorted(context.readiness_checks().items()):
        try:
            checks[name] = "ok" if check() else "not connected"
        except Exception as exc:
            checks[name] = f"failed: {exc.__class__.__name__}"
    return all(v == "ok" for v in checks.values()), checks
