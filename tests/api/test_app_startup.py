"""What every serving process gets, whether or not it migrated the store itself."""

from __future__ import annotations

import gc
import subprocess
import sys
from typing import Any

from fastapi.testclient import TestClient

from qala.api import create_app
from qala.components.operate.models import Entity
from qala.components.requests311.demo import astana_catalogue
from qala.components.requests311.services import load_catalogue
from qala.settings import Settings

POST = {
    "service_code": "heating",
    "lat": "51.125",
    "long": "71.43",
    "attribute[issue]": "no_heating",
    "attribute[indoor_temperature]": "15",
}


def test_a_worker_that_did_not_migrate_still_links_citizen_requests(sqlite_url: str) -> None:
    # `qala serve --workers N` migrates once, then each worker builds the app with migrate=False:
    # its components must still start (Operate's subscription to new citizen requests).
    settings = Settings(database_url=sqlite_url, secret_key="t", rate_limit_per_minute=0)
    app = create_app(settings, migrate=False)
    context = app.state.context
    with context.database.transaction() as session:
        load_catalogue(session, astana_catalogue())
    with TestClient(app) as client:
        answer = client.post("/open311/v2/requests.json", data=POST)
    assert answer.status_code == 200, answer.text
    request_id = answer.json()[0]["service_request_id"]
    with context.database.session() as session:
        recorded = session.get(Entity, f"urn:ngsi-ld:ServiceRequest:{request_id}")
    assert recorded is not None and (recorded.lat, recorded.lon) == (51.125, 71.43)


def _paths_in_matching_order(routes: list[Any]) -> list[str]:
    paths: list[str] = []
    for route in routes:
        inner = getattr(route, "original_router", None) or getattr(route, "app", None)
        if getattr(route, "path", None):
            paths.append(route.path)
        elif inner is not None and hasattr(inner, "routes"):
            paths += _paths_in_matching_order(list(inner.routes))
    return paths


def test_public_open311_routes_are_matched_before_the_rest(sqlite_url: str) -> None:
    app = create_app(Settings(database_url=sqlite_url, secret_key="t"), migrate=False)
    paths = [
        p
        for p in _paths_in_matching_order(list(app.routes))
        if p.startswith(("/api/", "/ngsi-ld/", "/open311/"))
    ]
    assert paths[0].startswith("/open311/v2/"), paths[:5]
    first_ngsi = next(i for i, p in enumerate(paths) if p.startswith("/ngsi-ld/"))
    assert first_ngsi < paths.index("/api/v1/places") < paths.index("/api/v1/budgeting/processes")


def test_serving_worker_freezes_its_start_up_objects(sqlite_url: str) -> None:
    # In a child process: freezing is for servers, and would keep this test process's garbage.
    script = (
        "import gc; from qala.api.factory import app_from_environment; "
        "app_from_environment(); print(gc.get_freeze_count())"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env={"QALA_DATABASE_URL": sqlite_url, "QALA_SECRET_KEY": "t", "PATH": "/usr/bin:/bin"},
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert int(done.stdout.split()[-1]) > 100_000
    assert gc.get_freeze_count() == 0  # this process was left alone
