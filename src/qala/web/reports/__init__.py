"""Reports as HTML and PDF with plots and a method annex: a city, the national rating, PLS-SEM.

Built from the same view models as the pages (``qala.web.data``), so a report says what the
dashboard shows. ``qala report city CITY --pdf`` (``qala.cli.report``) writes them from the shell.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes

from qala.components.catalog.services import get_place
from qala.core.errors import NotFoundError
from qala.runtime import Context
from qala.web import data
from qala.web.i18n import Translator
from qala.web.reports.document import (
    PRIMARY,
    SERIES,
    Block,
    FigureBlock,
    Heading,
    Note,
    Paragraph,
    Report,
    Table,
)

__all__ = ["Report", "build_city_report", "build_rating_report", "build_sem_report"]

REFERENCES = (
    "OECD/JRC (2008). Handbook on Constructing Composite Indicators: Methodology and User Guide. OECD Publishing.",
    "Saisana, M., Saltelli, A., Tarantola, S. (2005). Uncertainty and sensitivity analysis techniques as tools for the quality assessment of composite indicators. J. R. Stat. Soc. A 168(2), 307–323.",
    "Smart City rating of the cities of Kazakhstan (Ministry of Digital Development; published since 2020); Reference standard 2.0 (2022).",
)


def _method_annex(t: Translator, run: Any | None, spec_text: str | None) -> list[Block]:
    blocks: list[Block] = [
        Paragraph(t("report.method_intro")),
        Heading(t("report.method_steps"), 2),
        Paragraph(t("report.method_steps_text")),
        Heading(t("report.method_uncertainty"), 2),
        Paragraph(
            t("report.method_uncertainty_text", n=run.replications if run is not None else 0)
        ),
        Heading(t("report.method_categories"), 2),
        Paragraph(t("indicators.categories_hint")),
        Heading(t("report.method_data"), 2),
        Paragraph(t("report.method_data_text")),
    ]
    if run is not None and run.illustrative:
        blocks.append(Note(t("rating.illustrative", share=round(run.illustrative_share * 100))))
    if spec_text:
        blocks.append(Heading(t("report.method_spec"), 2))
        blocks.append(Paragraph(spec_text.strip(), muted=True, kind="code"))
    blocks.append(Heading(t("report.references"), 2))
    blocks.extend(Paragraph(r, muted=True, kind="cite") for r in REFERENCES)
    return blocks


def _spec_text(context: Context, run_id: int | None) -> str | None:
    if run_id is None or not data.installed("rating"):
        return None
    from qala.components.rating import services as rating

    with context.database.session() as session:
        try:
            return str(rating.get_run(session, run_id).spec_text)
        except NotFoundError:
            return None


# ---------------------------------------------------------------------------------------------
# City


def build_city_report(context: Context, code: str, t: Translator) -> Report:
    """The city's profile as a report: rank with interval, areas, trend, values, method annex."""
    with context.database.session() as session:
        place = get_place(session, code)
        profile = data.city_profile(session, context, place, t)
    blocks: list[Block] = []
    if profile.illustrative:
        blocks.append(Note(t("illustrative.banner")))
    blocks += _city_rank_blocks(profile, t)
    blocks += _city_area_blocks(profile, t)
    blocks += _city_trend_blocks(profile, t)
    if profile.assessment is not None:
        blocks += _assessment_blocks(profile.assessment, t)
    blocks += _city_value_blocks(profile, t)
    spec = _spec_text(context, profile.run.id if profile.run is not None else None)
    return Report(
        title=t("report.city_title", city=profile.name),
        subtitle=" · ".join(_city_facts(profile, t)),
        blocks=blocks,
        annex_title=t("report.annex"),
        annex=_method_annex(t, profile.run, spec),
        language=t.language,
    )


