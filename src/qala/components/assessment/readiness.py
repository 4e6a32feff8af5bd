"""Readiness assessment over Chourabi et al.'s eight clusters of success factors.

The questionnaire is the catalogue framework ``chourabi2012``: eight clusters (management and
organisation, technology, governance, policy context, people and communities, economy, built
infrastructure, natural environment), each with statements a city's team rates on a 1–5
agreement scale, in Kazakh, Russian and English. Statements are worded so that agreement means
readiness.

Scoring rules
-------------
* an answer ``a`` in 1…5 scores ``(a − 1) / 4 × 100`` (1 → 0, 3 → 50, 5 → 100); a blank answer
  means "don't know" and is left out; several respondents' answers to a statement are averaged
  first;
* a cluster's score is the mean of its answered statements, given only when at least half of its
  statements are answered (otherwise "insufficient answers");
* the overall readiness is the mean of the cluster scores given;
* bands: below 40 *low*, 40–60 *emerging*, 60–80 *ready*, 80 and above *advanced*.

Answers come from a YAML file (``answers: {statement id: score or {score, evidence}}``), a CSV
file (columns ``item, score[, evidence][, respondent]``) or the API; evidence notes travel with
each cluster's result.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import yaml

from qala.components.catalog.frameworks import Catalogue, load_catalogue
from qala.core.errors import Problem, ValidationError, raise_if_problems
from qala.core.yamltext import load_yaml

FRAMEWORK = "chourabi2012"
SCALE = {
    1: {"en": "strongly disagree", "ru": "совершенно не согласен", "kk": "мүлдем келіспеймін"},
    2: {"en": "disagree", "ru": "не согласен", "kk": "келіспеймін"},
    3: {"en": "neither agree nor disagree", "ru": "затрудняюсь ответить", "kk": "бейтараппын"},
    4: {"en": "agree", "ru": "согласен", "kk": "келісемін"},
    5: {"en": "strongly agree", "ru": "полностью согласен", "kk": "толығымен келісемін"},
}
DONT_KNOW = {
    "en": "don't know (leave blank)",
    "ru": "не знаю (оставить пустым)",
    "kk": "білмеймін (бос қалдыру)",
}
BANDS = ((80.0, "advanced"), (60.0, "ready"), (40.0, "emerging"), (0.0, "low"))


@dataclass(frozen=True)
class Item:
    id: str
    cluster: str
    statement: dict[str, str]
    explanation: dict[str, str]


@dataclass(frozen=True)
class Cluster:
    code: str
    names: dict[str, str]
    items: tuple[Item, ...]


def questionnaire(catalogue: Catalogue | None = None) -> list[Cluster]:
    """The eight clusters and their statements, from the catalogue."""
    catalogue = catalogue or load_catalogue()
    clusters = []
    for area in catalogue.framework(FRAMEWORK).areas():
        items = tuple(
            Item(
                id=leaf.indicator,
                cluster=area.code,
                statement=catalogue.indicators[leaf.indicator].names,
                explanation=catalogue.indicators[leaf.indicator].definition,
            )
            for leaf in area.leaves()
            if leaf.indicator
        )
        clusters.append(Cluster(code=area.code, names=area.names, items=items))
    return clusters


def questionnaire_dict(language: str = "en") -> dict[str, Any]:
    """The form as plain data for the web app and the API (one language, or all with ``all``)."""

    def text(names: Mapping[str, str]) -> Any:
        return dict(names) if language == "all" else names.get(language) or names.get("en")

    return {
        "framework": FRAMEWORK,
        "scale": {str(k): text(v) for k, v in SCALE.items()},
        "dont_know": text(DONT_KNOW),
        "clusters": [
            {
                "code": c.code,
                "name": text(c.names),
                "items": [
                    {"id": i.id, "statement": text(i.statement), "explanation": text(i.explanation)}
                    for i in c.items
                ],
            }
            for c in questionnaire()
        ],
    }


def template_yaml(language: str = "en", *, place: str = "CITY", year: int = 2025) -> str:
    """A blank answer file to fill in: every statement as a comment above its line."""
    lines = [
        "# Readiness questionnaire (Chourabi et al. 2012, eight clusters).",
        "# Score each statement 1–5: "
        + "; ".join(f"{k} = {v.get(language, v['en'])}" for k, v in SCALE.items())
        + "; leave blank if you don't know.",
        f"place: {place}",
        f"year: {year}",
        "respondent: ''",
        "answers:",
    ]
    for cluster in questionnaire():
        lines.append(f"  # --- {cluster.names.get(language, cluster.names['en'])}")
        for item in cluster.items:
            lines.append(f"  # {item.statement.get(language, item.statement['en'])}")
            lines.append(f"  {item.id}: {{score: , evidence: ''}}")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------
# Answers


@dataclass(frozen=True)
class Answer:
    item: str
    score: float | None
    """1–5, or None for "don't know"."""
    evidence: str = ""
    respondent: str = ""


@dataclass
class AnswerSheet:
    """Answers for one place and year, possibly from several respondents."""

    answers: list[Answer]
    place: str | None = None
    year: int | None = None
    respondent: str = ""
    illustrative: bool = False
    source: str = ""


def _score(raw: Any, where: str, problems: list[Problem], file: str | None) -> float | None:
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    if isinstance(raw, float) and pd.isna(raw):
        return None
    try:
        value = float(raw)
    except (TypeError, ValueError):
        problems.append(
            Problem("expected a score 1–5 or blank", file=file, column=where, value=raw)
        )
        return None
    if not 1 <= value <= 5:
        problems.append(
            Problem("score must be between 1 and 5", file=file, column=where, value=raw)
        )
        return None
    return value


def parse_answers(text: str, *, file: str | None = None, file_format: str = "yaml") -> AnswerSheet:
    """Read an answer file (YAML or CSV); every problem is reported with its place in the file."""
    known = {i.id for c in questionnaire() for i in c.items}
    problems: list[Problem] = []
    answers: list[Answer] = []
    if file_format == "csv":
        frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
        for col in ("item", "score"):
            if col not in frame.columns:
                problems.append(
                    Problem(
                        "missing column; expected item, score[, evidence][, respondent]",
                        file=file,
                        column=col,
                    )
                )
        raise_if_problems(problems, "invalid readiness answers")
        for i, row in enumerate(frame.to_dict("records")):
            line = i + 2
            item = str(row["item"]).strip()
            if item not in known:
                problems.append(
                    Problem(
                        "unknown statement id (see `qala assess questionnaire`)",
                        file=file,
                        row=line,
                        column="item",
                        value=item,
                    )
                )
                continue
            score = _score(row["score"], "score", problems, file)
            answers.append(
                Answer(item, score, str(row.get("evidence", "")), str(row.get("respondent", "")))
            )
        raise_if_problems(problems, "invalid readiness answers")
        return AnswerSheet(answers, source=file or "csv")
    try:
        raw = load_yaml(text) or {}
    except yaml.YAMLError as exc:
        raise ValidationError.single(f"not valid YAML: {exc}", file=file) from exc
    if not isinstance(raw, dict) or not isinstance(raw.get("answers"), dict):
        raise ValidationError.single(
            "expected a mapping with `answers: {statement id: score}`", file=file, column="answers"
        )
    respondent = str(raw.get("respondent") or "")
    for item, value in raw["answers"].items():
        where = f"answers.{item}"
        if item not in known:
            problems.append(
                Problem(
                    "unknown statement id (see `qala assess questionnaire`)",
                    file=file,
                    column=where,
                    value=item,
                )
            )
            continue
        evidence = ""
        if isinstance(value, dict):
            evidence = str(value.get("evidence") or "")
            value = value.get("score")
        answers.append(Answer(item, _score(value, where, problems, file), evidence, respondent))
    raise_if_problems(problems, "invalid readiness answers")
    year = raw.get("year")
    return AnswerSheet(
        answers,
        place=None if raw.get("place") is None else str(raw["place"]),
        year=None if year is None else int(year),
        respondent=respondent,
        illustrative=bool(raw.get("illustrative", False)),
        source=file or "yaml",
    )


# ---------------------------------------------------------------------------------------------
# Scoring


def band(score: float | None) -> str | None:
    if score is None:
        return None
    return next(label for bound, label in BANDS if score >= bound)


@dataclass
class ClusterResult:
    code: str
    names: dict[str, str]
    score: float | None
    answered: int
    items: int
    band: str | None
    note: str
    evidence: list[str] = field(default_factory=list)
    item_scores: dict[str, float | None] = field(default_factory=dict)


@dataclass
class Readiness:
    clusters: list[ClusterResult]
    overall: float | None
    band: str | None
    source: str
    illustrative: bool = False

    def cluster(self, suffix: str) -> ClusterResult | None:
        """A cluster by its code or the part after ``chourabi2012.``."""
        return next(
            (c for c in self.clusters if c.code == suffix or c.code.endswith("." + suffix)), None
        )

    def score_of(self, suffix: str) -> float | None:
        c = self.cluster(suffix)
        return None if c is None else c.score

    def item_score(self, item: str) -> float | None:
        for c in self.clusters:
            if item in c.item_scores:
                return c.item_scores[item]
        return None

    def as_dict(self) -> dict[str, Any]:
        return {
            "overall": self.overall,
            "band": self.band,
            "source": self.source,
            "illustrative": self.illustrative,
            "clusters": [
                {
                    "code": c.code,
                    "name": c.names,
                    "score": c.score,
                    "band": c.band,
                    "answered": c.answered,
                    "items": c.items,
                    "note": c.note,
                    "evidence": c.evidence,
                    "item_scores": c.item_scores,
                }
                for c in self.clusters
            ],
        }


def item_score(answer: float) -> float:
    """1–5 agreement → 0–100."""
    return (answer - 1.0) / 4.0 * 100.0


def score_readiness(sheet: AnswerSheet) -> Readiness:
    """Apply the scoring rules to an answer sheet."""
    by_item: dict[str, list[float]] = {}
    evidence: dict[str, list[str]] = {}
    for a in sheet.answers:
        if a.score is not None:
            by_item.setdefault(a.item, []).append(a.score)
        if a.evidence.strip():
            who = f" ({a.respondent})" if a.respondent else ""
            evidence.setdefault(a.item, []).append(a.evidence.strip() + who)
    results = []
    for cluster in questionnaire():
        scores: dict[str, float | None] = {}
        for item in cluster.items:
            given = by_item.get(item.id)
            scores[item.id] = item_score(sum(given) / len(given)) if given else None
        answered = [s for s in scores.values() if s is not None]
        enough = len(answered) * 2 >= len(cluster.items) and answered
        value = sum(answered) / len(answered) if enough else None
        note = (
            f"{len(answered)} of {len(cluster.items)} statements answered"
            if enough
            else f"insufficient answers ({len(answered)} of {len(cluster.items)}; half needed)"
        )
        results.append(
            ClusterResult(
                code=cluster.code,
                names=cluster.names,
                score=value,
                answered=len(answered),
                items=len(cluster.items),
                band=band(value),
                note=note,
                evidence=[e for item in cluster.items for e in evidence.get(item.id, [])],
                item_scores=scores,
            )
        )
    given = [c.score for c in results if c.score is not None]
    overall = sum(given) / len(given) if given else None
    return Readiness(results, overall, band(overall), sheet.source, sheet.illustrative)


def sheet_from_values(
    values: Mapping[str, float], *, source: str, illustrative: bool
) -> AnswerSheet:
    """Stored 1–5 values of the chourabi2012 indicators as an answer sheet."""
    return AnswerSheet(
        [Answer(item, float(v)) for item, v in values.items() if v is not None and not pd.isna(v)],
        source=source,
        illustrative=illustrative,
    )
