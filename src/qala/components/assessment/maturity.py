"""Maturity per domain (five levels) and the Smart City generation a programme resembles.

Levels (cumulative: a domain is at the highest level whose criteria, and those of every level
below, are met). Category scores are the domain's balance scores (0–100 goalpost scale);
readiness scores are the city's Chourabi cluster scores (0–100).

1. **Ad hoc** — isolated initiatives; no criterion.
2. **Initial** — systems installed: infrastructure ≥ 40.
3. **Defined** — services delivered on the systems, under a strategy: service ≥ 40 and
   readiness *management and organisation* ≥ 50.
4. **Integrated** — services at scale with measured results, on shared data: service ≥ 60,
   outcome ≥ 50, readiness *technology* ≥ 50 and *governance* ≥ 50.
5. **Optimised — city as a platform** — residents take part in planning and monitoring:
   participation ≥ 60 (the domain's, or the city's when the domain has no participation
   indicator) and readiness *people and communities* ≥ 60.

Generations (Cohen 2015): **1.0** technology-driven, led by vendors; **2.0** technology-enabled,
led by the city; **3.0** co-created with citizens. The programme resembles

* 3.0 when the 2.0 criteria hold and the city's participation ≥ 50, readiness *people and
  communities* ≥ 60 and *governance* ≥ 60;
* 2.0 when the city's services ≥ 50, readiness *management and organisation* ≥ 60 and the
  statement "in-house IT skills are sufficient" (not dependent on one vendor) scores ≥ 50;
* 1.0 otherwise — what the research finds for Kazakh cities.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from qala.components.assessment.balance import BalanceRow
from qala.components.assessment.readiness import Readiness
from qala.core.messages import Message, msg

LEVELS = {
    1: "ad hoc",
    2: "initial",
    3: "defined",
    4: "integrated",
    5: "optimised — city as a platform",
}
IT_SKILLS_ITEM = "chourabi2012.technology.it_skills"


@dataclass(frozen=True)
class Check:
    """One stated criterion with the value found and whether it is met."""

    level: int
    text: str
    value: float | None
    threshold: float
    met: bool
    code: str = ""
    """The criterion's message id (``criterion.<code>``)."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "level": self.level,
            "criterion": self.text,
            "value": self.value,
            "threshold": self.threshold,
            "met": self.met,
        }


CRITERIA = {
    "infrastructure": "infrastructure",
    "service": "service",
    "outcome": "outcome",
    "participation": "participation",
    "participation (city-wide)": "participation_city",
    "city-wide service": "service_city",
    "city-wide participation": "participation_city",
    "readiness: management and organisation": "readiness_management",
    "readiness: technology": "readiness_technology",
    "readiness: governance": "readiness_governance",
    "readiness: people and communities": "readiness_people",
    "readiness: in-house IT skills": "readiness_it_skills",
}
"""Each criterion's English text (kept in the API's JSON) and its message id."""


def _check(level: int, text: str, value: float | None, threshold: float) -> Check:
    met = value is not None and value >= threshold
    return Check(level, text, value, threshold, met, CRITERIA[text])


def check_note(c: Check) -> Message:
    """One criterion with its value, for the reader: "service 65 ≥ 60" / "outcome: no data"."""
    if c.value is None:
        return msg("maturity.check_no_data", criterion=msg("criterion." + c.code))
    return msg(
        "maturity.check",
        criterion=msg("criterion." + c.code),
        value=round(c.value),
        sign="≥" if c.met else "<",
        threshold=round(c.threshold),
    )


@dataclass(frozen=True)
class DomainMaturity:
    domain: str
    level: int
    checks: tuple[Check, ...]

    @property
    def label(self) -> str:
        return LEVELS[self.level]

    @property
    def next_step(self) -> list[Check]:
        """The unmet criteria of the next level."""
        return [c for c in self.checks if c.level == self.level + 1 and not c.met]

    @property
    def label_note(self) -> Message:
        return msg(f"maturity.level_{self.level}")

    def notes(self) -> list[Message]:
        """:meth:`explanation` as messages, one sentence each."""
        met = [check_note(c) for c in self.checks if c.level <= self.level and c.met]
        found = [msg("maturity.reached", level=self.level, label=self.label_note, met=met)]
        if self.level < 5:
            unmet = [check_note(c) for c in self.next_step]
            found.append(msg("maturity.not_next", level=self.level + 1, unmet=unmet))
        return found

    def explanation(self) -> str:
        met = [c for c in self.checks if c.level <= self.level and c.met]
        text = f"level {self.level} ({self.label})"
        if met:
            text += ": " + "; ".join(_describe(c) for c in met)
        if self.level < 5:
            text += f". Not level {self.level + 1}: " + "; ".join(
                _describe(c) for c in self.next_step
            )
        return text

    def as_dict(self) -> dict[str, Any]:
        return {
            "domain": self.domain,
            "level": self.level,
            "label": self.label,
            "explanation": self.explanation(),
            "checks": [c.as_dict() for c in self.checks],
        }