def _city_facts(profile: data.CityProfile, t: Translator) -> list[str]:
    """Region, kind, single-industry town, population: the report's subtitle."""
    facts = [t("place.kind_" + profile.place.kind)]
    if profile.region_name:
        facts.insert(0, profile.region_name)
    if profile.monotown:
        facts.append(t("place.monotown"))
    if profile.population:
        facts.append(f"{t('place.population')} {profile.population:,}".replace(",", "\u202f"))
    return facts


def _city_rank_blocks(profile: data.CityProfile, t: Translator) -> list[Block]:
    blocks: list[Block] = [Heading(t("city.rank"), 2)]
    if profile.rating is None or profile.run is None:
        return [*blocks, Paragraph(t("city.not_ranked"))]
    r = profile.rating
    text = t(
        "report.city_rank",
        city=profile.name,
        rank=r.rank,
        places=profile.run.places,
        low=_int(r.rank_q05),
        high=_int(r.rank_q95),
        score=f"{r.score:.1f}" if r.score is not None else "—",
        year=profile.run.year,
    )
    return [*blocks, Paragraph(text)]


def _city_area_blocks(profile: data.CityProfile, t: Translator) -> list[Block]:
    """The areas' radar against the national median, their table, and the weakest three."""
    areas = profile.areas
    if not areas:
        return []
    blocks: list[Block] = [
        Heading(t("city.areas"), 2),
        FigureBlock(
            lambda ax: _radar(
                ax,
                [a.name for a in areas],
                [
                    (profile.name, [a.score for a in areas]),
                    (t("city.national_median"), [a.median for a in areas]),
                ],
            ),
            caption=t("city.radar_label", city=profile.name),
            height=4.2,
            polar=True,
        ),
        Table(
            [t("city.area"), t("city.score"), t("city.median"), t("rating.rank")],
            [[a.name, a.score, a.median, _int(a.rank)] for a in areas],
            caption=t("city.areas_caption"),
            numeric={1, 2, 3},
        ),
    ]
    weakest = sorted(
        (a for a in areas if a.score is not None and a.median is not None),
        key=lambda a: (a.score or 0) - (a.median or 0),
    )[:3]
    if weakest:
        blocks.append(Paragraph(t("report.weakest", areas=", ".join(a.name for a in weakest))))
    return blocks


def _city_trend_blocks(profile: data.CityProfile, t: Translator) -> list[Block]:
    if not profile.history:
        return []
    history = [h for h in profile.history if h["score"] is not None]
    return [
        Heading(t("city.trend"), 2),
        FigureBlock(
            lambda ax: _trend(ax, history, t("city.score"), t("rating.rank")),
            caption=t("city.trend_label", city=profile.name),
            height=2.8,
        ),
    ]


def _city_value_blocks(profile: data.CityProfile, t: Translator) -> list[Block]:
    """The latest year's values, one table per category."""
    if not profile.categories:
        return []
    blocks: list[Block] = [
        Heading(t("city.values", year=profile.latest_year), 2),
        Paragraph(t("city.values_hint"), muted=True),
    ]
    for group in profile.categories:
        rows = [
            [v["name"], v["value"], v["unit"], t("illustrative.short") if v["illustrative"] else ""]
            for v in group.values
        ]
        blocks.append(
            Table(
                [t("indicator.name"), t("indicator.value"), t("indicator.unit"), ""],
                rows,
                caption=f"{t('category.' + group.category)} ({len(rows)})",
                numeric={1},
            )
        )
    return blocks


