"""Voters' utilities for projects, built once per (instance, profile) as a sparse table.

Each ballot gives a *score* to the projects it names:

- approval: 1;
- cumulative and scoring: the points;
- ordinal: a positional score, either pabulib's (``"pabulib"``: with ``L`` the ballot form's
  ``max_length`` or else the ballot's length, the first project gets ``L``, the second ``L-1``, ...;
  this is how pabulib's ``score`` column is computed, e.g. 3-2-1 on Kraków's files) or pabutools'
  additive Borda (``"borda"``: ``len(ballot) - position - 1``, so the last-ranked project gets 0).

A rule then uses either *cost utilities* (``"cost"``: score × project cost, the default of
equalshares.net and pabulib for MES; with it, utilitarian greedy orders projects by their total
score, i.e. "greedy by votes") or *cardinality utilities* (``"cardinality"``: the score itself;
greedy then orders by score per unit of money).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

import numpy as np

from qala.core.errors import SpecificationError
from qala.engines.pb.model import BallotKind, Instance, Profile

Utility = Literal["cost", "cardinality"]
Scoring = Literal["pabulib", "borda"]

UTILITIES: tuple[str, ...] = ("cost", "cardinality")
SCORINGS: tuple[str, ...] = ("pabulib", "borda")


@dataclass(frozen=True)
class Supports:
    """Positive utilities by project, in compressed rows (project ``j`` owns ``ptr[j]:ptr[j+1]``).

    Attributes
    ----------
    ptr
        Row pointers, length ``m + 1``.
    voters
        Voter index of each entry.
    utility
        Utility of each entry as a float (for fast rules).
    exact
        Utility of each entry, exact.
    total
        Exact total utility of each project.
    n_voters
        Number of ballots.
    """

    ptr: np.ndarray
    voters: np.ndarray
    utility: np.ndarray
    exact: list[Fraction]
    total: list[Fraction]
    n_voters: int

    def row(self, j: int) -> slice:
        """Entries of project ``j``."""
        return slice(int(self.ptr[j]), int(self.ptr[j + 1]))

    def supporters(self, j: int) -> np.ndarray:
        """Voter indices with positive utility for project ``j``."""
        return self.voters[self.row(j)]

    def count(self, j: int) -> int:
        """Number of voters with positive utility for project ``j``."""
        return int(self.ptr[j + 1] - self.ptr[j])


def ballot_scores(
    profile: Profile,
    ballot_projects: Sequence[str],
    points: Sequence[Fraction] | None,
    scoring: Scoring,
) -> list[Fraction]:
    """Score a ballot gives to each project it names (same order)."""
    kind = profile.kind
    if kind is BallotKind.APPROVAL:
        return [Fraction(1)] * len(ballot_projects)
    if kind in (BallotKind.CUMULATIVE, BallotKind.SCORING):
        return list(points or ())
    n = len(ballot_projects)
    if scoring == "borda":
        return [Fraction(n - k - 1) for k in range(n)]
    top = profile.max_length if profile.max_length is not None else n
    return [Fraction(max(top - k, 0)) for k in range(n)]


def build_supports(
    instance: Instance, profile: Profile, *, utility: Utility = "cost", scoring: Scoring = "pabulib"
) -> Supports:
    """Sparse table of every voter's positive utility for every project.

    Parameters
    ----------
    instance, profile
        The election.
    utility
        ``"cost"`` (score × cost) or ``"cardinality"`` (score).
    scoring
        Positional scores for ordinal ballots: ``"pabulib"`` or ``"borda"``.
    """
    if utility not in UTILITIES:
        raise SpecificationError(f"`utility` must be one of {UTILITIES}, got {utility!r}")
    if scoring not in SCORINGS:
        raise SpecificationError(f"`scoring` must be one of {SCORINGS}, got {scoring!r}")
    m = len(instance)
    rows: list[list[int]] = [[] for _ in range(m)]
    vals: list[list[Fraction]] = [[] for _ in range(m)]
    index = instance.index
    approval = profile.kind is BallotKind.APPROVAL
    one = Fraction(1)
    for v, ballot in enumerate(profile.ballots):
        if approval:
            for pid in ballot.projects:
                j = index(pid)
                rows[j].append(v)
                vals[j].append(one)
            continue
        for pid, score in zip(
            ballot.projects,
            ballot_scores(profile, ballot.projects, ballot.points, scoring),
            strict=True,
        ):
            if score > 0:
                j = index(pid)
                rows[j].append(v)
                vals[j].append(score)
    for j, p in enumerate(instance.projects):
        if utility == "cost" and p.cost == 0:
            # Cost utility of a free project is 0 for everyone: nobody "supports" it.
            rows[j], vals[j] = [], []
    ptr = np.zeros(m + 1, dtype=np.int64)
    ptr[1:] = np.cumsum([len(r) for r in rows])
    voters = np.fromiter((v for r in rows for v in r), dtype=np.int64, count=int(ptr[-1]))
    exact: list[Fraction] = []
    total: list[Fraction] = []
    floats: list[float] = []
    for j, p in enumerate(instance.projects):
        factor = p.cost if utility == "cost" else one
        if approval:
            # Every supporter has the same utility: skip per-entry Fraction arithmetic.
            k = len(vals[j])
            exact.extend([factor] * k)
            floats.extend([float(factor)] * k)
            total.append(factor * k)
        else:
            entries = [s * factor for s in vals[j]]
            exact.extend(entries)
            floats.extend(float(e) for e in entries)
            total.append(sum(entries, Fraction(0)))
    return Supports(
        ptr=ptr,
        voters=voters,
        utility=np.asarray(floats, dtype=np.float64),
        exact=exact,
        total=total,
        n_voters=len(profile),
    )
