"""The indicator catalogue: versioned YAML files inside the package, loaded and schema-checked.

A framework is a tree (framework → area → … → indicator) that the index builder uses directly as
an index structure. Indicators are defined once (globally unique ids) and may be reused by other
frameworks' trees with ``use:``. Every indicator has a category — infrastructure, service,
participation or outcome — so the balance the research asks about is visible everywhere.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any

import yaml

from qala.core.errors import Problem, raise_if_problems
from qala.core.yamltext import load_yaml
from qala.settings import LANGUAGES

CATEGORIES = ("infrastructure", "service", "participation", "outcome")
POLARITIES = ("higher", "lower")
LEVELS = ("core", "supporting", "profile")
PURPOSES = ("rating", "reference", "readiness", "adoption", "governance")

Names = dict[str, str]


@dataclass(frozen=True)
class Unit:
    id: str
    names: Names
    symbol: str = ""
    min: float | None = None
    max: float | None = None
    integer: bool = False

    def name(self, language: str) -> str:
        return self.names.get(language) or self.names.get("en") or self.id


@dataclass(frozen=True)
class IndicatorDef:
    id: str
    names: Names
    unit: str
    polarity: str
    category: str
    framework: str
    area: str
    ref: str | None = None
    definition: Names = field(default_factory=dict)
    level: str | None = None
    typical: tuple[float, float] | None = None
    """Span of values usual for Kazakh cities: guides generated sample data and chart axes."""

    def name(self, language: str) -> str:
        return self.names.get(language) or self.names.get("en") or self.id

    @property
    def direction(self) -> int:
        """+1 when higher is better, -1 when lower is better (the index builder's convention)."""
        return 1 if self.polarity == "higher" else -1


@dataclass
class Node:
    """A node of a framework tree: an area (with children) or a leaf naming an indicator."""

    code: str
    names: Names
    weight: float = 1.0
    children: list[Node] = field(default_factory=list)
    indicator: str | None = None

    def name(self, language: str) -> str:
        return self.names.get(language) or self.names.get("en") or self.code

    def leaves(self) -> Iterator[Node]:
        if self.indicator is not None:
            yield self
        for child in self.children:
            yield from child.leaves()

    def walk(self, depth: int = 0) -> Iterator[tuple[int, Node]]:
        yield depth, self
        for child in self.children:
            yield from child.walk(depth + 1)


@dataclass
class Framework:
    id: str
    version: str
    names: Names
    publisher: str
    citation: str
    purpose: str
    root: Node
    url: str | None = None

    def name(self, language: str) -> str:
        return self.names.get(language) or self.names.get("en") or self.id

    def indicator_ids(self) -> list[str]:
        return [leaf.indicator for leaf in self.root.leaves() if leaf.indicator]

    def areas(self) -> list[Node]:
        return [child for child in self.root.children if child.indicator is None]


@dataclass
class Catalogue:
    units: dict[str, Unit]
    indicators: dict[str, IndicatorDef]
    frameworks: dict[str, Framework]
    version: str
    """Hash of the catalogue files: values and indices record which catalogue they used."""

    def indicator(self, indicator_id: str) -> IndicatorDef:
        from qala.core.errors import NotFoundError

        try:
            return self.indicators[indicator_id]
        except KeyError:
            close = [i for i in self.indicators if indicator_id.lower() in i.lower()][:5]
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise NotFoundError(f"no indicator `{indicator_id}` in the catalogue{hint}") from None

    def framework(self, framework_id: str) -> Framework:
        from qala.core.errors import NotFoundError

        try:
            return self.frameworks[framework_id]
        except KeyError:
            known = ", ".join(sorted(self.frameworks))
            raise NotFoundError(f"no framework `{framework_id}`; known: {known}") from None

    def search(self, text: str) -> list[IndicatorDef]:
        """Indicators whose id, names or definition contain ``text`` (case-insensitive)."""
        needle = text.casefold()
        found = []
        for ind in self.indicators.values():
            haystack = " ".join(
                [ind.id, ind.ref or "", *ind.names.values(), *ind.definition.values()]
            )
            if needle in haystack.casefold():
                found.append(ind)
        return found

    def index_tree(self, framework_id: str) -> dict[str, Any]:
        """The framework as a nested dict the index builder takes as its structure."""
        framework = self.framework(framework_id)

        def convert(node: Node) -> dict[str, Any]:
            if node.indicator is not None:
                ind = self.indicators[node.indicator]
                return {
                    "code": ind.id,
                    "name": ind.name("en"),
                    "weight": node.weight,
                    "direction": ind.direction,
                }
            return {
                "code": node.code,
                "name": node.name("en"),
                "weight": node.weight,
                "children": [convert(child) for child in node.children],
            }

        return convert(framework.root)


# ---------------------------------------------------------------------------------------------
# Loading and schema check


def _data_dir() -> Traversable:
    return resources.files("qala.components.catalog") / "data"


class _Checker:
    """Collects every problem found in the catalogue files, located as file and YAML path."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def fail(self, file: str, path: str, reason: str, value: object = None) -> None:
        self.problems.append(Problem(reason, file=file, column=path, value=value, code="schema"))

    def names(self, file: str, path: str, raw: Any, *, required: bool = True) -> Names:
        if not isinstance(raw, dict):
            if required:
                self.fail(file, path, "expected a mapping with kk, ru and en texts", raw)
            return {}
        names = {str(k): str(v).strip() for k, v in raw.items() if v is not None}
        if required:
            for language in LANGUAGES:
                if not names.get(language):
                    self.fail(file, f"{path}.{language}", "text missing for this language")
        unknown = set(names) - set(LANGUAGES)
        if unknown:
            self.fail(file, path, f"unknown language keys {sorted(unknown)}; use kk, ru, en")
        return names

    def number(self, file: str, path: str, raw: Any, default: float) -> float:
        if raw is None:
            return default
        if isinstance(raw, bool) or not isinstance(raw, int | float):
            self.fail(file, path, "expected a number", raw)
            return default
        if raw < 0:
            self.fail(file, path, "weights must not be negative", raw)
        return float(raw)


def _load_units(checker: _Checker, text: str, file: str) -> dict[str, Unit]:
    document = load_yaml(text) or {}
    units: dict[str, Unit] = {}
    for i, raw in enumerate(document.get("units") or []):
        path = f"units[{i}]"
        unit_id = str(raw.get("id", "")).strip()
        if not unit_id:
            checker.fail(file, f"{path}.id", "unit id missing")
            continue
        if unit_id in units:
            checker.fail(file, f"{path}.id", "duplicate unit id", unit_id)
        low, high = raw.get("min"), raw.get("max")
        if low is not None and high is not None and low > high:
            checker.fail(file, path, f"min {low} is above max {high}")
        units[unit_id] = Unit(
            id=unit_id,
            names=checker.names(file, f"{path}.name", raw.get("name")),
            symbol=str(raw.get("symbol") or ""),
            min=None if low is None else float(low),
            max=None if high is None else float(high),
            integer=bool(raw.get("integer", False)),
        )
    return units


def _parse_framework(
    checker: _Checker,
    document: dict[str, Any],
    file: str,
    indicators: dict[str, IndicatorDef],
    uses: list[tuple[str, str, str]],
) -> Framework | None:
    framework_id = str(document.get("id") or "").strip()
    if not framework_id:
        checker.fail(file, "id", "framework id missing")
        return None
    purpose = str(document.get("purpose") or "reference")
    if purpose not in PURPOSES:
        checker.fail(file, "purpose", f"expected one of {', '.join(PURPOSES)}", purpose)
    seen_codes: set[str] = set()

    def parse_area(raw: dict[str, Any], path: str) -> Node:
        code = str(raw.get("code") or "").strip()
        if not code:
            checker.fail(file, f"{path}.code", "area code missing")
        elif code in seen_codes:
            checker.fail(file, f"{path}.code", "duplicate area code", code)
        seen_codes.add(code)
        node = Node(
            code=code,
            names=checker.names(file, f"{path}.name", raw.get("name")),
            weight=checker.number(file, f"{path}.weight", raw.get("weight"), 1.0),
        )
        for j, sub in enumerate(raw.get("areas") or []):
            node.children.append(parse_area(sub, f"{path}.areas[{j}]"))
        for j, item in enumerate(raw.get("indicators") or []):
            leaf = parse_indicator(item, f"{path}.indicators[{j}]", code)
            if leaf is not None:
                node.children.append(leaf)
        if not node.children:
            checker.fail(file, path, "an area needs indicators or sub-areas")
        return node

    def parse_indicator(raw: dict[str, Any], path: str, area: str) -> Node | None:
        weight = checker.number(file, f"{path}.weight", raw.get("weight"), 1.0)
        if "use" in raw:
            used = str(raw["use"])
            uses.append((file, path, used))
            return Node(code=used, names={}, weight=weight, indicator=used)
        indicator_id = str(raw.get("id") or "").strip()
        if not indicator_id:
            checker.fail(file, f"{path}.id", "indicator id missing")
            return None
        if indicator_id in indicators:
            checker.fail(file, f"{path}.id", "indicator id already defined", indicator_id)
        for key, allowed in (("polarity", POLARITIES), ("category", CATEGORIES)):
            if raw.get(key) not in allowed:
                checker.fail(
                    file, f"{path}.{key}", f"expected one of {', '.join(allowed)}", raw.get(key)
                )
        level = raw.get("level")
        if level is not None and level not in LEVELS:
            checker.fail(file, f"{path}.level", f"expected one of {', '.join(LEVELS)}", level)
        typical = raw.get("typical")
        if typical is not None and not (
            isinstance(typical, list)
            and len(typical) == 2
            and all(isinstance(x, int | float) and not isinstance(x, bool) for x in typical)
            and typical[0] < typical[1]
        ):
            checker.fail(
                file, f"{path}.typical", "expected [low, high] with low below high", typical
            )
            typical = None
        indicators[indicator_id] = IndicatorDef(
            id=indicator_id,
            names=checker.names(file, f"{path}.name", raw.get("name")),
            unit=str(raw.get("unit") or ""),
            polarity=str(raw.get("polarity")),
            category=str(raw.get("category")),
            framework=framework_id,
            area=area,
            ref=None if raw.get("ref") is None else str(raw.get("ref")),
            definition=checker.names(
                file, f"{path}.definition", raw.get("definition"), required=False
            ),
            level=level,
            typical=None if typical is None else (float(typical[0]), float(typical[1])),
        )
        uses.append((file, f"{path}.unit", "unit:" + str(raw.get("unit") or "")))
        return Node(code=indicator_id, names={}, weight=weight, indicator=indicator_id)

    root = Node(code=framework_id, names=checker.names(file, "name", document.get("name")))
    for i, area in enumerate(document.get("areas") or []):
        root.children.append(parse_area(area, f"areas[{i}]"))
    if not root.children:
        checker.fail(file, "areas", "a framework needs at least one area")
    return Framework(
        id=framework_id,
        version=str(document.get("version") or ""),
        names=root.names,
        publisher=str(document.get("publisher") or ""),
        citation=str(document.get("citation") or ""),
        purpose=purpose,
        root=root,
        url=document.get("url"),
    )


def parse_catalogue(units_text: str, framework_texts: dict[str, str]) -> Catalogue:
    """Build and check a catalogue from the texts of ``units.yaml`` and framework files."""
    checker = _Checker()
    digest = hashlib.sha256(units_text.encode())
    units = _load_units(checker, units_text, "units.yaml")
    indicators: dict[str, IndicatorDef] = {}
    frameworks: dict[str, Framework] = {}
    uses: list[tuple[str, str, str]] = []
    for file, text in sorted(framework_texts.items()):
        digest.update(file.encode())
        digest.update(text.encode())
        try:
            document = load_yaml(text) or {}
        except yaml.YAMLError as exc:
            checker.fail(file, "", f"not valid YAML: {exc}")
            continue
        framework = _parse_framework(checker, document, file, indicators, uses)
        if framework is None:
            continue
        if framework.id in frameworks:
            checker.fail(file, "id", "framework id already used", framework.id)
        frameworks[framework.id] = framework
    for file, path, target in uses:
        if target.startswith("unit:"):
            if target[5:] not in units:
                checker.fail(file, path, "unit not defined in units.yaml", target[5:])
        elif target not in indicators:
            checker.fail(file, path, "`use` names an indicator defined nowhere", target)
    raise_if_problems(checker.problems, "the indicator catalogue is invalid")
    return Catalogue(units, indicators, frameworks, digest.hexdigest()[:16])


@lru_cache(maxsize=1)
def load_catalogue() -> Catalogue:
    """The catalogue shipped with Qala (cached: the files are part of the installed package)."""
    data = _data_dir()
    units_text = (data / "units.yaml").read_text(encoding="utf-8")
    texts = {
        entry.name: entry.read_text(encoding="utf-8")
        for entry in (data / "frameworks").iterdir()
        if entry.name.endswith((".yaml", ".yml"))
    }
    return parse_catalogue(units_text, texts)