def _assessment_blocks(assessment: Any, t: Translator) -> list[Block]:
    blocks: list[Block] = [
        Heading(t("city.balance"), 2),
        Paragraph(t("city.balance_hint"), muted=True),
    ]
    blocks.append(
        Table(
            [t("indicators.category"), t("city.score")],
            [[t("category." + c), v] for c, v in assessment.balance.items()],
            numeric={1},
        )
    )
    if assessment.balance_reason:
        blocks.append(Paragraph(assessment.balance_reason))
    if assessment.maturity is not None:
        blocks.append(Heading(t("city.maturity"), 2))
        blocks.append(
            Paragraph(
                f"{assessment.maturity.level} / 5 — {assessment.maturity.label}. {assessment.generation_text}"
            )
        )
        blocks.append(
            Table(
                [t("city.area"), t("city.maturity"), ""],
                [[d[0], d[1], d[2]] for d in assessment.maturity.domains],
                numeric={1},
            )
        )
    if assessment.roadmap_steps:
        blocks.append(Heading(t("city.roadmap"), 2))
        blocks.append(
            Table(
                [
                    "#",
                    t("city.action"),
                    t("city.area"),
                    t("city.months"),
                    t("city.cost_m"),
                    t("city.impact"),
                ],
                [
                    [s["position"], s["name"], s["area"], s["months"], s["cost"], s["impact"]]
                    for s in assessment.roadmap_steps
                ],
                numeric={0, 3, 4, 5},
            )
        )
    if assessment.mentors:
        blocks.append(Heading(t("city.mentors"), 2))
        blocks.append(Paragraph(t("city.mentors_hint"), muted=True))
        blocks.append(
            Table(
                [t("city.area"), t("city.mentor"), t("city.why")],
                [[m[0], m[2], m[3]] for m in assessment.mentors],
            )
        )
    return blocks


def _int(value: Any) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return round(float(value))


def _radar(ax: Axes, axes: list[str], series: list[tuple[str, list[float | None]]]) -> None:
    n = len(axes)
    angles = np.linspace(0, 2 * np.pi, n, endpoint=False).tolist()
    for k, (name, values) in enumerate(series):
        v = [0.0 if x is None else float(x) for x in values]
        ax.plot(angles + angles[:1], v + v[:1], color=SERIES[k], linewidth=1.8, label=name)
        ax.fill(angles + angles[:1], v + v[:1], color=SERIES[k], alpha=0.15)
    ax.set_xticks(angles)
    ax.set_xticklabels([a[:20] for a in axes], fontsize=7)
    ax.set_ylim(0, 100)
    ax.set_yticks([25, 50, 75, 100])
    ax.tick_params(axis="y", labelsize=6)
    ax.legend(loc="upper left", bbox_to_anchor=(1.1, 1.05), fontsize=7, frameon=False)


def _trend(ax: Axes, history: list[dict[str, Any]], score_label: str, rank_label: str) -> None:
    years = [h["year"] for h in history]
    ax.plot(years, [h["score"] for h in history], marker="o", color=PRIMARY, label=score_label)
    ax.set_ylabel(score_label)
    ax.set_xticks(years)
    ax.grid(alpha=0.3)
    ranks = [h["rank"] for h in history]
    if any(r is not None for r in ranks):
        twin = ax.twinx()
        twin.plot(years, ranks, marker="s", linestyle="--", color=SERIES[1], label=rank_label)
        twin.invert_yaxis()
        twin.set_ylabel(rank_label)


# ---------------------------------------------------------------------------------------------
# National rating


def build_rating_report(context: Context, t: Translator, *, year: int | None = None) -> Report:
    """The stored national rating with rank intervals, score distribution and method annex."""
    with context.database.session() as session:
        board = data.rating_board(session, t, year=year)
    if not board.available or board.run is None:
        raise NotFoundError(board.message or "no rating")
    run = board.run
    blocks: list[Block] = []
    if run.illustrative:
        blocks.append(Note(t("rating.illustrative", share=round(run.illustrative_share * 100))))
    meta = t(
        "rating.meta",
        year=run.year,
        places=run.places,
        indicators=run.indicators,
        n=run.replications,
    )
    blocks += [Paragraph(meta), Paragraph(t("rating.lead"), muted=True)]
    blocks += _rating_figures(board.entries, t)
    blocks += [Heading(t("report.full_table"), 2), _rating_table(board.entries, t)]
    if run.warnings:
        blocks.append(Heading(t("rating.warnings"), 2))
        blocks.extend(Paragraph(w, muted=True) for w in run.warnings)
    return Report(
        title=t("rating.title"),
        subtitle=t("report.rating_subtitle", year=run.year),
        blocks=blocks,
        annex_title=t("report.annex"),
        annex=_method_annex(t, run, _spec_text(context, run.id)),
        language=t.language,
    )


