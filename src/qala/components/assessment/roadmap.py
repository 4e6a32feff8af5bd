"""Gap analysis and a prioritised roadmap from the action catalogue.

Targets
-------
For every indicator of the rating the target is, in this order: the user's goal (if given), the
national norm (``data/norms.yaml``, when ``mode`` allows it), the median of the place's peers.
The **shortfall** is how far the value falls short of the target in the good direction, in the
indicator's unit (0 when the target is met); the **gap points** are the shortfall on the 0–100
goalpost scale.

Roadmap
-------
An action moves indicators (by points, by a share of the current value, or to a set value).
Its **impact** on a place is ``Σ wᵢ · min(moveᵢ, shortfallᵢ) / spanᵢ · 100`` over the indicators it
moves in the good direction, with ``wᵢ`` the indicator's effective weight in the national index:
roughly the index points it would add on the goalpost scale, counting only gaps that exist (a
met target gains nothing). Greedy by impact per cost under a budget: at each step, for every
action not yet chosen, the *bundle* of it and its unchosen prerequisites (so dependencies are
respected) is priced and valued, gaps being closed in order; the bundle with the highest impact
per million KZT that fits the remaining budget is taken, its gains are applied to the gaps, and
the search repeats until nothing affordable gains anything. Ties go to the cheaper bundle, then
to the action id.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any

import pandas as pd

from qala.core.errors import Problem, ValidationError, raise_if_problems
from qala.core.yamltext import load_yaml


@dataclass(frozen=True)
class Move:
    indicator: str
    change: str  # points | relative | set
    by: float


@dataclass(frozen=True)
class Case:
    city: str | None
    year: int | None
    cost_mln_kzt: float | None
    effect: str
    source: str = ""
    illustrative: bool = False


@dataclass(frozen=True)
class Action:
    id: str
    names: dict[str, str]
    area: str
    cost_class: str
    cost: float
    """Nominal cost of the class, million KZT."""
    months: int
    depends_on: tuple[str, ...]
    moves: tuple[Move, ...]
    evidence: str = ""
    cases: tuple[Case, ...] = ()

    def name(self, language: str = "en") -> str:
        return self.names.get(language) or self.names.get("en") or self.id


@dataclass(frozen=True)
class ActionCatalogue:
    actions: dict[str, Action]
    cost_classes: dict[str, dict[str, float]]

    def cases(self, *, city: str | None = None, area: str | None = None) -> list[dict[str, Any]]:
        """The case library: every case with its action, filtered by city or area."""
        out = []
        for action in self.actions.values():
            if area is not None and action.area != area:
                continue
            for case in action.cases:
                if city is not None and (case.city or "").lower() != city.lower():
                    continue
                out.append(
                    {
                        "action": action.id,
                        "action_name": action.names,
                        "area": action.area,
                        **asdict(case),
                        "indicators": [m.indicator for m in action.moves],
                    }
                )
        return out


def parse_actions(
    text: str, *, file: str = "actions.yaml", known: Iterable[str] = ()
) -> ActionCatalogue:
    """Read and check an action catalogue (unknown indicators and dependencies, cycles)."""
    raw = load_yaml(text) or {}
    problems: list[Problem] = []
    classes = {
        str(k): {kk: float(vv) for kk, vv in v.items()}
        for k, v in (raw.get("cost_classes") or {}).items()
    }
    known_set = set(known)
    actions: dict[str, Action] = {}
    for i, item in enumerate(raw.get("actions") or []):
        where = f"actions[{i}]"
        aid = str(item.get("id") or "")
        if not aid or aid in actions:
            problems.append(
                Problem("missing or duplicate action id", file=file, column=where, value=aid)
            )
            continue
        cls = str(item.get("cost_class"))
        if cls not in classes:
            problems.append(
                Problem(
                    f"cost_class must be one of {sorted(classes)}",
                    file=file,
                    column=f"{where}.cost_class",
                    value=cls,
                )
            )
            continue
        moves = []
        for j, m in enumerate(item.get("moves") or []):
            if m.get("change") not in ("points", "relative", "set"):
                problems.append(
                    Problem(
                        "change must be points, relative or set",
                        file=file,
                        column=f"{where}.moves[{j}].change",
                        value=m.get("change"),
                    )
                )
                continue
            if known_set and m.get("indicator") not in known_set:
                problems.append(
                    Problem(
                        "indicator is not in the catalogue",
                        file=file,
                        column=f"{where}.moves[{j}].indicator",
                        value=m.get("indicator"),
                    )
                )
                continue
            moves.append(Move(str(m["indicator"]), str(m["change"]), float(m["by"])))
        cases = tuple(
            Case(
                city=c.get("city"),
                year=c.get("year"),
                cost_mln_kzt=c.get("cost_mln_kzt"),
                effect=str(c.get("effect") or ""),
                source=str(c.get("source") or ("illustrative" if c.get("illustrative") else "")),
                illustrative=bool(c.get("illustrative", False)),
            )
            for c in item.get("cases") or []
        )
        actions[aid] = Action(
            id=aid,
            names=dict(item.get("name") or {}),
            area=str(item.get("area") or ""),
            cost_class=cls,
            cost=classes[cls]["nominal"],
            months=int(item.get("months") or 0),
            depends_on=tuple(item.get("depends_on") or ()),
            moves=tuple(moves),
            evidence=str(item.get("evidence") or ""),
            cases=cases,
        )
    for a in actions.values():
        for d in a.depends_on:
            if d not in actions:
                problems.append(
                    Problem(
                        f"`{a.id}` depends on unknown action",
                        file=file,
                        column="depends_on",
                        value=d,
                    )
                )
    raise_if_problems(problems, "invalid action catalogue")
    for a in actions.values():
        _closure(actions, a.id, ())  # raises on cycles
    return ActionCatalogue(actions, classes)


@lru_cache(maxsize=1)
def load_actions() -> ActionCatalogue:
    """The action catalogue shipped with Qala (indicators checked against the catalogue; cached:
    the file is part of the installed package)."""
    from qala.components.catalog.frameworks import load_catalogue

    text = (resources.files("qala.components.assessment") / "data" / "actions.yaml").read_text(
        encoding="utf-8"
    )
    return parse_actions(text, known=load_catalogue().indicators)


def _closure(actions: Mapping[str, Action], aid: str, path: tuple[str, ...]) -> list[str]:
    """``aid`` and its prerequisites, prerequisites first."""
    if aid in path:
        raise ValidationError.single(
            f"dependency cycle: {' → '.join((*path, aid))}", column="depends_on"
        )
    out: list[str] = []
    for d in actions[aid].depends_on:
        for x in _closure(actions, d, (*path, aid)):
            if x not in out:
                out.append(x)
    out.append(aid)
    return out


# ---------------------------------------------------------------------------------------------
# Gaps


@dataclass(frozen=True)
class Gap:
    indicator: str
    value: float | None
    target: float | None
    target_source: str
    direction: int
    shortfall: float
    """In the indicator's unit, ≥ 0."""
    points: float
    """The shortfall on the 0–100 goalpost scale."""


