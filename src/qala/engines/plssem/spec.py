"""Model specification: constructs, paths, interactions and higher-order constructs.

A model can be written in a lavaan-like text form and parsed with :func:`parse_model`::

    # measurement model
    Image       =~ IMAG1 + IMAG2 + IMAG3      # reflective (mode A; PLSc-corrected when consistent)
    Governance  <~ GOV1 + GOV2                # formative composite (mode B)
    Complaints  =~ CUSCO                      # single item
    Context     =~ Image + Governance         # higher-order: its "items" are other constructs
    # structural model
    Satisfaction ~ Image + Expectation + Image:Expectation   # A:B is an interaction term

or built from Python objects (:class:`Construct`, :class:`Path`, :class:`ModelSpec`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from qala.core.errors import Problem, SpecificationError, ValidationError

Mode = Literal["A", "B"]

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*$")
INTERACTION_SEPARATOR = ":"


@dataclass(frozen=True)
class Construct:
    """A latent variable and its indicators.

    Parameters
    ----------
    name
        Construct name as used in the structural model.
    items
        Indicator column names (or, for a higher-order construct, names of lower-order constructs).
    mode
        ``"A"`` (correlation weights; reflective) or ``"B"`` (regression weights; formative).
    reflective
        True for a common-factor (``=~``) construct; PLSc corrects only these.
    """

    name: str
    items: tuple[str, ...]
    mode: Mode = "A"
    reflective: bool = True


@dataclass(frozen=True)
class Path:
    """A directed structural path ``source -> target``."""

    source: str
    target: str

    @property
    def label(self) -> str:
        return f"{self.source} -> {self.target}"


@dataclass(frozen=True)
class ModelSpec:
    """A complete PLS path model: measurement part (constructs) and structural part (paths).

    Interaction constructs are named ``"A:B"`` and appear only as path sources; a construct whose
    items are all other constructs is a higher-order construct estimated in two stages.
    """

    constructs: tuple[Construct, ...]
    paths: tuple[Path, ...]
    source_lines: dict[str, int] = field(default_factory=dict, compare=False, repr=False)

    # -- lookups -----------------------------------------------------------------------------
    def construct(self, name: str) -> Construct:
        for c in self.constructs:
            if c.name == name:
                return c
        raise KeyError(name)

    @property
    def construct_names(self) -> list[str]:
        return [c.name for c in self.constructs]

    @property
    def higher_order(self) -> list[Construct]:
        names = set(self.construct_names)
        return [c for c in self.constructs if c.items and all(i in names for i in c.items)]

    @property
    def interactions(self) -> list[str]:
        seen: list[str] = []
        for p in self.paths:
            if INTERACTION_SEPARATOR in p.source and p.source not in seen:
                seen.append(p.source)
        return seen

    def structural_constructs(self) -> list[str]:
        """Constructs in the structural model, in measurement-model order, then interactions."""
        in_paths = {p.source for p in self.paths} | {p.target for p in self.paths}
        ordered = [c.name for c in self.constructs if c.name in in_paths]
        return ordered + [i for i in self.interactions if i not in ordered]

    def observed_items(self) -> list[str]:
        """Every data column the model needs, in order of first mention."""
        names = set(self.construct_names)
        out: list[str] = []
        for c in self.constructs:
            for item in c.items:
                if item not in names and item not in out:
                    out.append(item)
        return out

    def to_text(self) -> str:
        """Render the specification back to the lavaan-like text form."""
        lines = []
        for c in self.constructs:
            op = "<~" if c.mode == "B" else "=~"
            lines.append(f"{c.name} {op} {' + '.join(c.items)}")
        targets: dict[str, list[str]] = {}
        for p in self.paths:
            targets.setdefault(p.target, []).append(p.source)
        for target, sources in targets.items():
            lines.append(f"{target} ~ {' + '.join(sources)}")
        return "\n".join(lines) + "\n"

    def validate(self) -> None:
        """Check the specification on its own (no data): raise :class:`SpecificationError`."""
        problems: list[str] = []
        names = self.construct_names
        seen: set[str] = set()
        for n in names:
            if n in seen:
                problems.append(f"construct `{n}` is defined more than once")
            seen.add(n)
        owner: dict[str, str] = {}
        hoc_names = {c.name for c in self.higher_order}
        for c in self.constructs:
            if not c.items:
                problems.append(f"construct `{c.name}` has no indicators")
            mixed = [i for i in c.items if i in seen]
            if mixed and len(mixed) != len(c.items):
                problems.append(
                    f"construct `{c.name}` mixes constructs ({', '.join(mixed)}) and indicators; "
                    "a higher-order construct must list only lower-order constructs"
                )
            if c.name in hoc_names:
                for dim in c.items:
                    if dim in hoc_names:
                        problems.append(
                            f"higher-order construct `{c.name}` uses `{dim}`, itself higher-order; "
                            "only two levels are supported"
                        )
                continue
            for item in c.items:
                if item in owner and item not in seen:
                    problems.append(
                        f"indicator `{item}` is assigned to both `{owner[item]}` and `{c.name}`"
                    )
                owner.setdefault(item, c.name)
        for p in self.paths:
            for end in (p.source, p.target):
                if INTERACTION_SEPARATOR in end:
                    parts = end.split(INTERACTION_SEPARATOR)
                    if end == p.target:
                        problems.append(f"interaction `{end}` cannot be the target of a path")
                    if len(parts) != 2:
                        problems.append(f"interaction `{end}` must join exactly two constructs")
                    for part in parts:
                        if part not in seen:
                            problems.append(
                                f"interaction `{end}` uses undefined construct `{part}`"
                            )
                        elif part in hoc_names:
                            problems.append(
                                f"interaction `{end}` uses higher-order construct `{part}`; "
                                "not supported"
                            )
                elif end not in seen:
                    problems.append(f"path `{p.label}` uses construct `{end}` with no indicators")
            if p.source == p.target:
                problems.append(f"path `{p.label}` points at itself")
        dims = {d for h in self.higher_order for d in h.items}
        for p in self.paths:
            for end in (p.source, p.target):
                if end in dims:
                    problems.append(
                        f"`{end}` is a dimension of a higher-order construct and cannot also have "
                        f"structural paths (path `{p.label}`); connect the higher-order construct"
                    )
        if not self.paths:
            problems.append("the model has no structural paths (`Y ~ X` lines)")
        structural = self.structural_constructs()
        for c in self.constructs:
            if c.name not in structural and c.name not in dims:
                problems.append(
                    f"construct `{c.name}` takes part in no structural path; PLS cannot weight "
                    "an isolated construct"
                )
        if not problems:
            cycle = _find_cycle(self.paths)
            if cycle:
                problems.append(
                    "the structural model has a feedback loop ("
                    + " -> ".join(cycle)
                    + "); PLS path models must be recursive"
                )
        if problems:
            raise SpecificationError(
                "model specification is not usable:\n" + "\n".join(f"  - {p}" for p in problems)
            )


def _find_cycle(paths: Iterable[Path]) -> list[str]:
    graph: dict[str, list[str]] = {}
    for p in paths:
        graph.setdefault(p.source, []).append(p.target)
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        stack.append(node)
        for nxt in graph.get(node, []):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if state.get(nxt) is None:
                found = visit(nxt)
                if found:
                    return found
        state[node] = 2
        stack.pop()
        return []

    for node in list(graph):
        if state.get(node) is None:
            found = visit(node)
            if found:
                return found
    return []


def _split_terms(text: str, line_no: int, problems: list[Problem]) -> list[str]:
    terms = [t.strip() for t in text.split("+")]
    out: list[str] = []
    for t in terms:
        parts = t.split(INTERACTION_SEPARATOR)
        if not t or not all(_NAME.match(p.strip()) for p in parts):
            problems.append(
                Problem(
                    "expected names joined by `+` (letters, digits, `_`, `.`; `A:B` for an "
                    "interaction)",
                    row=line_no,
                    value=t or text,
                    code="syntax",
                )
            )
            continue
        out.append(INTERACTION_SEPARATOR.join(p.strip() for p in parts))
    return out


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """Strip comments and join continuation lines (a line ending in ``+`` or starting with it)."""
    lines: list[tuple[int, str]] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].split("!", 1)[0].strip()
        if not line:
            continue
        for piece in line.split(";"):
            piece = piece.strip()
            if not piece:
                continue
            if lines and (lines[-1][1].endswith("+") or piece.startswith("+")):
                lines[-1] = (lines[-1][0], f"{lines[-1][1]} {piece}")
            else:
                lines.append((number, piece))
    return lines


def parse_model(text: str) -> ModelSpec:
    """Parse the lavaan-like text form of a PLS path model.

    Operators: ``=~`` reflective construct (mode A), ``<~`` formative composite (mode B),
    ``~`` structural regression (``Y ~ X1 + X2 + X1:X2``; several targets may share one line:
    ``Y1 + Y2 ~ X``). ``#`` starts a comment; a line ending in ``+`` continues on the next.

    Raises
    ------
    ValidationError
        With one problem per malformed line (``row`` is the line number).
    SpecificationError
        When the lines parse but the model is not usable (undefined constructs, loops, ...).
    """
    problems: list[Problem] = []
    constructs: list[Construct] = []
    paths: list[Path] = []
    source_lines: dict[str, int] = {}
    for line_no, line in _logical_lines(text):
        if "=~" in line or "<~" in line:
            op = "=~" if "=~" in line else "<~"
            left, right = (s.strip() for s in line.split(op, 1))
            if not _NAME.match(left):
                problems.append(
                    Problem(
                        "expected one construct name before the operator",
                        row=line_no,
                        value=left,
                        code="syntax",
                    )
                )
                continue
            items = _split_terms(right, line_no, problems)
            if any(INTERACTION_SEPARATOR in i for i in items):
                problems.append(
                    Problem(
                        "interaction terms belong in `~` lines, not in a measurement model",
                        row=line_no,
                        value=right,
                        code="syntax",
                    )
                )
                continue
            if not items:
                continue
            constructs.append(
                Construct(left, tuple(items), "A" if op == "=~" else "B", reflective=op == "=~")
            )
            source_lines[left] = line_no
        elif "~" in line:
            if line.count("~") != 1:
                problems.append(
                    Problem(
                        "expected one `~` per regression line",
                        row=line_no,
                        value=line,
                        code="syntax",
                    )
                )
                continue
            left, right = (s.strip() for s in line.split("~", 1))
            targets = _split_terms(left, line_no, problems)
            sources = _split_terms(right, line_no, problems)
            for target in targets:
                for source in sources:
                    path = Path(source, target)
                    if path in paths:
                        problems.append(
                            Problem(
                                f"path `{path.label}` is given twice", row=line_no, code="duplicate"
                            )
                        )
                    else:
                        paths.append(path)
        else:
            problems.append(
                Problem(
                    "expected `=~`, `<~` or `~` in this line",
                    row=line_no,
                    value=line,
                    code="syntax",
                )
            )
    if problems:
        raise ValidationError(problems, "model specification has syntax errors")
    spec = ModelSpec(tuple(constructs), tuple(paths), source_lines)
    spec.validate()
    return spec


def build_model(
    constructs: Sequence[Construct],
    paths: Sequence[Path | tuple[str, str]],
) -> ModelSpec:
    """Build and validate a :class:`ModelSpec` from Python objects."""
    spec = ModelSpec(
        tuple(constructs),
        tuple(p if isinstance(p, Path) else Path(p[0], p[1]) for p in paths),
    )
    spec.validate()
    return spec