def _rating_figures(entries: list[Any], t: Translator) -> list[Block]:
    """The top 25's rank intervals and the score distribution, cities against monotowns."""
    monotowns = [e for e in entries if e.monotown]
    others = [e for e in entries if not e.monotown]
    return [
        FigureBlock(
            lambda ax: _rank_intervals(ax, entries[:25], t("rating.axis_rank")),
            caption=t("report.top25"),
            height=5.2,
        ),
        FigureBlock(
            lambda ax: _score_hist(
                ax,
                others,
                monotowns,
                t("rating.kind_city"),
                t("rating.kind_mono"),
                t("rating.score"),
            ),
            caption=t("report.distribution"),
            height=2.6,
        ),
    ]


def _rating_table(entries: list[Any], t: Translator) -> Table:
    return Table(
        [
            t("rating.rank"),
            t("rating.interval"),
            t("rating.city"),
            t("rating.region"),
            t("rating.score"),
        ],
        [
            [
                e.rank,
                f"{_int(e.rank_q05)}–{_int(e.rank_q95)}" if e.rank_q05 is not None else "—",
                e.name + (" *" if e.monotown else ""),
                e.region_name,
                e.score,
            ]
            for e in entries
        ],
        caption=t("rating.caption", n=len(entries)) + " · * " + t("place.monotown"),
        numeric={0, 4},
    )


def _rank_intervals(ax: Axes, entries: list[Any], axis_label: str) -> None:
    names = [e.name for e in entries][::-1]
    ranks = [float(e.rank or 0) for e in entries][::-1]
    low = [float(e.rank_q05 if e.rank_q05 is not None else e.rank or 0) for e in entries][::-1]
    high = [float(e.rank_q95 if e.rank_q95 is not None else e.rank or 0) for e in entries][::-1]
    y = np.arange(len(names))
    ax.hlines(y, low, high, color="#9fb6c4", linewidth=4)
    ax.plot(ranks, y, "o", color=PRIMARY)
    ax.set_yticks(y)
    ax.set_yticklabels(names, fontsize=7)
    ax.set_xlabel(axis_label)
    ax.grid(axis="x", alpha=0.3)


def _score_hist(
    ax: Axes, others: list[Any], monotowns: list[Any], a: str, b: str, xlabel: str
) -> None:
    bins = [float(b) for b in np.linspace(0, 100, 21)]
    ax.hist(
        [e.score for e in others if e.score is not None],
        bins=bins,
        color=PRIMARY,
        alpha=0.75,
        label=a,
    )
    ax.hist(
        [e.score for e in monotowns if e.score is not None],
        bins=bins,
        color=SERIES[1],
        alpha=0.75,
        label=b,
    )
    ax.set_xlabel(xlabel)
    ax.legend(fontsize=7, frameon=False)
    ax.grid(alpha=0.3)


# ---------------------------------------------------------------------------------------------
# PLS-SEM


SEM_REFERENCES = (
    "Hair, J. F., Hult, G. T. M., Ringle, C. M., Sarstedt, M. (2022). A Primer on Partial Least Squares Structural Equation Modeling (PLS-SEM), 3rd ed. Sage.",
    "Dijkstra, T. K., Henseler, J. (2015). Consistent partial least squares path modeling. MIS Quarterly 39(2), 297–316.",
    "Henseler, J., Ringle, C. M., Sarstedt, M. (2015). A new criterion for assessing discriminant validity in variance-based SEM. JAMS 43, 115–135.",
    "Roemer, E., Schuberth, F., Henseler, J. (2021). HTMT2 – an improved criterion for assessing discriminant validity in structural equation modeling. Industrial Management & Data Systems 121(12), 2637–2650.",
    "Liengaard, B. D., Sharma, P. N., Hult, G. T. M., Jensen, M. B., Sarstedt, M., Hair, J. F., Ringle, C. M. (2021). Prediction: Coveted, yet forsaken? Introducing a cross-validated predictive ability test in partial least squares path modeling. Decision Sciences 52(2), 362–392.",
)