def _describe(c: Check) -> str:
    value = "no data" if c.value is None else f"{c.value:.0f}"
    sign = "≥" if c.met else "<"
    return (
        f"{c.text} {value} {sign} {c.threshold:.0f}"
        if c.value is not None
        else f"{c.text}: no data"
    )


def domain_maturity(
    row: BalanceRow, readiness: Readiness, *, city_participation: float | None = None
) -> DomainMaturity:
    """The level of one domain from its balance row and the city's readiness."""
    participation = row.participation if row.participation is not None else city_participation
    where = "" if row.participation is not None else " (city-wide)"
    checks = (
        _check(2, "infrastructure", row.infrastructure, 40),
        _check(3, "service", row.service, 40),
        _check(3, "readiness: management and organisation", readiness.score_of("management"), 50),
        _check(4, "service", row.service, 60),
        _check(4, "outcome", row.outcome, 50),
        _check(4, "readiness: technology", readiness.score_of("technology"), 50),
        _check(4, "readiness: governance", readiness.score_of("governance"), 50),
        _check(5, "participation" + where, participation, 60),
        _check(5, "readiness: people and communities", readiness.score_of("people"), 60),
    )
    level = 1
    for candidate in (2, 3, 4, 5):
        if all(c.met for c in checks if c.level == candidate):
            level = candidate
        else:
            break
    return DomainMaturity(row.area, level, checks)


GENERATIONS = {
    "1.0": "technology-driven: vendors lead, the city installs",
    "2.0": "technology-enabled: the city leads, choosing technology for its own goals",
    "3.0": "citizen co-creation: residents take part in planning and running the city",
}


@dataclass(frozen=True)
class Generation:
    generation: str
    checks: dict[str, tuple[Check, ...]]

    @property
    def description(self) -> str:
        return GENERATIONS[self.generation]

    @property
    def description_note(self) -> Message:
        return msg("generation.g" + self.generation.replace(".", "_"))

    def notes(self) -> list[Message]:
        """:meth:`explanation` as messages, one sentence each."""
        found = [
            msg("generation.is", generation=self.generation, description=self.description_note)
        ]
        for gen in ("2.0", "3.0"):
            unmet = [check_note(c) for c in self.checks[gen] if not c.met]
            if unmet:
                found.append(msg("generation.not", generation=gen, unmet=unmet))
        return found

    def explanation(self) -> str:
        lines = [f"Smart City {self.generation} — {self.description}."]
        for gen in ("2.0", "3.0"):
            unmet = [c for c in self.checks[gen] if not c.met]
            if unmet:
                lines.append(f"Not {gen}: " + "; ".join(_describe(c) for c in unmet) + ".")
        return " ".join(lines)

    def as_dict(self) -> dict[str, Any]:
        return {
            "generation": self.generation,
            "description": self.description,
            "explanation": self.explanation(),
            "checks": {g: [c.as_dict() for c in cs] for g, cs in self.checks.items()},
        }


def generation(overall: BalanceRow, readiness: Readiness) -> Generation:
    """Which Smart City generation the programme resembles, from city-wide scores."""
    two = (
        _check(2, "city-wide service", overall.service, 50),
        _check(2, "readiness: management and organisation", readiness.score_of("management"), 60),
        _check(2, "readiness: in-house IT skills", readiness.item_score(IT_SKILLS_ITEM), 50),
    )
    three = (
        _check(3, "city-wide participation", overall.participation, 50),
        _check(3, "readiness: people and communities", readiness.score_of("people"), 60),
        _check(3, "readiness: governance", readiness.score_of("governance"), 60),
    )
    met: Callable[[tuple[Check, ...]], bool] = lambda cs: all(c.met for c in cs)  # noqa: E731
    gen = "3.0" if met(two) and met(three) else "2.0" if met(two) else "1.0"
    return Generation(gen, {"2.0": two, "3.0": three})
