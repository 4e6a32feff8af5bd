"""Utilitarian greedy: take projects by total utility per unit of cost while they fit.

With cost utilities (the default) a project's utility per unit of cost is its number of votes (or
points, or positional score), so this is the "greedy by votes" rule most cities use: fund the most
voted project, then the next one that still fits, and so on, skipping those that no longer fit.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from fractions import Fraction

from qala.engines.pb.model import Instance, Profile
from qala.engines.pb.outcome import Explanation, Outcome, Round, TieBreaking, finish, tie_ranks
from qala.engines.pb.utilities import Scoring, Supports, Utility, build_supports


def greedy_order(instance: Instance, supports: Supports, ranks: Iterable[int]) -> list[int]:
    """Projects by decreasing utility per unit of cost, ties by ``ranks`` (pabutools' order).

    A free project with support comes first; an unsupported project has density 0.
    """
    rank_list = list(ranks)

    def density(j: int) -> float | Fraction:
        total = supports.total[j]
        cost = instance.projects[j].cost
        if total > 0:
            return math.inf if cost == 0 else total / cost
        return Fraction(0)

    return sorted(range(len(instance)), key=lambda j: (-density(j), rank_list[j]))


def greedy_completion(
    instance: Instance,
    supports: Supports,
    chosen: list[int],
    ranks: Iterable[int],
    *,
    first_round: int = 1,
) -> tuple[list[int], list[Round], dict[str, Explanation]]:
    """Add projects greedily (see :func:`greedy_order`) to ``chosen`` while they fit."""
    selected = list(chosen)
    taken = set(selected)
    left = instance.budget_limit - sum((instance.projects[j].cost for j in selected), Fraction(0))
    rounds: list[Round] = []
    explanations: dict[str, Explanation] = {}
    number = first_round
    for j in greedy_order(instance, supports, ranks):
        if j in taken:
            continue
        p = instance.projects[j]
        score = float(supports.total[j] / p.cost) if p.cost > 0 else math.inf
        if p.cost <= left:
            left -= p.cost
            selected.append(j)
            taken.add(j)
            rounds.append(Round(number, p.id, score, float(left)))
            explanations[p.id] = Explanation(
                p.id,
                True,
                f"selected in round {number}: utility per unit of cost {score:.6g}; "
                f"{float(left):.2f} left after it",
                number,
                {"score": score, "budget_left": float(left)},
            )
            number += 1
        else:
            explanations[p.id] = Explanation(
                p.id,
                False,
                f"could not afford: costs {float(p.cost):.2f} but only {float(left):.2f} was left "
                f"when its turn came (utility per unit of cost {score:.6g})",
                None,
                {"score": score, "budget_left": float(left), "cost": float(p.cost)},
            )
    return selected, rounds, explanations


def greedy(
    instance: Instance,
    profile: Profile,
    *,
    utility: Utility = "cost",
    scoring: Scoring = "pabulib",
    tie_breaking: TieBreaking = "lexicographic",
    initial: Iterable[str] = (),
    supports: Supports | None = None,
) -> Outcome:
    """Utilitarian greedy rule ("greedy by votes" with cost utilities).

    Parameters
    ----------
    instance, profile
        The election.
    utility
        ``"cost"``: order by total score (votes, points); ``"cardinality"``: by score per unit of
        cost.
    scoring
        Positional scores of ordinal ballots (see :mod:`qala.engines.pb.utilities`).
    tie_breaking
        Order among equally good projects (default: smallest id, as pabutools).
    initial
        Projects already funded (the rule completes them).
    supports
        Precomputed utilities (to reuse across rules).

    Returns
    -------
    Outcome
        Selected projects in the order taken, with why each other project was skipped.
    """
    supports = supports or build_supports(instance, profile, utility=utility, scoring=scoring)
    chosen = [instance.index(pid) for pid in initial]
    selected, rounds, explanations = greedy_completion(
        instance, supports, chosen, tie_ranks(instance, tie_breaking)
    )
    for j in chosen:
        pid = instance.projects[j].id
        explanations[pid] = Explanation(pid, True, "funded before the rule ran")
    return finish(instance, f"greedy[{utility}]", selected, rounds, explanations)
