"""What every part of a participatory budgeting process shares: finding a process, checking its
secret key, times in UTC and multilingual text.

It sits below ``process`` (processes, proposals, phases), ``voters``, ``ballots``, ``projects``
and ``consultations``, so those modules import it and not each other's internals: ``process``
moves a process on to its results and projects, and only ``process`` imports ``ballots`` and
``projects``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from qala.components.budgeting.iin import key_fingerprint
from qala.components.budgeting.models import Process
from qala.core.clock import as_utc as as_utc
from qala.core.errors import ConfigurationError, NotFoundError, Problem

LANGUAGES = ("kk", "ru", "en")
CODE = re.compile(r"^[a-z0-9][a-z0-9_.-]{1,79}$")
MAX_TITLE = 300
MAX_DESCRIPTION = 8000


def utc(moment: datetime) -> datetime:
    """:func:`as_utc` of a time that is always there (a required column, the clock)."""
    result = as_utc(moment)
    assert result is not None
    return result


def clean_text3(
    value: Mapping[str, Any] | str | None,
    *,
    column: str,
    required: bool = True,
    limit: int = MAX_TITLE,
    problems: list[Problem],
) -> dict[str, str]:
    """Multilingual text ``{"kk"|"ru"|"en": text}`` (a plain string counts as Russian)."""
    if value is None:
        value = {}
    if isinstance(value, str):
        value = {"ru": value}
    clean: dict[str, str] = {}
    for language, text in value.items():
        if language not in LANGUAGES:
            problems.append(Problem("language must be kk, ru or en", column=f"{column}.{language}"))
            continue
        text = str(text or "").strip()
        if len(text) > limit:
            problems.append(
                Problem(
                    f"at most {limit} characters", column=f"{column}.{language}", value=len(text)
                )
            )
        elif text:
            clean[language] = text
    if required and not clean:
        problems.append(Problem("give the text in at least one of kk, ru, en", column=column))
    return clean


def clean_title_and_description(
    title: Mapping[str, Any] | str | None,
    description: Mapping[str, Any] | str | None,
    problems: list[Problem],
) -> tuple[dict[str, str], dict[str, str]]:
    """A required title and an optional description, both multilingual (see :func:`clean_text3`)."""
    return (
        clean_text3(title, column="title", problems=problems),
        clean_text3(
            description,
            column="description",
            required=False,
            limit=MAX_DESCRIPTION,
            problems=problems,
        ),
    )


def text_in(value: Mapping[str, str], language: str) -> str:
    """The text in ``language``, else in Russian, Kazakh or English, whichever exists."""
    for candidate in (language, "ru", "kk", "en"):
        if value.get(candidate):
            return value[candidate]
    return ""


def load_process(session: Session, code: str, *, for_update: bool = False) -> Process:
    """The process with this code (row-locked with ``for_update``), or a not-found error."""
    query = select(Process).where(Process.code == code.strip().lower())
    if for_update:
        query = query.with_for_update()
    process = session.scalar(query)
    if process is None:
        raise NotFoundError(f"no participatory budgeting process `{code}`")
    return process


def check_key(process: Process, secret_key: str) -> None:
    """Refuse to touch voters when the secret key changed: the IIN hashes would not match.

    An illustrative (demo) process adopts the new key instead: without ``QALA_SECRET_KEY`` every
    Qala process draws a random key, so ``qala demo load`` and ``qala serve`` differ, and a demo
    must stay usable. Its generated voters then count as other people — harmless for demo data,
    never allowed for a real vote.
    """
    fingerprint = key_fingerprint(secret_key)
    if process.key_check != fingerprint and process.illustrative:
        process.key_check = fingerprint
        return
    if process.key_check != fingerprint:
        raise ConfigurationError(
            f"process `{process.code}` was created with another secret key (QALA_SECRET_KEY); "
            "with this one, registered IINs would not be recognised and people could vote twice"
        )


__all__ = [
    "CODE",
    "LANGUAGES",
    "MAX_DESCRIPTION",
    "MAX_TITLE",
    "as_utc",
    "check_key",
    "clean_text3",
    "clean_title_and_description",
    "load_process",
    "text_in",
    "utc",
]
