"""Reading and writing city data files: CSV, Excel and Parquet, long or wide.

Every cell is read as text (or the spreadsheet's own type) so validation can tell a number from
"n/a"; row numbers are those a spreadsheet shows, the header being row 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pandas as pd

from qala.core.errors import ValidationError

FileFormat = Literal["csv", "xlsx", "parquet"]
Layout = Literal["long", "wide"]

EXTENSIONS: dict[str, FileFormat] = {
    ".csv": "csv",
    ".tsv": "csv",
    ".txt": "csv",
    ".xlsx": "xlsx",
    ".xlsm": "xlsx",
    ".parquet": "parquet",
    ".pq": "parquet",
}

# Accepted spellings of the long-format columns, all compared lower-cased.
COLUMN_ALIASES: dict[str, tuple[str, ...]] = {
    "place": ("place", "place_code", "city", "territory", "место", "орын"),
    "indicator": ("indicator", "indicator_id", "indicator_code", "показатель", "көрсеткіш"),
    "year": ("year", "год", "жыл"),
    "value": ("value", "значение", "мән"),
    "unit": ("unit", "единица"),
    "source": ("source", "источник", "дереккөз"),
    "note": ("note", "notes", "comment", "примечание"),
    "illustrative": ("illustrative",),
}
KEY_COLUMNS = ("place", "year")
LONG_REQUIRED = ("place", "indicator", "year", "value")
META_COLUMNS = ("unit", "source", "note", "illustrative")


@dataclass
class RawTable:
    """A file's cells as read, with canonical column names and spreadsheet row numbers."""

    frame: pd.DataFrame
    file: str
    file_format: FileFormat
    layout: Layout
    rows: pd.Series
    """Spreadsheet row number of each frame row (header = 1)."""


def detect_format(path: Path) -> FileFormat:
    try:
        return EXTENSIONS[path.suffix.lower()]
    except KeyError:
        known = ", ".join(sorted(EXTENSIONS))
        raise ValidationError.single(
            f"cannot tell the file format from the extension {path.suffix!r}; expected one of {known}",
            file=str(path),
        ) from None


def _canonical_columns(columns: list[str]) -> dict[str, str]:
    mapping: dict[str, str] = {}
    for column in columns:
        lowered = str(column).strip().lower()
        for canonical, aliases in COLUMN_ALIASES.items():
            if lowered in aliases:
                mapping[column] = canonical
                break
        else:
            mapping[column] = str(column).strip()
    return mapping


def read_table(path: Path | str, *, sheet: str | int = 0) -> RawTable:
    """Read a city data file; decide long or wide layout from its columns."""
    path = Path(path)
    if not path.is_file():
        raise ValidationError.single("file not found", file=str(path))
    file_format = detect_format(path)
    try:
        if file_format == "csv":
            frame = _read_csv(path)
        elif file_format == "xlsx":
            frame = pd.read_excel(path, sheet_name=sheet, dtype=object, engine="openpyxl")
        else:
            frame = pd.read_parquet(path)
    except (ValueError, OSError, UnicodeDecodeError, ImportError) as exc:
        raise ValidationError.single(
            f"could not read the file as {file_format}: {exc}", file=str(path)
        ) from exc
    frame = frame.rename(columns=_canonical_columns(list(frame.columns)))
    duplicated = frame.columns[frame.columns.duplicated()].tolist()
    if duplicated:
        raise ValidationError.single(f"columns appear twice: {duplicated}", file=str(path))
    if all(c in frame.columns for c in LONG_REQUIRED):
        layout: Layout = "long"
    elif all(c in frame.columns for c in KEY_COLUMNS):
        layout = "wide"
    else:
        missing = [c for c in LONG_REQUIRED if c not in frame.columns]
        raise ValidationError.single(
            "expected long format (columns place, indicator, year, value[, unit, source, note]) "
            "or wide format (columns place, year and one column per indicator id); "
            f"missing {missing}",
            file=str(path),
            row=1,
        )
    rows = pd.Series(range(2, len(frame) + 2), index=frame.index)
    return RawTable(
        frame.reset_index(drop=True), str(path), file_format, layout, rows.reset_index(drop=True)
    )


def _read_csv(path: Path) -> pd.DataFrame:
    if path.suffix.lower() == ".tsv":
        separator = "\t"
    else:
        with path.open(encoding="utf-8-sig") as handle:
            header = handle.readline()
        # Spreadsheets in ru/kk locales save CSV with semicolons (the comma is the decimal mark).
        separator = ";" if header.count(";") > header.count(",") else ","
    return pd.read_csv(
        path, dtype=str, keep_default_na=False, sep=separator, encoding="utf-8-sig", engine="c"
    )


def wide_to_long(table: RawTable) -> tuple[pd.DataFrame, pd.Series]:
    """Melt a wide table to long rows; ``column`` records which indicator column each came from."""
    frame = table.frame
    keep = [c for c in ("source", "note", "illustrative") if c in frame.columns]
    indicator_columns = [c for c in frame.columns if c not in (*KEY_COLUMNS, *META_COLUMNS)]
    if not indicator_columns:
        raise ValidationError.single(
            "a wide table needs one column per indicator id besides place and year",
            file=table.file,
            row=1,
        )
    base = frame[[*KEY_COLUMNS, *keep]].copy()
    base["_row"] = table.rows.to_numpy()
    parts = []
    for column in indicator_columns:
        part = base.copy()
        part["indicator"] = column
        part["value"] = frame[column].to_numpy()
        parts.append(part)
    long = pd.concat(parts, ignore_index=True)
    # A blank cell in a wide table means "no value", not an error: one row per place-year rarely has all.
    blank = long["value"].isna() | (long["value"].astype(str).str.strip() == "")
    long = long[~blank].reset_index(drop=True)
    return long.drop(columns="_row"), long["_row"]


def write_table(
    frame: pd.DataFrame, path: Path | str | None, file_format: FileFormat
) -> bytes | None:
    """Write ``frame``; with no path, return the bytes (CSV for standard output)."""
    if file_format == "csv":
        text: str = frame.to_csv(index=False, float_format=None)
        if path is None:
            return text.encode()
        Path(path).write_text(text, encoding="utf-8")
    elif file_format == "xlsx":
        if path is None:
            raise ValidationError.single("Excel output needs --out FILE")
        frame.to_excel(path, index=False, engine="openpyxl")
    else:
        if path is None:
            raise ValidationError.single("Parquet output needs --out FILE")
        frame.to_parquet(path, index=False)
    return None
