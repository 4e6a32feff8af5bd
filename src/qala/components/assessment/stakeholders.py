"""Stakeholders' expectations: each group's weights over the rating's areas, the index rebuilt
with them, and where the groups disagree.

Each respondent allocates a budget of points over the areas (budget allocation, OECD/JRC Handbook
2008, section 6). A respondent's points are turned into shares of 100; a group's weight of an area
is the mean of its respondents' shares (areas a respondent left out count 0). The national index
is rebuilt with each group's area weights (everything else as in the national method) and ranks
compared with the nominal weights and between groups.

* **disagreement of an area** — the highest minus the lowest group weight (percentage points);
* **rank spread of a place** — the worst minus the best of its ranks under the groups' weights;
* **mean shift of a group** — the mean absolute rank change from the nominal ranking.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from qala.core.errors import Problem, ValidationError, raise_if_problems
from qala.engines.index import Framework, IndexSpec, build_index


def parse_allocations(text: str, *, areas: Sequence[str], file: str | None = None) -> pd.DataFrame:
    """Read ``group,respondent,area,points`` rows; ``area`` may be the full code or its last part
    (``health`` for ``kz_sc.health``). Returns the rows with full area codes."""
    try:
        frame = pd.read_csv(
            io.StringIO(text), dtype={"group": str, "respondent": str, "area": str}, comment="#"
        )
    except (pd.errors.EmptyDataError, pd.errors.ParserError) as exc:
        raise_if_problems(
            [Problem(f"not a table of group, respondent, area, points rows ({exc})", file=file)],
            "invalid stakeholder allocations",
        )
        raise  # unreachable: raise_if_problems raised
    problems: list[Problem] = []
    for col in ("group", "respondent", "area", "points"):
        if col not in frame.columns:
            problems.append(
                Problem(
                    "missing column; expected group, respondent, area, points",
                    file=file,
                    column=col,
                )
            )
    raise_if_problems(problems, "invalid stakeholder allocations")
    short = {a.rsplit(".", 1)[-1]: a for a in areas}
    full = []
    for i, row in enumerate(frame.to_dict("records")):
        line = i + 2
        area = str(row["area"]).strip()
        code = area if area in areas else short.get(area)
        if code is None:
            problems.append(
                Problem(
                    f"unknown area; expected one of {', '.join(short)}",
                    file=file,
                    row=line,
                    column="area",
                    value=area,
                )
            )
        points = pd.to_numeric(row["points"], errors="coerce")
        if pd.isna(points) or points < 0:
            problems.append(
                Problem(
                    "points must be a number ≥ 0",
                    file=file,
                    row=line,
                    column="points",
                    value=row["points"],
                )
            )
        full.append(code)
    raise_if_problems(problems, "invalid stakeholder allocations")
    frame = frame.assign(area=full, points=pd.to_numeric(frame["points"]))
    totals = frame.groupby(["group", "respondent"])["points"].transform("sum")
    if (totals <= 0).any():
        bad = frame[totals <= 0].iloc[0]
        raise ValidationError.single(
            "a respondent allocated no points",
            file=file,
            column="respondent",
            value=bad["respondent"],
        )
    return frame


def group_weights(allocations: pd.DataFrame, areas: Sequence[str]) -> pd.DataFrame:
    """Areas × groups: the mean of respondents' shares (percent, each group sums to 100)."""
    shares = allocations.assign(
        share=100.0
        * allocations["points"]
        / allocations.groupby(["group", "respondent"])["points"].transform("sum")
    )
    per_respondent = (
        shares.pivot_table(
            index="area", columns=["group", "respondent"], values="share", aggfunc="sum"
        )
        .reindex(list(areas))
        .fillna(0.0)
    )
    out = per_respondent.T.groupby(level="group").mean().T
    out.columns.name = None
    return out


@dataclass
class StakeholderComparison:
    weights: pd.DataFrame
    """Areas × (nominal, groups…), percent."""
    ranks: pd.DataFrame
    """Places × (nominal, groups…)."""
    scores: pd.DataFrame
    disagreement: pd.Series
    """Area → max − min of the group weights (percentage points), largest first."""
    rank_spread: pd.Series
    """Place → worst − best rank under the groups' weights, largest first."""
    mean_shift: pd.Series
    """Group → mean |rank − nominal rank|."""
    priorities: dict[str, list[str]]
    """Group → its three heaviest areas."""
    respondents: dict[str, int]

    def as_dict(self) -> dict[str, Any]:
        return {
            "weights": self.weights.round(4).to_dict(),
            "ranks": self.ranks.to_dict(),
            "disagreement": self.disagreement.round(4).to_dict(),
            "rank_spread": self.rank_spread.to_dict(),
            "mean_shift": self.mean_shift.round(4).to_dict(),
            "priorities": self.priorities,
            "respondents": self.respondents,
        }


def compare_groups(
    spec: IndexSpec,
    data: pd.DataFrame,
    framework: Framework,
    allocations: pd.DataFrame,
) -> StakeholderComparison:
    """Rebuild the index with each group's area weights and compare."""
    areas = list(framework.children(framework.root))
    weights = group_weights(allocations, areas)
    nominal_raw = pd.Series({a: framework[a].weight for a in areas})
    nominal = 100.0 * nominal_raw / nominal_raw.sum()
    table = pd.concat([nominal.rename("nominal"), weights], axis=1)
    base = build_index(spec, data, framework)
    root = framework.root
    ranks = {"nominal": base.ranks[root]}
    scores = {"nominal": base.scores[root]}
    for group in weights.columns:
        variant = base.regenerate(framework=framework.with_weights(weights[group].to_dict()))
        ranks[str(group)] = variant.ranks[root]
        scores[str(group)] = variant.scores[root]
    rank_frame = pd.DataFrame(ranks).sort_values("nominal", kind="mergesort")
    groups = [str(g) for g in weights.columns]
    spread = (rank_frame[groups].max(axis=1) - rank_frame[groups].min(axis=1)).sort_values(
        ascending=False, kind="mergesort"
    )
    shift = pd.Series(
        {g: float((rank_frame[g] - rank_frame["nominal"]).abs().mean()) for g in groups}
    )
    disagreement = (weights.max(axis=1) - weights.min(axis=1)).sort_values(
        ascending=False, kind="mergesort"
    )
    priorities = {
        str(g): list(weights[g].sort_values(ascending=False, kind="mergesort").index[:3])
        for g in weights.columns
    }
    respondents = allocations.groupby("group")["respondent"].nunique().to_dict()
    return StakeholderComparison(
        weights=table,
        ranks=rank_frame,
        scores=pd.DataFrame(scores).loc[rank_frame.index],
        disagreement=disagreement,
        rank_spread=spread,
        mean_shift=shift,
        priorities=priorities,
        respondents={str(k): int(v) for k, v in respondents.items()},
    )


def nominal_area_weights(framework: Framework) -> Mapping[str, float]:
    areas = framework.children(framework.root)
    total = sum(framework[a].weight for a in areas)
    return {a: 100.0 * framework[a].weight / total for a in areas}