def build_sem_report(
    model_text: str,
    frame: pd.DataFrame,
    t: Translator,
    *,
    title: str = "PLS-SEM",
    bootstrap: int = 0,
    seed: int = 0,
    fit_test: int = 199,
    cvpat_repeats: int = 5,
) -> Report:
    """Fit a PLS-SEM model (``qala.engines.plssem``) and report paths, R², reliability,
    loadings, discriminant validity (HTMT, HTMT2), overall fit (SRMR, d_ULS, d_G with the
    exact-fit test on ``fit_test`` resamples) and CVPAT, with a path diagram plot and a method
    annex. Fit and CVPAT are left out for models they do not support (two-stage models)."""
    from qala.engines.plssem import PLSSEM

    result = PLSSEM(model_text).fit(frame)
    boot = result.bootstrap(bootstrap, seed=seed) if bootstrap > 0 else None
    loadings = result.loadings
    summary = t(
        "sem.summary", n=len(frame), constructs=len(loadings.columns), items=len(loadings.index)
    )
    blocks: list[Block] = [
        Paragraph(summary),
        *_sem_path_blocks(result.paths, boot, t),
        Heading("R²", 2),
        Table(
            [t("sem.construct"), "R²", t("sem.r2_adj")],
            [
                [name, float(v), float(result.r2_adj.get(name, float("nan")))]
                for name, v in result.r2.items()
            ],
            numeric={1, 2},
        ),
        Heading(t("sem.reliability"), 2),
        Table(
            [t("sem.construct"), "α", "ρA", "ρC", "AVE"],
            [[name, *[float(x) for x in row]] for name, row in result.reliability.iterrows()],
            numeric={1, 2, 3, 4},
        ),
        Heading(t("sem.loadings"), 2),
        _sem_loadings_table(loadings, t),
        *_sem_discriminant_blocks(result, t),
        *_sem_fit_blocks(result, t, fit_test=fit_test, seed=seed, cvpat_repeats=cvpat_repeats),
    ]
    annex: list[Block] = [
        Paragraph(t("sem.method")),
        Heading(t("sem.model"), 2),
        Paragraph(model_text.strip(), muted=True),
        Heading(t("report.references"), 2),
        *(Paragraph(reference, muted=True) for reference in SEM_REFERENCES),
    ]
    return Report(
        title=title,
        subtitle=t("sem.subtitle", n=len(frame)),
        blocks=blocks,
        annex_title=t("report.annex"),
        annex=annex,
        language=t.language,
    )


def _sem_path_blocks(paths: pd.Series, boot: Any | None, t: Translator) -> list[Block]:
    """The path coefficients as bars and as a table (with bootstrap t, p and 95% CI when run)."""
    rows: list[list[Any]] = []
    for label, value in paths.items():
        row: list[Any] = [label, float(value)]
        if boot is not None:
            b = boot.paths.loc[label]
            row += [float(b["t"]), float(b["p"]), f"[{b['ci_low']:.3f}, {b['ci_high']:.3f}]"]
        rows.append(row)
    columns = [t("sem.path"), t("sem.coefficient")] + (
        ["t", "p", "95% CI"] if boot is not None else []
    )
    return [
        Heading(t("sem.paths"), 2),
        FigureBlock(
            lambda ax: _path_bars(ax, paths),
            caption=t("sem.paths_caption"),
            height=max(2.0, 0.35 * len(paths) + 0.8),
        ),
        Table(columns, rows, numeric=set(range(1, len(columns)))),
    ]


