"""Balance diagnosis: are systems installed while services and participation lag?

Definitions (every score on the 0–100 goalpost scale of :mod:`qala.components.assessment.panel`):

* **category score** ``C(a, c)`` — the mean score of the place's indicators of category ``c``
  (infrastructure, service, participation, outcome) in area ``a``; for the whole place, the mean
  over all its indicators of that category. Missing values are left out; a category without
  indicators has no score.
* **imbalance** ``= I − mean(S, P)`` — infrastructure minus the mean of the service and
  participation scores (of those the area has). Positive: infrastructure ahead of what it
  delivers; 0: in step; negative: services and participation ahead of the hardware.
* **flag "infrastructure without services or participation"** — raised when ``I ≥ strong``
  (default 60) while ``min(S, P) ≤ weak`` (default 40): strong infrastructure with weak services
  or weak participation (the lowest of the two counts). The research's critique of the national
  rating, measured.
* **trend** — the least-squares slope of the imbalance per year over the years in the panel.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from qala.core.messages import Message, msg

CATEGORIES = ("infrastructure", "service", "participation", "outcome")
FLAG = "infrastructure without services or participation"
STRONG = 60.0
WEAK = 40.0
OVERALL = "overall"


@dataclass(frozen=True)
class BalanceRow:
    """One area (or ``overall``) of one place in one year."""

    area: str
    infrastructure: float | None
    service: float | None
    participation: float | None
    outcome: float | None
    imbalance: float | None
    flag: bool
    reason: str
    note: Message | None = field(default=None, compare=False)
    """``reason`` as a message id and values, for readers in kk/ru/en."""

    def as_dict(self) -> dict[str, object]:
        return {
            "area": self.area,
            "infrastructure": self.infrastructure,
            "service": self.service,
            "participation": self.participation,
            "outcome": self.outcome,
            "imbalance": self.imbalance,
            "flag": self.flag,
            "reason": self.reason,
            "note": self.note.as_dict() if self.note is not None else None,
        }


@dataclass
class Balance:
    place: str
    year: int
    rows: list[BalanceRow]
    trend: dict[str, float | None] = field(default_factory=dict)
    """Imbalance slope per year, per area and ``overall``."""
    history: pd.DataFrame | None = None
    """Years × areas: the imbalance in each year."""

    @property
    def overall(self) -> BalanceRow:
        return next(r for r in self.rows if r.area == OVERALL)

    @property
    def flagged(self) -> list[BalanceRow]:
        return [r for r in self.rows if r.flag]

    def table(self) -> pd.DataFrame:
        return pd.DataFrame([r.as_dict() for r in self.rows]).set_index("area")


def _clean(value: float) -> float | None:
    return None if value is None or pd.isna(value) else float(value)


def judge(
    infrastructure: float | None,
    service: float | None,
    participation: float | None,
    *,
    strong: float = STRONG,
    weak: float = WEAK,
) -> tuple[float | None, bool, str]:
    """Imbalance, flag and the reason in words, from three category scores."""
    delivered = [v for v in (service, participation) if v is not None]
    if infrastructure is None or not delivered:
        return None, False, "not enough categories to compare"
    imbalance = infrastructure - float(np.mean(delivered))
    lowest = min(delivered)
    lowest_name = "services" if lowest == service else "participation"
    if infrastructure >= strong and lowest <= weak:
        return (
            imbalance,
            True,
            f"infrastructure {infrastructure:.0f} ≥ {strong:.0f} while {lowest_name} "
            f"{lowest:.0f} ≤ {weak:.0f}",
        )
    if imbalance > 0:
        return imbalance, False, f"infrastructure ahead by {imbalance:.0f} points"
    return imbalance, False, f"services and participation in step ({imbalance:+.0f})"


def judge_note(
    infrastructure: float | None,
    service: float | None,
    participation: float | None,
    *,
    strong: float = STRONG,
    weak: float = WEAK,
) -> Message:
    """:func:`judge`'s reason as a message for the reader's language."""
    delivered = [v for v in (service, participation) if v is not None]
    if infrastructure is None or not delivered:
        return msg("balance.not_enough")
    imbalance = infrastructure - float(np.mean(delivered))
    lowest = min(delivered)
    lowest_key = "criterion.service" if lowest == service else "criterion.participation"
    if infrastructure >= strong and lowest <= weak:
        return msg(
            "balance.flagged",
            infrastructure=round(infrastructure),
            strong=round(strong),
            lowest_name=msg(lowest_key),
            lowest=round(lowest),
            weak=round(weak),
        )
    if imbalance > 0:
        return msg("balance.ahead", count=round(imbalance), n=round(imbalance))
    return msg("balance.in_step", imbalance=f"{imbalance:+.0f}")


def category_scores(
    scores: pd.Series, categories: Mapping[str, str], areas: Mapping[str, str]
) -> pd.DataFrame:
    """One place's indicator scores → areas × categories means (plus the ``overall`` row)."""
    frame = pd.DataFrame(
        {
            "score": scores,
            "category": [categories.get(str(i)) for i in scores.index],
            "area": [areas.get(str(i)) for i in scores.index],
        }
    ).dropna(subset=["score", "category", "area"])
    table = frame.pivot_table(index="area", columns="category", values="score", aggfunc="mean")
    overall = frame.groupby("category")["score"].mean().rename(OVERALL)
    table = pd.concat([table, overall.to_frame().T])
    for c in CATEGORIES:
        if c not in table.columns:
            table[c] = np.nan
    return table[list(CATEGORIES)]


