"""The IIN: check digit (both passes, worked by hand), date and century plausibility, hashing."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given, strategies as st

from qala.components.budgeting.iin import (
    check_digit,
    hash_iin,
    iin_problem,
    key_fingerprint,
    make_iin,
    parse_iin,
)
from qala.core.errors import ValidationError

TODAY = date(2026, 3, 1)


def test_first_pass_check_digit_by_hand() -> None:
    # 9 0 0 5 1 7 4 0 1 2 3 · weights 1..11:
    # 9 + 0 + 0 + 20 + 5 + 42 + 28 + 0 + 9 + 20 + 33 = 166; 166 mod 11 = 1.
    assert check_digit("90051740123") == 1
    assert iin_problem("900517401231", today=TODAY) is None
    facts = parse_iin("900517401231", today=TODAY)
    assert facts.birth_date == date(1990, 5, 17)
    assert facts.sex == "female"  # 7th digit 4: 20th century, woman
    assert facts.age_on(TODAY) == 35


def test_second_pass_when_the_first_gives_ten() -> None:
    # 9 0 0 5 1 7 4 0 1 4 3 · weights 1..11: 9+0+0+20+5+42+28+0+9+40+33 = 186 ≡ 10 (mod 11),
    # so weights 3,4,5,6,7,8,9,10,11,1,2: 27+0+0+30+7+56+36+0+11+4+6 = 177 ≡ 1.
    assert check_digit("90051740143") == 1
    assert iin_problem("900517401431", today=TODAY) is None
    assert "check digit" in str(iin_problem("900517401430", today=TODAY))


def test_no_check_digit_when_both_passes_give_ten() -> None:
    found = None
    for serial in range(10_000):
        head = f"9005174{serial:04d}"
        digits = [int(c) for c in head]
        first = sum(w * d for w, d in zip(range(1, 12), digits, strict=True)) % 11
        second = (
            sum(w * d for w, d in zip((3, 4, 5, 6, 7, 8, 9, 10, 11, 1, 2), digits, strict=True))
            % 11
        )
        if first == 10 and second == 10:
            found = head
            break
    assert found is not None
    assert check_digit(found) is None
    for last in "0123456789":
        assert "no check digit" in str(iin_problem(found + last, today=TODAY))


@pytest.mark.parametrize(
    ("iin", "message"),
    [
        ("90051740123", "exactly 12 digits"),
        ("9005174012311", "exactly 12 digits"),
        ("90051740123a", "exactly 12 digits"),
        ("900517701231", "7th digit"),
        ("900517001231", "7th digit"),
        ("901317401231", "not a date of birth"),
        ("900230401231", "not a date of birth"),
        ("300101500001", "in the future"),
        ("900517401232", "check digit"),
    ],
)
def test_invalid_iins_are_explained(iin: str, message: str) -> None:
    assert message in str(iin_problem(iin, today=TODAY))
    with pytest.raises(ValidationError) as caught:
        parse_iin(iin, today=TODAY)
    assert caught.value.problems[0].column == "iin"
    assert iin not in str(caught.value)  # personal data is never echoed


def test_nineteenth_century_is_implausible_for_a_living_voter() -> None:
    old = make_iin(date(1890, 1, 1), sex="male", serial=1)
    assert old[6] == "1"
    assert "not plausible" in str(iin_problem(old, today=TODAY))


dates = st.dates(min_value=date(1910, 1, 1), max_value=date(2025, 12, 31))


@given(born=dates, serial=st.integers(0, 9999), sex=st.sampled_from(["male", "female"]))
def test_synthetic_iins_are_valid_and_say_who(born: date, serial: int, sex: str) -> None:
    iin = make_iin(born, sex=sex, serial=serial)
    assert iin_problem(iin, today=TODAY) is None
    facts = parse_iin(iin, today=TODAY)
    assert (facts.birth_date, facts.sex) == (born, sex)


@given(
    born=dates,
    serial=st.integers(0, 9999),
    position=st.integers(7, 9),
    delta=st.integers(1, 9),
)
def test_a_mistyped_serial_digit_is_caught_unless_it_falls_to_the_second_pass(
    born: date, serial: int, position: int, delta: int
) -> None:
    iin = make_iin(born, sex="male", serial=serial)
    typo = iin[:position] + str((int(iin[position]) + delta) % 10) + iin[position + 1 :]
    first_pass = sum(w * int(c) for w, c in zip(range(1, 12), typo[:11], strict=True)) % 11
    original_first = sum(w * int(c) for w, c in zip(range(1, 12), iin[:11], strict=True)) % 11
    if first_pass != 10 and original_first != 10:
        # weights 8..10 are non-zero mod the prime 11: one changed digit changes the remainder
        assert iin_problem(typo, today=TODAY) is not None


def test_the_hash_is_keyed_and_ignores_spaces() -> None:
    iin = "900517401231"
    assert hash_iin(iin, "a") == hash_iin("9005 1740 1231", "a")
    assert hash_iin(iin, "a") != hash_iin(iin, "b")
    assert len(hash_iin(iin, "a")) == 64 and iin not in hash_iin(iin, "a")
    assert key_fingerprint("a") != key_fingerprint("b")


def test_the_eleventh_digit_has_weight_eleven_so_its_typos_pass_the_first_pass() -> None:
    # 0 0 0 1 0 1 5 0 0 0 0: 4 + 6 + 35 = 45 ≡ 1, check digit 1. Weight 11 ≡ 0 (mod 11): changing
    # the 11th digit keeps the remainder, a blind spot of the algorithm itself (not of Qala).
    assert iin_problem("000101500001", today=TODAY) is None
    assert iin_problem("000101500011", today=TODAY) is None
