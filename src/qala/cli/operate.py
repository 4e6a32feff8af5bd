"""`qala operate …`: ingest from MQTT, simulate, replay CSV files, run rules, manage incidents."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import Progress
from rich.table import Table

from qala.cli.common import console, open_context, print_json, reports_errors, translator_for

if TYPE_CHECKING:
    from qala.components.operate.ingest import IngestReport
    from qala.components.operate.replay import ObservationTable
    from qala.components.operate.routing import Router
    from qala.runtime import Context

app = typer.Typer(help="Operate: sensors, rules and incidents.", no_args_is_help=True)
rules_app = typer.Typer(help="Run the detection rules.", no_args_is_help=True)
incidents_app = typer.Typer(
    help="List, acknowledge, close and escalate incidents.", no_args_is_help=True
)
devices_app = typer.Typer(
    help="Provision devices and write the broker's password file.", no_args_is_help=True
)
app.add_typer(rules_app, name="rules")
app.add_typer(incidents_app, name="incidents")
app.add_typer(devices_app, name="devices")

JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document for scripts.")]


WorkerOption = Annotated[
    int | None,
    typer.Option(
        help="Run as worker N of several; the client id becomes <client-id>-N. Keep N "
        "fixed per worker. With --workers M each sensor (each group) goes to one worker; "
        "without, the workers share the stream (MQTT 5 shared subscription $share/qala/…)."
    ),
]
WorkersOption = Annotated[
    int | None,
    typer.Option(
        help="How many workers there are (with --worker N): worker N evaluates the sensors "
        "whose group (else sensor id) hashes to N, in order; change M only with every "
        "worker stopped (docs/operate.md)."
    ),
]
SoftStateOption = Annotated[
    float, typer.Option(help="Seconds between rewrites of sensors' last-seen and entities.")
]
ReceiveMaximumOption = Annotated[
    int | None,
    typer.Option(
        min=1,
        max=65_535,
        help="Unacknowledged messages the broker may send at once; a backlog beyond waits "
        "in the broker's queue (default QALA_MQTT_RECEIVE_MAXIMUM, 2000).",
    ),
]
SilenceOption = Annotated[
    float,
    typer.Option(help="Seconds between silence checks and incident escalations (0: never)."),
]
MetricsPortOption = Annotated[
    int | None, typer.Option(help="Serve Prometheus metrics on this port (loopback).")
]
MetricsHostOption = Annotated[
    str, typer.Option(help="Address for --metrics-port (no token: keep it private).")
]


@app.command("ingest-mqtt")
@reports_errors
def ingest_mqtt(
    host: Annotated[str | None, typer.Option(help="Broker host (default QALA_MQTT_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Broker port (default QALA_MQTT_PORT).")] = None,
    client_id: Annotated[
        str, typer.Option(help="Persistent-session client id.")
    ] = "qala-operate-ingest",
    topic: Annotated[
        str | None, typer.Option(help="Topic filter (default <prefix>/observations/#).")
    ] = None,
    worker: WorkerOption = None,
    workers: WorkersOption = None,
    batch: Annotated[int, typer.Option(help="MQTT messages per transaction at most.")] = 200,
    max_delay_ms: Annotated[float, typer.Option(help="Flush a batch after this many ms.")] = 50.0,
    soft_state_s: SoftStateOption = 60.0,
    silence_every_s: SilenceOption = 60.0,
    receive_maximum: ReceiveMaximumOption = None,
    metrics_port: MetricsPortOption = None,
    metrics_host: MetricsHostOption = "127.0.0.1",
) -> None:
    """Ingest observations from the MQTT broker until stopped (Ctrl-C or SIGTERM)."""
    from qala.components.operate.ingest import RulesRunner
    from qala.components.operate.mqtt import MqttIngester

    router = _router(worker, workers)
    context = open_context()
    if worker is not None:
        client_id = f"{client_id}-{worker}"
    ingester = MqttIngester(
        context,
        host=host,
        port=port,
        client_id=client_id,
        topic=topic,
        share_group="qala" if worker is not None and router is None else None,
        router=router,
        batch_messages=batch,
        max_delay_s=max_delay_ms / 1000,
        receive_maximum=receive_maximum,
        silence_every_s=silence_every_s if silence_every_s > 0 else float("inf"),
        runner=RulesRunner(soft_state_every_s=soft_state_s),
    )
    if metrics_port is not None:
        from prometheus_client import start_http_server

        start_http_server(metrics_port, addr=metrics_host, registry=context.metrics().registry)
    ingester.start()
    console.print(
        f"ingesting from mqtt://{ingester.host}:{ingester.port} topic {ingester.subscription} "
        f"(client {client_id}"
        + (f", sensors routed to worker {worker} of {workers}" if router is not None else "")
        + ")"
    )
    _wait_for_a_stop_signal()
    ingester.stop()
    import json

    console.print(f"stopped: {json.dumps(ingester.stats.as_dict())}", soft_wrap=True, markup=False)


def _router(worker: int | None, workers: int | None) -> Router | None:
    """The sensor router of ``--worker N --workers M`` (None: one ingester, or a shared
    subscription with ``--worker`` alone)."""
    from qala.components.operate.routing import Router
    from qala.core.errors import QalaError

    if workers is not None and worker is None:
        raise QalaError("--workers M needs --worker N (1 … M)")
    if workers is None or worker is None:
        return None
    if not 1 <= worker <= workers:
        raise QalaError(f"--worker must be between 1 and --workers ({workers}), not {worker}")
    return Router(worker, workers)


def _wait_for_a_stop_signal() -> None:
    """Block until SIGTERM or SIGINT (Ctrl-C)."""
    stopping = {"now": False}

    def stop(_signum: int, _frame: object) -> None:
        stopping["now"] = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while not stopping["now"]:
        time.sleep(0.2)


@app.command("simulate")
@reports_errors
def simulate_command(
    days: Annotated[int, typer.Option(help="Days to simulate.")] = 7,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    output: Annotated[
        Path | None, typer.Option(help="Write the CSV here instead of ingesting.")
    ] = None,
    mqtt: Annotated[
        bool, typer.Option(help="Publish to the MQTT broker instead of ingesting directly.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Simulate the demo city's sensors (illustrative) and ingest, publish or save the stream."""
    from qala.components.operate.simulator import demo_scenario, simulate

    scenario = demo_scenario(hours=24 * days)
    frame = simulate(scenario, seed=seed)
    if output is not None:
        out = frame.copy()
        import pandas as pd

        out["time"] = pd.to_datetime(out.pop("time_us"), unit="us", utc=True).map(
            lambda t: t.isoformat()
        )
        out.to_csv(output, index=False)
        summary: dict[str, object] = {
            "rows": len(out),
            "file": str(output),
            "notes": scenario.notes,
        }
    elif mqtt:
        from qala.components.operate.ingest import register_sensors
        from qala.components.operate.mqtt import publish_readings

        context = open_context()  # the sensors' districts and positions, for routing and maps
        with context.database.transaction() as session:
            register_sensors(session, [s.record() for s in scenario.sensors])
        settings = context.settings
        rows = frame.to_dict("records")
        messages = publish_readings(
            rows,
            host=settings.mqtt_host,
            port=settings.mqtt_port,
            topic_prefix=settings.mqtt_topic_prefix,
            per_message=24,
        )
        summary = {"observations": len(rows), "messages": messages, "notes": scenario.notes}
    else:
        from qala.components.operate.ingest import register_sensors
        from qala.components.operate.readings import Reading
        from qala.components.operate.replay import ObservationTable

        context = open_context()
        with context.database.transaction() as session:
            register_sensors(session, [s.record() for s in scenario.sensors])
        readings = [
            Reading(s, q, int(t), float(v), u) for s, q, t, v, u in frame.itertuples(index=False)
        ]
        report = _replay_with_progress(context, ObservationTable(readings, []), illustrative=True)
        summary = {
            **report.as_dict(),
            "incidents_opened": len(set(report.incidents_opened)),
            "notes": scenario.notes,
        }
    if as_json:
        print_json(summary)
    else:
        for key, value in summary.items():
            console.print(f"{key}: {value}")


