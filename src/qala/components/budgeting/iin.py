"""The Kazakh individual identification number (IIN, ЖСН/ИИН): validation and keyed hashing.

An IIN has 12 digits: ``YYMMDD`` (date of birth), one digit for century and sex (1/2: born in the
19th century, 3/4: 20th, 5/6: 21st; odd for men, even for women), four digits of a registration
number and a check digit. The check digit is the weighted sum of the first 11 digits modulo 11
with weights 1..11; when that gives 10, a second pass uses weights 3, 4, …, 11, 1, 2; a second 10
means the number cannot be valid (such numbers are never issued).

Qala never stores an IIN: only ``HMAC-SHA256(secret_key, "qala.budgeting.iin:" + iin)``, so the
voter registry can tell that a number was already used without holding the number itself.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import date

from qala.core.errors import Problem, ValidationError
from qala.core.messages import Message, msg

FIRST_WEIGHTS = tuple(range(1, 12))
SECOND_WEIGHTS = (3, 4, 5, 6, 7, 8, 9, 10, 11, 1, 2)
CENTURY = {"1": 1800, "2": 1800, "3": 1900, "4": 1900, "5": 2000, "6": 2000}
MAX_AGE = 125
"""An older date of birth is not plausible for a living resident."""
_HASH_CONTEXT = b"qala.budgeting.iin:"


def check_digit(first_eleven: str) -> int | None:
    """The check digit of the first 11 digits, or None when both passes give 10."""
    digits = [int(c) for c in first_eleven]
    remainder = sum(w * d for w, d in zip(FIRST_WEIGHTS, digits, strict=True)) % 11
    if remainder == 10:
        remainder = sum(w * d for w, d in zip(SECOND_WEIGHTS, digits, strict=True)) % 11
        if remainder == 10:
            return None
    return remainder


@dataclass(frozen=True)
class IinFacts:
    """What a valid IIN says about its holder."""

    birth_date: date
    sex: str
    """``"male"`` or ``"female"``."""

    def age_on(self, day: date) -> int:
        before_birthday = (day.month, day.day) < (self.birth_date.month, self.birth_date.day)
        return day.year - self.birth_date.year - int(before_birthday)


def iin_problem(iin: str, *, today: date) -> str | None:
    """Why ``iin`` is not a valid IIN (a sentence for the person who typed it), or None."""
    found = iin_check(iin, today=today)
    return found[0] if found is not None else None


def iin_check(iin: str, *, today: date) -> tuple[str, Message] | None:
    """Why ``iin`` is not a valid IIN, in English and as a message for the reader's language."""
    if len(iin) != 12 or not (iin.isascii() and iin.isdigit()):
        return "an IIN is exactly 12 digits", msg("iin.length")
    century = CENTURY.get(iin[6])
    if century is None:
        return "the 7th digit of an IIN (century and sex) must be 1–6", msg("iin.century")
    try:
        born = date(century + int(iin[0:2]), int(iin[2:4]), int(iin[4:6]))
    except ValueError:
        return (
            f"the first six digits ({iin[:6]}) are not a date of birth YYMMDD",
            msg("iin.birth_date", digits=iin[:6]),
        )
    if born > today:
        return (
            f"the date of birth {born.isoformat()} is in the future",
            msg("iin.future", born=born.isoformat()),
        )
    if today.year - born.year > MAX_AGE:
        return (
            f"the date of birth {born.isoformat()} is not plausible",
            msg("iin.implausible", born=born.isoformat()),
        )
    expected = check_digit(iin[:11])
    if expected is None:
        return "these 11 digits admit no check digit (no such IIN is issued)", msg("iin.no_check")
    if expected != int(iin[11]):
        return (
            "the check digit (12th digit) does not match: the number has a typo",
            msg("iin.check_digit"),
        )
    return None


def parse_iin(iin: str, *, today: date, field: str = "iin") -> IinFacts:
    """Validate an IIN (spaces ignored) and return what it says; ``ValidationError`` otherwise."""
    clean = normalise_iin(iin)
    found = iin_check(clean, today=today)
    if found is not None:
        # The value is never echoed back: it is personal data.
        reason, why = found
        problem = Problem(
            f"invalid IIN: {reason}", column=field, message=msg("iin.invalid", why=why)
        )
        raise ValidationError([problem])
    century = CENTURY[clean[6]]
    born = date(century + int(clean[0:2]), int(clean[2:4]), int(clean[4:6]))
    return IinFacts(born, "male" if int(clean[6]) % 2 else "female")


def normalise_iin(iin: str) -> str:
    return "".join(str(iin).split())


def hash_iin(iin: str, secret_key: str) -> str:
    """The keyed hash stored in place of the IIN (hex HMAC-SHA256)."""
    return hmac.new(
        secret_key.encode("utf-8"), _HASH_CONTEXT + normalise_iin(iin).encode("ascii"), "sha256"
    ).hexdigest()


def key_fingerprint(secret_key: str) -> str:
    """A value that changes when the secret key changes (and reveals nothing about it)."""
    return hmac.new(secret_key.encode("utf-8"), b"qala.budgeting.key-check", "sha256").hexdigest()


def make_iin(birth_date: date, *, sex: str, serial: int) -> str:
    """A check-digit-correct synthetic IIN (for demos and tests; ``serial`` 0–9999).

    Serials whose number admits no check digit are skipped to the next one.
    """
    first = {1800: "1", 1900: "3", 2000: "5"}[birth_date.year // 100 * 100]
    if sex == "female":
        first = str(int(first) + 1)
    for candidate in range(serial, serial + 20):
        head = f"{birth_date:%y%m%d}{first}{candidate % 10000:04d}"
        digit = check_digit(head)
        if digit is not None:
            return head + str(digit)
    raise AssertionError("unreachable: a run of 20 serials always has a checkable one")
