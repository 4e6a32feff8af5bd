"""Spreadsheet cells that stay data: no exported text is ever run as a formula.

Excel, LibreOffice and Google Sheets treat a cell whose text starts with ``=``, ``+``, ``-`` or
``@`` (and, in some versions, a tab or carriage return) as a formula, so an imported note such as
``=HYPERLINK("http://evil", "click")`` would come out of an export as a live link or command
(OWASP's "CSV injection"). Every exported text cell goes through :func:`neutralise`, which puts a
single quote in front — the spreadsheets' own sign for "this is text" — and every imported cell
through :func:`restore`, so that export → import gives back exactly what was stored. Text that
reads as a number (``-3.5``) is a number, not a formula, and is left alone. The one rule a person
preparing a file meets: a leading apostrophe before ``=``, ``+``, ``-`` or ``@`` is read as the
spreadsheets' text marker, not as part of the text (``'=A1`` is stored as ``=A1``).
"""

from __future__ import annotations

from typing import Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
QUOTE = "'"


def _is_number(text: str) -> bool:
    try:
        float(text.replace(",", ".", 1))
    except ValueError:
        return False
    return True


def _marked(text: str) -> bool:
    """Text marker(s) then a formula start: what :func:`neutralise` writes (and escapes again)."""
    return text.startswith(QUOTE) and text.lstrip(QUOTE).startswith(FORMULA_STARTS)


def neutralise(value: Any) -> Any:
    """``value`` with a leading quote when a spreadsheet would run it as a formula — or when it
    looks marked already, so that :func:`restore` gives every text back unchanged."""
    if not isinstance(value, str):
        return value
    if (value.startswith(FORMULA_STARTS) and not _is_number(value)) or _marked(value):
        return QUOTE + value
    return value


def restore(value: Any) -> Any:
    """Undo :func:`neutralise`: the first quote of a marked text is the one Qala added."""
    return value[1:] if isinstance(value, str) and _marked(value) else value
