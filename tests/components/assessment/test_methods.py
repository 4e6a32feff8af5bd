"""Hand-worked examples for each assessment method (no store needed)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace

import pandas as pd
import pytest
from hypothesis import given, settings, strategies as st

from qala.components.assessment import balance, maturity, peers, readiness, roadmap, stakeholders
from qala.components.assessment.panel import goalposts_for
from qala.components.catalog.frameworks import Catalogue, load_catalogue
from qala.core.errors import ValidationError
from qala.engines.index import IndexSpec, framework_from_tree

# ------------------------------------------------------------------------------------------------
# balance

CATS = {
    "i1": "infrastructure",
    "i2": "infrastructure",
    "s1": "service",
    "s2": "service",
    "p1": "participation",
    "o1": "outcome",
    "t1": "infrastructure",
    "t2": "service",
}
AREAS = {"i1": "A", "i2": "A", "s1": "A", "s2": "A", "p1": "A", "o1": "A", "t1": "B", "t2": "B"}


def test_imbalance_flag_on_strong_infrastructure_weak_services_and_participation() -> None:
    scores = pd.Series(
        {"i1": 80.0, "i2": 90.0, "s1": 20.0, "s2": 30.0, "p1": 10.0, "o1": 50.0, "t1": 70, "t2": 65}
    )
    result = balance.diagnose("x", 2025, scores, CATS, AREAS)
    a = result.table().loc["A"]
    # I = (80 + 90) / 2 = 85, S = (20 + 30) / 2 = 25, P = 10; imbalance = 85 − (25 + 10) / 2
    assert a["infrastructure"] == 85 and a["service"] == 25 and a["participation"] == 10
    assert a["imbalance"] == pytest.approx(67.5)
    assert bool(a["flag"]) is True
    assert "participation 10 ≤ 40" in a["reason"]
    # B: I = 70, S = 65 (no participation indicator): 70 − 65 = 5, not flagged
    b = result.table().loc["B"]
    assert b["imbalance"] == pytest.approx(5.0) and not b["flag"]
    # overall: I = mean(80, 90, 70) = 80, S = mean(20, 30, 65) = 38.33, P = 10
    overall = result.overall
    assert overall.infrastructure == pytest.approx(80.0)
    assert overall.service == pytest.approx(115 / 3)
    assert overall.imbalance == pytest.approx(80 - (115 / 3 + 10) / 2)
    assert overall.flag
    assert [r.area for r in result.flagged] == ["A", balance.OVERALL]


def test_flag_thresholds_are_inclusive_and_balanced_city_is_not_flagged() -> None:
    assert balance.judge(60.0, 40.0, 90.0)[1] is True  # I ≥ 60 and min(S, P) ≤ 40
    assert balance.judge(59.9, 10.0, 10.0)[1] is False
    assert balance.judge(90.0, 40.1, 45.0)[1] is False
    imbalance, flag, _ = balance.judge(70.0, 65.0, 60.0)
    assert imbalance == pytest.approx(7.5) and not flag
    assert balance.judge(None, 50.0, 50.0) == (None, False, "not enough categories to compare")


def test_trend_is_the_least_squares_slope_of_the_imbalance() -> None:
    assert balance.slope([2022, 2023, 2024, 2025], [10, 12, 14, 16]) == pytest.approx(2.0)
    assert balance.slope([2022, 2023, 2024], [0, 3, 3]) == pytest.approx(1.5)
    assert balance.slope([2022, 2023], [1.0, None]) is None
    # infrastructure grows by 10 a year while services stand still: imbalance slope 10
    rows = {}
    for k, year in enumerate((2023, 2024, 2025)):
        rows[("x", year)] = {"i1": 50 + 10 * k, "s1": 40.0}
    panel = pd.DataFrame(rows).T
    panel.index.names = ["place", "year"]
    cats = {"i1": "infrastructure", "s1": "service"}
    areas = {"i1": "A", "s1": "A"}
    result = balance.diagnose("x", 2025, panel.loc[("x", 2025)], cats, areas)
    result = balance.with_trend(result, panel, cats, areas)
    assert result.trend["A"] == pytest.approx(10.0)
    assert result.history is not None
    assert list(result.history["A"]) == [10.0, 20.0, 30.0]


def test_goalposts_use_unit_bounds_else_typical_span_else_observed_range() -> None:
    share, minutes = "kz_sc.health.mis_connected_share", "kz_sc.health.ambulance_arrival_minutes"
    observed = pd.DataFrame({share: [75.0, 20.0, 120.0], minutes: [10.0, 30.0, 20.0]})
    catalogue = load_catalogue()
    assert catalogue.indicators[minutes].typical == (8.0, 25.0)
    posts = goalposts_for(list(observed.columns), observed, catalogue)
    assert posts.table.loc[share, "source"] == "unit bounds"  # percent: 0–100
    assert posts.table.loc[minutes, "source"] == "typical span"
    scores = posts.score(observed)
    assert list(scores[share]) == [75.0, 20.0, 100.0]  # clipped at the top goalpost
    # lower is better on 8–25 minutes: 10 → 15/17, 30 → beyond the worst end, 20 → 5/17
    assert list(scores[minutes]) == pytest.approx([1500 / 17, 0.0, 500 / 17])
    # without a typical span (and no upper unit bound) the observed range is the goalposts
    plain = Catalogue(
        catalogue.units,
        {**catalogue.indicators, minutes: replace(catalogue.indicators[minutes], typical=None)},
        catalogue.frameworks,
        catalogue.version,
    )
    observed_posts = goalposts_for([minutes], observed, plain)
    assert observed_posts.table.loc[minutes, "source"] == "observed range"
    assert list(observed_posts.score(observed)[minutes]) == [100.0, 0.0, 50.0]


# ------------------------------------------------------------------------------------------------
# readiness


def _sheet(scores: Mapping[str, float | None], **kw: object) -> readiness.AnswerSheet:
    return readiness.AnswerSheet([readiness.Answer(k, v) for k, v in scores.items()], **kw)  # type: ignore[arg-type]


def test_questionnaire_has_eight_clusters_in_three_languages() -> None:
    form = readiness.questionnaire()
    assert len(form) == 8 and all(len(c.items) == 4 for c in form)
    for cluster in form:
        for item in cluster.items:
            assert all(item.statement.get(lang) for lang in ("kk", "ru", "en"))
    ru = readiness.questionnaire_dict("ru")
    assert ru["scale"]["5"] == "полностью согласен"
    template = readiness.template_yaml("kk", place="astana")
    assert template.count("{score: , evidence: ''}") == 32


def test_readiness_scoring_rules() -> None:
    m = [
        f"chourabi2012.management.{s}"
        for s in ("leadership", "strategy_with_targets", "team_skills", "change_readiness")
    ]
    t = "chourabi2012.technology."
    sheet = readiness.AnswerSheet(
        [
            readiness.Answer(m[0], 5, "a named deputy akim", "r1"),
            readiness.Answer(m[0], 3, "", "r2"),  # two respondents: mean 4 → 75
            readiness.Answer(m[1], 1),  # → 0
            readiness.Answer(m[2], None),  # don't know: left out
            readiness.Answer(m[3], 3),  # → 50
            readiness.Answer(t + "interoperability", 5),  # 1 of 4 technology answers: too few
        ]
    )
    result = readiness.score_readiness(sheet)
    management = result.cluster("management")
    assert management is not None
    assert management.score == pytest.approx((75 + 0 + 50) / 3)
    assert management.answered == 3 and management.band == "emerging"  # 41.7
    assert management.evidence == ["a named deputy akim (r1)"]
    technology = result.cluster("technology")
    assert technology is not None and technology.score is None
    assert technology.note.startswith("insufficient answers (1 of 4")
    assert result.overall == pytest.approx(125 / 3)  # the only cluster given
    assert result.band == "emerging"
    assert readiness.item_score(4) == 75.0


def test_readiness_files_yaml_and_csv_with_located_problems() -> None:
    text = "place: astana\nyear: 2025\nanswers:\n  chourabi2012.people.digital_divide: {score: 4}\n  nope.item: 3\n  chourabi2012.economy.business_access: 7\n"
    with pytest.raises(ValidationError) as info:
        readiness.parse_answers(text, file="a.yaml")
    columns = sorted(p.column or "" for p in info.value.problems)
    assert columns == ["answers.chourabi2012.economy.business_access", "answers.nope.item"]
    csv = "item,score,evidence\nchourabi2012.management.leadership,4,yes\nchourabi2012.management.team_skills,,\nbad,2,\n"
    with pytest.raises(ValidationError) as info:
        readiness.parse_answers(csv, file="a.csv", file_format="csv")
    assert info.value.problems[0].row == 4
    ok = readiness.parse_answers(csv.rsplit("bad", 1)[0], file="a.csv", file_format="csv")
    assert [a.score for a in ok.answers] == [4.0, None]


# ------------------------------------------------------------------------------------------------
# maturity and generation


def _readiness(**clusters: float) -> readiness.Readiness:
    answers = {}
    for cluster in readiness.questionnaire():
        key = cluster.code.split(".")[1]
        if key in clusters:
            level = 1 + clusters[key] / 25  # score s ↔ answer 1 + s/25
            for item in cluster.items:
                answers[item.id] = level
    return readiness.score_readiness(_sheet(answers))


def row(i: float | None, s: float | None, p: float | None, o: float | None) -> balance.BalanceRow:
    imbalance, flag, reason = balance.judge(i, s, p)
    return balance.BalanceRow("kz_sc.transport", i, s, p, o, imbalance, flag, reason)


def test_maturity_levels_follow_the_stated_criteria() -> None:
    ready = _readiness(management=75, technology=75, governance=75, people=75)
    assert maturity.domain_maturity(row(30, 90, 90, 90), ready).level == 1
    level2 = maturity.domain_maturity(row(50, 30, 10, 80), ready)
    assert level2.level == 2
    assert [c.text for c in level2.next_step] == ["service"]
    assert "Not level 3: service 30 < 40" in level2.explanation()
    assert maturity.domain_maturity(row(80, 50, 10, 80), ready).level == 3
    assert maturity.domain_maturity(row(80, 70, 10, 60), ready).level == 4
    assert maturity.domain_maturity(row(80, 70, 65, 60), ready).level == 5
    # participation missing in the domain: the city-wide figure is used and said so
    top = maturity.domain_maturity(row(80, 70, None, 60), ready, city_participation=61)
    assert top.level == 5 and any("(city-wide)" in c.text for c in top.checks)
    # weak management readiness stops a domain at level 2 whatever its services
    weak = _readiness(management=25, technology=75, governance=75, people=75)
    assert maturity.domain_maturity(row(80, 90, 90, 90), weak).level == 2


def test_generation_1_2_3() -> None:
    overall = row(90, 60, 55, 60)
    vendor = _readiness(management=75, technology=25, governance=75, people=75)
    assert maturity.generation(overall, vendor).generation == "1.0"  # in-house IT skills 25 < 50
    city_led = _readiness(management=75, technology=75, governance=50, people=75)
    gen = maturity.generation(overall, city_led)
    assert gen.generation == "2.0"
    assert "Not 3.0: readiness: governance 50 < 60" in gen.explanation()
    co = _readiness(management=75, technology=75, governance=75, people=75)
    assert maturity.generation(overall, co).generation == "3.0"
    assert maturity.generation(row(90, 60, 40, 60), co).generation == "2.0"


# ------------------------------------------------------------------------------------------------
# gaps and roadmap

ACTIONS = """
cost_classes:
  S: {nominal: 50}
  M: {nominal: 300}