def _replay_with_progress(
    context: Context, table: ObservationTable, *, batch_size: int = 1000, illustrative: bool = False
) -> IngestReport:
    from qala.components.operate.replay import replay

    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("ingesting", total=len(table.readings))
        return replay(
            context,
            table,
            batch_size=batch_size,
            illustrative=illustrative,
            progress=lambda done, _total: progress.update(task, completed=done),
        )


@app.command("replay")
@reports_errors
def replay_command(
    file: Annotated[
        Path, typer.Argument(help="CSV of observations (AirData.kz hourly files are recognised).")
    ],
    sensor: Annotated[str | None, typer.Option(help="Sensor id column.")] = None,
    time_column: Annotated[
        str | None, typer.Option("--time", help="Time column (ISO 8601 with offset).")
    ] = None,
    value: Annotated[str | None, typer.Option(help="Value column.")] = None,
    quantity: Annotated[
        str, typer.Option(help="Quantity when the file has no quantity column.")
    ] = "pm25",
    unit: Annotated[str, typer.Option(help="Unit when the file has no unit column.")] = "ug/m3",
    place: Annotated[
        str | None, typer.Option(help="Place code of the sensors (for routing and indicators).")
    ] = None,
    batch: Annotated[int, typer.Option(help="Observations per transaction.")] = 1000,
    as_json: JsonOption = False,
) -> None:
    """Replay a CSV of real observations through ingestion and the rules."""
    from qala.components.operate.replay import read_observations

    table = read_observations(
        file,
        sensor=sensor,
        time=time_column,
        value=value,
        default_quantity=quantity,
        default_unit=unit,
        place_code=place,
    )
    context = open_context()
    report = _replay_with_progress(context, table, batch_size=batch)
    data = {
        **report.as_dict(),
        "incidents_opened": sorted(set(report.incidents_opened)),
        "incidents_updated": len(report.incidents_updated),
    }
    if as_json:
        print_json(data)
    else:
        for key, item in data.items():
            console.print(f"{key}: {item}")


