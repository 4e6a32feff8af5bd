"""`qala catalog …` and `qala places …`: browse the indicator catalogue and the places."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer
from rich.table import Table
from rich.tree import Tree

from qala.cli.common import console, print_json, reports_errors

if TYPE_CHECKING:
    from qala.components.catalog.frameworks import Catalogue, IndicatorDef

app = typer.Typer(
    help="Browse the indicator catalogue (ISO 37120/37122/37123, national rating…).",
    no_args_is_help=True,
)
places_app = typer.Typer(
    help="Kazakhstan's places: regions, cities, single-industry towns.", no_args_is_help=True
)

LanguageOption = typer.Option("en", "--lang", help="Language of names: kk, ru or en.")


def _catalogue() -> Catalogue:
    from qala.components.catalog.frameworks import load_catalogue

    return load_catalogue()


def _indicator_dict(ind: IndicatorDef) -> dict[str, object]:
    return {
        "id": ind.id,
        "ref": ind.ref,
        "framework": ind.framework,
        "area": ind.area,
        "name": ind.names,
        "definition": ind.definition,
        "unit": ind.unit,
        "polarity": ind.polarity,
        "category": ind.category,
        "level": ind.level,
    }


def _indicator_table(indicators: list[IndicatorDef], lang: str) -> Table:
    table = Table(show_lines=False)
    for column in ("id", "name", "unit", "polarity", "category"):
        table.add_column(column)
    for ind in indicators:
        table.add_row(ind.id, ind.name(lang), ind.unit, ind.polarity, ind.category)
    return table


@app.command("list")
@reports_errors
def list_indicators(
    framework: str | None = typer.Option(None, "--framework", "-f", help="Only this framework."),
    category: str | None = typer.Option(
        None, help="infrastructure, service, participation or outcome."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    lang: str = LanguageOption,
) -> None:
    """List indicators (or, without --framework and with --json, everything)."""
    catalogue = _catalogue()
    if framework:
        ids = catalogue.framework(framework).indicator_ids()
        indicators = [catalogue.indicators[i] for i in ids]
    else:
        indicators = list(catalogue.indicators.values())
    if category:
        indicators = [i for i in indicators if i.category == category]
    if as_json:
        print_json([_indicator_dict(i) for i in indicators])
        return
    if not framework:
        frameworks = Table(title=f"Frameworks (catalogue {catalogue.version})")
        for column in ("id", "name", "purpose", "indicators"):
            frameworks.add_column(column)
        for f in catalogue.frameworks.values():
            frameworks.add_row(f.id, f.name(lang), f.purpose, str(len(f.indicator_ids())))
        console.print(frameworks)
    console.print(_indicator_table(indicators, lang))


@app.command("show")
@reports_errors
def show(
    item_id: str = typer.Argument(..., help="An indicator id or a framework id."),
    as_json: bool = typer.Option(False, "--json"),
    lang: str = LanguageOption,
) -> None:
    """Show one indicator, or a framework as a tree."""
    catalogue = _catalogue()
    if item_id in catalogue.frameworks:
        framework = catalogue.frameworks[item_id]
        if as_json:
            print_json(catalogue.index_tree(item_id))
            return
        tree = Tree(f"[bold]{framework.name(lang)}[/] ({framework.citation})")

        def add(branch: Tree, node: object) -> None:
            from qala.components.catalog.frameworks import Node

            assert isinstance(node, Node)
            for child in node.children:
                if child.indicator:
                    ind = catalogue.indicators[child.indicator]
                    branch.add(f"{ind.id} — {ind.name(lang)} [dim]({ind.category}, {ind.unit})[/]")
                else:
                    add(branch.add(f"[bold]{child.name(lang)}[/]"), child)

        add(tree, framework.root)
        console.print(tree)
        return
    ind = catalogue.indicator(item_id)
    if as_json:
        print_json(_indicator_dict(ind))
        return
    unit = catalogue.units.get(ind.unit)
    console.print(f"[bold]{ind.id}[/] {ind.name(lang)}")
    for language in ("kk", "ru", "en"):
        console.print(f"  {language}: {ind.name(language)}")
    console.print(f"  definition: {ind.definition.get(lang) or ind.definition.get('en', '')}")
    console.print(
        f"  unit: {ind.unit} ({unit.name(lang) if unit else '?'}); polarity: {ind.polarity}"
    )
    console.print(f"  category: {ind.category}; framework: {ind.framework}; area: {ind.area}")


@app.command("search")
@reports_errors
def search(
    text: str = typer.Argument(
        ..., help="Text to look for in ids, names and definitions (any language)."
    ),
    as_json: bool = typer.Option(False, "--json"),
    lang: str = LanguageOption,
) -> None:
    """Find indicators by text."""
    found = _catalogue().search(text)
    if as_json:
        print_json([_indicator_dict(i) for i in found])
    else:
        console.print(_indicator_table(found, lang))
        console.print(f"{len(found)} indicator(s)")


@places_app.command("list")
@reports_errors
def list_places_command(
    level: str | None = typer.Option(None, help="country, region, city or district."),
    year: int | None = typer.Option(
        None, help="Year for single-industry status (default: this year)."
    ),
    as_json: bool = typer.Option(False, "--json"),
    lang: str = LanguageOption,
) -> None:
    """List places with their kind, single-industry status and latest population."""
    from datetime import date

    from qala.cli.common import open_context
    from qala.components.catalog.queries import list_places, single_industry_codes

    context = open_context()
    year = year or date.today().year
    with context.database.session() as session:
        places = list_places(session, level=level)
        monotowns = single_industry_codes(session, year)
        parents = {p.id: p.code for p in list_places(session)}
        rows = [
            {
                "code": p.code,
                "parent": parents.get(p.parent_id) if p.parent_id else None,
                "level": p.level,
                "kind": p.kind,
                "significance": p.significance,
                "name": {"kk": p.name_kk, "ru": p.name_ru, "en": p.name_en},
                "lat": p.lat,
                "lon": p.lon,
                "single_industry": p.code in monotowns,
                "population": {r.year: r.population for r in p.populations},
            }
            for p in places
        ]
    if as_json:
        print_json(rows)
        return
    table = Table(title=f"Places ({len(rows)}); single-industry status in {year}")
    for column in ("code", "name", "level", "kind", "single-industry", "population"):
        table.add_column(column)
    for row in rows:
        population: dict[int, int] = row["population"]  # type: ignore[assignment]
        latest = f"{population[max(population)]:,} ({max(population)})" if population else ""
        names: dict[str, str] = row["name"]  # type: ignore[assignment]
        table.add_row(
            str(row["code"]),
            names[lang],
            str(row["level"]),
            str(row["kind"]),
            "yes" if row["single_industry"] else "",
            latest,
        )
    console.print(table)
