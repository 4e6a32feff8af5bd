"""Peer and mentor matching: similar places, and for each weak area the best similar performers.

Similarity
----------
Each place is described by four blocks of features, each standardised (z-scores over the places
compared):

* **size** — log10 of the population;
* **kind** — 1 for a single-industry town in that year, else 0;
* **economy** — the ISO 37120 economy scores (unemployment, full-time employment, businesses per
  100 000, household income) on the 0–100 goalpost scale;
* **profile** — the place's area scores (mean 0–100 score of each area's indicators).

The distance between two places is ``sqrt(Σ_b w_b · d_b² / Σ_b w_b)`` where ``d_b`` is the
root-mean-square difference of block ``b``'s standardised features (blocks missing for either
place are left out) and ``w_b`` the block weights (default 1 each). Peers are the nearest places.

Mentors
-------
A place's weak areas are its ``n_weak`` lowest area scores. For each, mentors are taken from its
``pool`` nearest places: those whose score in the area is at least ``margin`` points above the
place's, best first; the reason names the likeness (size, kind, distance) and the lead.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from qala.core.messages import Message, msg

BLOCKS = ("size", "kind", "economy", "profile")


@dataclass(frozen=True)
class Features:
    """Standardised features per place, by block."""

    blocks: dict[str, pd.DataFrame]

    @classmethod
    def build(
        cls,
        *,
        population: pd.Series,
        single_industry: pd.Series,
        economy: pd.DataFrame,
        profile: pd.DataFrame,
    ) -> Features:
        places = profile.index
        raw = {
            "size": np.log10(population.reindex(places).astype(float)).to_frame("log_population"),
            "kind": single_industry.reindex(places).astype(float).to_frame("single_industry"),
            "economy": economy.reindex(places).astype(float),
            "profile": profile.astype(float),
        }
        blocks = {}
        for name, frame in raw.items():
            sd = frame.std(ddof=0).replace(0.0, np.nan)
            blocks[name] = (frame - frame.mean()) / sd
        return cls(blocks)


def distances(
    features: Features, place: str, weights: Mapping[str, float] | None = None
) -> pd.Series:
    """Distance from ``place`` to every other place, nearest first."""
    weights = {b: 1.0 for b in BLOCKS} | dict(weights or {})
    total = None
    wsum = None
    for name, frame in features.blocks.items():
        w = weights.get(name, 0.0)
        if w <= 0 or frame.empty:
            continue
        me = frame.loc[place]
        diff = (frame - me) ** 2
        # mean over the features both places have; NaN when none
        d2 = diff.mean(axis=1, skipna=True)
        ok = d2.notna() & bool(me.notna().any())
        contrib = (w * d2).where(ok, 0.0)
        weight = pd.Series(np.where(ok, w, 0.0), index=frame.index)
        total = contrib if total is None else total + contrib
        wsum = weight if wsum is None else wsum + weight
    assert total is not None and wsum is not None
    dist = np.sqrt(total / wsum.replace(0.0, np.nan))
    return dist.drop(place).sort_values(kind="mergesort")


@dataclass(frozen=True)
class Mentor:
    place: str
    area: str
    score: float
    lead: float
    distance: float
    reason: str
    note: Message | None = field(default=None, compare=False)
    """``reason`` as a message id and values, for readers in kk/ru/en."""

    def as_dict(self) -> dict[str, Any]:
        found = {k: v for k, v in self.__dict__.items() if k != "note"}
        found["note"] = self.note.as_dict() if self.note is not None else None
        return found


@dataclass
class MentorReport:
    place: str
    peers: list[tuple[str, float]]
    weak_areas: list[tuple[str, float]]
    mentors: dict[str, list[Mentor]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "place": self.place,
            "peers": [{"place": p, "distance": d} for p, d in self.peers],
            "weak_areas": [{"area": a, "score": s} for a, s in self.weak_areas],
            "mentors": {
                area: [m.as_dict() for m in mentors] for area, mentors in self.mentors.items()
            },
        }


def _people(n: float | None) -> str:
    if n is None or pd.isna(n):
        return "population unknown"
    return f"{n / 1000:.0f}k"


def _people_note(n: float | None) -> Message:
    if n is None or pd.isna(n):
        return msg("mentor.population_unknown")
    return msg("mentor.thousands", n=round(n / 1000))


def find_mentors(
    place: str,
    features: Features,
    profile: pd.DataFrame,
    *,
    population: pd.Series,
    single_industry: pd.Series,
    area_names: Mapping[str, str] | None = None,
    n_peers: int = 5,
    n_weak: int = 3,
    n_mentors: int = 3,
    pool: int = 15,
    margin: float = 10.0,
    weights: Mapping[str, float] | None = None,
    areas: Sequence[str] | None = None,
) -> MentorReport:
    """Peers of ``place`` and up to ``n_mentors`` mentors for each of its weak areas."""
    dist = distances(features, place, weights)
    names = dict(area_names or {})
    mine = profile.loc[place].dropna()
    if areas is not None:
        mine = mine[[a for a in areas if a in mine.index]]
    weak = mine.sort_values(kind="mergesort").head(n_weak)
    candidates = list(dist.index[:pool])
    report = MentorReport(
        place=place,
        peers=[(p, float(d)) for p, d in dist.head(n_peers).items()],
        weak_areas=[(a, float(s)) for a, s in weak.items()],
    )
    me_mono = bool(single_industry.get(place, False))
    everyone = list(dist.index)
    for area, own in weak.items():
        scored = profile.loc[everyone, area].dropna()
        lead_by = scored - own
        # the pool first, best first; then, if it has too few, the next most similar places
        in_pool = lead_by[[p for p in candidates if p in lead_by.index]]
        picked = list(
            in_pool[in_pool >= margin].sort_values(ascending=False, kind="mergesort").index
        )[:n_mentors]
        for threshold in (margin, 1e-9):  # a leader with no clear better peer gets any better one
            for other in everyone:
                if len(picked) >= n_mentors:
                    break
                if other not in picked and other in lead_by.index and lead_by[other] >= threshold:
                    picked.append(other)
        chosen = []
        for other in picked:
            score = float(scored[other])
            lead = score - float(own)
            other_mono = bool(single_industry.get(other, False))
            if other_mono == me_mono:
                kind_text = "also a single-industry town" if me_mono else "also a city"
            else:
                kind_text = "a single-industry town" if other_mono else "a city"
            rank_near = everyone.index(str(other)) + 1
            reason = (
                f"{names.get(str(area), area)} {score:.0f} vs {own:.0f} (+{lead:.0f}); "
                f"similar place #{rank_near} (distance {dist[other]:.2f}): population "
                f"{_people(population.get(other))} vs {_people(population.get(place))}, "
                f"{kind_text}"
            )
            if other_mono == me_mono:
                kind_key = "mentor.also_monotown" if me_mono else "mentor.also_city"
            else:
                kind_key = "mentor.a_monotown" if other_mono else "mentor.a_city"
            note = msg(
                "mentor.reason",
                area=names.get(str(area), area),
                score=round(score),
                own=round(float(own)),
                lead=round(lead),
                rank=rank_near,
                distance=float(dist[other]),
                population=_people_note(population.get(other)),
                own_population=_people_note(population.get(place)),
                kind=msg(kind_key),
            )
            chosen.append(
                Mentor(str(other), str(area), float(score), lead, float(dist[other]), reason, note)
            )
        report.mentors[str(area)] = chosen
    return report
