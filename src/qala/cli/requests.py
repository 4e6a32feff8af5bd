"""`qala requests …`: the city's service catalogue, citizen requests, escalation and indicators."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.table import Table

from qala.cli.common import console, open_context, print_json, reports_errors

if TYPE_CHECKING:
    from qala.components.requests311.services import JurisdictionInfo
    from qala.runtime import Context

app = typer.Typer(
    help="Citizen service requests (Open311 GeoReport v2, a city's 109).", no_args_is_help=True
)

JurisdictionOption = typer.Option(
    None, "--jurisdiction", "-j", help="City code, e.g. astana (optional with one city)."
)
JsonOption = typer.Option(False, "--json", help="Print JSON for scripts.")


def _city(context: Context, code: str | None) -> JurisdictionInfo:
    from qala.components.requests311.services import load_jurisdictions, pick_jurisdiction

    with context.database.session() as session:
        return pick_jurisdiction(load_jurisdictions(session), code)


@app.command("load-catalogue")
@reports_errors
def load_catalogue_command(
    path: Path | None = typer.Argument(
        None,
        help="A city catalogue in YAML; default: every city's, from the national template.",
    ),
    city: str | None = typer.Option(
        None, "--city", help="Only this city's (a place code) from the national template."
    ),
    json_output: bool = JsonOption,
) -> None:
    """Create or update cities' departments, services (kk/ru/en, SLA, attributes) and routing."""
    from qala.components.requests311.catalogue import parse_catalogue
    from qala.components.requests311.services import (
        city_catalogue,
        load_catalogue,
        load_city_catalogues,
    )

    context = open_context()
    with context.database.transaction() as session:
        if path or city:
            catalogue = (
                parse_catalogue(path.read_text(encoding="utf-8"), file=path.name)
                if path
                else city_catalogue(str(city), year=context.clock().year)
            )
            cities = [load_catalogue(session, catalogue)]
        else:
            cities = load_city_catalogues(session, year=context.clock().year).jurisdictions
    summary = [
        {
            "jurisdiction": c.code,
            "services": len(c.services),
            "departments": len(c.departments),
            "routing_rules": len(c.routing),
        }
        for c in cities
    ]
    if json_output:
        print_json(summary)
        return
    for row in summary:
        console.print(
            f"[green]✓[/] {row['jurisdiction']}: {row['services']} services, {row['departments']} departments, {row['routing_rules']} routing rules"
        )


@app.command("services")
@reports_errors
def services_command(
    jurisdiction: str | None = JurisdictionOption,
    language: str = typer.Option("en", help="kk, ru or en."),
    json_output: bool = JsonOption,
) -> None:
    """List a city's services with department and SLA."""
    context = open_context()
    city = _city(context, jurisdiction)
    rows: list[dict[str, Any]] = [
        {
            "code": s.code,
            "name": s.names.get(language, s.names["en"]),
            "group": s.group,
            "department": city.departments[s.department_id].code
            if s.department_id in city.departments
            else None,
            "sla_hours": s.sla_hours,
            "attributes": [a.code for a in s.attributes],
        }
        for s in city.services.values()
        if s.active
    ]
    if json_output:
        print_json(rows)
        return
    table = Table(title=f"Services of {city.code}")
    for column in ("code", "name", "group", "department", "SLA h", "attributes"):
        table.add_column(column)
    for r in rows:
        table.add_row(
            r["code"],
            r["name"],
            r["group"],
            r["department"] or "",
            f"{r['sla_hours']:g}",
            ", ".join(r["attributes"]),
        )
    console.print(table)


@app.command("queue")
@reports_errors
def queue_command(
    jurisdiction: str | None = JurisdictionOption,
    department: str | None = typer.Option(None, help="Department code."),
    overdue: bool = typer.Option(False, help="Only requests past their deadline."),
    limit: int = typer.Option(50, min=1, max=1000),
    json_output: bool = JsonOption,
) -> None:
    """Unclosed requests, most escalated and oldest first."""
    from qala.components.requests311.services import Requests

    context = open_context()
    city = _city(context, jurisdiction)
    with context.database.session() as session:
        found = Requests(session, city, actor="cli", now=context.clock()).queue(
            department=department, overdue_only=overdue, limit=limit
        )
    if json_output:
        print_json(
            [
                {k: v for k, v in asdict(r).items() if k not in ("reporter", "notes", "audit")}
                for r in found
            ]
        )
        return
    table = Table(title="Queue")
    for column in (
        "id",
        "service",
        "status",
        "department",
        "district",
        "requested",
        "overdue",
        "level",
    ):
        table.add_column(column)
    for r in found:
        table.add_row(
            str(r.id),
            r.service_code,
            r.status,
            r.department or "",
            r.district or "",
            f"{r.requested_at:%Y-%m-%d %H:%M}",
            "yes" if r.overdue else "",
            str(r.escalation_level),
        )
    console.print(table)


