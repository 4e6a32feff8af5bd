"""View models of the what-if rating and the analysis views (the pages stay thin routes)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from qala.core.errors import ValidationError
from qala.runtime import Context
from qala.web.cache import LRUCache, cached_whatif, cached_whatif_result, store_key
from qala.web.charts import SunArc, bump_chart, heatmap_chart, strip_chart, sunburst_chart
from qala.web.data import installed
from qala.web.i18n import Translator

SETTING_KEYS = ("w", "norm", "agg", "imp")

REBUILT: LRUCache[Any] = LRUCache(max_entries=4, max_bytes=1 << 62)
"""Stored runs built again (every step's data set) for the analysis views."""


def _year(query: Mapping[str, str]) -> int | None:
    raw = query.get("year") or ""
    if not raw:
        return None
    if not raw.isdigit():
        raise ValidationError.single("year must be a number", column="year", value=raw)
    return int(raw)


def presets() -> dict[str, dict[str, float]]:
    """Stakeholder groups' area weights, when the assessment component is installed."""
    if not installed("assessment"):
        return {}
    from qala.components.assessment.services import stakeholder_presets

    return stakeholder_presets()


def _settings(whatif: Any, query: Mapping[str, str]) -> Any:
    from qala.components.rating.whatif import parse_settings, preset_settings

    preset = query.get("preset") or ""
    if preset and preset != "official":
        return preset_settings(whatif, presets(), preset)
    merged = dict(query)
    singles = [f"{k[3:]}:{v}" for k, v in query.items() if k.startswith("wt.") and v != ""]
    if singles:  # the form without a script sends one field per slider
        merged["w"] = ",".join(filter(None, [merged.get("w", ""), *singles]))
    return parse_settings(merged)


def _rows(whatif: Any, result: Any, t: Translator) -> list[dict[str, Any]]:
    rows = []
    for unit, row in result.table.iterrows():
        code = str(unit)
        drivers = [
            {"name": t.name(whatif.node_names.get(c, {"en": c})), "value": round(v, 2)}
            for c, v in result.drivers.get(code, [])
        ]
        rows.append(
            {
                "code": code,
                "name": t.name(whatif.place_names.get(code, {"en": code})),
                "rank": None if row["rank"] != row["rank"] else int(row["rank"]),
                "score": None if row["score"] != row["score"] else round(float(row["score"]), 2),
                "q05": None if row["q05"] != row["q05"] else int(float(row["q05"]) + 0.5),
                "q95": None if row["q95"] != row["q95"] else int(float(row["q95"]) + 0.5),
                "official_rank": None
                if row["official_rank"] != row["official_rank"]
                else int(row["official_rank"]),
                "shift": 0 if row["shift"] != row["shift"] else int(row["shift"]),
                "drivers": drivers,
            }
        )
    return rows


def whatif_json(context: Context, query: Mapping[str, str], t: Translator) -> dict[str, Any]:
    """The results the page's script draws: rows, weight shares, settings and the link."""
    return _whatif_payload(context, query, t)[0]


def _whatif_payload(
    context: Context, query: Mapping[str, str], t: Translator
) -> tuple[dict[str, Any], Any, Any]:
    from qala.components.rating.whatif import settings_query

    year = _year(query)
    key, whatif = cached_whatif(context, year)
    result = cached_whatif_result(key, whatif, _settings(whatif, query))
    link_query = settings_query(result.settings) | ({"year": str(year)} if year else {})
    return (
        {
            "rows": _rows(whatif, result, t),
            "weights": {k: round(v, 1) for k, v in result.weights.items()},
            "settings": link_query,
            "link": "/rating/what-if?" + urlencode(link_query),
            "moved": int((result.table["shift"].fillna(0) != 0).sum()),
            "exact_drivers": result.exact_drivers,
            "replications": result.replications,
            "milliseconds": round(result.milliseconds, 1),
        },
        whatif,
        result,
    )


def whatif_page(context: Context, query: Mapping[str, str], t: Translator) -> dict[str, Any]:
    """Everything the what-if template shows, for the settings in ``query``."""
    payload, whatif, result = _whatif_payload(context, query, t)
    fw = whatif.model.framework
    settings = result.settings
    official_shares = whatif.model.official_result().weights
    groups = []
    for parent, kids in whatif.groups():
        groups.append(
            {
                "parent": t.name(whatif.node_names.get(parent, {"en": parent})),
                "sliders": [
                    {
                        "code": k,
                        "name": t.name(whatif.node_names.get(k, {"en": k})),
                        "value": settings.weights.get(k, fw[k].weight),
                        "official": fw[k].weight,
                        "share": payload["weights"].get(k, 0.0),
                        "official_share": official_shares.get(k, 0.0),
                    }
                    for k in kids
                ],
            }
        )
    return {
        "year": whatif.year,
        "illustrative": whatif.illustrative,
        "groups": groups,
        "choices": whatif.model.choices(),
        "settings": settings,
        "official": whatif.model.official,
        "presets": ["official", *presets()],
        "preset": query.get("preset") or "",
        "result": payload,
        "query": payload["settings"],
    }


def save_variant(context: Context, query: Mapping[str, str], name: str) -> str:
    from qala.components.rating.whatif import save_variant as store_variant

    _, whatif = cached_whatif(context, _year(query))
    settings = _settings(whatif, query)
    with context.database.transaction() as session:
        row = store_variant(session, whatif, settings, name=name)
        return str(row.name)


# ---------------------------------------------------------------------------------------------
# Analysis views


def _rebuilt(context: Context, run_id: int) -> Any:
    from qala.components.rating.services import rebuild_run

    with context.database.session() as session:
        key = (*store_key(session), "rebuilt", run_id)
    return REBUILT.get_or_build(key, lambda: rebuild_run(context.database, run_id, replications=0))


def _int(query: Mapping[str, str], name: str) -> int | None:
    raw = query.get(name) or ""
    if not raw:
        return None
    if not raw.lstrip("-").isdigit():
        raise ValidationError.single(f"`{name}` must be a whole number", column=name, value=raw)
    return int(raw)


def analysis_page(context: Context, query: Mapping[str, str], t: Translator) -> dict[str, Any]:
    """Sunburst, one area's distributions, correlations and a bump chart of two runs."""
    from qala.components.catalog.services import list_places
    from qala.components.rating import services as rating
    from qala.engines.index.views import correlations

    with context.database.session() as session:
        runs = rating.list_runs(session)
        run_id = _int(query, "run") or rating.latest_run(session).id
        rating.get_run(session, run_id)
        places = {
            p.code: t.name({"kk": p.name_kk, "ru": p.name_ru, "en": p.name_en})
            for p in list_places(session)
        }
    outcome = _rebuilt(context, run_id)
    result = outcome.result
    fw = result.framework
    areas = list(fw.children(fw.root))
    area = query.get("area") or areas[0]
    if area not in fw.aggregates:
        raise ValidationError.single(f"`{area}` is not an area of the index", column="area")
    names = _node_names(outcome.spec_file.store.framework)

    def name(code: str) -> str:
        return t.name(names.get(code, {"en": fw[code].name or code}))

    distributions = _distributions(result, fw, area, name, places, t)
    within = correlations(result, 2)
    across = correlations(result, 1, 2, parent=area)
    heat_within = heatmap_chart(
        [name(c) for c in within.index],
        [name(c) for c in within.columns],
        within.to_numpy().tolist(),
        label=t("analysis.corr_within"),
    )
    heat_across = heatmap_chart(
        [name(c) for c in across.index],
        [name(c) for c in across.columns],
        across.to_numpy().tolist(),
        label=t("analysis.corr_across", name=name(area)),
    )
    compare_id = _int(query, "compare") or next((r.id for r in runs if r.id != run_id), None)
    bump = _bump(context, run_id, compare_id, t) if compare_id else None
    return {
        "runs": runs,
        "run_id": run_id,
        "compare_id": compare_id,
        "areas": [(a, name(a)) for a in areas],
        "area": area,
        "sunburst": sunburst_chart(_arcs(fw, name), label=t("analysis.sunburst")),
        "distributions": distributions,
        "heat_within": heat_within,
        "heat_across": heat_across,
        "bump": bump,
        "illustrative": outcome.illustrative,
        "year": outcome.year,
    }


def _distributions(
    result: Any, fw: Any, area: str, name: Any, places: dict[str, str], t: Translator
) -> list[dict[str, Any]]:
    """Each indicator of ``area``: its values before and after treatment, places by name."""
    from qala.engines.index.views import indicator_distribution

    distributions = []
    for code in [c for c in fw.leaves_under(area) if c in fw.indicators]:
        dist = indicator_distribution(result, code)
        flagged = set(dist.outliers)
        before = [
            (places.get(str(u), str(u)), float(v), "outlier" if u in flagged else "")
            for u, v in dist.raw.items()
        ]
        after = [
            (places.get(str(u), str(u)), float(v), "changed" if dist.flags.get(u, "") else "")
            for u, v in dist.treated.items()
        ]
        chart = strip_chart(
            [(t("analysis.before"), before), (t("analysis.after"), after)],
            label=t("analysis.distribution_of", name=name(code)),
            unit=dist.unit or "",
        )
        distributions.append(
            {
                "code": code,
                "name": name(code),
                "chart": chart,
                "outliers": len(flagged),
                "treatment": dist.treatment,
                "imputed": len(dist.imputed),
            }
        )
    return distributions


def _node_names(framework_id: str) -> dict[str, dict[str, str]]:
    from qala.components.rating.whatif import node_names

    return node_names(framework_id)


def _arcs(fw: Any, name: Any) -> list[SunArc]:
    from qala.engines.index.views import sunburst_arcs

    arcs = [a for a in sunburst_arcs(fw) if a.depth > 0]
    series: dict[str, int] = {}
    out = []
    for a in arcs:
        series[a.code] = (
            len([x for x in series if fw.level_of(x) == fw.level_of(a.code)])
            if a.depth == 1
            else series[a.parent or ""]
        )
        share = 100 * (a.end - a.start)
        out.append(
            SunArc(
                name(a.code),
                a.depth,
                a.start,
                a.end,
                series[a.code],
                f"{name(a.code)} — {share:.1f} %",
            )
        )
    return out


def _bump(context: Context, run_id: int, compare_id: int, t: Translator) -> Any:
    from qala.components.rating import services as rating
    from qala.engines.index.views import bump_table

    with context.database.session() as session:
        first, second = rating.get_run(session, run_id), rating.get_run(session, compare_id)
        labels = [f"#{r.id} · {r.year}" for r in (second, first)]
        entries = [rating.run_entries(session, r) for r in (second, first)]
    import pandas as pd

    series = {
        label: pd.Series({e.place: e.rank for e in rows if e.rank is not None}, dtype=float)
        for label, rows in zip(labels, entries, strict=True)
    }
    names = {e.place: t.name(e.name) for rows in entries for e in rows}
    table = bump_table(series)
    lines = [
        (names.get(str(u), str(u)), [None if v != v else float(v) for v in row])
        for u, row in table.iterrows()
    ]
    moved = table.iloc[:, 0] - table.iloc[:, 1]
    biggest = [
        names.get(str(u), str(u)) for u in moved.abs().sort_values(ascending=False).index[:5]
    ]
    return bump_chart(labels, lines, label=t("analysis.bump"), highlight=biggest)
