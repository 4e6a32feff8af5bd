"""Validation of indicator values at the boundary: every problem named by file, row and column.

Checks, all vectorised so a million rows take seconds: unknown place or indicator, unit mismatch,
value out of the unit's range (percent over 100, negative counts, fractional counts), duplicates
with different values, non-numeric text, missing or impossible years. Nothing is dropped silently:
a row is either accepted or listed with its reason; identical duplicates are accepted once and
reported as warnings. Each reason is also a message id (``import.*`` in the catalogues) with its
values, so the import report reads in the reader's language.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from qala.components.catalog.frameworks import Catalogue
from qala.core.clock import utc_now
from qala.core.errors import Problem
from qala.core.messages import Message, msg

EARLIEST_YEAR = 1950
VALUE_COLUMNS = [
    "place_id",
    "indicator_id",
    "year",
    "value",
    "source",
    "note",
    "illustrative",
    "source_row",
]


@dataclass
class CheckResult:
    """The outcome of checking one file: accepted values and every problem found."""

    file: str
    rows_total: int
    values: pd.DataFrame
    """Accepted values, columns ``VALUE_COLUMNS``; one per (place, indicator, year)."""
    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    encoding: str | None = None
    """The text encoding a CSV file was read in (reported, since it was detected)."""

    @property
    def rejected_rows(self) -> list[int]:
        return sorted({p.row for p in self.problems if p.row is not None})

    @property
    def ok(self) -> bool:
        return not self.problems


def _too_long(limit: int, length: pd.Series) -> Callable[[pd.Index], list[Message]]:
    """The too-long message of each flagged row (its own length)."""
    return lambda index: [msg("import.too_long", limit=limit, length=int(n)) for n in length[index]]


def parse_numbers(raw: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Numbers from cells; returns (values, is_blank). Accepts a decimal comma ("12,5")."""
    if pd.api.types.is_numeric_dtype(raw.dtype) and not pd.api.types.is_bool_dtype(raw.dtype):
        values = raw.astype(float)
        return values, values.isna()
    text = raw.astype("string").str.strip().fillna("")
    blank = text == ""
    numbers = pd.to_numeric(text, errors="coerce")
    # Only retry the failures with a decimal comma, and only where the comma is the sole separator.
    failed = numbers.isna() & ~blank
    if failed.any():
        candidates = text[failed]
        comma = candidates.str.fullmatch(r"[+-]?\d+,\d+")
        numbers.loc[comma[comma].index] = pd.to_numeric(
            candidates[comma].str.replace(",", ".", regex=False), errors="coerce"
        )
    # "nan" and "inf" parse as floats but are not values a person meant.
    numbers = numbers.astype(float)
    numbers[~np.isfinite(numbers.to_numpy(dtype=float, na_value=np.nan))] = np.nan
    return numbers, blank


# Longest source and note a value may carry: enough for a citation with its URL and a paragraph
# of explanation, short enough that nobody stores a document (or a 1 MB probe) in a cell.
TEXT_LIMITS = {"source": 500, "note": 2_000}


def _text_column(frame: pd.DataFrame, name: str) -> pd.Series:
    """Stripped text with blanks and missing cells as None (never the string "<NA>")."""
    if name not in frame.columns:
        return pd.Series([None] * len(frame), index=frame.index, dtype=object)
    column = frame[name].astype("string").str.strip()
    blank = column.isna() | (column == "")
    return column.astype(object).where(~blank.to_numpy(dtype=bool), None)


def _flag_column(frame: pd.DataFrame, name: str, default: bool) -> pd.Series:
    if name not in frame.columns:
        return pd.Series(default, index=frame.index, dtype=bool)
    text = frame[name].astype("string").str.strip().str.lower().fillna("")
    return text.isin(["1", "true", "yes", "y", "да", "иә"]) | (text.eq("") & default)


