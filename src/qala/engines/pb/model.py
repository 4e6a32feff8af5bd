"""Participatory-budgeting data: projects, the instance (budget and projects) and ballot profiles.

Money is exact: costs and the budget limit are :class:`fractions.Fraction` (integral in practice), so
feasibility ("does this set fit the budget?") never depends on rounding. Rules may compute in
floating point internally but decide feasibility with these exact values.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from fractions import Fraction

from qala.core.errors import Problem, raise_if_problems


class BallotKind(StrEnum):
    """How voters expressed themselves (pabulib's ``vote_type``)."""

    APPROVAL = "approval"
    CUMULATIVE = "cumulative"
    SCORING = "scoring"
    ORDINAL = "ordinal"


@dataclass(frozen=True)
class Project:
    """A project that can be funded.

    Parameters
    ----------
    id
        Identifier as written in the file (``project_id``); ties are broken on it.
    cost
        Exact cost in the currency of the instance.
    meta
        Other columns of the project (name, category, votes, selected, ...), as text.
    """

    id: str
    cost: Fraction
    meta: Mapping[str, str] = field(default_factory=dict, compare=False, hash=False)

    @property
    def name(self) -> str:
        """Human-readable name, or the id when the file has none."""
        return self.meta.get("name", self.id)


@dataclass
class Instance:
    """A budgeting instance: the projects on the ballot and the money to share.

    Parameters
    ----------
    projects
        Projects in the order of the file.
    budget_limit
        Total money available.
    meta
        The META section (``description``, ``unit``, ``rule``, ``vote_type``, ...).
    """

    projects: list[Project]
    budget_limit: Fraction
    meta: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.budget_limit = Fraction(self.budget_limit)
        self._index = {p.id: i for i, p in enumerate(self.projects)}
        problems = []
        if len(self._index) != len(self.projects):
            seen: set[str] = set()
            for p in self.projects:
                if p.id in seen:
                    problems.append(
                        Problem("duplicate project id", column="project_id", value=p.id)
                    )
                seen.add(p.id)
        for p in self.projects:
            if p.cost < 0:
                problems.append(Problem("cost must be >= 0", column="cost", value=p.id))
        if self.budget_limit < 0:
            problems.append(
                Problem("budget must be >= 0", column="budget", value=self.budget_limit)
            )
        raise_if_problems(problems, "invalid participatory-budgeting instance")

    def __len__(self) -> int:
        return len(self.projects)

    def __iter__(self) -> Iterator[Project]:
        return iter(self.projects)

    def __contains__(self, project_id: object) -> bool:
        return project_id in self._index

    def index(self, project_id: str) -> int:
        """Position of a project in :attr:`projects`."""
        return self._index[project_id]

    def project(self, project_id: str) -> Project:
        """The project with this id (``KeyError`` if absent)."""
        return self.projects[self._index[project_id]]

    def total_cost(self, project_ids: Iterable[str]) -> Fraction:
        """Exact total cost of the given projects."""
        return sum((self.project(pid).cost for pid in project_ids), Fraction(0))

    def is_feasible(self, project_ids: Iterable[str]) -> bool:
        """Whether the projects fit in the budget limit."""
        return self.total_cost(project_ids) <= self.budget_limit

    def is_exhaustive(
        self, project_ids: Iterable[str], *, available: Iterable[str] | None = None
    ) -> bool:
        """Whether no further project (of ``available``, default all) fits in the remaining budget."""
        chosen = set(project_ids)
        left = self.budget_limit - self.total_cost(chosen)
        pool = self._index.keys() if available is None else available
        return all(pid in chosen or self.project(pid).cost > left for pid in pool)


@dataclass(frozen=True)
class Ballot:
    """One voter's ballot.

    ``projects`` is the approval set, the ranking (best first) or the projects given points;
    ``points`` is set for cumulative and scoring ballots (same order as ``projects``).
    """

    voter_id: str
    projects: tuple[str, ...]
    points: tuple[Fraction, ...] | None = None
    meta: Mapping[str, str] = field(default_factory=dict, compare=False, hash=False)


@dataclass
class Profile:
    """All ballots of one election with the limits the ballot form imposed.

    Parameters
    ----------
    kind
        The ballot type.
    ballots
        One ballot per voter.
    min_length, max_length
        Fewest / most projects a ballot may name (pabulib ``min_length``/``max_length``).
    min_points, max_points
        Bounds on the points given to one project (cumulative, scoring).
    min_sum_points, max_sum_points
        Bounds on the points of a ballot in total (cumulative).
    min_sum_cost, max_sum_cost
        Bounds on the total cost of an approval ballot (knapsack votes).
    """

    kind: BallotKind
    ballots: list[Ballot]
    min_length: int | None = None
    max_length: int | None = None
    min_points: Fraction | None = None
    max_points: Fraction | None = None
    min_sum_points: Fraction | None = None
    max_sum_points: Fraction | None = None
    min_sum_cost: Fraction | None = None
    max_sum_cost: Fraction | None = None

    def __len__(self) -> int:
        return len(self.ballots)

    def __iter__(self) -> Iterator[Ballot]:
        return iter(self.ballots)

    def approval_counts(self, instance: Instance) -> dict[str, int]:
        """Number of ballots naming each project (the ``votes`` column)."""
        counts = dict.fromkeys((p.id for p in instance), 0)
        for ballot in self.ballots:
            for pid in ballot.projects:
                counts[pid] += 1
        return counts

    def validate(self, instance: Instance, *, rows: Sequence[int] | None = None) -> list[Problem]:
        """Problems of each ballot against the instance and the limits (empty list when valid).

        ``rows`` gives the file line of each ballot, used to locate problems; without it the row
        is the ballot's position counted from 1.
        """
        problems: list[Problem] = []
        cardinal = self.kind in (BallotKind.CUMULATIVE, BallotKind.SCORING)
        for k, ballot in enumerate(self.ballots):
            row = k + 1 if rows is None else rows[k]

            def add(
                reason: str, column: str, value: object, row: int = row, who: str = ballot.voter_id
            ) -> None:
                problems.append(
                    Problem(f"voter {who}: {reason}", row=row, column=column, value=value)
                )

            for pid in ballot.projects:
                if pid not in instance:
                    add("unknown project id (not in PROJECTS)", "vote", pid)
            if len(set(ballot.projects)) != len(ballot.projects):
                add("a project is named twice on one ballot", "vote", ",".join(ballot.projects))
            n = len(ballot.projects)
            if self.min_length is not None and n < self.min_length:
                add(
                    f"ballot names {n} projects, fewer than min_length={self.min_length}", "vote", n
                )
            if self.max_length is not None and n > self.max_length:
                add(f"ballot names {n} projects, more than max_length={self.max_length}", "vote", n)
            if cardinal:
                if ballot.points is None or len(ballot.points) != n:
                    add(
                        "`points` must give one number per project in `vote`",
                        "points",
                        ballot.points,
                    )
                    continue
                for pts in ballot.points:
                    if pts < 0:
                        add("points must be >= 0", "points", pts)
                    if self.min_points is not None and pts < self.min_points:
                        add(f"points below min_points={self.min_points}", "points", pts)
                    if self.max_points is not None and pts > self.max_points:
                        add(f"points above max_points={self.max_points}", "points", pts)
                total = sum(ballot.points, Fraction(0))
                if self.max_sum_points is not None and total > self.max_sum_points:
                    add(
                        f"points sum to {total}, above max_sum_points={self.max_sum_points}",
                        "points",
                        total,
                    )
                if self.min_sum_points is not None and n > 0 and total < self.min_sum_points:
                    add(
                        f"points sum to {total}, below min_sum_points={self.min_sum_points}",
                        "points",
                        total,
                    )
            if self.kind is BallotKind.APPROVAL and (
                self.min_sum_cost is not None or self.max_sum_cost is not None
            ):
                known = [pid for pid in ballot.projects if pid in instance]
                cost = instance.total_cost(known)
                if self.max_sum_cost is not None and cost > self.max_sum_cost:
                    add(
                        f"ballot costs {cost}, above max_sum_cost={self.max_sum_cost}", "vote", cost
                    )
                if self.min_sum_cost is not None and n > 0 and cost < self.min_sum_cost:
                    add(
                        f"ballot costs {cost}, below min_sum_cost={self.min_sum_cost}", "vote", cost
                    )
        return problems


@dataclass
class Election:
    """An instance with its profile, as read from one pabulib file."""

    instance: Instance
    profile: Profile


def make_instance(
    costs: Mapping[str, int | Fraction | str] | Sequence[tuple[str, int | Fraction | str]],
    budget_limit: int | Fraction | str,
    *,
    meta: Mapping[str, str] | None = None,
) -> Instance:
    """Build an instance from ``{project_id: cost}`` (or pairs), for tests and small scripts."""
    pairs = list(costs.items()) if isinstance(costs, Mapping) else list(costs)
    projects = [Project(str(pid), Fraction(cost)) for pid, cost in pairs]
    return Instance(projects, Fraction(budget_limit), dict(meta or {}))


def approval_profile(
    ballots: Iterable[Iterable[str]],
    *,
    min_length: int | None = None,
    max_length: int | None = None,
) -> Profile:
    """Build an approval profile from sets of project ids; voters are numbered from 1."""
    return Profile(
        BallotKind.APPROVAL,
        [Ballot(str(i + 1), tuple(b)) for i, b in enumerate(ballots)],
        min_length=min_length,
        max_length=max_length,
    )


def cumulative_profile(
    ballots: Iterable[Mapping[str, int | Fraction]],
    *,
    max_sum_points: int | Fraction | None = None,
) -> Profile:
    """Build a cumulative profile from ``{project_id: points}`` dictionaries."""
    return Profile(
        BallotKind.CUMULATIVE,
        [
            Ballot(str(i + 1), tuple(b), tuple(Fraction(v) for v in b.values()))
            for i, b in enumerate(ballots)
        ],
        max_sum_points=None if max_sum_points is None else Fraction(max_sum_points),
    )


def ordinal_profile(
    rankings: Iterable[Sequence[str]],
    *,
    min_length: int | None = None,
    max_length: int | None = None,
) -> Profile:
    """Build an ordinal profile from rankings (best first)."""
    return Profile(
        BallotKind.ORDINAL,
        [Ballot(str(i + 1), tuple(r)) for i, r in enumerate(rankings)],
        min_length=min_length,
        max_length=max_length,
    )
