"""Import 1,000,000 generated long-format values into a fresh store and time each stage.

    .venv/bin/python bench/catalog_import.py [--rows 1000000] [--postgres URL]

Goal (issue 2): under 60 s into SQLite on a 2-core machine. Prints a Rich table of the stages.
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from qala.components.catalog.frameworks import load_catalogue
from qala.components.catalog.places import load_gazetteer
from qala.components.catalog.services import import_file
from qala.registry import prepare
from qala.runtime import Context
from qala.settings import Settings

console = Console()


def generate(rows: int, path: Path) -> int:
    catalogue, gazetteer = load_catalogue(), load_gazetteer()
    places = [p.code for p in gazetteer.places]
    indicators = list(catalogue.indicators)
    per_year = len(places) * len(indicators)
    years_needed = math.ceil(rows / per_year)
    if years_needed > 2025 - 1950 + 1:
        raise SystemExit(f"only {per_year} place-indicator pairs: cannot make {rows} values")
    years = list(range(2025 - years_needed + 1, 2026))
    rng = np.random.default_rng(1)
    index = pd.MultiIndex.from_product(
        [places, indicators, years], names=["place", "indicator", "year"]
    )
    frame = index.to_frame(index=False).iloc[:rows]
    # Values inside each unit's valid range, so the whole file passes validation.
    units = {i: catalogue.units[catalogue.indicators[i].unit] for i in indicators}
    low = frame["indicator"].map({i: u.min or 0.0 for i, u in units.items()}).to_numpy(float)
    high = frame["indicator"].map({i: u.max or 1000.0 for i, u in units.items()}).to_numpy(float)
    whole = frame["indicator"].map({i: u.integer for i, u in units.items()}).to_numpy(bool)
    values = low + rng.uniform(0, 1, len(frame)) * (high - low)
    frame["value"] = np.where(whole, np.floor(values), np.round(values, 3))
    frame["source"] = "bench"
    frame.to_csv(path, index=False)
    return len(frame)


def run(url: str, csv: Path, label: str, table: Table) -> None:
    context = Context.from_settings(Settings(database_url=url))
    started = time.perf_counter()
    prepare(context)
    migrated = time.perf_counter()
    report = import_file(context.database, csv)
    finished = time.perf_counter()
    assert report.written and not report.check.problems, report.check.problems[:3]
    table.add_row(
        label,
        f"{report.rows_written:,}",
        f"{migrated - started:.1f}",
        f"{finished - migrated:.1f}",
        f"{report.rows_written / (finished - migrated):,.0f}",
    )
    context.database.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument(
        "--postgres",
        default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres",
        help="admin URL; '' to skip",
    )
    args = parser.parse_args()
    table = Table(title=f"Importing {args.rows:,} long-format values (one transaction, validated)")
    for column in (
        "store",
        "values",
        "migrate + reference data (s)",
        "check + import (s)",
        "values/s",
    ):
        table.add_column(column)
    with tempfile.TemporaryDirectory() as folder:
        csv = Path(folder) / "values.csv"
        with console.status("generating"):
            rows = generate(args.rows, csv)
        console.print(f"generated {rows:,} rows ({csv.stat().st_size / 1e6:.0f} MB)")
        run(f"sqlite:///{Path(folder) / 'bench.sqlite'}", csv, "SQLite", table)
        if args.postgres:
            admin = create_engine(args.postgres, isolation_level="AUTOCOMMIT")
            name = f"qala_bench_{uuid.uuid4().hex[:8]}"
            try:
                with admin.connect() as connection:
                    connection.execute(text(f'CREATE DATABASE "{name}"'))
            except Exception as exc:  # the server is optional for this benchmark
                console.print(f"[yellow]PostgreSQL skipped: {exc}")
            else:
                try:
                    run(
                        make_url(args.postgres)
                        .set(database=name)
                        .render_as_string(hide_password=False),
                        csv,
                        "PostgreSQL",
                        table,
                    )
                finally:
                    with admin.connect() as connection:
                        connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    console.print(table)


if __name__ == "__main__":
    main()