def gap_analysis(
    values: Mapping[str, float | None],
    *,
    directions: Mapping[str, int],
    spans: Mapping[str, float],
    peer_medians: Mapping[str, float] | None = None,
    norms: Mapping[str, float] | None = None,
    goals: Mapping[str, float] | None = None,
) -> list[Gap]:
    """Gaps of one place, largest (in goalpost points) first."""
    out = []
    for code, direction in directions.items():
        value = values.get(code)
        if value is not None and pd.isna(value):
            value = None
        if goals and code in goals:
            target, source = goals[code], "user goal"
        elif norms and code in norms:
            target, source = norms[code], "national norm"
        elif peer_medians and code in peer_medians and not pd.isna(peer_medians[code]):
            target, source = peer_medians[code], "peer median"
        else:
            target, source = None, "none"
        if value is None or target is None:
            shortfall = 0.0
        else:
            shortfall = max(0.0, (target - value) * direction)
        span = spans.get(code) or 0.0
        points = 100.0 * shortfall / span if span > 0 else 0.0
        out.append(Gap(code, value, target, source, direction, shortfall, min(points, 100.0)))
    return sorted(out, key=lambda g: (-g.points, g.indicator))


# ---------------------------------------------------------------------------------------------
# Roadmap


def _gain(move: Move, value: float | None, direction: int) -> float:
    """How far the move takes the indicator in its good direction (indicator units, ≥ 0)."""
    if move.change == "points":
        delta = move.by
    elif move.change == "relative":
        if value is None:
            return 0.0
        delta = value * move.by / 100.0
    else:  # set
        if value is None:
            return 0.0
        delta = move.by - value
    return max(0.0, delta * direction)


@dataclass
class Step:
    position: int
    action: str
    name: str
    area: str
    cost_class: str
    cost: float
    months: int
    depends_on: list[str]
    impact: float
    """Index points expected (goalpost scale, effective weights)."""
    ratio: float
    """Impact per million KZT of the bundle the action was chosen in."""
    cumulative_cost: float
    start_month: int
    end_month: int
    closes: dict[str, float] = field(default_factory=dict)
    """Indicator → shortfall closed, in the indicator's unit."""


