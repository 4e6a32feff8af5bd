"""One error tree for Qala.

Every error a person can cause carries a message that says what was wrong, where (file, row, column
or field) and what was expected. Validation collects all problems and raises them together.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Self

from qala.core.messages import Message


class QalaError(Exception):
    """Base of every error Qala raises on purpose.

    ``message``, when set, says the same for readers in their language (a catalogue id and its
    values); the English text stays what API clients and logs read.
    """

    message: Message | None = None

    def with_message(self, message: Message) -> Self:
        self.message = message
        return self


class ConfigurationError(QalaError):
    """Settings or environment are unusable (bad database URL, missing file)."""


class NotFoundError(QalaError):
    """A thing named by id does not exist."""


class ConflictError(QalaError):
    """The request contradicts what is stored (duplicate, wrong state, double vote)."""


class PermissionDeniedError(QalaError):
    """The caller's role may not do this."""


class UnavailableError(QalaError):
    """A service Qala relies on (the photo storage) is unreachable or refused the work; nothing
    was changed and the same request may be sent again later (HTTP 503)."""


class ConvergenceError(QalaError):
    """An iterative algorithm did not converge within its limit."""


class SpecificationError(QalaError):
    """A model, index or rule specification is malformed or unidentified."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input, located as precisely as the input allows.

    ``row`` is the number a spreadsheet shows (the header is row 1).
    """

    reason: str
    file: str | None = None
    row: int | None = None
    column: str | None = None
    value: object | None = None
    code: str = "invalid"
    message: Message | None = field(default=None, compare=False)
    """``reason`` for readers in their language (a catalogue id and its values)."""

    def location(self) -> str:
        parts = []
        if self.file:
            parts.append(self.file)
        if self.row is not None:
            parts.append(f"row {self.row}")
        if self.column:
            parts.append(f"column `{self.column}`")
        return ", ".join(parts)

    def __str__(self) -> str:
        where = self.location()
        shown = "" if self.value is None else f" (got {self.value!r})"
        return f"{where}: {self.reason}{shown}" if where else f"{self.reason}{shown}"

    def as_dict(self) -> dict[str, object]:
        return {
            "file": self.file,
            "row": self.row,
            "column": self.column,
            "value": None if self.value is None else str(self.value),
            "code": self.code,
            "reason": self.reason,
            "message": self.message.as_dict() if self.message is not None else None,
        }

    def as_detail(self) -> dict[str, object]:
        """This problem as an item of an HTTP 422 answer's ``detail`` list: the shape FastAPI
        publishes for every 422 (``loc``, ``msg``, ``type``), with the fields above beside it."""
        loc: list[str | int] = ["file", self.file] if self.file else ["body"]
        if self.row is not None:
            loc.append(self.row)
        if self.column:
            loc.append(self.column)
        return {"loc": loc, "msg": self.reason, "type": self.code, **self.as_dict()}


@dataclass
class ValidationError(QalaError):
    """Input failed validation; ``problems`` lists every problem found, not just the first."""

    problems: list[Problem] = field(default_factory=list)
    summary: str = "invalid input"

    def __post_init__(self) -> None:
        super().__init__(str(self))

    @classmethod
    def single(
        cls,
        reason: str,
        *,
        file: str | None = None,
        row: int | None = None,
        column: str | None = None,
        value: object | None = None,
        code: str = "invalid",
        message: Message | None = None,
    ) -> ValidationError:
        problem = Problem(
            reason, file=file, row=row, column=column, value=value, code=code, message=message
        )
        return cls([problem])

    def details(self) -> list[dict[str, object]]:
        """Every problem as an HTTP 422 ``detail`` item (the summary alone when none is listed)."""
        if not self.problems:
            return unprocessable(self.summary)
        return [p.as_detail() for p in self.problems]

    def __str__(self) -> str:
        if not self.problems:
            return self.summary
        head = f"{self.summary}: {len(self.problems)} problem(s)"
        lines = [f"  - {p}" for p in self.problems[:50]]
        if len(self.problems) > 50:
            lines.append(f"  … and {len(self.problems) - 50} more")
        return "\n".join([head, *lines])


def raise_if_problems(problems: Iterable[Problem], summary: str = "invalid input") -> None:
    """Raise a :class:`ValidationError` carrying ``problems`` if there are any."""
    collected = list(problems)
    if collected:
        raise ValidationError(collected, summary)


def unprocessable(message: str, *loc: str | int) -> list[dict[str, object]]:
    """A one-item HTTP 422 ``detail`` list for a message that names no single field."""
    return [{"loc": ["body", *loc], "msg": message, "type": "invalid"}]
