"""pabutools (GPL-3.0) as a test oracle: converts our elections to pabutools objects and runs its rules.

Imported lazily by tests and benchmarks only; never by ``src/``. Every function imports pabutools
inside, so importing this module does not need pabutools.
"""

from __future__ import annotations

import importlib.util
from fractions import Fraction
from typing import Any

from qala.engines.pb.model import BallotKind, Instance, Profile

HAVE_PABUTOOLS = importlib.util.find_spec("pabutools") is not None


def to_pabutools(instance: Instance, profile: Profile) -> tuple[Any, Any]:
    """The same election as pabutools ``Instance`` and profile (one ballot per voter)."""
    from pabutools.election import (
        ApprovalBallot,
        ApprovalProfile,
        CumulativeBallot,
        CumulativeProfile,
        Instance as PInstance,
        OrdinalBallot,
        OrdinalProfile,
        Project as PProject,
    )
    from pabutools.fractions import frac

    projects = {p.id: PProject(p.id, frac(p.cost.numerator, p.cost.denominator)) for p in instance}
    budget = frac(instance.budget_limit.numerator, instance.budget_limit.denominator)
    p_instance = PInstance(projects.values(), budget_limit=budget)
    if profile.kind is BallotKind.APPROVAL:
        p_profile: Any = ApprovalProfile(
            [ApprovalBallot([projects[pid] for pid in b.projects]) for b in profile]
        )
    elif profile.kind is BallotKind.ORDINAL:
        p_profile = OrdinalProfile(
            [OrdinalBallot([projects[pid] for pid in b.projects]) for b in profile]
        )
    else:
        ballots = []
        for b in profile:
            ballot = CumulativeBallot()
            for pid, pts in zip(b.projects, b.points or (), strict=True):
                ballot[projects[pid]] = frac(pts.numerator, pts.denominator)
            ballots.append(ballot)
        p_profile = CumulativeProfile(ballots)
    return p_instance, p_profile


def sat_class(profile: Profile, utility: str, scoring: str) -> Any:
    """A pabutools additive satisfaction class equal to our (utility, scoring) utilities."""
    from pabutools.election.satisfaction import AdditiveSatisfaction

    kind = profile.kind
    top = profile.max_length

    def score(ballot: Any, project: Any) -> Any:
        if kind is BallotKind.APPROVAL:
            return int(project in ballot)
        if kind is BallotKind.ORDINAL:
            if project not in ballot:
                return 0
            position = list(ballot).index(project)
            if scoring == "borda":
                return len(ballot) - position - 1
            return max((top if top is not None else len(ballot)) - position, 0)
        return ballot.get(project, 0)

    def func(instance: Any, prof: Any, ballot: Any, project: Any, precomputed: Any) -> Any:
        s = score(ballot, project)
        return s * project.cost if utility == "cost" else s

    class Sat(AdditiveSatisfaction):  # type: ignore[misc]
        def __init__(self, instance: Any, prof: Any, ballot: Any) -> None:
            AdditiveSatisfaction.__init__(self, instance, prof, ballot, func)

    return Sat


def oracle(
    rule: str,
    instance: Instance,
    profile: Profile,
    *,
    utility: str = "cost",
    scoring: str = "pabulib",
    completion: str = "none",
) -> list[str]:
    """Sorted ids selected by pabutools for our rule name and options."""
    from pabutools.rules import (
        completion_by_rule_combination,
        exhaustion_by_budget_increase,
        greedy_utilitarian_welfare,
        max_additive_utilitarian_welfare,
        method_of_equal_shares,
        sequential_phragmen,
    )

    p_instance, p_profile = to_pabutools(instance, profile)
    sat = sat_class(profile, utility, scoring)
    if rule == "greedy":
        out = greedy_utilitarian_welfare(p_instance, p_profile, sat_class=sat, is_sat_additive=True)
    elif rule == "phragmen":
        out = sequential_phragmen(p_instance, p_profile)
    elif rule == "max-welfare":
        try:
            out = max_additive_utilitarian_welfare(p_instance, p_profile, sat_class=sat)
        except IndexError:
            # pabutools 1.2.3's primal-dual knapsack indexes past its item list on some inputs;
            # its ILP (CBC through PuLP) gives the optimum there.
            from pabutools.rules import MaxAddUtilWelfareAlgo

            out = max_additive_utilitarian_welfare(
                p_instance, p_profile, sat_class=sat, inner_algo=MaxAddUtilWelfareAlgo.ILP_SOLVER
            )
    elif rule == "mes":
        base = completion.removesuffix("-greedy")
        if base == "none" or completion == "greedy":
            mes_rule: Any = method_of_equal_shares
            params: dict[str, Any] = {"sat_class": sat}
        elif base == "add1-exhaustive":
            mes_rule = method_of_equal_shares
            params = {"sat_class": sat, "voter_budget_increment": 1}
        elif base == "add1":

            def mes_rule(inst: Any, prof: Any, **kwargs: Any) -> Any:
                return exhaustion_by_budget_increase(
                    inst,
                    prof,
                    method_of_equal_shares,
                    {"sat_class": sat},
                    exhaustive_stop=False,
                    budget_step=len(profile),
                    **kwargs,
                )

            params = {}
        else:
            raise ValueError(completion)
        if completion.endswith("greedy"):
            out = completion_by_rule_combination(
                p_instance,
                p_profile,
                [mes_rule, greedy_utilitarian_welfare],
                [params, {"sat_class": sat, "is_sat_additive": True}],
            )
        else:
            out = mes_rule(p_instance, p_profile, **params)
    else:
        raise ValueError(rule)
    return sorted(str(p.name) for p in out)


def welfare(
    instance: Instance, profile: Profile, selected: list[str], utility: str, scoring: str
) -> Fraction:
    """Our exact utilitarian welfare of a set (to compare max-welfare optima that tie)."""
    from qala.engines.pb.utilities import build_supports

    supports = build_supports(instance, profile, utility=utility, scoring=scoring)  # type: ignore[arg-type]
    return sum((supports.total[instance.index(pid)] for pid in selected), Fraction(0))