@app.command("show")
@reports_errors
def show_command(
    request_id: int, jurisdiction: str | None = JurisdictionOption, json_output: bool = JsonOption
) -> None:
    """One request with its notes and audit trail (staff view, includes contact details)."""
    from qala.components.requests311.services import Requests

    context = open_context()
    city = _city(context, jurisdiction)
    with context.database.session() as session:
        detail = Requests(session, city, actor="cli", now=context.clock()).detail(request_id)
    if json_output:
        print_json(asdict(detail))
        return
    console.print(
        f"[bold]#{detail.id}[/] {detail.service_name} — {detail.status}{' (' + detail.close_reason + ')' if detail.close_reason else ''}"
    )
    console.print(
        f"department {detail.department}, district {detail.district}, requested {detail.requested_at:%Y-%m-%d %H:%M}Z"
    )
    for entry in detail.audit:
        console.print(
            f"  {entry.at:%Y-%m-%d %H:%M} {entry.actor}: {entry.action} {entry.changes or ''}",
            markup=False,
        )
    for note in detail.notes:
        console.print(
            f"  {'public' if note.public else 'internal'} note by {note.author}: {note.text}",
            markup=False,
        )


@app.command("escalate")
@reports_errors
def escalate_command(
    every: float | None = typer.Option(
        None, help="Repeat every this many seconds (a timer) instead of once."
    ),
    json_output: bool = JsonOption,
) -> None:
    """Escalate every unclosed request past its SLA, in every city (once, or on a timer)."""
    from qala.components.requests311.escalation import EscalationTimer, escalate_all

    context = open_context()

    def report(result: dict[str, list[tuple[int, int]]]) -> None:
        if json_output:
            print_json(
                {
                    code: [{"id": i, "level": level} for i, level in changed]
                    for code, changed in result.items()
                }
            )
        else:
            for code, changed in result.items():
                console.print(f"{code}: {len(changed)} request(s) escalated")

    if every is None:
        report(escalate_all(context))
        return
    timer = EscalationTimer(context, interval=every, on_scan=report).start()
    try:
        timer.wait()
    except KeyboardInterrupt:
        timer.stop()


@app.command("photos-sweep")
@reports_errors
def photos_sweep_command(
    older_than_hours: float = typer.Option(
        1.0, min=0.05, help="Leave files younger than this: their report may still be saving."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="List the files, delete nothing."),
    json_output: bool = JsonOption,
) -> None:
    """Delete photo files no stored report names (left by a server stopped while a report was
    saved or refused), on disk or in the bucket."""
    from datetime import timedelta

    from qala.components.requests311.photos import photo_store, sweep_orphans

    context = open_context()
    with context.database.session() as session:
        report = sweep_orphans(
            session,
            photo_store(context),
            now=context.clock(),
            grace=timedelta(hours=older_than_hours),
            dry_run=dry_run,
        )
    if json_output:
        print_json(report.as_dict())
        return
    verb = "would remove" if dry_run else "removed"
    console.print(
        f"{len(report.orphans)} photo file(s) no report names: {verb} "
        f"{len(report.orphans) if dry_run else report.removed}; "
        f"{report.kept_recent} younger than {older_than_hours:g} h left alone."
    )


@app.command("indicators")
@reports_errors
def indicators_command(
    jurisdiction: str | None = JurisdictionOption,
    write: bool = typer.Option(False, help="Write the city figures to the indicator catalogue."),
    per_service: bool = typer.Option(False, help="Show the per-service table too."),
    json_output: bool = JsonOption,
) -> None:
    """Median and p90 hours to close, share within SLA, reopen rate, requests per 1,000 residents."""
    from qala.components.requests311.indicators import compute_indicators, write_indicators

    context = open_context()
    city = _city(context, jurisdiction)
    with context.database.session() as session:
        result = compute_indicators(session, city, now=context.clock())
    written = write_indicators(context.database, result, imported_by="cli") if write else 0
    if json_output:
        print_json(
            {
                "jurisdiction": result.jurisdiction,
                "illustrative": result.illustrative,
                "by_city": result.by_city.to_dict(orient="records"),
                "by_service": result.by_service.to_dict(orient="records") if per_service else None,
                "rows_written": written,
            }
        )
        return
    frames = [("by city", result.by_city)] + (
        [("by service", result.by_service)] if per_service else []
    )
    for title, frame in frames:
        table = Table(
            title=f"{result.jurisdiction} {title}"
            + (" (illustrative data)" if result.illustrative else "")
        )
        for column in frame.columns:
            table.add_column(str(column))
        for row in frame.itertuples(index=False):
            table.add_row(*(f"{v:.1f}" if isinstance(v, float) else str(v) for v in row))
        console.print(table)
    if write:
        console.print(f"[green]✓[/] {written} values written to the catalogue")


@app.command("api-key")
@reports_errors
def api_key_command(name: str = typer.Argument(..., help="The client application's name.")) -> None:
    """Register a trusted Open311 client and print its api_key (shown once)."""
    from qala.components.requests311.services import create_api_client

    context = open_context()
    with context.database.transaction() as session:
        key = create_api_client(session, name)
    console.print(f"api_key for {name}: [bold]{key}[/]")


@app.command("demo")
@reports_errors
def demo_command() -> None:
    """Load Astana's catalogue and the illustrative requests (what `qala demo load` does)."""
    from qala.components.requests311.demo import load_demo

    console.print(load_demo(open_context()).summary())