def check_long(
    frame: pd.DataFrame,
    rows: pd.Series,
    *,
    file: str,
    catalogue: Catalogue,
    place_ids: dict[str, int],
    illustrative: bool = False,
    latest_year: int | None = None,
    column_of_value: pd.Series | None = None,
) -> CheckResult:
    """Check long-format rows (place, indicator, year, value[, unit, source, note]).

    ``place_ids`` maps lower-cased codes and names to place ids. ``column_of_value`` names the
    column each value came from (wide files), so problems point at the right cell.
    """
    latest_year = latest_year or utc_now().year
    n = len(frame)
    frame = frame.reset_index(drop=True)
    rows = pd.Series(np.asarray(rows), dtype="int64")
    problem_parts: list[pd.DataFrame] = []

    def flag(
        mask: pd.Series,
        column: str | pd.Series,
        reason: str | pd.Series,
        value: pd.Series,
        code: str,
        message: Message | Callable[[pd.Index], list[Message]],
    ) -> None:
        if not mask.any():
            return
        index = mask[mask].index
        messages = [message] * len(index) if isinstance(message, Message) else message(index)
        problem_parts.append(
            pd.DataFrame(
                {
                    "row": rows[index].to_numpy(),
                    "column": column[index].to_numpy() if isinstance(column, pd.Series) else column,
                    "reason": reason[index].to_numpy() if isinstance(reason, pd.Series) else reason,
                    "value": value[index].astype(object).to_numpy(),
                    "code": code,
                    "message": pd.Series(messages, index=index, dtype=object),
                },
                index=index,
            )
        )

    place_text = frame["place"].astype("string").str.strip().fillna("")
    place_id = place_text.str.lower().map(place_ids)
    flag(
        place_id.isna() & (place_text != ""),
        "place",
        "unknown place: not a code or name in the places list",
        place_text,
        "unknown_place",
        msg("import.unknown_place"),
    )
    flag(place_text == "", "place", "place missing", place_text, "missing", msg("import.missing"))

    indicator_text = frame["indicator"].astype("string").str.strip().fillna("")
    known_indicator = indicator_text.isin(catalogue.indicators.keys())
    flag(
        ~known_indicator & (indicator_text != ""),
        "indicator" if column_of_value is None else column_of_value,
        "unknown indicator: not an id in the catalogue",
        indicator_text,
        "unknown_indicator",
        msg("import.unknown_indicator"),
    )
    flag(
        indicator_text == "",
        "indicator",
        "indicator missing",
        indicator_text,
        "missing",
        msg("import.missing"),
    )

    year_numbers, year_blank = parse_numbers(frame["year"])
    bad_year = (
        year_blank
        | year_numbers.isna()
        | (year_numbers % 1 != 0)
        | (year_numbers < EARLIEST_YEAR)
        | (year_numbers > latest_year)
    )
    flag(
        bad_year,
        "year",
        f"year must be a whole number from {EARLIEST_YEAR} to {latest_year}",
        frame["year"],
        "bad_year",
        msg("import.bad_year", earliest=EARLIEST_YEAR, latest=latest_year),
    )

    value_column = "value" if column_of_value is None else column_of_value
    values, value_blank = parse_numbers(frame["value"])
    flag(
        value_blank, value_column, "value missing", frame["value"], "missing", msg("import.missing")
    )
    flag(
        values.isna() & ~value_blank,
        value_column,
        "not a number",
        frame["value"],
        "not_numeric",
        msg("import.not_numeric"),
    )

    # Unit checks: the indicator's unit fixes the valid range and, when given, the unit column.
    unit_of = {i.id: i.unit for i in catalogue.indicators.values()}
    unit_names: dict[object, object] = {u.id: dict(u.names) for u in catalogue.units.values()}
    expected_unit = indicator_text.map(unit_of)
    if "unit" in frame.columns:
        given = frame["unit"].astype("string").str.strip().fillna("")
        symbol_of = {u.id: u.symbol.lower() for u in catalogue.units.values()}
        expected_symbol = expected_unit.map(symbol_of).fillna("")
        mismatch = (
            known_indicator
            & (given != "")
            & (given.str.lower() != expected_unit.fillna("").str.lower())
            & ((expected_symbol == "") | (given.str.lower() != expected_symbol))
        )
        flag(
            mismatch,
            "unit",
            "unit does not match the indicator's unit `" + expected_unit.fillna("") + "`",
            given,
            "unit_mismatch",
            lambda index: [
                msg("import.unit_mismatch", unit=unit_names.get(u, u)) for u in expected_unit[index]
            ],
        )
    low = expected_unit.map({u.id: u.min for u in catalogue.units.values()}).astype(float)
    high = expected_unit.map({u.id: u.max for u in catalogue.units.values()}).astype(float)
    integer = (
        expected_unit.map({u.id: u.integer for u in catalogue.units.values()})
        .fillna(False)
        .astype(bool)
    )
    present = values.notna()
    below = present & low.notna() & (values < low)
    above = present & high.notna() & (values > high)
    flag(
        below,
        value_column,
        "value below the unit's minimum " + low.astype(str) + " (" + expected_unit.fillna("") + ")",
        frame["value"],
        "out_of_range",
        lambda index: [
            msg("import.below_minimum", minimum=float(b), unit=unit_names.get(u, u))
            for b, u in zip(low[index], expected_unit[index], strict=True)
        ],
    )
    flag(
        above,
        value_column,
        "value above the unit's maximum "
        + high.astype(str)
        + " ("
        + expected_unit.fillna("")
        + ")",
        frame["value"],
        "out_of_range",
        lambda index: [
            msg("import.above_maximum", maximum=float(b), unit=unit_names.get(u, u))
            for b, u in zip(high[index], expected_unit[index], strict=True)
        ],
    )
    flag(
        present & integer & (values % 1 != 0),
        value_column,
        "a count must be a whole number",
        frame["value"],
        "out_of_range",
        msg("import.whole_number"),
    )

    for name, limit in TEXT_LIMITS.items():
        text = _text_column(frame, name).astype("string")
        length = text.str.len().fillna(0)
        flag(
            length > limit,
            name,
            f"longer than {limit:,} characters (" + length.astype("int64").map("{:,}".format) + ")",
            text.str.slice(0, 40) + "…",
            "too_long",
            _too_long(limit, length),
        )

    problems_frame = (
        pd.concat(problem_parts)
        if problem_parts
        else pd.DataFrame(columns=["row", "column", "reason", "value", "code", "message"])
    )
    bad_rows = pd.Series(False, index=frame.index)
    bad_rows[problems_frame.index.unique()] = True

    candidate = pd.DataFrame(
        {
            "place_id": place_id,
            "indicator_id": indicator_text,
            "year": year_numbers,
            "value": values,
            "source": _text_column(frame, "source"),
            "note": _text_column(frame, "note"),
            "illustrative": _flag_column(frame, "illustrative", illustrative),
            "source_row": rows,
        }
    )[~bad_rows]
    warnings: list[Problem] = []
    keys = ["place_id", "indicator_id", "year"]
    duplicated = candidate.duplicated(keys, keep=False)
    if duplicated.any():
        conflicts: list[dict[str, object]] = []
        conflict_index: list[int] = []
        for _, group in candidate[duplicated].groupby(keys, sort=False):
            listed = ", ".join(str(r) for r in group["source_row"])
            if group["value"].nunique() > 1:
                conflict_index.extend(group.index)
                for idx, source_row in zip(group.index, group["source_row"], strict=True):
                    conflicts.append(
                        {
                            "row": source_row,
                            "column": value_column
                            if isinstance(value_column, str)
                            else value_column[idx],
                            "reason": f"rows {listed} give different values for the same place, indicator and year",
                            "value": frame.at[idx, "value"],
                            "code": "duplicate_conflict",
                            "message": msg("import.duplicate_conflict", rows=listed),
                        }
                    )
            else:
                first = group["source_row"].iloc[0]
                warnings.extend(
                    Problem(
                        f"same value as row {first}; counted once",
                        file=file,
                        row=int(r),
                        code="duplicate_same",
                        message=msg("import.duplicate_same", row=int(first)),
                    )
                    for r in group["source_row"].iloc[1:]
                )
        problems_frame = pd.concat([problems_frame, pd.DataFrame(conflicts)], ignore_index=True)
        candidate = candidate.drop(index=conflict_index)
        candidate = candidate[~candidate.duplicated(keys, keep="first")]

    candidate = candidate.astype({"place_id": "int64", "year": "int64"})
    problems = [
        Problem(
            str(record.reason),
            file=file,
            row=int(record.row),
            column=str(record.column),
            value=None
            if record.value is None or (isinstance(record.value, float) and np.isnan(record.value))
            else record.value,
            code=str(record.code),
            message=record.message if isinstance(record.message, Message) else None,
        )
        for record in problems_frame.sort_values(["row", "column"]).itertuples(index=False)
    ]
    return CheckResult(
        file=file,
        rows_total=n,
        values=candidate[VALUE_COLUMNS].reset_index(drop=True),
        problems=problems,
        warnings=warnings,
    )
