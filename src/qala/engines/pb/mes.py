"""Method of Equal Shares (Peters & Skowron 2020; Peters, Pierczyński & Skowron 2021).

Every voter receives an equal share ``b = B / n`` of the budget. In each round, a project ``p``
costing ``c`` is *affordable* if its supporters together still hold at least ``c``; its price
factor ``rho`` is the smallest number such that supporters paying ``min(budget_i, rho * u_i(p))``
cover ``c`` (``u_i(p)`` is voter ``i``'s utility). The affordable project with the smallest
``rho`` is funded (ties broken by the tie-breaking order), its supporters pay, and the rule goes on
until no project is affordable. With cost utilities ``1 / rho`` is the project's *effective vote
count* shown by equalshares.net.

MES usually leaves money unspent, so cities complete it:

- ``"greedy"``: add projects by utilitarian greedy while they fit;
- ``"add1"``: rerun MES with every voter's share raised by 1 currency unit as long as the
  outcome still fits the real budget, and keep the last outcome that fits (equalshares.net's Add1,
  as in the official results of Wieliczka 2023);
- ``"add1-exhaustive"``: the same, but stop at the first outcome to which no further supported
  project can be added within the budget (pabutools' ``voter_budget_increment=1``;
  equalshares.net's "add1e");
- ``"add1-greedy"``, ``"add1-exhaustive-greedy"``: Add1 then greedy.

Arithmetic: ``arithmetic="float"`` (default) runs on numpy vectors. Equal float prices count as
tied (broken by the tie-breaking order; a price is one division of exact numbers when nobody is
poor, so equal exact prices give equal floats). When two different float prices agree to 1e-9, or
a project's money is within 1e-9 of its cost, floats cannot decide and that MES run is redone with
:class:`fractions.Fraction` (``details["exact_reruns"]`` counts them; none happen on the pabulib
files we test). ``arithmetic="exact"`` always uses fractions (slow; a reference).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Literal

import numpy as np

from qala.core.errors import SpecificationError
from qala.engines.pb.greedy import greedy_completion
from qala.engines.pb.model import Instance, Profile
from qala.engines.pb.outcome import Explanation, Outcome, Round, TieBreaking, finish, tie_ranks
from qala.engines.pb.utilities import Scoring, Supports, Utility, build_supports

Completion = Literal[
    "none", "greedy", "add1", "add1-exhaustive", "add1-greedy", "add1-exhaustive-greedy"
]
COMPLETIONS: tuple[str, ...] = (
    "none",
    "greedy",
    "add1",
    "add1-exhaustive",
    "add1-greedy",
    "add1-exhaustive-greedy",
)
Comparison = Literal["none", "satisfaction", "exclusion"]
Arithmetic = Literal["float", "exact"]

TOL = 1e-9
"""Relative tolerance under which two float prices (or money and a cost) count as equal."""

_add = np.add.reduce  # the ufunc directly: np.sum's Python wrapper dominates on short rows


@dataclass
class _Prepared:
    """Per-election arrays shared by every run of one call (Add1 reruns MES many times)."""

    costs: np.ndarray
    row_voters: list[np.ndarray]
    row_utils: list[np.ndarray]
    uniform: list[float | None]
    initial_lower: np.ndarray

    @classmethod
    def of(cls, instance: Instance, supports: Supports) -> _Prepared:
        m = len(instance)
        costs = np.array([float(p.cost) for p in instance.projects])
        ptr = supports.ptr.tolist()
        row_voters = [supports.voters[ptr[j] : ptr[j + 1]] for j in range(m)]
        row_utils = [supports.utility[ptr[j] : ptr[j + 1]] for j in range(m)]
        uniform = [float(u[0]) if u.size and bool((u == u[0]).all()) else None for u in row_utils]
        total = np.array([float(t) for t in supports.total])
        with np.errstate(divide="ignore"):
            initial_lower = np.where(total > 0, costs / np.where(total > 0, total, 1.0), np.inf)
        return cls(costs, row_voters, row_utils, uniform, initial_lower)


class _Ambiguous(Exception):
    """Floats cannot decide a comparison (two prices, or money and a cost, agree to 1e-9)."""


@dataclass
class _Run:
    """One fixed-budget MES run: chosen projects and what happened to the others."""

    selected: list[int]
    rho: list[float] = field(default_factory=list)
    full_payers: list[int] = field(default_factory=list)
    exhausted: list[int] = field(default_factory=list)
    money_left: list[float] = field(default_factory=list)
    dropped: dict[int, tuple[int, float]] = field(default_factory=dict)  # j -> (round, money)
    paid: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)  # (voters, amounts)
    end_budgets: np.ndarray | None = None


def _price(budgets: np.ndarray, utils: np.ndarray, cost: float, start: float = 0.0) -> float:
    """Smallest ``rho`` with ``sum(min(budget, rho * u)) >= cost`` (supporters can afford it).

    Iterates on the set ``P`` of "poor" supporters (who cannot pay ``rho * u`` and give all they
    have): ``rho = (cost - budgets in P) / (utility outside P)``, then ``P`` is recomputed, until
    it no longer grows. Started from any lower bound (``start``: the project's price in an earlier
    round, budgets only fall), every step stays below the answer and rises, so a close start saves
    steps; each step is a few vectorised passes, no sort.
    """
    rho = max(cost / float(utils.sum()), start)
    poor = budgets < rho * utils
    n_poor = int(np.count_nonzero(poor))
    while True:
        if n_poor == budgets.size:  # money behind the project equals its cost up to rounding
            return float((budgets / utils).max())
        rho = (cost - float(_add(budgets, where=poor))) / float(_add(utils, where=~poor))
        poor = budgets < rho * utils
        now = int(np.count_nonzero(poor))
        if now == n_poor:
            return rho
        n_poor = now


def _price_uniform(budgets: np.ndarray, utility: float, cost: float, start: float = 0.0) -> float:
    """:func:`_price` when every supporter has the same utility (approval ballots).

    Then each rich supporter pays the same amount ``pi = rho * utility`` and the poor pay all they
    have, so ``pi`` solves ``sum(min(budget, pi)) = cost`` ("water filling").
    """
    k = budgets.size
    pi = max(cost / k, start * utility)
    poor = budgets < pi
    n_poor = int(np.count_nonzero(poor))
    while True:
        if n_poor == k:
            return float(budgets.max()) / utility
        poor_money = float(_add(budgets, where=poor))
        pi = (cost - poor_money) / (k - n_poor)
        poor = budgets < pi
        now = int(np.count_nonzero(poor))
        if now == n_poor:
            # One division (not pi / utility): equal exact prices then give equal floats, e.g.
            # 1/24 for every project with 24 untouched supporters under cost utilities.
            return (cost - poor_money) / ((k - n_poor) * utility)
        n_poor = now


def _mes_float(
    prepared: _Prepared,
    n_voters: int,
    per_voter: float,
    candidates: list[int],
    ranks: np.ndarray,
    *,
    record: bool,
) -> _Run:
    costs = prepared.costs
    row_voters = prepared.row_voters
    row_utils = prepared.row_utils
    uniform = prepared.uniform
    budgets = np.full(n_voters, per_voter, dtype=np.float64)
    lower = prepared.initial_lower.copy()  # rho never decreases: always a lower bound
    alive = np.array(candidates, dtype=np.int64)
    rank_list = ranks.tolist()
    run = _Run(selected=[])
    round_number = 0
    while alive.size:
        round_number += 1
        order = alive[np.lexsort((ranks[alive], lower[alive]))].tolist()
        best = math.inf
        tied: list[int] = []
        dropped: list[int] = []
        for j in order:
            if lower[j] > best * (1 + TOL):
                break
            b = budgets[row_voters[j]]
            money = float(_add(b))
            cost = float(costs[j])
            if abs(money - cost) <= cost * TOL:
                raise _Ambiguous  # affordable only if the exact sum reaches the cost
            if money < cost:
                dropped.append(j)
                if record:
                    run.dropped[j] = (round_number, money)
                continue
            same = uniform[j]
            start = float(lower[j])
            if same is None:
                rho = _price(b, row_utils[j], cost, start)
            else:
                rho = _price_uniform(b, same, cost, start)
            lower[j] = rho
            if rho < best * (1 - TOL):
                best = rho
                tied = [j]
            elif rho <= best * (1 + TOL):
                tied.append(j)
        if dropped:
            keep = [j for j in alive.tolist() if j not in dropped]
            alive = np.array(keep, dtype=np.int64)
        if not tied:
            break
        low = min(float(lower[j]) for j in tied)
        near = [j for j in tied if lower[j] <= low * (1 + TOL)]
        if len({float(lower[j]) for j in near}) > 1:
            raise _Ambiguous  # a near tie: only exact arithmetic can order these prices
        winner = min(near, key=rank_list.__getitem__)
        rho = float(lower[winner])
        idx = row_voters[winner]
        b = budgets[idx]
        share = rho * row_utils[winner]
        after = np.where(b > share, b - share, 0.0)
        budgets[idx] = after
        alive = alive[alive != winner]
        run.selected.append(winner)
        if record:
            run.paid.append((idx, b - after))
            run.rho.append(rho)
            full = int(np.count_nonzero(b > share * (1 - TOL)))
            run.full_payers.append(full)
            run.exhausted.append(len(b) - full)
            run.money_left.append(float(budgets.sum()))
    if record:
        run.end_budgets = budgets
    return run


def _mes_exact(
    instance: Instance,
    supports: Supports,
    per_voter: Fraction,
    candidates: list[int],
    ranks: np.ndarray,
    *,
    record: bool,
) -> _Run:
    budgets = [per_voter] * supports.n_voters
    rows = [supports.row(j) for j in range(len(instance))]
    voters = supports.voters.tolist()
    exact = supports.exact
    costs = [p.cost for p in instance.projects]
    alive = list(candidates)
    run = _Run(selected=[])
    round_number = 0
    while alive:
        round_number += 1
        best: Fraction | None = None
        tied: list[int] = []
        for j in list(alive):
            sl = rows[j]
            entries = list(zip(voters[sl], exact[sl], strict=True))
            money = sum((budgets[v] for v, _ in entries), Fraction(0))
            if money < costs[j]:
                alive.remove(j)
                if record:
                    run.dropped[j] = (round_number, float(money))
                continue
            entries.sort(key=lambda e: budgets[e[0]] / e[1])
            paid = Fraction(0)
            weight = sum((u for _, u in entries), Fraction(0))
            rho = Fraction(0)
            for v, u in entries:
                rho = (costs[j] - paid) / weight
                if rho * u <= budgets[v]:
                    break
                paid += budgets[v]
                weight -= u
            if best is None or rho < best:
                best, tied = rho, [j]
            elif rho == best:
                tied.append(j)
        if best is None:
            break
        winner = min(tied, key=lambda j: ranks[j])
        full = 0
        payers: list[int] = []
        amounts: list[float] = []
        for v, u in zip(voters[rows[winner]], exact[rows[winner]], strict=True):
            share = best * u
            paid = share if budgets[v] > share else budgets[v]
            full += budgets[v] >= share  # paying exactly one's share is paying in full
            if budgets[v] > share:
                budgets[v] -= share
            else:
                budgets[v] = Fraction(0)
            payers.append(v)
            amounts.append(float(paid))
        if record:
            run.paid.append((np.array(payers, dtype=np.int64), np.array(amounts)))
        alive.remove(winner)
        run.selected.append(winner)
        if record:
            run.rho.append(float(best))
            run.full_payers.append(full)
            run.exhausted.append(supports.count(winner) - full)
            run.money_left.append(float(sum(budgets, Fraction(0))))
    if record:
        run.end_budgets = np.array([float(b) for b in budgets])
    return run


def _supported(
    instance: Instance, supports: Supports, initial: set[int]
) -> tuple[list[int], list[int]]:
    """(projects MES can buy, free supported projects taken up front), as pabutools."""
    candidates: list[int] = []
    free: list[int] = []
    for j, p in enumerate(instance.projects):
        if j in initial or supports.total[j] <= 0:
            continue
        if p.cost > 0:
            candidates.append(j)
        else:
            free.append(j)
    return candidates, free


def method_of_equal_shares(
    instance: Instance,
    profile: Profile,
    *,
    utility: Utility = "cost",
    scoring: Scoring = "pabulib",
    completion: Completion = "none",
    comparison: Comparison = "none",
    tie_breaking: TieBreaking = "lexicographic",
    arithmetic: Arithmetic = "float",
    initial: Iterable[str] = (),
    increment: Fraction | int = 1,
    supports: Supports | None = None,
) -> Outcome:
    """Method of Equal Shares with an optional completion.

    Parameters
    ----------
    instance, profile
        The election.
    utility
        ``"cost"`` (default, as pabulib/equalshares.net for approval ballots) or
        ``"cardinality"``.
    scoring
        Positional scores of ordinal ballots (see :mod:`qala.engines.pb.utilities`).
    completion
        ``"none"``, ``"greedy"``, ``"add1"``, ``"add1-exhaustive"``, ``"add1-greedy"`` or
        ``"add1-exhaustive-greedy"`` (see the module documentation).
    comparison
        equalshares.net's final comparison with greedy-by-votes: ``"satisfaction"`` (voters who
        approve more winners of one outcome prefer it) or ``"exclusion"`` (voters who approve a
        winner of only one outcome prefer it); if more voters prefer greedy, greedy wins.
    tie_breaking
        Order among equally priced projects (default: smallest id, as pabutools).
    arithmetic
        ``"float"`` (fast) or ``"exact"`` (fractions).
    initial
        Projects already funded.
    increment
        Add1's raise of each voter's share per step (1 currency unit).
    supports
        Precomputed utilities.

    Returns
    -------
    Outcome
        Selected projects in the order bought, with rounds (``value`` = rho) and explanations.
    """
    if completion not in COMPLETIONS:
        raise SpecificationError(f"`completion` must be one of {COMPLETIONS}, got {completion!r}")
    if comparison not in ("none", "satisfaction", "exclusion"):
        raise SpecificationError(
            f"`comparison` must be 'none', 'satisfaction' or 'exclusion', got {comparison!r}"
        )
    if arithmetic not in ("float", "exact"):
        raise SpecificationError(f"`arithmetic` must be 'float' or 'exact', got {arithmetic!r}")
    supports = supports or build_supports(instance, profile, utility=utility, scoring=scoring)
    ranks = tie_ranks(instance, tie_breaking)
    initial_idx = [instance.index(pid) for pid in initial]
    candidates, free = _supported(instance, supports, set(initial_idx))
    base = initial_idx + free
    n = supports.n_voters
    spent_before = sum((instance.projects[j].cost for j in base), Fraction(0))

    prepared = _Prepared.of(instance, supports) if arithmetic == "float" else None

    fallbacks = 0

    def run_at(per_voter: Fraction, record: bool) -> _Run:
        nonlocal fallbacks
        if prepared is not None:
            try:
                return _mes_float(prepared, n, float(per_voter), candidates, ranks, record=record)
            except _Ambiguous:
                fallbacks += 1
        return _mes_exact(instance, supports, per_voter, candidates, ranks, record=record)

    def cost_of(run: _Run) -> Fraction:
        return spent_before + sum((instance.projects[j].cost for j in run.selected), Fraction(0))

    rule = f"mes[{utility}]"
    details: dict[str, object] = {}
    per_voter = instance.budget_limit / n if n else Fraction(0)
    add1 = completion.startswith("add1")
    if n == 0:  # nobody voted: MES buys nothing (a completion may still add projects)
        run = _Run(selected=[], end_budgets=np.zeros(0))
    elif not add1:
        run = run_at(per_voter, True)
    else:
        stop_when_exhaustive = completion.startswith("add1-exhaustive")
        step = Fraction(increment)
        everything = set(candidates)
        kept: Fraction | None = None  # share whose outcome is returned
        steps = 0
        while True:
            run = run_at(per_voter, False)
            steps += 1
            if cost_of(run) > instance.budget_limit:
                break  # keep the previous share's outcome (none if even B/n overspends)
            kept = per_voter
            chosen = set(run.selected)
            if stop_when_exhaustive:
                left = instance.budget_limit - cost_of(run)
                if all(j in chosen or instance.projects[j].cost > left for j in candidates):
                    break
            elif chosen == everything:
                break  # every supported project is funded: raising shares changes nothing
            per_voter += step
        if kept is None:  # cannot happen for MES, which never overspends B
            run, per_voter = _Run(selected=[], end_budgets=np.zeros(n)), instance.budget_limit / n
        else:
            per_voter = kept
            run = run_at(per_voter, True)
        details.update({"add1_steps": steps, "budget_per_voter": per_voter})
        rule += "+" + ("add1-exhaustive" if stop_when_exhaustive else "add1")
    selected = base + run.selected
    voter_ids = [b.voter_id for b in profile.ballots]
    rounds, explanations = _explain_mes(instance, supports, run, base, voter_ids)
    details.setdefault("budget_per_voter", per_voter)
    if fallbacks:
        details["exact_reruns"] = fallbacks
    if completion in ("greedy", "add1-greedy", "add1-exhaustive-greedy"):
        selected, more_rounds, more = greedy_completion(
            instance, supports, selected, ranks, first_round=len(rounds) + 1
        )
        for r in more_rounds:
            r.note = "greedy completion"
        rounds += more_rounds
        for pid, e in more.items():
            if e.selected:
                e.reason = "added by the greedy completion: " + e.reason
                explanations[pid] = e
            else:
                explanations[pid].reason += "; greedy completion: " + e.reason
        rule += "+greedy"
    if comparison != "none":
        selected, rule = _compare_with_greedy(
            instance, profile, supports, selected, ranks, comparison, rule, details, explanations
        )
    return finish(instance, rule, selected, rounds, explanations, details)


def _explain_mes(
    instance: Instance, supports: Supports, run: _Run, base: list[int], voter_ids: list[str]
) -> tuple[list[Round], dict[str, Explanation]]:
    rounds: list[Round] = []
    explanations: dict[str, Explanation] = {}
    for j in base:
        pid = instance.projects[j].id
        explanations[pid] = Explanation(pid, True, "funded before the rule ran (or free)")
    for k, j in enumerate(run.selected):
        p = instance.projects[j]
        rho = run.rho[k]
        evc = 1.0 / rho if rho > 0 else math.inf
        rounds.append(Round(k + 1, p.id, rho, run.money_left[k]))
        explanations[p.id] = Explanation(
            p.id,
            True,
            f"selected in round {k + 1}: price factor rho={rho:.6g} (effective vote count "
            f"{evc:.6g}); {run.full_payers[k]} supporters paid their full share and "
            f"{run.exhausted[k]} paid all they had left; voters kept {run.money_left[k]:.2f}",
            k + 1,
            {
                "rho": rho,
                "effective_vote_count": evc,
                "full_payers": run.full_payers[k],
                "exhausted_payers": run.exhausted[k],
                "money_left": run.money_left[k],
            },
            {
                voter_ids[v]: amount
                for v, amount in zip(run.paid[k][0].tolist(), run.paid[k][1].tolist(), strict=True)
                if amount > 0
            },
        )
    budgets = run.end_budgets
    for j, p in enumerate(instance.projects):
        if p.id in explanations:
            continue
        if supports.total[j] <= 0:
            explanations[p.id] = Explanation(p.id, False, "no voter has positive utility for it")
            continue
        if j in run.dropped:
            rnd, money = run.dropped[j]
            explanations[p.id] = Explanation(
                p.id,
                False,
                f"could not afford: from round {rnd} its {supports.count(j)} supporters held "
                f"{money:.2f} together, less than its cost {float(p.cost):.2f}",
                rnd,
                {"money_behind": money, "cost": float(p.cost)},
            )
            continue
        money = float(budgets[supports.supporters(j)].sum()) if budgets is not None else math.nan
        explanations[p.id] = Explanation(
            p.id,
            False,
            f"could not afford: at the end its supporters held {money:.2f}, less than its cost "
            f"{float(p.cost):.2f}",
            None,
            {"money_behind": money, "cost": float(p.cost)},
        )
    return rounds, explanations


def _compare_with_greedy(
    instance: Instance,
    profile: Profile,
    supports: Supports,
    selected: list[int],
    ranks: np.ndarray,
    comparison: Comparison,
    rule: str,
    details: dict[str, object],
    explanations: dict[str, Explanation],
) -> tuple[list[int], str]:
    """equalshares.net's comparison step against greedy by votes (approval counts)."""
    greedy_sel, _, _ = greedy_completion(instance, supports, [], ranks)
    mes_set = {instance.projects[j].id for j in selected}
    greedy_set = {instance.projects[j].id for j in greedy_sel}
    prefers_mes = prefers_greedy = 0
    for ballot in profile:
        named = set(ballot.projects)
        a, b = len(named & mes_set), len(named & greedy_set)
        if comparison == "exclusion":
            a, b = int(a > 0), int(b > 0)
        prefers_mes += a > b
        prefers_greedy += b > a
    details.update({"prefers_mes": prefers_mes, "prefers_greedy": prefers_greedy})
    rule += f"+comparison[{comparison}]"
    if prefers_greedy > prefers_mes:
        for pid, e in explanations.items():
            e.selected = pid in greedy_set
            e.reason = (
                f"greedy outcome used: {prefers_greedy} voters prefer it to MES's "
                f"({prefers_mes}); " + e.reason
            )
        return greedy_sel, rule
    return selected, rule


__all__ = ["COMPLETIONS", "method_of_equal_shares"]
