"""Sequential Phragmén for participatory budgeting (Los, Christoff & Grossi 2022; pabutools).

Voters earn virtual money continuously from zero at the same speed. A project is bought as soon
as its supporters together hold its cost, and they spend everything they hold. Equivalently, the
*load* of a voter is what they have paid; buying ``p`` sets the load of every supporter to
``(sum of their loads + cost(p)) / supporters(p)``, and the project minimising that new maximal
load is bought. The rule stops at the first project it would buy that no longer fits the budget
(as pabutools does: it does not skip it to look for a cheaper one). Approval ballots only.

Loads are exact: a voter's load is the load of the last round that charged them, so the rule keeps
one exact :class:`fractions.Fraction` per round and the round number per voter. Floats (a sparse
matrix product per round) shortlist the projects whose new load is within 1e-9 of the smallest,
and exact loads decide among them, so ties are exact and broken by project id.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from fractions import Fraction

import numpy as np
from scipy import sparse

from qala.core.errors import SpecificationError
from qala.engines.pb.model import BallotKind, Instance, Profile
from qala.engines.pb.outcome import Explanation, Outcome, Round, TieBreaking, finish, tie_ranks
from qala.engines.pb.utilities import Supports, build_supports

TOL = 1e-9


def sequential_phragmen(
    instance: Instance,
    profile: Profile,
    *,
    tie_breaking: TieBreaking = "lexicographic",
    initial: Iterable[str] = (),
    supports: Supports | None = None,
) -> Outcome:
    """Sequential Phragmén on approval ballots.

    Parameters
    ----------
    instance, profile
        The election (approval ballots).
    tie_breaking
        Order among projects reaching the same load (default: smallest id, as pabutools).
    initial
        Projects already funded.
    supports
        Precomputed utilities (any utility: only who supports what is used).

    Returns
    -------
    Outcome
        Projects in the order bought; round values are the voters' new maximal load.
    """
    if profile.kind is not BallotKind.APPROVAL:
        raise SpecificationError(
            f"sequential Phragmén needs approval ballots, this profile is {profile.kind.value}"
        )
    supports = supports or build_supports(instance, profile, utility="cardinality")
    ranks = tie_ranks(instance, tie_breaking)
    m, n = len(instance), supports.n_voters
    counts = np.diff(supports.ptr).astype(np.float64)
    matrix = sparse.csr_matrix(
        (np.ones(len(supports.voters)), supports.voters, supports.ptr), shape=(m, n)
    )
    costs = np.array([float(p.cost) for p in instance.projects])
    chosen = [instance.index(pid) for pid in initial]
    spent = instance.total_cost(instance.projects[j].id for j in chosen)
    remaining = [
        j
        for j, p in enumerate(instance.projects)
        if j not in chosen and p.cost <= instance.budget_limit
    ]
    load = np.zeros(n)
    selected = list(chosen)
    rounds: list[Round] = []
    explanations: dict[str, Explanation] = {}
    for j in chosen:
        explanations[instance.projects[j].id] = Explanation(
            instance.projects[j].id, True, "funded before the rule ran"
        )
    # Exact loads, cheaply: a voter's load is the load set in the last round that charged them,
    # so each voter keeps the number of that round and each round keeps its exact load.
    charged_in = np.zeros(n, dtype=np.int64)
    round_loads: list[Fraction] = [Fraction(0)]

    def exact_new_max(j: int) -> Fraction:
        per_round = np.bincount(charged_in[supports.supporters(j)], minlength=len(round_loads))
        total = sum(
            (round_loads[r] * int(c) for r, c in enumerate(per_round.tolist()) if c),
            Fraction(0),
        )
        return (total + instance.projects[j].cost) / supports.count(j)

    stopped_by: str | None = None
    while remaining:
        load_sums = matrix @ load
        idx = np.array(remaining)
        with np.errstate(divide="ignore", invalid="ignore"):
            new_max = np.where(
                counts[idx] > 0, (load_sums[idx] + costs[idx]) / counts[idx], math.inf
            )
        best = float(new_max.min())
        if math.isinf(best):  # only projects nobody approves are left (pabutools: load inf)
            tied = [int(j) for j in idx]
            exact_best: Fraction | None = None
        else:
            # Floats shortlist; exact loads decide among prices that agree to 1e-9.
            near = [int(j) for j in idx[new_max <= best * (1 + TOL)]]
            exact = {j: exact_new_max(j) for j in near}
            exact_best = min(exact.values())
            tied = [j for j in near if exact[j] == exact_best]
        too_dear = [j for j in tied if spent + instance.projects[j].cost > instance.budget_limit]
        if too_dear:
            stopped_by = instance.projects[min(too_dear, key=lambda j: ranks[j])].id
            break
        winner = min(tied, key=lambda j: ranks[j])
        if exact_best is not None:
            round_loads.append(exact_best)
            charged_in[supports.supporters(winner)] = len(round_loads) - 1
            best = float(exact_best)
        spent += instance.projects[winner].cost
        load[supports.supporters(winner)] = best
        remaining.remove(winner)
        selected.append(winner)
        pid = instance.projects[winner].id
        rounds.append(Round(len(rounds) + 1, pid, best, float(instance.budget_limit - spent)))
        explanations[pid] = Explanation(
            pid,
            True,
            f"selected in round {len(rounds)}: its {supports.count(winner)} supporters reached "
            f"its cost at load {best:.6g}; {float(instance.budget_limit - spent):.2f} left",
            len(rounds),
            {"load": best, "budget_left": float(instance.budget_limit - spent)},
        )
    left = float(instance.budget_limit - spent)
    for p in instance.projects:
        if p.id in explanations:
            continue
        if p.cost > instance.budget_limit:
            reason = f"could not afford: costs {float(p.cost):.2f}, more than the whole budget"
        elif stopped_by is not None and p.id == stopped_by:
            reason = (
                f"could not afford: it was next (costs {float(p.cost):.2f}) but only {left:.2f} "
                "was left, so the rule stopped"
            )
        else:
            reason = f"not reached: the rule stopped with {left:.2f} left"
        explanations[p.id] = Explanation(p.id, False, reason, None, {"budget_left": left})
    return finish(instance, "phragmen", selected, rounds, explanations)
