"""Participatory budgeting: instances, ballot profiles, the pabulib format and voting rules.

Rules are plain functions ``rule(instance, profile, *, tie_breaking=..., ...) -> Outcome``:
:func:`greedy`, :func:`method_of_equal_shares`, :func:`sequential_phragmen`, :func:`max_welfare`;
:func:`solve` runs one by name. See ``docs/pb-rules.md``.
"""

from qala.engines.pb.greedy import greedy
from qala.engines.pb.mes import COMPLETIONS, method_of_equal_shares
from qala.engines.pb.model import (
    Ballot,
    BallotKind,
    Election,
    Instance,
    Profile,
    Project,
    approval_profile,
    cumulative_profile,
    make_instance,
    ordinal_profile,
)
from qala.engines.pb.outcome import Explanation, Outcome, Round
from qala.engines.pb.pabulib import parse_pabulib, write_pabulib
from qala.engines.pb.phragmen import sequential_phragmen
from qala.engines.pb.solve import RULES, RuleSpec, official_rule, solve
from qala.engines.pb.utilities import Supports, build_supports
from qala.engines.pb.welfare import max_welfare

__all__ = [
    "COMPLETIONS",
    "RULES",
    "Ballot",
    "BallotKind",
    "Election",
    "Explanation",
    "Instance",
    "Outcome",
    "Profile",
    "Project",
    "Round",
    "RuleSpec",
    "Supports",
    "approval_profile",
    "build_supports",
    "cumulative_profile",
    "greedy",
    "make_instance",
    "max_welfare",
    "method_of_equal_shares",
    "official_rule",
    "ordinal_profile",
    "parse_pabulib",
    "sequential_phragmen",
    "solve",
    "write_pabulib",
]
