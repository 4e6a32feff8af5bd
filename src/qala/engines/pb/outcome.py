"""What a rule returns: the selected projects, their cost, and an explanation for every project."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from qala.core.errors import SpecificationError
from qala.engines.pb.model import Instance

TieBreaking = str | Sequence[str]
"""``"lexicographic"`` (default: smallest project id as a string, as pabutools),
``"min-cost"``, ``"max-cost"``, or an explicit list of project ids, best first (ids not listed
come after, lexicographically)."""


def tie_ranks(instance: Instance, tie_breaking: TieBreaking = "lexicographic") -> np.ndarray:
    """Rank of each project under the tie-breaking (0 wins every tie)."""
    ids = [p.id for p in instance]
    if isinstance(tie_breaking, str):
        if tie_breaking == "lexicographic":
            keys: list[tuple[object, ...]] = [(pid,) for pid in ids]
        elif tie_breaking == "min-cost":
            keys = [(p.cost, p.id) for p in instance]
        elif tie_breaking == "max-cost":
            keys = [(-p.cost, p.id) for p in instance]
        else:
            raise SpecificationError(
                "`tie_breaking` must be 'lexicographic', 'min-cost', 'max-cost' or a list of "
                f"project ids, got {tie_breaking!r}"
            )
    else:
        order = {pid: k for k, pid in enumerate(tie_breaking)}
        unknown = [pid for pid in order if pid not in instance]
        if unknown:
            raise SpecificationError(f"`tie_breaking` names unknown projects: {unknown}")
        keys = [(order.get(pid, len(order)), pid) for pid in ids]
    ranking = sorted(range(len(ids)), key=lambda j: keys[j])
    ranks = np.empty(len(ids), dtype=np.int64)
    ranks[ranking] = np.arange(len(ids))
    return ranks


@dataclass
class Round:
    """One step of a sequential rule.

    ``value`` is the rule's criterion for the chosen project: its score (greedy), its price factor
    rho (MES: money each supporter pays per unit of utility) or the voters' new maximal load
    (Phragmén).
    """

    number: int
    project_id: str
    value: float
    budget_left: float
    note: str = ""


@dataclass
class Explanation:
    """Why a project was or was not selected.

    ``payments`` (MES) maps each voter id who paid for the project to the amount paid.
    """

    project_id: str
    selected: bool
    reason: str
    round: int | None = None
    numbers: dict[str, float] = field(default_factory=dict)
    payments: dict[str, float] = field(default_factory=dict)

    def as_dict(self, *, payments: bool = False) -> dict[str, object]:
        result: dict[str, object] = {
            "project_id": self.project_id,
            "selected": self.selected,
            "round": self.round,
            "reason": self.reason,
            "numbers": self.numbers,
        }
        if payments:
            result["payments"] = self.payments
        return result


@dataclass
class Outcome:
    """A budget allocation with its explanation.

    Attributes
    ----------
    rule
        The rule and options that produced it, e.g. ``"mes[cost]+add1"``.
    selected
        Project ids in the order they were chosen.
    cost
        Exact total cost.
    budget_limit
        Money that was available.
    rounds
        Steps of the rule, in order (empty for max-welfare).
    explanations
        One per project of the instance, by id.
    details
        Rule-specific facts, e.g. the final budget per voter of Add1.
    """

    rule: str
    selected: list[str]
    cost: Fraction
    budget_limit: Fraction
    rounds: list[Round] = field(default_factory=list)
    explanations: dict[str, Explanation] = field(default_factory=dict)
    details: dict[str, object] = field(default_factory=dict)

    def __contains__(self, project_id: object) -> bool:
        return project_id in self.selected

    @property
    def selected_set(self) -> frozenset[str]:
        return frozenset(self.selected)

    def as_dict(self, *, explain: bool = False, payments: bool = False) -> dict[str, object]:
        """JSON-ready form: ``{"selected": [...], "cost": N}`` plus explanations when asked.

        ``payments`` adds, per MES project, what each paying voter paid (large on big elections).
        """
        result: dict[str, object] = {
            "selected": list(self.selected),
            "cost": _json_number(self.cost),
        }
        if explain:
            result["rule"] = self.rule
            result["budget_limit"] = _json_number(self.budget_limit)
            result["rounds"] = [r.__dict__ for r in self.rounds]
            result["explanations"] = [
                e.as_dict(payments=payments) for e in self.explanations.values()
            ]
            result["details"] = {k: _json_value(v) for k, v in self.details.items()}
        return result


def _json_number(value: Fraction) -> int | float:
    return value.numerator if value.denominator == 1 else float(value)


def _json_value(value: object) -> object:
    if isinstance(value, Fraction):
        return _json_number(value)
    if isinstance(value, list | tuple):
        return [_json_value(v) for v in value]
    return value


def finish(
    instance: Instance,
    rule: str,
    selected: list[int],
    rounds: list[Round],
    explanations: dict[str, Explanation],
    details: dict[str, object] | None = None,
) -> Outcome:
    """Assemble an :class:`Outcome` from project positions, filling missing explanations."""
    ids = [instance.projects[j].id for j in selected]
    for p in instance:
        if p.id not in explanations:
            chosen = p.id in ids
            explanations[p.id] = Explanation(p.id, chosen, "selected" if chosen else "not selected")
    ordered = {p.id: explanations[p.id] for p in instance}
    return Outcome(
        rule=rule,
        selected=ids,
        cost=instance.total_cost(ids),
        budget_limit=instance.budget_limit,
        rounds=rounds,
        explanations=ordered,
        details=details or {},
    )
