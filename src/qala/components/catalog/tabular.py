"""Reading and writing city data files: CSV, Excel and Parquet, long or wide.

Every cell is read as text (or the spreadsheet's own type) so validation can tell a number from
"n/a"; row numbers are those a spreadsheet shows, the header being row 1. A CSV's encoding is
found, not assumed: Excel in a Russian or Kazakh locale saves CSV in Windows-1251 (or KZ-1048)
and "Unicode text" in UTF-16, so those are read as such and the encoding used is reported.
Exported text cells never start a formula (:mod:`qala.core.cells`).
"""

from __future__ import annotations

import codecs
import io
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pandas as pd

from qala.core.cells import FORMULA_STARTS, QUOTE
from qala.core.errors import ValidationError
from qala.core.messages import msg

FileFormat = Literal["csv", "xlsx", "parquet"]
FORMAT_NAMES = {"csv": "CSV", "xlsx": "XLSX", "parquet": "Parquet"}
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
    encoding: str | None = None
    """The text encoding a CSV file was read in (None for Excel and Parquet)."""


def detect_format(path: Path, *, name: str | None = None) -> FileFormat:
    try:
        return EXTENSIONS[path.suffix.lower()]
    except KeyError:
        known = ", ".join(sorted(EXTENSIONS))
        raise ValidationError.single(
            f"cannot tell the file format from the extension {path.suffix!r}; expected one of {known}",
            file=name or str(path),
            message=msg("import.unknown_format", suffix=path.suffix or "—", known=known),
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


def read_table(path: Path | str, *, sheet: str | int = 0, name: str | None = None) -> RawTable:
    """Read a city data file; decide long or wide layout from its columns. ``name`` is what
    messages call the file (an upload's own name rather than the server's temporary path)."""
    path = Path(path)
    shown = name or str(path)
    if not path.is_file():
        raise ValidationError.single(
            "file not found", file=shown, message=msg("import.file_not_found")
        )
    file_format = detect_format(path, name=shown)
    if path.stat().st_size == 0:
        raise ValidationError.single(
            "the file is empty", file=shown, code="empty_file", message=msg("import.empty_file")
        )
    encoding = None
    try:
        if file_format == "csv":
            frame, encoding = _read_csv(path, name=shown)
        elif file_format == "xlsx":
            frame = pd.read_excel(path, sheet_name=sheet, dtype=object, engine="openpyxl")
        else:
            frame = pd.read_parquet(path)
    except (zipfile.BadZipFile, KeyError) as exc:
        # openpyxl opens .xlsx as a zip archive of XML parts: a file that is no zip, or a zip
        # without the workbook's parts, fails here.
        raise ValidationError.single(
            f"not a readable Excel workbook (an .xlsx file is a zip archive of sheets; "
            f"this one is damaged or of another kind: {exc})",
            file=shown,
            code="unreadable_file",
            message=msg("import.bad_workbook"),
        ) from None
    except (ValueError, OSError, UnicodeDecodeError, ImportError) as exc:
        raise ValidationError.single(
            f"could not read the file as {file_format}: {exc}",
            file=shown,
            code="unreadable_file",
            message=msg("import.unreadable", format=FORMAT_NAMES[file_format]),
        ) from None
    if frame.empty:
        raise ValidationError.single(
            "the file has no data rows (only a header, or nothing under it)",
            file=shown,
            code="empty_file",
            message=msg("import.no_rows"),
        )
    frame = restore_cells(frame)
    frame = frame.rename(columns=_canonical_columns(list(frame.columns)))
    duplicated = frame.columns[frame.columns.duplicated()].tolist()
    if duplicated:
        raise ValidationError.single(
            f"columns appear twice: {duplicated}",
            file=shown,
            column=", ".join(map(str, duplicated)),
            message=msg("import.columns_twice"),
        )
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
            file=shown,
            row=1,
            column=", ".join(missing),
            message=msg("import.layout_unknown"),
        )
    rows = pd.Series(range(2, len(frame) + 2), index=frame.index)
    return RawTable(
        frame.reset_index(drop=True),
        shown,
        file_format,
        layout,
        rows.reset_index(drop=True),
        encoding,
    )