def _sem_discriminant_blocks(result: Any, t: Translator) -> list[Block]:
    """HTMT and HTMT2 of every pair of constructs, side by side."""
    htmt, htmt2 = result.htmt, result.htmt2
    names = list(htmt.columns)
    rows = [
        [f"{a} – {b}", _three(htmt.loc[a, b]), _three(htmt2.loc[a, b])]
        for i, a in enumerate(names)
        for b in names[i + 1 :]
    ]
    return [
        Heading(t("sem.discriminant"), 2),
        Table([t("sem.pair"), "HTMT", "HTMT2"], rows, numeric={1, 2}),
    ]


def _sem_fit_blocks(
    result: Any, t: Translator, *, fit_test: int, seed: int, cvpat_repeats: int
) -> list[Block]:
    """Overall fit with its test, and CVPAT against both benchmarks."""
    from qala.core.errors import SpecificationError

    try:
        fit = result.model_fit(n_boot=fit_test, seed=seed)
        cv = result.cvpat(folds=10, repeats=cvpat_repeats, seed=seed)
    except SpecificationError:
        return []
    tested = bool(fit.quantiles)
    columns = [t("sem.fit_measure"), t("sem.fit_model"), t("sem.fit_value")]
    columns += ["HI95", "HI99", "p"] if tested else []
    rows: list[list[Any]] = []
    for measure, label in (("srmr", "SRMR"), ("d_uls", "d_ULS"), ("d_g", "d_G")):
        for model in ("saturated", "estimated"):
            row: list[Any] = [label, t(f"sem.fit_{model}"), _three(fit.values[model][measure])]
            if tested:
                q = fit.quantiles[model][measure]
                row += [_three(q["hi95"]), _three(q["hi99"]), _three(fit.p_values[model][measure])]
            rows.append(row)
    cv_rows = [
        [
            t(f"sem.benchmark_{name.lower()}"),
            _three(test.pls_loss),
            _three(test.benchmark_loss),
            _three(test.difference),
            f"{test.t:.2f}",
            _three(test.p),
        ]
        for name, test in cv.tests.items()
    ]
    blocks: list[Block] = [
        Heading(t("sem.fit"), 2),
        Table(columns, rows, numeric=set(range(2, len(columns)))),
    ]
    if tested:
        blocks.append(Paragraph(t("sem.fit_caption", n=fit.n_boot), muted=True))
    return [
        *blocks,
        Heading(t("sem.cvpat"), 2),
        Table(
            [t("sem.benchmark"), t("sem.pls_loss"), t("sem.benchmark_loss"), "Δ", "t", "p"],
            cv_rows,
            numeric={1, 2, 3, 4, 5},
        ),
        Paragraph(t("sem.cvpat_caption", folds=cv.folds, repeats=cv.repeats), muted=True),
    ]


def _three(value: float) -> str:
    """Fit measures and ratios read to three decimals (the tables' default shows two)."""
    return f"{float(value):.3f}" if np.isfinite(value) else "—"


def _sem_loadings_table(loadings: pd.DataFrame, t: Translator) -> Table:
    """Each item's loading on its own construct (the zero cross-loadings left out)."""
    rows = [
        [item, construct, float(loadings.loc[item, construct])]
        for construct in loadings.columns
        for item in loadings.index
        if abs(float(loadings.loc[item, construct])) > 1e-12
    ]
    return Table([t("sem.item"), t("sem.construct"), t("sem.loading")], rows, numeric={2})


def _path_bars(ax: Axes, paths: pd.Series) -> None:
    labels = list(paths.index)[::-1]
    values = [float(v) for v in paths.values][::-1]
    colours = [PRIMARY if v >= 0 else SERIES[4] for v in values]
    ax.barh(labels, values, color=colours)
    ax.axvline(0, color="#8796a5", linewidth=0.8)
    ax.tick_params(axis="y", labelsize=7)
    ax.grid(axis="x", alpha=0.3)