actions:
  - {id: A, name: {en: A}, area: x, cost_class: S, months: 6, depends_on: [], moves: [{indicator: x, change: points, by: 30}]}
  - {id: B, name: {en: B}, area: y, cost_class: M, months: 12, depends_on: [C], moves: [{indicator: y, change: relative, by: -50}]}
  - {id: C, name: {en: C}, area: y, cost_class: S, months: 4, depends_on: [], moves: []}
  - {id: D, name: {en: D}, area: x, cost_class: M, months: 9, depends_on: [], moves: [{indicator: x, change: points, by: 20}]}
"""
WEIGHTS = {"x": 0.5, "y": 0.5}
SPANS = {"x": 100.0, "y": 50.0}


def _gaps() -> list[roadmap.Gap]:
    # x: 20 vs peer median 60 (higher is better) → shortfall 40 = 40 points;
    # y: 30 vs goal 20 (lower is better) → shortfall 10 = 20 points on a span of 50
    return roadmap.gap_analysis(
        {"x": 20.0, "y": 30.0},
        directions={"x": 1, "y": -1},
        spans=SPANS,
        peer_medians={"x": 60.0, "y": 25.0},
        norms={"y": 22.0},
        goals={"y": 20.0},
    )


def test_gap_targets_prefer_goal_then_norm_then_peer_median() -> None:
    gaps = {g.indicator: g for g in _gaps()}
    assert (gaps["x"].target, gaps["x"].target_source, gaps["x"].shortfall) == (
        60.0,
        "peer median",
        40.0,
    )
    assert (gaps["y"].target, gaps["y"].target_source, gaps["y"].shortfall) == (
        20.0,
        "user goal",
        10.0,
    )
    assert gaps["y"].points == pytest.approx(20.0)
    met = roadmap.gap_analysis(
        {"x": 70.0}, directions={"x": 1}, spans=SPANS, peer_medians={"x": 60.0}
    )
    assert met[0].shortfall == 0.0


def test_greedy_roadmap_by_impact_per_cost_with_dependencies() -> None:
    catalogue = roadmap.parse_actions(ACTIONS)
    plan = roadmap.plan_roadmap(catalogue, _gaps(), weights=WEIGHTS, spans=SPANS, budget=500)
    # step 1: A alone, impact 100·0.5·30/100 = 15 for 50 → 0.3 per mln;
    # then bundle C+B: y −50% of 30 = 15 > shortfall 10 → 100·0.5·10/50 = 10 for 350 (0.0286)
    # beats D, which after A closes only the last 10 of x: 5 for 300 (0.0167); D no longer fits.
    assert [s.action for s in plan.steps] == ["A", "C", "B"]
    assert [s.impact for s in plan.steps] == pytest.approx([15.0, 0.0, 10.0])
    assert plan.steps[0].ratio == pytest.approx(0.3)
    assert plan.steps[2].ratio == pytest.approx(10 / 350)
    assert (plan.steps[2].start_month, plan.steps[2].end_month) == (4, 16)  # after C
    assert plan.spent == 400
    assert plan.initial_gap_points == pytest.approx(30.0)  # 0.5·40 + 0.5·20
    assert plan.remaining_gap_points == pytest.approx(5.0)
    bigger = roadmap.plan_roadmap(catalogue, _gaps(), weights=WEIGHTS, spans=SPANS, budget=1000)
    assert [s.action for s in bigger.steps] == ["A", "C", "B", "D"]
    assert bigger.remaining_gap_points == pytest.approx(0.0)
    done = roadmap.plan_roadmap(
        catalogue, _gaps(), weights=WEIGHTS, spans=SPANS, budget=500, done=["C"]
    )
    assert [s.action for s in done.steps] == ["A", "B"]  # C already delivered: B alone
    frame = plan.frame()
    assert list(frame["action"]) == ["A", "C", "B"]
    assert "A," in plan.to_csv() and '"budget": 500.0' in plan.to_json()


def test_action_catalogue_checks() -> None:
    with pytest.raises(ValidationError):
        roadmap.parse_actions(ACTIONS.replace("depends_on: [C]", "depends_on: [Z]"))
    with pytest.raises(ValidationError, match="cycle"):
        roadmap.parse_actions(
            ACTIONS.replace(
                "id: C, name: {en: C}, area: y, cost_class: S, months: 4, depends_on: []",
                "id: C, name: {en: C}, area: y, cost_class: S, months: 4, depends_on: [B]",
            )
        )
    shipped = roadmap.load_actions()  # every indicator exists in the catalogue
    assert len(shipped.actions) >= 20
    cases = shipped.cases()
    assert any(not c["illustrative"] for c in cases) and any(c["illustrative"] for c in cases)
    assert any("Woetzel" in a.evidence for a in shipped.actions.values())


# ------------------------------------------------------------------------------------------------
# stakeholders


def test_group_weights_are_means_of_respondents_shares() -> None:
    text = "group,respondent,area,points\ng,r1,a,60\ng,r1,b,40\ng,r2,a,20\ng,r2,b,20\n"
    frame = stakeholders.parse_allocations(text, areas=["X.a", "X.b"])
    weights = stakeholders.group_weights(frame, ["X.a", "X.b"])
    assert weights.loc["X.a", "g"] == pytest.approx(55.0)  # (60 + 50) / 2
    assert weights.loc["X.b", "g"] == pytest.approx(45.0)
    with pytest.raises(ValidationError) as info:
        stakeholders.parse_allocations("group,respondent,area,points\ng,r,zz,5\n", areas=["X.a"])
    assert info.value.problems[0].row == 2


def test_index_rebuilt_per_group_shows_rank_changes_and_disagreement() -> None:
    framework = framework_from_tree(
        {
            "code": "X",
            "children": [
                {"code": "X.a", "children": [{"code": "ia"}]},
                {"code": "X.b", "children": [{"code": "ib"}]},
            ],
        }
    )
    spec = IndexSpec.from_text(
        "data: {unit_column: place}\nsteps:\n  - {step: normalise, method: minmax, params: {low: 0, high: 100}}\n  - {step: aggregate}\n"
    )
    data = pd.DataFrame({"place": ["P", "Q", "R"], "ia": [10.0, 0.0, 5.0], "ib": [0.0, 10.0, 5.0]})
    text = (
        "group,respondent,area,points\nfans_a,1,a,80\nfans_a,1,b,20\nfans_b,1,a,20\nfans_b,1,b,80\n"
    )
    allocations = stakeholders.parse_allocations(text, areas=["X.a", "X.b"])
    result = stakeholders.compare_groups(spec, data, framework, allocations)
    # normalised: P (100, 0), Q (0, 100), R (50, 50)
    assert result.scores.loc["P", "fans_a"] == pytest.approx(80.0)
    assert result.scores.loc["Q", "fans_b"] == pytest.approx(80.0)
    assert result.scores.loc["R"].tolist() == pytest.approx([50.0, 50.0, 50.0])
    assert result.ranks.loc[["P", "Q", "R"], "fans_a"].tolist() == [1, 3, 2]
    assert result.ranks.loc[["P", "Q", "R"], "fans_b"].tolist() == [3, 1, 2]
    assert result.ranks["nominal"].tolist() == [1, 1, 1]  # equal weights: a three-way tie
    assert result.rank_spread.to_dict() == {"P": 2, "Q": 2, "R": 0}
    assert result.disagreement.to_dict() == pytest.approx({"X.a": 60.0, "X.b": 60.0})
    assert result.mean_shift.to_dict() == pytest.approx({"fans_a": 1.0, "fans_b": 1.0})
    assert result.priorities["fans_a"][0] == "X.a"


# ------------------------------------------------------------------------------------------------
# peers and mentors


def _features() -> tuple[peers.Features, pd.DataFrame, pd.Series, pd.Series]:
    profile = pd.DataFrame(
        {"area1": [20.0, 60.0, 25.0, 90.0], "area2": [50.0, 50.0, 50.0, 50.0]},
        index=["A", "B", "C", "D"],
    )
    population = pd.Series(100_000, index=profile.index)  # all alike: the size block drops out
    mono = pd.Series([True, True, False, False], index=profile.index)
    features = peers.Features.build(
        population=population,
        single_industry=mono,
        economy=pd.DataFrame(index=profile.index),
        profile=profile,
    )
    return features, profile, population, mono


def test_distances_by_hand() -> None:
    features, *_ = _features()
    dist = peers.distances(features, "A")
    sd = math.sqrt(
        ((20 - 48.75) ** 2 + (60 - 48.75) ** 2 + (25 - 48.75) ** 2 + (90 - 48.75) ** 2) / 4
    )
    # kind block: A and B both single-industry (z = 1), C and D not (z = −1): d² = 0 or 4;
    # profile block: area2 has no variance and drops out, so d² = ((x − 20) / sd)²
    expected = {
        "B": math.sqrt((0 + (40 / sd) ** 2) / 2),
        "C": math.sqrt((4 + (5 / sd) ** 2) / 2),
        "D": math.sqrt((4 + (70 / sd) ** 2) / 2),
    }
    assert list(dist.index) == ["B", "C", "D"]
    assert dist.to_dict() == pytest.approx(expected)


def test_mentors_best_similar_performers_with_reasons() -> None:
    features, profile, population, mono = _features()
    report = peers.find_mentors(
        "A",
        features,
        profile,
        population=population,
        single_industry=mono,
        n_weak=1,
        n_mentors=3,
        margin=10,
    )
    assert report.weak_areas == [("area1", 20.0)]  # ties: area1 comes first
    mentors = report.mentors["area1"]
    # D (+70) and B (+40) lead by at least 10, best first; C (+5) only fills the third place
    assert [(m.place, m.lead) for m in mentors] == [("D", 70.0), ("B", 40.0), ("C", 5.0)]
    assert mentors[1].reason.startswith("area1 60 vs 20 (+40); similar place #1")
    assert "also a single-industry town" in mentors[1].reason
    assert "a city" in mentors[0].reason


# ------------------------------------------------------------------------------------------------
# properties of the roadmap


@st.composite
def _instances(draw: st.DrawFn) -> tuple[str, list[roadmap.Gap], float]:
    n = draw(st.integers(1, 6))
    lines = [
        "cost_classes:",
        "  S: {nominal: 50}",
        "  M: {nominal: 300}",
        "  L: {nominal: 1200}",
        "actions:",
    ]
    for k in range(n):
        deps = [f"a{j}" for j in range(k) if draw(st.booleans())]  # only earlier: no cycles
        cls = draw(st.sampled_from(["S", "M", "L"]))
        by = draw(st.integers(1, 60))
        ind = draw(st.sampled_from(["x", "y"]))
        lines.append(
            f"  - {{id: a{k}, name: {{en: a{k}}}, area: z, cost_class: {cls}, months: 3, "
            f"depends_on: [{', '.join(deps)}], moves: [{{indicator: {ind}, change: points, by: {by}}}]}}"
        )
    gaps = roadmap.gap_analysis(
        {"x": float(draw(st.integers(0, 100))), "y": float(draw(st.integers(0, 100)))},
        directions={"x": 1, "y": 1},
        spans={"x": 100.0, "y": 100.0},
        goals={"x": 100.0, "y": 80.0},
    )
    return "\n".join(lines), gaps, float(draw(st.integers(0, 3000)))


@settings(max_examples=60, deadline=None)
@given(_instances())
def test_roadmap_stays_within_budget_and_respects_dependencies(
    instance: tuple[str, list[roadmap.Gap], float],
) -> None:
    text, gaps, budget = instance
    catalogue = roadmap.parse_actions(text)
    plan = roadmap.plan_roadmap(
        catalogue, gaps, weights={"x": 0.5, "y": 0.5}, spans={"x": 100.0, "y": 100.0}, budget=budget
    )
    assert plan.spent <= budget + 1e-9
    order = [s.action for s in plan.steps]
    assert len(order) == len(set(order))
    for step in plan.steps:
        assert all(d in order[: order.index(step.action)] for d in step.depends_on)
        assert step.start_month >= max(
            (s.end_month for s in plan.steps if s.action in step.depends_on), default=0
        )
    # gains never exceed the gaps: remaining = initial − impact, never below zero
    assert plan.remaining_gap_points == pytest.approx(plan.initial_gap_points - plan.impact)
    assert plan.remaining_gap_points >= -1e-9