@app.command("maintain")
@reports_errors
def maintain_command(
    months_ahead: Annotated[
        int, typer.Option(help="Months of observation partitions to create ahead.", min=0, max=36)
    ] = 3,
    retain_days: Annotated[
        int | None,
        typer.Option(
            help="Remove raw readings older than this many days once their hourly and daily "
            "roll-ups hold them (default: setting operate_retain_days; unset keeps all).",
            min=1,
            max=36_500,
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Create the monthly partitions of the observation history ahead of time (PostgreSQL; run
    daily from a timer), move readings waiting in the default partition into their month, and
    apply the retention of raw readings."""
    from qala.components.operate.partitions import maintain

    context = open_context()
    days = retain_days if retain_days is not None else context.settings.operate_retain_days
    report = maintain(context, months_ahead=months_ahead, retain_days=days)
    if as_json:
        print_json(report.as_dict())
        return
    console.print(
        report.note
        or (
            f"{len(report.created)} partitions created ({', '.join(report.created) or 'none'}), "
            f"{report.moved_rows} readings moved out of the default partition, "
            f"{report.partitions} partitions in all"
        )
    )
    if days is not None:
        console.print(
            f"retention {days} days: {report.deleted_rows} readings removed"
            f"{' (partitions ' + ', '.join(report.dropped) + ')' if report.dropped else ''}; "
            f"kept because a roll-up lacks them: {', '.join(report.kept) or 'nothing'}"
        )


@app.command("dead-letters")
@reports_errors
def dead_letters(
    sensor: Annotated[str | None, typer.Option(help="Only this sensor's.")] = None,
    limit: Annotated[int, typer.Option(help="How many, newest first.")] = 50,
    as_json: JsonOption = False,
) -> None:
    """List messages refused at ingestion (bad unit, time or value, unknown sensor), newest first."""
    from rich.table import Table

    from qala.components.operate.dead_letters import list_dead_letters

    context = open_context()
    with context.database.session() as session:
        letters = list_dead_letters(session, sensor=sensor, limit=limit)
    if as_json:
        print_json([d.as_dict() for d in letters])
        return
    table = Table("id", "received", "channel", "source", "sensor", "reason")
    for letter in letters:
        table.add_row(
            str(letter.id),
            letter.received_at[:19],
            letter.channel,
            letter.source,
            letter.sensor or "",
            letter.reason,
        )
    console.print(table)


@devices_app.command("add")
@reports_errors
def devices_add(
    sensor: Annotated[str, typer.Argument(help="Sensor id: the device's MQTT username.")],
    name: Annotated[str | None, typer.Option(help="Human name.")] = None,
    place: Annotated[str | None, typer.Option(help="Place code (district) for routing.")] = None,
    group: Annotated[str | None, typer.Option(help="Network group (e.g. the city).")] = None,
    lat: Annotated[float | None, typer.Option(help="Latitude.")] = None,
    lon: Annotated[float | None, typer.Option(help="Longitude.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Register a sensor and print its broker credentials (shown once; again to replace them)."""
    from qala.components.operate.devices import provision_device

    context = open_context()
    with context.database.transaction() as session:
        credentials = provision_device(
            session,
            sensor,
            topic_prefix=context.settings.mqtt_topic_prefix,
            name=name,
            place_code=place,
            group_id=group,
            lat=lat,
            lon=lon,
        )
    if as_json:
        print_json(credentials.as_dict())
    else:
        for key, item in credentials.as_dict().items():
            console.print(f"{key}: {item}")


@devices_app.command("password-file")
@reports_errors
def devices_password_file(
    output: Annotated[Path, typer.Argument(help="Where Mosquitto's password_file points.")],
) -> None:
    """Write Mosquitto's password file: every device, and the ingester (QALA_MQTT_USERNAME)."""
    from qala.components.operate.devices import password_file

    context = open_context()
    settings = context.settings
    services = {}
    if settings.mqtt_username and settings.mqtt_password:
        services[settings.mqtt_username] = settings.mqtt_password
    with context.database.session() as session:
        text = password_file(session, services=services)
    output.write_text(text, encoding="utf-8")
    output.chmod(0o640)  # the broker reads it: chgrp mosquitto
    console.print(f"{output}: {text.count(chr(10))} logins (reload the broker: kill -HUP)")


@rules_app.command("run")
@reports_errors
def rules_run(as_json: JsonOption = False) -> None:
    """Check every stream for silence now and escalate overdue incidents."""
    from qala.components.operate.incidents import escalate_due
    from qala.components.operate.ingest import check_silence

    context = open_context()
    report = check_silence(context)
    with context.database.transaction() as session:
        escalated = [i.id for i in escalate_due(session, now=context.clock())]
    data = {**report.as_dict(), "escalated": escalated}
    if as_json:
        print_json(data)
    else:
        console.print(data)


@incidents_app.command("list")
@reports_errors
def incidents_list(
    status: Annotated[
        str | None, typer.Option(help="open, acknowledged, closed or active.")
    ] = None,
    service: Annotated[
        str | None, typer.Option(help="emergency, utilities, police or ecology.")
    ] = None,
    limit: int = 50,
    lang: Annotated[str, typer.Option("--lang", help="Language: kk, ru or en.")] = "en",
    as_json: JsonOption = False,
) -> None:
    """List incidents, newest first: title, severity, status, unit and opening time in the
    reader's language and the place's time zone (``--json`` keeps the codes, for scripts)."""
    from qala.components.operate.incidents import list_incidents
    from qala.web.data import incident_title, unit_label

    t = translator_for(lang)
    context = open_context()
    with context.database.session() as session:
        rows = list_incidents(session, status=status, service=service, limit=limit)
        units = {row.id: unit_label(session, row.unit, row.service, t) for row in rows}
    if as_json:
        print_json([r.as_dict() for r in rows])
        return
    columns = ("id", "title", "severity", "status", "unit", "opened", "where")
    table = Table(*(t(f"cli.incidents.{c}") for c in columns))
    for row in rows:
        shown = t(f"status.{row.status}")
        if row.escalation_level:
            shown += f", {t('operator.escalated', level=row.escalation_level)}"
        table.add_row(
            str(row.id),
            incident_title(row, t),
            t(f"severity.{row.severity}"),
            shown,
            units[row.id],
            t.when(row.opened_at, zone=False),
            row.sensor or row.place_code or "",
        )
    console.print(table)
    console.print(t("cli.incidents.times", zone=t.zone_name()), highlight=False)


@incidents_app.command("close")
@reports_errors
def incidents_close(
    incident_id: int,
    reason: Annotated[str, typer.Option(help="resolved, false_alarm, duplicate, sensor_fault…")],
    note: str | None = None,
) -> None:
    """Close an incident with a reason (recorded in its audit trail)."""
    from qala.components.operate.incidents import close

    context = open_context()
    with context.database.transaction() as session:
        close(session, incident_id, reason=reason, actor="cli", now=context.clock(), note=note)
    console.print(f"incident {incident_id} closed ({reason})")


@app.command("indicators")
@reports_errors
def indicators(
    year: Annotated[int, typer.Option(help="Year to compute.")],
    city: Annotated[str, typer.Option(help="City place code.")] = "astana",
    as_json: JsonOption = False,
) -> None:
    """Compute Operate's indicators and write them to the catalogue."""
    from qala.components.operate.indicators import write_indicators

    report = write_indicators(open_context(), city=city, year=year)
    if as_json:
        print_json(report.as_dict())
    else:
        console.print(report.as_dict())
