"""A small demo site for the dashboard tests: demo accounts, two years of the illustrative sample,
a rating with a few Monte Carlo replications, Astana's request catalogue, one open incident, and
the budgeting demo when that component ships one. Built once per test module."""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest
from tests.conftest import need, require_module

from qala.runtime import Context
from qala.settings import Settings

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "web"


@dataclass
class DemoSite:
    url: str
    context: Context
    incident_id: int | None
    pb_process: str | None


def load_small_demo(
    context: Context, *, replications: int = 20, budgeting: bool = True, years: int = 2
) -> tuple[int | None, str | None]:
    from qala.components.accounts.services import ensure_demo_users
    from qala.components.catalog.sample import load_sample_data
    from qala.registry import COMPONENTS

    with context.database.transaction() as session:
        ensure_demo_users(session)
    load_sample_data(context.database, years=range(2026 - years, 2026))
    names = {c.name: c for c in COMPONENTS}
    if "rating" in names:
        from qala.components.rating.services import build_rating

        if years > 1:
            build_rating(context.database, year=2024, replications=0)
        build_rating(context.database, year=2025, replications=replications)
    if "requests311" in names:
        from qala.components.requests311.demo import load_demo

        load_demo(context, count=40)
    incident_id = None
    if "operate" in names:
        from qala.components.operate import incidents

        with context.database.transaction() as session:
            opened = incidents.open_incident(
                session,
                category="water",
                severity="major",
                now=context.clock(),
                actor="test",
                title="Burst water main on Kenesary street",
                description="Water on the road surface (test incident)",
                place_code="astana",
                lat=51.17,
                lon=71.43,
            )
            incident_id = opened.incident.id
    load_demo_call(context)
    pb_process = None
    if budgeting and "budgeting" in names and names["budgeting"].demo_loader is not None:
        try:
            names["budgeting"].demo_loader(context)
        except (ImportError, ModuleNotFoundError):
            pass
        else:
            from qala.components.budgeting.process import list_processes

            with context.database.session() as session:
                voting = list_processes(session, phase="voting")
            pb_process = voting[0].code if voting else None
    return incident_id, pb_process


def load_demo_call(context: Context) -> int:
    """An open 2026 data call in every state: Astana's values submitted (one returned with a
    reason), Almaty's accepted, Shymkent's missing; the deadline has passed. Texts people typed
    are in Russian, as an akimat and the rating team would write them."""
    import pandas as pd

    from qala.components.catalog.calls import open_call, review, submit_values

    indicators = ["iso37120.5.1", "iso37120.11.1"]
    with context.database.transaction() as session:
        call = open_call(
            session,
            year=2026,
            indicators=indicators,
            places=["astana", "almaty", "shymkent"],
            deadline=date(2026, 3, 1),
            actor="reviewer",
        )
        for place, values in (("astana", [4.4, 73.9]), ("almaty", [4.6, 75.1])):
            frame = pd.DataFrame(
                {
                    "place": place,
                    "indicator": indicators,
                    "value": values,
                    "evidence": ["письмо акимата № 14-2/118", "https://stat.gov.kz/ru/"],
                    "note": ["по данным обследования рабочей силы", None],
                }
            )
            submit_values(session, call.id, frame, actor="submitter", scope_place=place)
        review(
            session,
            call.id,
            "astana",
            indicators[1],
            "return",
            actor="reviewer",
            reason="Нет ссылки на таблицу БНС",
        )
        for indicator in indicators:
            review(session, call.id, "almaty", indicator, "accept", actor="reviewer")
        return call.id


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def demo_site(
    sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DemoSite]:
    import uvicorn

    from qala.api.app import create_app

    folder = tmp_path_factory.mktemp("site")
    database = folder / "qala.sqlite"
    shutil.copy(sqlite_template, database)
    settings = Settings(database_url=f"sqlite:///{database}", secret_key="web-tests")
    context = Context.from_settings(settings)
    app = create_app(settings, context=context)
    incident_id, pb_process = load_small_demo(context)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield DemoSite(f"http://127.0.0.1:{port}", context, incident_id, pb_process)
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    need(CHROMIUM.exists(), f"Debian's chromium is not at {CHROMIUM} (apt-get install -y chromium)")
    sync_api = require_module(
        "playwright.sync_api", "the `dev` extra (playwright) is not installed"
    )
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


def shot(page: object, name: str) -> None:
    """Save a full-page screenshot under test-artifacts/web/ (git-ignored)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)  # type: ignore[attr-defined]
