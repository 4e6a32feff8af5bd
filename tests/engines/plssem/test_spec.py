"""Parsing the lavaan-like model text and checking the model on its own."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from qala.core.errors import SpecificationError, ValidationError
from qala.engines.plssem import Construct, Path, build_model, parse_model


def test_operators_comments_and_continuations() -> None:
    spec = parse_model(
        """
        # measurement
        Image =~ IMAG1 + IMAG2 +
                 IMAG3          # continued line
        Gov   <~ G1 + G2; Sat =~ S1 + S2
        Single =~ X1
        Sat + Single ~ Image + Gov   # two targets share one line
        """
    )
    assert [c.name for c in spec.constructs] == ["Image", "Gov", "Sat", "Single"]
    assert spec.construct("Image").items == ("IMAG1", "IMAG2", "IMAG3")
    assert spec.construct("Gov").mode == "B"
    assert not spec.construct("Gov").reflective
    assert spec.construct("Sat").mode == "A"
    assert [p.label for p in spec.paths] == [
        "Image -> Sat",
        "Gov -> Sat",
        "Image -> Single",
        "Gov -> Single",
    ]
    assert spec.observed_items() == ["IMAG1", "IMAG2", "IMAG3", "G1", "G2", "S1", "S2", "X1"]


def test_interaction_and_higher_order_are_recognised() -> None:
    spec = parse_model(
        """
        A =~ a1 + a2
        B =~ b1 + b2
        C =~ c1 + c2
        D =~ d1 + d2
        D2 =~ e1 + e2
        H =~ A + B
        D2 ~ C
        D ~ H + C + C:D2
        """
    )
    assert [h.name for h in spec.higher_order] == ["H"]
    assert spec.interactions == ["C:D2"]
    assert "C:D2" in spec.structural_constructs()
    assert "A" not in spec.structural_constructs()


def test_syntax_errors_are_reported_together_with_line_numbers() -> None:
    with pytest.raises(ValidationError) as caught:
        parse_model("A =~ a1\nB a1\nC =~ c1 ++ c2\nC ~ A ~ B\n")
    rows = sorted(p.row for p in caught.value.problems if p.row is not None)
    assert rows == [2, 3, 4]


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("A =~ a1\nB =~ b1\nB ~ Z", "`Z` with no indicators"),
        ("A =~ a1\nB =~ b1\nB ~ A\nA ~ B", "feedback loop"),
        ("A =~ a1\nB =~ b1\nC =~ c1\nB ~ A", "`C` takes part in no structural path"),
        ("A =~ a1 + x\nB =~ b1 + x\nB ~ A", "assigned to both"),
        ("A =~ a1\nB =~ b1\nA:B ~ A", "cannot be the target"),
        ("A =~ a1\nB =~ b1\nB ~ A + A:Q", "undefined construct `Q`"),
        ("A =~ a1\nB =~ b1\nA =~ a2\nB ~ A", "defined more than once"),
        ("A =~ a1\nB =~ b1", "no structural paths"),
        ("A =~ a1\nB =~ b1\nH =~ A + b2\nH ~ A", "mixes constructs"),
    ],
)
def test_unusable_models_name_the_problem(text: str, fragment: str) -> None:
    with pytest.raises(SpecificationError, match=fragment.replace("(", r"\(")):
        parse_model(text)


def test_python_objects_build_the_same_model() -> None:
    text = "X =~ x1 + x2\nY <~ y1 + y2\nY ~ X\n"
    built = build_model(
        [Construct("X", ("x1", "x2")), Construct("Y", ("y1", "y2"), "B", reflective=False)],
        [Path("X", "Y")],
    )
    assert built == parse_model(text)
    assert built.to_text() == "X =~ x1 + x2\nY <~ y1 + y2\nY ~ X\n"


names = st.from_regex(r"[A-Z][a-z]{0,5}", fullmatch=True)


@given(st.lists(names, min_size=2, max_size=5, unique=True), st.integers(1, 4), st.booleans())
def test_text_round_trip(constructs: list[str], n_items: int, formative: bool) -> None:
    cs = [
        Construct(
            c,
            tuple(f"{c.lower()}_{i}" for i in range(n_items)),
            "B" if formative and k == 0 else "A",
            reflective=not (formative and k == 0),
        )
        for k, c in enumerate(constructs)
    ]
    paths = [Path(constructs[i], constructs[i + 1]) for i in range(len(constructs) - 1)]
    spec = build_model(cs, paths)
    assert parse_model(spec.to_text()) == spec