def diagnose(
    place: str,
    year: int,
    scores: pd.Series,
    categories: Mapping[str, str],
    areas: Mapping[str, str],
    *,
    strong: float = STRONG,
    weak: float = WEAK,
    area_order: list[str] | None = None,
) -> Balance:
    """Balance of one place in one year from its indicator scores (0–100)."""
    table = category_scores(scores, categories, areas)
    order = [a for a in (area_order or list(table.index)) if a in table.index and a != OVERALL]
    rows = []
    for area in [*order, OVERALL]:
        r = table.loc[area]
        i, s, p, o = (_clean(r[c]) for c in CATEGORIES)
        imbalance, flag, reason = judge(i, s, p, strong=strong, weak=weak)
        note = judge_note(i, s, p, strong=strong, weak=weak)
        rows.append(BalanceRow(area, i, s, p, o, imbalance, flag, reason, note))
    return Balance(place=place, year=year, rows=rows)


def slope(years: list[int], values: list[float | None]) -> float | None:
    """Least-squares slope of ``values`` over ``years`` (None with fewer than two points)."""
    pairs = [(y, v) for y, v in zip(years, values, strict=True) if v is not None]
    if len(pairs) < 2:
        return None
    x = np.array([p[0] for p in pairs], dtype=float)
    y = np.array([p[1] for p in pairs], dtype=float)
    x = x - x.mean()
    return float((x * (y - y.mean())).sum() / (x * x).sum())


def with_trend(
    balance: Balance,
    panel_scores: pd.DataFrame,
    categories: Mapping[str, str],
    areas: Mapping[str, str],
    *,
    area_order: list[str] | None = None,
) -> Balance:
    """Add the imbalance of every year in ``panel_scores`` (rows (place, year)) and its slope."""
    mine = panel_scores.xs(balance.place, level="place")
    years = sorted(int(y) for y in mine.index)
    history: dict[int, dict[str, float | None]] = {}
    for y in years:
        b = diagnose(balance.place, y, mine.loc[y], categories, areas, area_order=area_order)
        history[y] = {r.area: r.imbalance for r in b.rows}
    frame = pd.DataFrame(history).T.sort_index()
    balance.history = frame
    balance.trend = {
        area: slope(years, [_clean(v) for v in frame[area].tolist()]) for area in frame.columns
    }
    return balance