@dataclass
class Roadmap:
    budget: float
    steps: list[Step]
    remaining_gap_points: float
    initial_gap_points: float

    @property
    def spent(self) -> float:
        return sum(s.cost for s in self.steps)

    @property
    def impact(self) -> float:
        return sum(s.impact for s in self.steps)

    def frame(self) -> pd.DataFrame:
        rows = []
        for s in self.steps:
            row = asdict(s)
            row["depends_on"] = ";".join(s.depends_on)
            row["closes"] = ";".join(f"{k}={v:.4g}" for k, v in s.closes.items())
            rows.append(row)
        return pd.DataFrame(rows)

    def to_csv(self) -> str:
        buffer = io.StringIO()
        self.frame().to_csv(buffer, index=False)
        return buffer.getvalue()

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), ensure_ascii=False, indent=2)

    def as_dict(self) -> dict[str, Any]:
        return {
            "budget": self.budget,
            "spent": self.spent,
            "impact": self.impact,
            "initial_gap_points": self.initial_gap_points,
            "remaining_gap_points": self.remaining_gap_points,
            "steps": [asdict(s) for s in self.steps],
        }


def plan_roadmap(
    catalogue: ActionCatalogue,
    gaps: Sequence[Gap],
    *,
    weights: Mapping[str, float],
    spans: Mapping[str, float],
    budget: float,
    done: Iterable[str] = (),
    language: str = "en",
) -> Roadmap:
    """Greedy roadmap by impact per cost under ``budget`` (million KZT), dependencies respected.

    ``done`` names actions the place has already delivered: they count as met prerequisites and
    are not proposed again.
    """
    if budget < 0:
        raise ValidationError.single("budget must not be negative", column="budget", value=budget)
    actions = catalogue.actions
    shortfall = {g.indicator: g.shortfall for g in gaps}
    value = {g.indicator: g.value for g in gaps}
    direction = {g.indicator: g.direction for g in gaps}
    chosen: list[str] = []
    have = set(done)

    def weighted(code: str, amount: float) -> float:
        span = spans.get(code) or 0.0
        return 100.0 * weights.get(code, 0.0) * amount / span if span > 0 else 0.0

    def simulate(
        bundle: Sequence[str], state: dict[str, float]
    ) -> tuple[float, list[dict[str, float]]]:
        state = dict(state)
        total = 0.0
        closes: list[dict[str, float]] = []
        for aid in bundle:
            closed: dict[str, float] = {}
            for m in actions[aid].moves:
                if m.indicator not in state:
                    continue
                amount = min(
                    _gain(m, value.get(m.indicator), direction[m.indicator]), state[m.indicator]
                )
                if amount > 0:
                    state[m.indicator] -= amount
                    closed[m.indicator] = closed.get(m.indicator, 0.0) + amount
                    total += weighted(m.indicator, amount)
            closes.append(closed)
        return total, closes

    initial = sum(weighted(k, v) for k, v in shortfall.items())
    left = float(budget)
    steps: list[Step] = []
    finish: dict[str, int] = {a: 0 for a in have}
    while True:
        best: tuple[float, float, str, list[str]] | None = None
        for aid in sorted(actions):
            if aid in have:
                continue
            bundle = [a for a in _closure(actions, aid, ()) if a not in have]
            cost = sum(actions[a].cost for a in bundle)
            if cost > left + 1e-9:
                continue
            impact, _ = simulate(bundle, shortfall)
            if impact <= 1e-12:
                continue
            ratio = impact / cost if cost > 0 else float("inf")
            key = (ratio, -cost, aid, bundle)
            if best is None or (key[0], key[1]) > (best[0], best[1]):
                best = key
        if best is None:
            break
        ratio, _, _, bundle = best
        _, closes = simulate(bundle, shortfall)
        for aid, closed in zip(bundle, closes, strict=True):
            action = actions[aid]
            for code, amount in closed.items():
                shortfall[code] -= amount
            start = max((finish.get(d, 0) for d in action.depends_on), default=0)
            finish[aid] = start + action.months
            left -= action.cost
            have.add(aid)
            chosen.append(aid)
            steps.append(
                Step(
                    position=len(steps) + 1,
                    action=aid,
                    name=action.name(language),
                    area=action.area,
                    cost_class=action.cost_class,
                    cost=action.cost,
                    months=action.months,
                    depends_on=list(action.depends_on),
                    impact=sum(weighted(c, a) for c, a in closed.items()),
                    ratio=ratio,
                    cumulative_cost=budget - left,
                    start_month=start,
                    end_month=finish[aid],
                    closes=closed,
                )
            )
    remaining = sum(weighted(k, v) for k, v in shortfall.items())
    return Roadmap(float(budget), steps, remaining, initial)
