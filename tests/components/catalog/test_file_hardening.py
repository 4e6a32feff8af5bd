"""Files as akimats really send them, and files made to hurt: every one gets a clear answer.

Each case here failed before the reader learned it: a Russian CSV saved by Excel in Windows-1251
was refused with a UTF-8 decoding error, a damaged .xlsx raised a traceback, a header-only file
was "imported" as an empty batch, a million-character note was stored, and an imported
``=HYPERLINK(…)`` note came out of the Excel export as a live formula.
"""

from __future__ import annotations

import codecs
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
from typer.testing import CliRunner

from qala.components.catalog.services import check_file, export_values, import_file, values_frame
from qala.components.catalog.tabular import decode_text, neutralise_cells, restore_cells
from qala.core.cells import neutralise, restore
from qala.core.errors import ValidationError
from qala.store.database import Database

RUSSIAN_ROWS = (
    "место;показатель;год;значение;примечание\n"
    "karaganda;kz_sc.pb.turnout;2024;12,5;данные акимата\n"
    "temirtau;kz_sc.pb.turnout;2024;7,25;оценка отдела\n"
)


@pytest.fixture
def database(sqlite_url: str) -> Database:
    db = Database(sqlite_url)
    yield db
    db.dispose()


@pytest.mark.parametrize(
    ("encoded", "expected"),
    [
        (RUSSIAN_ROWS.encode("cp1251"), "cp1251"),
        (codecs.BOM_UTF8 + RUSSIAN_ROWS.encode("utf-8"), "utf-8-sig"),
        (RUSSIAN_ROWS.encode("utf-8"), "utf-8"),
        (RUSSIAN_ROWS.encode("utf-16"), "utf-16"),  # with its byte-order mark, as Excel saves it
    ],
)
def test_russian_csv_is_read_in_the_encoding_excel_saved_it_in(
    database: Database, tmp_path: Path, encoded: bytes, expected: str
) -> None:
    path = tmp_path / "karaganda.csv"
    path.write_bytes(encoded)
    report = import_file(database, path)
    assert report.check.problems == []
    assert report.check.encoding == expected
    with database.session() as session:
        stored = values_frame(session)
    notes = dict(zip(stored["place"], stored["note"], strict=True))
    assert notes == {"karaganda": "данные акимата", "temirtau": "оценка отдела"}


def test_kazakh_letters_survive_the_windows_kazakh_code_page(tmp_path: Path) -> None:
    text = "place,indicator,year,value,note\nastana,kz_sc.pb.turnout,2024,1,әкімдік деректері\n"
    decoded, encoding = decode_text(text.encode("kz1048"), file="kz.csv")
    assert encoding == "kz1048"
    assert decoded == text


def test_a_damaged_workbook_gets_one_line_naming_the_file(
    database: Database, tmp_path: Path
) -> None:
    path = tmp_path / "notzip.xlsx"
    path.write_text("this is not a spreadsheet", encoding="utf-8")
    with pytest.raises(ValidationError) as caught:
        check_file(database, path)
    [problem] = caught.value.problems
    assert problem.file == str(path)
    assert problem.code == "unreadable_file"
    assert "Excel workbook" in problem.reason


def test_the_command_line_answers_a_damaged_workbook_without_a_traceback(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from qala.cli.main import app

    monkeypatch.setenv("QALA_DATABASE_URL", sqlite_url)
    path = tmp_path / "notzip.xlsx"
    path.write_bytes(b"PK\x03\x04 broken")
    result = CliRunner().invoke(app, ["data", "import", str(path)])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "notzip.xlsx" in result.output.replace("\n", "")  # Rich wraps at the terminal's width


@pytest.mark.parametrize("content", [b"", b"place,indicator,year,value\n"])
def test_an_empty_file_is_an_error_and_records_no_batch(
    database: Database, tmp_path: Path, content: bytes
) -> None:
    path = tmp_path / "empty.csv"
    path.write_bytes(content)
    with pytest.raises(ValidationError) as caught:
        import_file(database, path)
    assert [p.code for p in caught.value.problems] == ["empty_file"]
    from sqlalchemy import func, select

    from qala.components.catalog.models import ImportBatch

    with database.session() as session:
        assert session.scalar(select(func.count()).select_from(ImportBatch)) == 0


def test_overlong_notes_and_sources_are_refused_with_their_row(
    database: Database, tmp_path: Path
) -> None:
    path = tmp_path / "long.csv"
    path.write_text(
        "place,indicator,year,value,source,note\n"
        f"astana,kz_sc.pb.turnout,2024,1,ok,{'x' * 1_000_000}\n"
        f"almaty,kz_sc.pb.turnout,2024,1,{'s' * 501},fine\n",
        encoding="utf-8",
    )
    report = import_file(database, path)
    assert not report.written
    located = {(p.row, p.column, p.code) for p in report.check.problems}
    assert located == {(2, "note", "too_long"), (3, "source", "too_long")}
    assert all(len(str(p.value)) < 50 for p in report.check.problems)


def test_exported_cells_never_start_a_formula_and_come_back_unchanged(
    database: Database, sqlite_url: str, tmp_path: Path
) -> None:
    formula = '=HYPERLINK("http://attacker.example/", "open")'
    path = tmp_path / "in.csv"
    path.write_text(
        "place,indicator,year,value,source,note\n"
        f'astana,kz_sc.pb.turnout,2024,1.5,@SUM(A1),"{formula.replace(chr(34), chr(34) * 2)}"\n',
        encoding="utf-8",
    )
    assert import_file(database, path).written
    workbook_path = tmp_path / "out.xlsx"
    export_values(database, workbook_path, file_format="xlsx")
    sheet = openpyxl.load_workbook(workbook_path).active
    assert sheet is not None
    cells = {cell.value: cell.data_type for row in sheet.iter_rows(min_row=2) for cell in row}
    assert "'" + formula in cells and cells["'" + formula] == "s"
    assert "'@SUM(A1)" in cells
    assert all(t != "f" for t in cells.values())
    assert 1.5 in cells  # numbers stay numbers

    csv_path = tmp_path / "out.csv"
    export_values(database, csv_path)
    assert "'=HYPERLINK" in csv_path.read_text(encoding="utf-8")
    again = Database(f"sqlite:///{tmp_path / 'again.sqlite'}")
    import shutil

    shutil.copy(sqlite_url.removeprefix("sqlite:///"), tmp_path / "again.sqlite")
    assert import_file(again, workbook_path).written
    with again.session() as session:
        [row] = values_frame(session).itertuples()
    again.dispose()
    assert (row.note, row.source, row.value) == (formula, "@SUM(A1)", 1.5)


@pytest.mark.parametrize(
    ("text", "exported"),
    [
        ("=1+1", "'=1+1"),
        ("+7 701 000 00 00", "'+7 701 000 00 00"),
        ("-3.5", "-3.5"),
        ("-3,5", "-3,5"),
        ("@cmd", "'@cmd"),
        ("\tx", "'\tx"),
        ("plain", "plain"),
        ("", ""),
        ("'=already marked", "''=already marked"),
        ("'plain apostrophe", "'plain apostrophe"),
    ],
)
def test_neutralise_and_restore_are_inverse(text: str, exported: str) -> None:
    assert neutralise(text) == exported
    assert restore(neutralise(text)) == text
    frame = pd.DataFrame({"cell": [text, 1.0]})
    assert neutralise_cells(frame)["cell"].tolist() == [exported, 1.0]
    assert restore_cells(neutralise_cells(frame))["cell"].tolist() == [text, 1.0]
