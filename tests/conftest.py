"""Shared test fixtures: where the repository and ../shared data live, and fresh stores.

Store tests run against SQLite always and against a real PostgreSQL server when one answers
(``QALA_TEST_POSTGRES_URL``, default the local server). Each test gets its own database, cloned
from a migrated template.

Anything a test needs from outside the package (a peer library, a Debian program, a server, the
clients' venv, a ../shared data file) is asked for through ``need``: absent, the test is skipped
locally with the reason, but under CI (``CI=true``) it FAILS, because CI installs everything and a
skip there would hide a test that never ran.
"""

from __future__ import annotations

import importlib
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

REPO_ROOT = Path(__file__).resolve().parents[1]
# Beside the clone; QALA_SHARED_DATA points elsewhere (a git worktree is not beside it).
SHARED_DATA = Path(os.environ.get("QALA_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))
POSTGRES_ADMIN_URL = os.environ.get(
    "QALA_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def in_ci() -> bool:
    """True under CI (``CI=true``, as CI services and .ci/run set it), read at each call."""
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def need(available: object, reason: str) -> None:
    """Go on when ``available`` is true; else skip the test with ``reason`` — or fail it under CI.

    ``reason`` says what is missing and how to get it (it is the whole message a developer sees).
    """
    if available:
        return
    if in_ci():
        pytest.fail(f"{reason} — under CI every test must run (see .ci/run)", pytrace=False)
    pytest.skip(reason)


def require_module(name: str, reason: str) -> ModuleType:
    """The imported module ``name``; when it cannot be imported, ``need`` decides (skip or fail).

    Call it from a fixture or test, not at module level: under CI a failure there would abort the
    whole collection instead of failing the tests that need the module.
    """
    try:
        return importlib.import_module(name)
    except ImportError as error:
        need(False, f"{reason} (import {name}: {error})")
        raise  # unreachable: need() raised; keeps the return type honest


def require_program(name: str, debian_package: str) -> str:
    """Path of the program ``name`` on PATH, or ``need`` decides (skip or fail)."""
    path = shutil.which(name)
    need(path, f"{name} is not on PATH (apt-get install -y {debian_package})")
    assert path is not None
    return path


def unreachable_postgres_url() -> str:
    """A PostgreSQL address where nothing listens (a free loopback port): a store that is down."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"postgresql+psycopg://postgres@127.0.0.1:{port}/none?connect_timeout=2"


def shared_file(relative: str) -> Path:
    """Path of a file in ../shared/data; when it is absent, ``need`` decides (skip or fail)."""
    path = SHARED_DATA / relative
    need(
        path.exists(),
        f"shared data file {path} is absent (it lives beside the repo in ../shared/data, "
        "or where QALA_SHARED_DATA says)",
    )
    return path


def _postgres_available() -> str | None:
    """None when the server answers, else the reason it does not."""
    try:
        engine = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with engine.connect() as connection:
            connection.execute(text("select 1"))
        engine.dispose()
        return None
    except Exception as exc:
        return (
            f"PostgreSQL at {POSTGRES_ADMIN_URL} does not answer: {exc.__class__.__name__}: {exc}"
        )


class PostgresServer:
    """Creates and drops throw-away databases on the test server."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        self.engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")

    def create(self, template: str | None = None) -> str:
        name = f"qala_test_{uuid.uuid4().hex[:12]}"
        clause = f" TEMPLATE {template}" if template else ""
        with self.engine.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"{clause}'))
        return make_url(self.admin_url).set(database=name).render_as_string(hide_password=False)

    def drop(self, url: str) -> None:
        name = make_url(url).database
        with self.engine.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    reason = _postgres_available()
    need(reason is None, f"{reason}; the store tests run against PostgreSQL too")
    server = PostgresServer(POSTGRES_ADMIN_URL)
    yield server
    server.engine.dispose()


def _prepare(url: str) -> None:
    from qala.registry import prepare
    from qala.runtime import Context
    from qala.settings import Settings

    context = Context.from_settings(Settings(database_url=url))
    prepare(context)
    context.database.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated once and filled with reference data; tests get copies."""
    path = tmp_path_factory.mktemp("template") / "template.sqlite"
    _prepare(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def postgres_template(postgres_server: PostgresServer) -> Iterator[str]:
    url = postgres_server.create()
    _prepare(url)
    yield str(make_url(url).database)
    postgres_server.drop(url)


def _sqlite_url(template: Path, folder: Path) -> str:
    path = folder / "qala.sqlite"
    shutil.copy(template, path)
    return f"sqlite:///{path}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, migrated database with reference data, on each backend."""
    if request.param == "sqlite":
        yield _sqlite_url(request.getfixturevalue("sqlite_template"), tmp_path)
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    url = server.create(template=request.getfixturevalue("postgres_template"))
    yield url
    server.drop(url)


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def module_database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """:func:`database_url` shared by one module's tests (a world built once per backend)."""
    if request.param == "sqlite":
        folder = tmp_path_factory.mktemp("store")
        yield _sqlite_url(request.getfixturevalue("sqlite_template"), folder)
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    url = server.create(template=request.getfixturevalue("postgres_template"))
    yield url
    server.drop(url)


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    """A fresh, migrated SQLite database with reference data (for tests that need one backend)."""
    return _sqlite_url(sqlite_template, tmp_path)


@pytest.fixture
def context(database_url: str) -> Iterator[object]:
    """A running-platform context on a fresh database (both backends)."""
    from qala.runtime import Context
    from qala.settings import Settings

    ctx = Context.from_settings(Settings(database_url=database_url, secret_key="test-secret"))
    yield ctx
    ctx.database.dispose()


@pytest.fixture
def sqlite_context(sqlite_url: str) -> Iterator[object]:
    from qala.runtime import Context
    from qala.settings import Settings

    ctx = Context.from_settings(Settings(database_url=sqlite_url, secret_key="test-secret"))
    yield ctx
    ctx.database.dispose()
