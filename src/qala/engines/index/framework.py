"""The index structure: a tree of indicators and aggregates with weights and directions.

A :class:`Framework` can be read from a COINr-style meta table (columns ``Level, iCode, iName,
Direction, Weight, Unit, Target, Denominator, Parent, Type``) or from nested dictionaries such as
the catalogue's framework → area → indicator trees. The tree may be unbalanced: an aggregate is
computed from its children whatever their depth.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import pandas as pd

from qala.core.errors import Problem, SpecificationError, ValidationError, raise_if_problems

META_COLUMNS = (
    "Level",
    "iCode",
    "iName",
    "Direction",
    "Weight",
    "Unit",
    "Target",
    "Denominator",
    "Parent",
    "Type",
)


@dataclass(frozen=True)
class Node:
    """One indicator (a leaf) or aggregate (a node with children) of the index."""

    code: str
    parent: str | None = None
    weight: float = 1.0
    direction: int = 1
    name: str | None = None
    unit: str | None = None
    target: float | None = None
    denominator: str | None = None
    level: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "parent": self.parent,
            "weight": self.weight,
            "direction": self.direction,
            "name": self.name,
            "unit": self.unit,
            "target": self.target,
            "denominator": self.denominator,
            "level": self.level,
        }


@dataclass(frozen=True)
class Framework:
    """A validated tree of :class:`Node` with one root.

    ``groups`` and ``denominators`` name the extra data columns the meta table declared
    (COINr rows of ``Type`` ``Group`` and ``Denominator``).
    """

    nodes: tuple[Node, ...]
    groups: tuple[str, ...] = ()
    denominators: tuple[str, ...] = ()
    _by_code: dict[str, Node] = field(init=False, repr=False, compare=False)
    _children: dict[str, tuple[str, ...]] = field(init=False, repr=False, compare=False)
    _aggregates: tuple[str, ...] = field(init=False, repr=False, compare=False, default=())

    def __post_init__(self) -> None:
        problems: list[Problem] = []
        by_code: dict[str, Node] = {}
        for node in self.nodes:
            if node.code in by_code:
                problems.append(Problem("duplicate code in the index structure", value=node.code))
            by_code[node.code] = node
        children: dict[str, list[str]] = {n.code: [] for n in self.nodes}
        roots = []
        for node in self.nodes:
            if node.parent is None:
                roots.append(node.code)
            elif node.parent not in by_code:
                problems.append(
                    Problem(
                        f"parent `{node.parent}` of `{node.code}` is not in the structure",
                        column="Parent",
                        value=node.parent,
                    )
                )
            else:
                children[node.parent].append(node.code)
            if node.direction not in (-1, 1):
                problems.append(
                    Problem(
                        f"direction of `{node.code}` must be 1 or -1",
                        column="Direction",
                        value=node.direction,
                    )
                )
            if not (math.isfinite(node.weight) and node.weight >= 0):
                problems.append(
                    Problem(
                        f"weight of `{node.code}` must be a finite number >= 0",
                        column="Weight",
                        value=node.weight,
                    )
                )
        if len(roots) != 1 and not problems:
            problems.append(
                Problem(
                    "the structure must have exactly one root (a node without parent)",
                    value=roots,
                )
            )
        raise_if_problems(problems, "invalid index structure")
        object.__setattr__(self, "_by_code", by_code)
        object.__setattr__(self, "_children", {k: tuple(v) for k, v in children.items()})
        # detect cycles by walking up from every node
        for node in self.nodes:
            seen = {node.code}
            cur = node.parent
            while cur is not None:
                if cur in seen:
                    raise ValidationError.single(
                        f"the structure has a cycle through `{cur}`", column="Parent"
                    )
                seen.add(cur)
                cur = by_code[cur].parent
        # the nodes never change, so the bottom-up order is worked out once (a what-if
        # re-aggregation asks for it many times per slider move)
        order: list[str] = []

        def visit(code: str) -> None:
            for child in self._children[code]:
                visit(child)
            if self._children[code]:
                order.append(code)

        visit(self.root)
        object.__setattr__(self, "_aggregates", tuple(order))

    # --- navigation -------------------------------------------------------------------------
    def __getitem__(self, code: str) -> Node:
        try:
            return self._by_code[code]
        except KeyError:
            raise SpecificationError(f"`{code}` is not a code of the index structure") from None

    def __contains__(self, code: object) -> bool:
        return code in self._by_code

    @property
    def root(self) -> str:
        return next(n.code for n in self.nodes if n.parent is None)

    def children(self, code: str) -> tuple[str, ...]:
        return self._children[code]

    @property
    def indicators(self) -> list[str]:
        """Leaf codes, in the order the structure lists them."""
        return [n.code for n in self.nodes if not self._children[n.code]]

    @property
    def aggregates(self) -> list[str]:
        """Aggregate codes from the lowest to the root (children always before parents)."""
        return list(self._aggregates)

    def level_of(self, code: str) -> int:
        """Declared level, or 1 for indicators and 1 + the highest child level for aggregates."""
        node = self[code]
        if node.level is not None:
            return node.level
        kids = self._children[code]
        return 1 if not kids else 1 + max(self.level_of(k) for k in kids)

    @property
    def levels(self) -> dict[int, list[str]]:
        out: dict[int, list[str]] = {}
        for node in self.nodes:
            out.setdefault(self.level_of(node.code), []).append(node.code)
        return dict(sorted(out.items()))

    def leaves_under(self, code: str) -> list[str]:
        kids = self._children[code]
        if not kids:
            return [code]
        out: list[str] = []
        for k in kids:
            out.extend(self.leaves_under(k))
        return out

    def ancestors(self, code: str) -> list[str]:
        out = []
        cur = self[code].parent
        while cur is not None:
            out.append(cur)
            cur = self._by_code[cur].parent
        return out

    # --- changes (return new frameworks) -----------------------------------------------------
    def with_weights(self, weights: Mapping[str, float]) -> Framework:
        unknown = [c for c in weights if c not in self._by_code]
        if unknown:
            raise SpecificationError(f"weights given for unknown codes: {unknown}")
        nodes = tuple(
            replace(n, weight=float(weights[n.code])) if n.code in weights else n
            for n in self.nodes
        )
        return Framework(nodes, self.groups, self.denominators)

    def without(self, codes: Iterable[str]) -> Framework:
        """Drop indicators (and aggregates left without children)."""
        drop = set(codes)
        unknown = drop - set(self._by_code)
        if unknown:
            raise SpecificationError(f"cannot drop unknown codes: {sorted(unknown)}")
        for code in list(drop):  # dropping an aggregate drops everything under it
            drop.update(self.leaves_under(code))
            stack = list(self._children[code])
            while stack:
                child = stack.pop()
                drop.add(child)
                stack.extend(self._children[child])
        changed = True
        nodes = list(self.nodes)
        while changed:
            changed = False
            kids: dict[str, int] = {n.code: 0 for n in nodes}
            for n in nodes:
                if n.parent is not None and n.code not in drop:
                    kids[n.parent] = kids.get(n.parent, 0) + 1
            for n in nodes:
                was_aggregate = bool(self._children.get(n.code))
                if was_aggregate and kids[n.code] == 0 and n.code not in drop:
                    drop.add(n.code)
                    changed = True
        kept = tuple(n for n in nodes if n.code not in drop)
        if not kept:
            raise SpecificationError("dropping these codes leaves an empty index")
        return Framework(kept, self.groups, self.denominators)

    def effective_weights(self) -> dict[str, float]:
        """Each node's weight in the root: the product of its within-group weight shares along
        the path to the root (COINr ``get_eff_weights``); they sum to one per level of a
        balanced tree."""
        out = {self.root: 1.0}
        for code in reversed(self.aggregates):  # parents before children
            kids = self._children[code]
            total = sum(self._by_code[k].weight for k in kids)
            for k in kids:
                share = self._by_code[k].weight / total if total > 0 else 0.0
                out[k] = out[code] * share
        return {n.code: out[n.code] for n in self.nodes}

    @property
    def weights(self) -> dict[str, float]:
        return {n.code: n.weight for n in self.nodes}

    @property
    def directions(self) -> dict[str, int]:
        return {n.code: n.direction for n in self.nodes}

    def to_tree(self) -> dict[str, Any]:
        """Nested-dict form (the shape :func:`framework_from_tree` reads)."""

        def build(code: str) -> dict[str, Any]:
            node = self._by_code[code]
            out: dict[str, Any] = {"code": code, "weight": node.weight}
            if node.name:
                out["name"] = node.name
            if node.direction != 1:
                out["direction"] = node.direction
            for key in ("unit", "target", "denominator"):
                value = getattr(node, key)
                if value is not None:
                    out[key] = value
            kids = self._children[code]
            if kids:
                out["children"] = [build(k) for k in kids]
            return out

        return build(self.root)

    def to_meta(self) -> pd.DataFrame:
        """The COINr-shaped meta table (indicators and aggregates, then groups/denominators)."""
        rows = []
        for node in self.nodes:
            rows.append(
                {
                    "Level": self.level_of(node.code),
                    "iCode": node.code,
                    "iName": node.name,
                    "Direction": node.direction,
                    "Weight": node.weight,
                    "Unit": node.unit,
                    "Target": node.target,
                    "Denominator": node.denominator,
                    "Parent": node.parent,
                    "Type": "Indicator" if not self._children[node.code] else "Aggregate",
                }
            )
        for g in self.groups:
            rows.append({"iCode": g, "Type": "Group"})
        for d in self.denominators:
            rows.append({"iCode": d, "Type": "Denominator"})
        return pd.DataFrame(rows, columns=list(META_COLUMNS))


def _clean(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, str) and not value.strip():
        return None
    return value


def framework_from_meta(meta: pd.DataFrame, *, source: str | None = None) -> Framework:
    """Read a COINr-style meta table.

    Parameters
    ----------
    meta
        One row per indicator/aggregate with at least ``iCode`` and ``Parent`` (the root has an
        empty parent); optional ``Level``, ``iName``, ``Direction`` (1/-1, default 1), ``Weight``
        (default 1), ``Unit``, ``Target``, ``Denominator`` and ``Type``. Rows whose ``Type`` is
        ``Group`` or ``Denominator`` declare data columns rather than nodes; ``Other`` rows are
        ignored.
    source
        File name to quote in error messages.
    """
    problems: list[Problem] = []
    for col in ("iCode",):
        if col not in meta.columns:
            problems.append(
                Problem(
                    "meta table lacks a required column; expected the COINr iMeta columns "
                    + ", ".join(META_COLUMNS),
                    file=source,
                    column=col,
                )
            )
    raise_if_problems(problems, "invalid meta table")
    nodes: list[Node] = []
    groups: list[str] = []
    denominators: list[str] = []
    has_parent = "Parent" in meta.columns
    for i, row in enumerate(meta.to_dict("records")):
        line = i + 2  # header is row 1
        code = _clean(row.get("iCode"))
        if code is None:
            problems.append(Problem("empty iCode", file=source, row=line, column="iCode"))
            continue
        code = str(code).strip()
        kind = str(_clean(row.get("Type")) or "").strip().lower()
        if kind == "group":
            groups.append(code)
            continue
        if kind == "denominator":
            denominators.append(code)
            continue
        if kind in ("other", "none"):
            continue

        def number(
            column: str, default: float | None, *, _row: Any = row, _line: int = line
        ) -> Any:
            raw = _clean(_row.get(column))
            if raw is None:
                return default
            try:
                return float(raw)
            except (TypeError, ValueError):
                problems.append(
                    Problem("expected a number", file=source, row=_line, column=column, value=raw)
                )
                return default

        direction = number("Direction", 1.0)
        weight = number("Weight", 1.0)
        level = number("Level", None)
        target = number("Target", None)
        parent = _clean(row.get("Parent")) if has_parent else None
        denominator = _clean(row.get("Denominator"))
        if direction not in (-1.0, 1.0):
            problems.append(
                Problem(
                    "Direction must be 1 or -1",
                    file=source,
                    row=line,
                    column="Direction",
                    value=direction,
                )
            )
            direction = 1.0
        if weight is None or weight < 0 or not math.isfinite(weight):
            problems.append(
                Problem(
                    "Weight must be a number >= 0",
                    file=source,
                    row=line,
                    column="Weight",
                    value=weight,
                )
            )
            weight = 1.0
        nodes.append(
            Node(
                code=code,
                parent=None if parent is None else str(parent).strip(),
                weight=float(weight),
                direction=int(direction),
                name=None if _clean(row.get("iName")) is None else str(row.get("iName")),
                unit=None if _clean(row.get("Unit")) is None else str(row.get("Unit")),
                target=target,
                denominator=None if denominator is None else str(denominator).strip(),
                level=None if level is None else int(level),
            )
        )
    raise_if_problems(problems, "invalid meta table")
    framework = Framework(tuple(nodes), tuple(groups), tuple(denominators))
    # levels, when declared, must grow towards the root
    for node in framework.nodes:
        if node.parent is not None and node.level is not None:
            parent_level = framework[node.parent].level
            if parent_level is not None and parent_level <= node.level:
                problems.append(
                    Problem(
                        f"Level of parent `{node.parent}` ({parent_level}) must exceed that of "
                        f"`{node.code}` ({node.level})",
                        file=source,
                        column="Level",
                    )
                )
    raise_if_problems(problems, "invalid meta table")
    return framework


_DIRECTION_WORDS = {
    "higher": 1,
    "higher_is_better": 1,
    "positive": 1,
    "up": 1,
    "+": 1,
    "lower": -1,
    "lower_is_better": -1,
    "negative": -1,
    "down": -1,
    "-": -1,
}


def framework_from_tree(
    tree: Mapping[str, Any],
    *,
    groups: Sequence[str] = (),
    denominators: Sequence[str] = (),
) -> Framework:
    """Read nested dicts ``{"code", "weight", "direction", "name", "children": [...]}``.

    Leaves are indicators. Keys other than ``code`` are optional (weight 1, direction 1);
    ``direction`` may also be a word (``higher``/``positive`` or ``lower``/``negative``). Other
    keys are ignored, so catalogue records can be passed as they are.
    """
    nodes: list[Node] = []
    problems: list[Problem] = []

    def walk(item: Mapping[str, Any], parent: str | None, path: str) -> None:
        if not isinstance(item, Mapping) or "code" not in item:
            problems.append(Problem(f"tree node at {path} needs a `code`", value=item))
            return
        code = str(item["code"])
        raw_direction = item.get("direction", 1)
        if isinstance(raw_direction, str):
            word = raw_direction.strip().lower()
            raw_direction = _DIRECTION_WORDS.get(word, raw_direction)
        try:
            direction = int(raw_direction or 1)
            weight = float(item.get("weight", 1.0) if item.get("weight") is not None else 1.0)
        except (TypeError, ValueError):
            problems.append(Problem(f"bad weight or direction at {path}", value=item))
            return
        target = item.get("target")
        nodes.append(
            Node(
                code=code,
                parent=parent,
                weight=weight,
                direction=direction,
                name=item.get("name"),
                unit=item.get("unit"),
                target=None if target is None else float(target),
                denominator=item.get("denominator"),
                level=None,
            )
        )
        for i, child in enumerate(item.get("children") or []):
            walk(child, code, f"{path}.children[{i}]")

    walk(tree, None, "tree")
    raise_if_problems(problems, "invalid index tree")
    return Framework(tuple(nodes), tuple(groups), tuple(denominators))
