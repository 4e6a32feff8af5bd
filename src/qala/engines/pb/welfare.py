"""Maximum utilitarian welfare: the feasible set of projects with the largest total utility (exact).

This is a 0/1 knapsack: weights are costs, profits are the projects' total utilities. Both are
scaled to integers and solved exactly, by dynamic programming over costs when the budget (divided
by the greatest common divisor of the costs) is small, else by depth-first branch and bound with
the Dantzig bound (the optimum of the fractional relaxation, rounded down), seeded with the greedy
solution. Among several optimal sets the rule returns the first one found; compare welfare, not
sets, when optima tie.
"""

from __future__ import annotations

import math
import sys
from bisect import bisect_right
from collections.abc import Iterable
from fractions import Fraction
from itertools import accumulate

import numpy as np

from qala.core.errors import ConvergenceError
from qala.engines.pb.model import Instance, Profile
from qala.engines.pb.outcome import Explanation, Outcome, finish
from qala.engines.pb.utilities import Scoring, Supports, Utility, build_supports

DP_CELLS = 1_000_000
"""Largest items × (capacity + 1) table solved by dynamic programming."""

MAX_NODES = 20_000_000
"""Branch-and-bound nodes before giving up with :class:`ConvergenceError`."""


def _lcm_of_denominators(values: Iterable[Fraction]) -> int:
    result = 1
    for v in values:
        result = math.lcm(result, v.denominator)
    return result


def knapsack(weights: list[int], profits: list[int], capacity: int) -> list[int]:
    """Indices of an optimal 0/1 knapsack (non-negative integers), exact."""
    n = len(weights)
    if n == 0 or capacity < 0:
        return []
    g = 0
    for w in weights:
        g = math.gcd(g, w)
    g = g or 1
    cap = capacity // g
    w_scaled = [w // g for w in weights]
    if n * (cap + 1) <= DP_CELLS and sum(profits) < 2**62:
        return _knapsack_dp(w_scaled, profits, cap)
    return _knapsack_bnb(w_scaled, profits, cap)


def _knapsack_dp(weights: list[int], profits: list[int], cap: int) -> list[int]:
    best = np.zeros(cap + 1, dtype=np.int64)
    took = np.zeros((len(weights), cap + 1), dtype=bool)
    for k, (w, p) in enumerate(zip(weights, profits, strict=True)):
        if w > cap:
            continue
        if w == 0:
            best += p
            took[k, :] = True
            continue
        candidate = best[:-w] + p
        better = candidate > best[w:]
        took[k, w:] = better
        best[w:] = np.where(better, candidate, best[w:])
    chosen = []
    c = cap
    for k in range(len(weights) - 1, -1, -1):
        if took[k, c]:
            chosen.append(k)
            c -= weights[k]
    return sorted(chosen)


def _knapsack_bnb(weights: list[int], profits: list[int], cap: int) -> list[int]:
    # Free items with profit are always taken; the rest sorted by profit per weight.
    free = [k for k, w in enumerate(weights) if w == 0]
    items = sorted(
        (k for k, w in enumerate(weights) if 0 < w <= cap),
        key=lambda k: (-Fraction(profits[k], weights[k]), k),
    )
    w = [weights[k] for k in items]
    p = [profits[k] for k in items]
    n = len(items)
    prefix_w = [0, *accumulate(w)]
    prefix_p = [0, *accumulate(p)]

    def upper_bound(k: int, room: int, value: int) -> int:
        # Take whole items k.. while they fit, then a fraction of the next one.
        t = bisect_right(prefix_w, prefix_w[k] + room, lo=k) - 1
        value += prefix_p[t] - prefix_p[k]
        room -= prefix_w[t] - prefix_w[k]
        if t < n:
            value += p[t] * room // w[t]
        return value

    # Greedy incumbent.
    best_value, best_set, room = 0, [], cap
    for k in range(n):
        if w[k] <= room:
            room -= w[k]
            best_value += p[k]
            best_set.append(k)
    chosen: list[int] = []
    nodes = 0

    def dfs(k: int, room: int, value: int) -> None:
        nonlocal best_value, best_set, nodes
        nodes += 1
        if nodes > MAX_NODES:
            raise ConvergenceError(
                f"max-welfare branch and bound exceeded {MAX_NODES} nodes; the instance is too hard"
            )
        if value > best_value:
            best_value, best_set = value, list(chosen)
        if k == n or upper_bound(k, room, value) <= best_value:
            return
        if w[k] <= room:
            chosen.append(k)
            dfs(k + 1, room - w[k], value + p[k])
            chosen.pop()
        dfs(k + 1, room, value)

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 4 * n + 100))
    try:
        dfs(0, cap, 0)
    finally:
        sys.setrecursionlimit(limit)
    return sorted(free + [items[k] for k in best_set])


def max_welfare(
    instance: Instance,
    profile: Profile,
    *,
    utility: Utility = "cost",
    scoring: Scoring = "pabulib",
    initial: Iterable[str] = (),
    supports: Supports | None = None,
) -> Outcome:
    """Feasible set of projects maximising the sum of voters' utilities (exact).

    Parameters
    ----------
    instance, profile
        The election.
    utility
        ``"cost"`` (welfare = sum over voters of the money spent on projects they support) or
        ``"cardinality"`` (number of supported projects funded, summed over voters).
    scoring
        Positional scores of ordinal ballots.
    initial
        Projects already funded.
    supports
        Precomputed utilities.
    """
    supports = supports or build_supports(instance, profile, utility=utility, scoring=scoring)
    chosen = [instance.index(pid) for pid in initial]
    room = instance.budget_limit - instance.total_cost(initial)
    pool = [
        j
        for j, p in enumerate(instance.projects)
        if j not in chosen and supports.total[j] > 0 and p.cost <= room
    ]
    cost_scale = _lcm_of_denominators([instance.projects[j].cost for j in pool] + [room])
    profit_scale = _lcm_of_denominators([supports.total[j] for j in pool])
    weights = [int(instance.projects[j].cost * cost_scale) for j in pool]
    profits = [int(supports.total[j] * profit_scale) for j in pool]
    picked = [pool[k] for k in knapsack(weights, profits, int(room * cost_scale))]
    selected = chosen + picked
    total = sum((supports.total[j] for j in picked), Fraction(0))
    explanations: dict[str, Explanation] = {}
    for j, p in enumerate(instance.projects):
        if j in chosen:
            explanations[p.id] = Explanation(p.id, True, "funded before the rule ran")
        elif j in picked:
            explanations[p.id] = Explanation(
                p.id,
                True,
                f"part of the feasible set with the largest total utility ({float(total):.6g})",
                None,
                {"utility": float(supports.total[j])},
            )
        elif supports.total[j] <= 0:
            explanations[p.id] = Explanation(p.id, False, "no voter has positive utility for it")
        elif p.cost > room:
            explanations[p.id] = Explanation(
                p.id, False, f"could not afford: costs {float(p.cost):.2f}, more than the budget"
            )
        else:
            explanations[p.id] = Explanation(
                p.id,
                False,
                "not in the best feasible set: any set with it has less total utility than "
                f"{float(total):.6g}",
                None,
                {"utility": float(supports.total[j])},
            )
    return finish(
        instance, f"max-welfare[{utility}]", selected, [], explanations, {"welfare": total}
    )
