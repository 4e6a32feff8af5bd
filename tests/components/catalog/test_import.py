"""City data import: validation report, transactions, formats, round-trip."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from sqlalchemy import func, select
from typer.testing import CliRunner

from qala.components.catalog.models import ImportBatch, IndicatorValue
from qala.components.catalog.services import check_file, export_values, import_file, values_frame
from qala.store.database import Database

BAD_FILE = """place,indicator,year,value,unit,source,note
astana,kz_sc.pb.turnout,2024,12.5,percent,city akimat,fine
nowhere,kz_sc.pb.turnout,2024,10,,,
astana,no.such.indicator,2024,10,,,
almaty,kz_sc.pb.turnout,2024,10,hours,,
almaty,kz_sc.requests.share_closed_within_sla,2024,120,,,
astana,kz_sc.requests.per_1000_residents,2024,-3,,,
shymkent,kz_sc.pb.turnout,2024,5,,,
shymkent,kz_sc.pb.turnout,2024,6,,,
almaty,kz_sc.requests.reopen_rate,2024,n/a,,,
astana,kz_sc.requests.reopen_rate,20x4,3,,,
astana,kz_sc.requests.reopen_rate,2099,3,,,
"""

EXPECTED = {
    3: ("place", "unknown_place"),
    4: ("indicator", "unknown_indicator"),
    5: ("unit", "unit_mismatch"),
    6: ("value", "out_of_range"),
    7: ("value", "out_of_range"),
    8: ("value", "duplicate_conflict"),
    9: ("value", "duplicate_conflict"),
    10: ("value", "not_numeric"),
    11: ("year", "bad_year"),
    12: ("year", "bad_year"),
}


def _count_values(database: Database) -> int:
    with database.session() as session:
        return int(session.scalar(select(func.count()).select_from(IndicatorValue)) or 0)


def test_each_kind_of_bad_row_is_reported_precisely(sqlite_url: str, tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(BAD_FILE, encoding="utf-8")
    result = check_file(Database(sqlite_url), path)
    found = {p.row: (p.column, p.code) for p in result.problems}
    assert found == EXPECTED
    assert all(p.file == str(path) for p in result.problems)
    assert len(result.values) == 1 and result.rows_total == 11
    by_row = {p.row: p for p in result.problems}
    assert "different values" in by_row[8].reason and "8, 9" in by_row[8].reason
    assert "maximum 100" in by_row[6].reason


def test_invalid_file_writes_nothing_and_partial_import_lists_rejected_rows(
    database_url: str, tmp_path: Path
) -> None:
    database = Database(database_url)
    path = tmp_path / "bad.csv"
    path.write_text(BAD_FILE, encoding="utf-8")
    report = import_file(database, path)
    assert not report.written
    assert _count_values(database) == 0
    with database.session() as session:
        assert session.scalar(select(func.count()).select_from(ImportBatch)) == 0

    report = import_file(database, path, partial=True)
    assert report.written and report.rows_written == 1
    assert report.check.rejected_rows == sorted(EXPECTED)
    with database.session() as session:
        batch = session.get(ImportBatch, report.batch_id)
        assert batch is not None and batch.rows_rejected == len(EXPECTED)
        assert {p["row"] for p in batch.problems} == set(EXPECTED)
        stored = session.scalars(select(IndicatorValue)).one()
        assert (stored.value, stored.source, stored.note, stored.source_row) == (
            12.5,
            "city akimat",
            "fine",
            2,
        )
    database.dispose()


def test_wide_excel_and_parquet_files_import_alike(sqlite_url: str, tmp_path: Path) -> None:
    database = Database(sqlite_url)
    wide = pd.DataFrame(
        {
            "place": ["astana", "almaty"],
            "year": [2024, 2024],
            "kz_sc.pb.turnout": [12.5, None],
            "kz_sc.requests.reopen_rate": [3.0, 4.5],
        }
    )
    wide.to_excel(tmp_path / "wide.xlsx", index=False)
    report = import_file(database, tmp_path / "wide.xlsx")
    assert report.written and report.rows_written == 3  # the blank cell is "no value", not an error

    wide.loc[1, "kz_sc.requests.reopen_rate"] = 140.0
    wide.to_parquet(tmp_path / "wide.parquet")
    result = check_file(database, tmp_path / "wide.parquet")
    assert [(p.row, p.column, p.code) for p in result.problems] == [
        (3, "kz_sc.requests.reopen_rate", "out_of_range")
    ]


def test_semicolon_csv_with_decimal_comma_and_identical_duplicate(
    sqlite_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "ru.csv"
    path.write_text(
        "place;indicator;year;value\nАстана;kz_sc.pb.turnout;2024;12,5\nastana;kz_sc.pb.turnout;2024;12.5\n",
        encoding="utf-8",
    )
    result = check_file(Database(sqlite_url), path)
    assert result.ok
    assert len(result.values) == 1 and result.values["value"].iloc[0] == 12.5
    assert [(w.row, w.code) for w in result.warnings] == [(3, "duplicate_same")]


def test_cli_check_exits_non_zero_and_names_rows(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from qala.cli.main import app

    monkeypatch.setenv("QALA_DATABASE_URL", sqlite_url)
    path = tmp_path / "bad.csv"
    path.write_text(BAD_FILE, encoding="utf-8")
    result = CliRunner().invoke(app, ["data", "check", str(path), "--json"])
    assert result.exit_code == 1
    assert '"row": 11' in result.output and "unknown_place" in result.output
    good = tmp_path / "good.csv"
    good.write_text(
        BAD_FILE.splitlines()[0] + "\n" + BAD_FILE.splitlines()[1] + "\n", encoding="utf-8"
    )
    assert CliRunner().invoke(app, ["data", "check", str(good)]).exit_code == 0
    assert CliRunner().invoke(app, ["data", "import", str(good)]).exit_code == 0
    exported = CliRunner().invoke(app, ["data", "export"])
    assert (
        exported.exit_code == 0
        and "astana,kz_sc.pb.turnout,2024,12.5,percent,city akimat,fine,True" not in exported.output
    )
    assert "astana,kz_sc.pb.turnout,2024,12.5,percent,city akimat,fine,False" in exported.output


PLACES = ["astana", "almaty", "shymkent", "temirtau"]
PERCENT_INDICATORS = [
    "kz_sc.pb.turnout",
    "kz_sc.requests.reopen_rate",
    "kz_sc.requests.share_closed_within_sla",
]


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    values=st.dictionaries(
        keys=st.tuples(
            st.sampled_from(PLACES), st.sampled_from(PERCENT_INDICATORS), st.integers(2000, 2025)
        ),
        values=st.tuples(
            st.floats(0, 100, allow_nan=False, allow_subnormal=False),
            st.one_of(
                st.none(),
                st.text(
                    st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]),
                    min_size=1,
                    max_size=12,
                )
                .map(str.strip)
                .filter(bool),
            ),
        ),
        min_size=1,
        max_size=30,
    )
)
def test_import_export_import_round_trip_loses_nothing(sqlite_template: Path, values: dict) -> None:  # type: ignore[type-arg]
    rows = [
        {"place": p, "indicator": i, "year": y, "value": repr(v), "source": s or ""}
        for (p, i, y), (v, s) in values.items()
    ]
    with tempfile.TemporaryDirectory() as folder:
        first, second = Path(folder) / "a.sqlite", Path(folder) / "b.sqlite"
        shutil.copy(sqlite_template, first)
        shutil.copy(sqlite_template, second)
        source = Path(folder) / "in.csv"
        pd.DataFrame(rows).to_csv(source, index=False)
        db1, db2 = Database(f"sqlite:///{first}"), Database(f"sqlite:///{second}")
        assert import_file(db1, source).written
        exported = Path(folder) / "out.csv"
        export_values(db1, exported)
        assert import_file(db2, exported).written
        with db1.session() as s1, db2.session() as s2:
            a, b = values_frame(s1), values_frame(s2)
        pd.testing.assert_frame_equal(a, b)
        got = {(r.place, r.indicator, r.year): (r.value, r.source) for r in a.itertuples()}
        assert got == {k: (v, s or None) for k, (v, s) in values.items()}
        db1.dispose()
        db2.dispose()
