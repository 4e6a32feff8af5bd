"""`qala` starts without loading the platform: an import check, run as a user runs the command.

Each case runs the command in a fresh interpreter and lists, at exit, which heavy libraries and
Qala layers it imported. Speed itself is measured by bench/cli_startup.py, not asserted here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tests.engines.plssem.conftest_data import SMALL_MODEL, simulate

import qala

SRC = Path(qala.__file__).resolve().parents[1]

# Runs `qala ARGS…` as the console script does, then prints the loaded modules on stderr's last
# line (atexit: also after typer's SystemExit).
PROBE = """
import atexit, json, sys
atexit.register(lambda: print("MODULES " + json.dumps(sorted(sys.modules)), file=sys.stderr))
sys.argv = ["qala", *sys.argv[1:]]
from qala.cli.main import app
app()
"""

HEAVY = (
    "pandas",
    "numpy",
    "scipy",
    "fastapi",
    "uvicorn",
    "sqlalchemy",
    "alembic",
    "matplotlib",
    "boto3",
    "botocore",
    # Typer's Rich help layout (Rich's Markdown, markdown-it): 180 ms of a 254 ms `qala --help`
    "typer.rich_utils",
    "markdown_it",
    "qala.registry",
    "qala.components",
    "qala.engines",
    "qala.store",
    "qala.web",
    "qala.api",
)
DATA_AND_STORE = (
    "pandas",
    "numpy",
    "scipy",
    "sqlalchemy",
    "alembic",
    "qala.store",
    "qala.registry",
)
WEB_AND_PLOTS = ("fastapi", "uvicorn", "starlette", "matplotlib", "qala.web", "qala.api")


def imported_by(*args: str, env: dict[str, str] | None = None) -> set[str]:
    """The modules `qala ARGS` imported; fails when the command fails."""
    completed = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(SRC), **(env or {})},
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    last = completed.stderr.strip().splitlines()[-1]
    assert last.startswith("MODULES "), completed.stderr
    return set(json.loads(last.removeprefix("MODULES ")))


def loaded(modules: set[str], families: tuple[str, ...]) -> list[str]:
    """The families (a package and its sub-modules) that were imported."""
    return [f for f in families if any(m == f or m.startswith(f + ".") for m in modules)]


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["serve", "--help"],
        ["db", "upgrade", "--help"],
        ["places", "list", "--help"],
        ["catalog", "show", "--help"],
        ["data", "import", "--help"],
        ["index", "build", "--help"],
        ["pb", "solve", "--help"],
        ["sem", "fit", "--help"],
        ["report", "city", "--help"],
        ["rating", "build", "--help"],
        ["assess", "city", "--help"],
        ["operate", "incidents", "--help"],
        ["budget", "ledger", "--help"],
        ["requests", "--help"],
    ],
    ids=" ".join,
)
def test_help_imports_nothing_heavy(args: list[str]) -> None:
    assert loaded(imported_by(*args), HEAVY) == []


def test_root_help_imports_no_sub_command() -> None:
    modules = imported_by("--help")
    shells = sorted(m for m in modules if m.startswith("qala.cli."))
    assert shells == ["qala.cli.coercion", "qala.cli.main"]  # the converter of option values


def test_catalog_show_reads_the_catalogue_only() -> None:
    modules = imported_by("catalog", "show", "kz_sc.requests.median_hours_to_close", "--json")
    assert "qala.components.catalog.frameworks" in modules  # the real work
    assert loaded(modules, (*DATA_AND_STORE, *WEB_AND_PLOTS)) == []


def test_sem_fit_touches_neither_store_nor_web(tmp_path: Path) -> None:
    model, data = tmp_path / "model.txt", tmp_path / "survey.csv"
    model.write_text(SMALL_MODEL, encoding="utf-8")
    simulate(n=120, seed=8).to_csv(data, index=False)
    modules = imported_by("sem", "fit", str(model), str(data), "--json")
    assert "qala.engines.plssem" in modules  # the real work
    assert loaded(modules, ("sqlalchemy", "qala.store", "qala.registry", *WEB_AND_PLOTS)) == []
    assert loaded(modules, ("scipy",)) == [], "no bootstrap asked: SciPy is not needed"


def test_sem_fit_with_bootstrap_prints_its_tables_without_pandas_or_pydantic(
    tmp_path: Path,
) -> None:
    """The whole `sem fit --bootstrap` command as benchmarked (#13): the CSV is read with the
    csv module and the option values converted without pydantic (their imports alone took a
    third of the command's time)."""
    model, data = tmp_path / "model.txt", tmp_path / "survey.csv"
    model.write_text(SMALL_MODEL, encoding="utf-8")
    simulate(n=120, seed=8).to_csv(data, index=False)
    args = ("sem", "fit", str(model), str(data), "--bootstrap", "50", "--seed", "1")
    modules = imported_by(*args)
    assert "qala.engines.plssem.bootstrap" in modules  # the real work
    assert loaded(modules, ("pandas", "pydantic", "scipy")) == []


def test_a_store_read_loads_no_web_shell_nor_plots(sqlite_url: str) -> None:
    modules = imported_by("places", "list", "--json", env={"QALA_DATABASE_URL": sqlite_url})
    assert "qala.registry" in modules  # the real work: the store and its components
    assert loaded(modules, (*WEB_AND_PLOTS, "scipy")) == []