# Encodings a CSV from Kazakhstan comes in besides UTF-8, most likely first: Excel's "CSV" in a
# Russian or Kazakh Windows locale, the Kazakh Windows code page, old DOS and Unix Cyrillic.
LEGACY_ENCODINGS = ("cp1251", "kz1048", "cp866", "koi8_r")
BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def decode_text(data: bytes, *, file: str) -> tuple[str, str]:
    """The text of a file and the encoding it was read in.

    A byte-order mark decides; else strict UTF-8; else the most coherent of the legacy Cyrillic
    code pages and BOM-less UTF-16 (charset-normalizer judges the decoded text's language).
    """
    for bom, encoding in BOMS:
        if data.startswith(bom):
            try:
                return data.decode(encoding), encoding
            except UnicodeDecodeError as exc:
                raise ValidationError.single(
                    f"the file starts with a {encoding} byte-order mark but is not valid "
                    f"{encoding} (byte {exc.start})",
                    file=file,
                    code="unreadable_file",
                    message=msg("import.bad_bom", encoding=encoding),
                ) from None
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    best = from_bytes(data, cp_isolation=[*LEGACY_ENCODINGS, "utf_16_le", "utf_16_be"]).best()
    if best is None:
        raise ValidationError.single(
            "cannot tell the file's text encoding: save it as UTF-8 (or Windows-1251) CSV",
            file=file,
            code="unreadable_file",
            message=msg("import.unknown_encoding"),
        )
    encoding = best.encoding
    if encoding in ("cp1251", "kz1048"):
        # KZ-1048 is Windows-1251 with Kazakh letters (ә, ғ, қ, ң, ө, ұ, ү, һ, і) where 1251 has
        # Serbian and Macedonian ones (ђ, ќ, ћ, џ…), which no file from Kazakhstan holds; so where
        # the two readings differ at all, the file is Kazakh.
        readings = {}
        for candidate in ("cp1251", "kz1048"):
            try:
                readings[candidate] = data.decode(candidate)
            except UnicodeDecodeError:  # a byte one of them leaves undefined
                continue
        if len(set(readings.values())) == 2:
            return readings["kz1048"], "kz1048"
        encoding, text = next(iter(readings.items()))
        return text, encoding
    return str(best), encoding


def _read_csv(path: Path, *, name: str | None = None) -> tuple[pd.DataFrame, str]:
    text, encoding = decode_text(path.read_bytes(), file=name or str(path))
    if path.suffix.lower() == ".tsv":
        separator = "\t"
    else:
        header = text.partition("\n")[0]
        # Spreadsheets in ru/kk locales save CSV with semicolons (the comma is the decimal mark).
        separator = ";" if header.count(";") > header.count(",") else ","
    frame = pd.read_csv(
        io.StringIO(text), dtype=str, keep_default_na=False, sep=separator, engine="c"
    )
    return frame, encoding


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
            message=msg("import.wide_no_indicators"),
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


_FORMULA_START = "^[" + "".join(FORMULA_STARTS).replace("-", "\\-") + "]"
_MARKED = "^" + QUOTE + "+" + _FORMULA_START[1:]


def _text_columns(frame: pd.DataFrame) -> list[str]:
    """Columns that may hold text: object (mixed) and string dtypes, in pandas 2 and 3 alike."""
    types = pd.api.types
    return [
        c for c, t in frame.dtypes.items() if types.is_object_dtype(t) or types.is_string_dtype(t)
    ]


def _has_text(cells: pd.Series) -> bool:
    return pd.api.types.infer_dtype(cells, skipna=True) in ("string", "mixed", "mixed-integer")


def neutralise_cells(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` whose text cells never start a formula (column-wise, for big exports):
    the same rule as :func:`qala.core.cells.neutralise`."""
    frame = frame.copy()
    for column in _text_columns(frame):
        text = frame[column]
        if not _has_text(text):
            continue
        # Non-text cells give NA: never risky. Marked text is escaped again (see cells.neutralise).
        risky = text.str.contains(_FORMULA_START, na=False)
        if risky.any():
            numeric = pd.to_numeric(text[risky].str.replace(",", ".", n=1), errors="coerce")
            risky[risky] = numeric.isna()
        risky |= text.str.contains(_MARKED, na=False)
        if risky.any():
            frame.loc[risky, column] = QUOTE + text[risky]
    return frame


def restore_cells(frame: pd.DataFrame) -> pd.DataFrame:
    """Undo :func:`neutralise_cells` on a file read back (see :func:`qala.core.cells.restore`)."""
    for column in _text_columns(frame):
        cells = frame[column]
        if not _has_text(cells):
            continue
        quoted = cells.str.contains(_MARKED, na=False)
        if quoted.any():
            frame[column] = cells.where(~quoted, cells[quoted].str[1:])
    return frame


def write_table(
    frame: pd.DataFrame, path: Path | str | None, file_format: FileFormat
) -> bytes | None:
    """Write ``frame``; with no path, return the bytes (CSV for standard output). Text cells that
    a spreadsheet would run as a formula are written as text (:func:`qala.core.cells.neutralise`)."""
    frame = neutralise_cells(frame)
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
