"""Budgeting results in plain words for residents, the rule's technical account for analysts.

The engines (``qala.engines.pb``) explain each project in the rule's own terms (price factor,
effective vote count, loads) with numbers in ``ProjectResult.numbers``; residents read what it
means for the money: funded within the budget left after the projects chosen before it, or not,
and why in one sentence. Both are rendered from the catalogues in the reader's language.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from qala.web.i18n import Translator

RULES = ("mes", "greedy", "phragmen", "welfare")
"""Rule families whose names the catalogues carry (``pb.rule.<family>``)."""


@dataclass(frozen=True)
class ProjectWords:
    code: str
    plain: str
    technical: str


def rule_name(rule: str, t: Translator) -> str:
    """``mes[cost]+add1`` → "Method of Equal Shares (…)"; an unknown rule keeps its code."""
    family = re.split(r"[\[+]", rule, maxsplit=1)[0]
    if family not in RULES:
        return rule
    extras = [t("pb.rule_option.add1")] if "+add1" in rule else []
    name = t("pb.rule." + family)
    return f"{name} ({', '.join(extras)})" if extras else name


def _technical(result: Any, t: Translator) -> str:
    numbers: dict[str, Any] = dict(result.numbers or {})
    parts = [t("pb.tech.round", round=result.round)] if result.round else []
    for key, value in numbers.items():
        shown = t.number(value, 4 if abs(float(value or 0)) < 1 else 2)
        parts.append(t("pb.tech.number", name=t("pb.number." + key), value=shown))
    return "; ".join(parts) if parts else t("pb.tech.none")


def project_words(results: Any, t: Translator) -> dict[str, ProjectWords]:
    """Per project code: the plain sentence and the technical account."""
    spent_before = 0
    found: dict[str, ProjectWords] = {}
    left_at_end = results.budget - results.cost
    for r in results.projects:  # selected first, in the order the rule chose them
        votes = t.plural("pb.plain.votes", r.votes)
        cost = t.money(r.cost, short=True)
        if r.selected:
            left = results.budget - spent_before
            plain = t("pb.plain.funded", votes=votes, cost=cost, left=t.money(left, short=True))
            spent_before += r.cost
        elif r.votes == 0:
            plain = t("pb.plain.no_votes", cost=cost)
        elif r.cost > left_at_end:
            plain = t(
                "pb.plain.too_dear", votes=votes, cost=cost, left=t.money(left_at_end, short=True)
            )
        else:
            plain = t("pb.plain.too_few", votes=votes, cost=cost)
        found[r.code] = ProjectWords(r.code, plain, _technical(r, t))
    return found
