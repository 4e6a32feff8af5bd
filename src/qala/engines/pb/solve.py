"""Run a rule by name, and find the rule a pabulib file says was used officially."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from qala.core.errors import SpecificationError
from qala.engines.pb.greedy import greedy
from qala.engines.pb.mes import COMPLETIONS, Comparison, Completion, method_of_equal_shares
from qala.engines.pb.model import Instance, Profile
from qala.engines.pb.outcome import Outcome, TieBreaking
from qala.engines.pb.phragmen import sequential_phragmen
from qala.engines.pb.utilities import Scoring, Utility
from qala.engines.pb.welfare import max_welfare

RULES: tuple[str, ...] = ("greedy", "mes", "phragmen", "max-welfare")


@dataclass(frozen=True)
class RuleSpec:
    """A rule with its options, e.g. ``RuleSpec("mes", completion="add1")``."""

    rule: str
    completion: Completion = "none"
    comparison: Comparison = "none"
    utility: Utility = "cost"


def solve(
    instance: Instance,
    profile: Profile,
    rule: str,
    *,
    completion: Completion = "none",
    comparison: Comparison = "none",
    utility: Utility = "cost",
    scoring: Scoring = "pabulib",
    tie_breaking: TieBreaking = "lexicographic",
    increment: Fraction | int = 1,
) -> Outcome:
    """Run ``rule`` (one of :data:`RULES`) with its options.

    ``completion``, ``comparison`` and ``increment`` (Add1's raise of each voter's share per
    step, in currency units; larger steps finish sooner on budgets with few voters) apply to
    ``mes`` only.
    """
    if rule not in RULES:
        raise SpecificationError(f"unknown rule {rule!r}; expected one of {', '.join(RULES)}")
    if rule != "mes" and (completion != "none" or comparison != "none" or increment != 1):
        raise SpecificationError(
            f"`completion`, `comparison` and `increment` apply to mes only, not {rule}"
        )
    if increment <= 0:
        raise SpecificationError(f"`increment` must be positive (got {increment})")
    if rule == "greedy":
        return greedy(
            instance, profile, utility=utility, scoring=scoring, tie_breaking=tie_breaking
        )
    if rule == "phragmen":
        return sequential_phragmen(instance, profile, tie_breaking=tie_breaking)
    if rule == "max-welfare":
        return max_welfare(instance, profile, utility=utility, scoring=scoring)
    return method_of_equal_shares(
        instance,
        profile,
        utility=utility,
        scoring=scoring,
        completion=completion,
        comparison=comparison,
        tie_breaking=tie_breaking,
        increment=increment,
    )


def official_rule(meta: dict[str, str]) -> RuleSpec:
    """The rule named by a pabulib file's META ``rule`` field.

    pabulib writes ``greedy`` (greedy by votes/points/score), ``equalshares`` (MES, cost
    utilities), ``equalshares/add1`` (MES with Add1, no greedy afterwards, as in Assen 2024 and
    Świecie 2023) and ``equalshares/add1-comparison`` (Add1 then equalshares.net's comparison with
    greedy by voter satisfaction, as in Wieliczka 2023). equalshares.net's Add1 keeps raising the
    voters' shares while the outcome fits the budget, which is our ``"add1"``.
    """
    raw = meta.get("rule", "").strip().lower()
    if raw in ("greedy", "greedy-no-skip", ""):
        if raw == "greedy-no-skip":
            raise SpecificationError(
                "rule `greedy-no-skip` (stop at the first misfit) is not supported"
            )
        return RuleSpec("greedy")
    if raw in ("equalshares", "mes"):
        return RuleSpec("mes")
    if raw.startswith("equalshares/"):
        option = raw.split("/", 1)[1]
        parts = option.split("-")
        completion = parts[0]
        comparison: Comparison = "satisfaction" if "comparison" in parts[1:] else "none"
        named: dict[str, Completion] = {
            "add1": "add1",
            "add1e": "add1-exhaustive",
            "add1u": "add1-greedy",
            "add1eu": "add1-exhaustive-greedy",
            "utilitarian": "greedy",
            "greedy": "greedy",
        }
        if completion not in named or named[completion] not in COMPLETIONS:
            raise SpecificationError(
                f"META rule {raw!r}: unknown equalshares completion {completion!r}"
            )
        return RuleSpec("mes", completion=named[completion], comparison=comparison)
    raise SpecificationError(
        f"META rule {raw!r} is not one Qala knows (greedy, equalshares, equalshares/add1, "
        "equalshares/add1-comparison)"
    )
