"""The demo-city simulator's planted events come out of the rules as the right incidents; the CLI
replays a CSV; soft state (entities, last seen) catches up after its interval."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from qala.components.operate.ingest import (
    RulesRunner,
    ingest,
    register_sensors,
    write_soft_state,
)
from qala.components.operate.models import Entity, Finding, Incident, Sensor
from qala.components.operate.readings import Reading
from qala.components.operate.replay import ObservationTable, replay
from qala.components.operate.simulator import demo_scenario, simulate
from qala.runtime import Context


@pytest.mark.slow
def test_demo_week_yields_the_planted_incidents(sqlite_context: Context) -> None:
    scenario = demo_scenario()
    frame = simulate(scenario)
    air = [s.id for s in scenario.sensors if s.kind == "air"]
    heat = [s.id for s in scenario.sensors if s.kind == "heating"]
    # Daily cycle: the evening peak (20 h local = 15 h UTC) beats the mixed afternoon (15 h local).
    pm = frame[(frame["quantity"] == "pm25") & (frame["value"] < 1000)].copy()
    pm["hour_utc"] = (pm["time_us"] // 3_600_000_000) % 24
    hourly = pm.groupby("hour_utc")["value"].median()
    assert hourly.loc[15] > 1.3 * hourly.loc[10]
    assert hourly.loc[3] > hourly.loc[10]  # and the morning peak (08:00 local) too
    readings = [
        Reading(s, q, int(t), float(v), u) for s, q, t, v, u in frame.itertuples(index=False)
    ]
    with sqlite_context.database.transaction() as session:
        register_sensors(session, [s.record() for s in scenario.sensors])
    replay(sqlite_context, ObservationTable(readings, []), batch_size=2000, runner=RulesRunner())
    with sqlite_context.database.session() as session:
        incidents = session.scalars(select(Incident)).all()
        findings = session.scalars(select(Finding)).all()
    by_category = {(i.category, i.sensor) for i in incidents}
    saturated, stuck, silent = scenario.saturated, scenario.stuck, scenario.silent
    assert saturated and stuck and silent and scenario.heating_failure and scenario.episode
    assert ("sensor_fault", saturated[0]) in by_category
    assert any(f.rule_id == "fault.stuck" and f.sensor == stuck[0] for f in findings)
    assert any(f.kind == "silence" and f.sensor == silent[0] for f in findings)
    # The network episode names the group; its districts' common parent place is the city.
    network = [i for i in incidents if i.sensor == "astana"]
    assert network and {(i.category, i.place_code) for i in network} == {
        ("air_pollution_episode", "astana")
    }
    heating = [i for i in incidents if i.category == "heating" and i.sensor == heat[0]]
    assert heating and heating[0].service == "utilities"
    assert heating[0].unit == "utilities:astana-almaty-district"
    # December in Astana is above the daily ПДК all week (as the real data are); the planted
    # episode shows as one-time (instant) ПДК exceedances at most stations inside its window.
    start_us = int(scenario.episode[0].timestamp() * 1e6)
    end_us = int(scenario.episode[1].timestamp() * 1e6)
    instant = [f for f in findings if f.rule_id == "norm.kz-dsm70.pm25.instant"]
    inside = {f.sensor for f in instant if start_us <= f.start_us < end_us}
    assert len(inside & set(air)) >= 4
    hours_inside = (end_us - start_us) / 3_600_000_000
    rate_inside = sum(start_us <= f.start_us < end_us for f in instant) / hours_inside
    rate_outside = sum(not start_us <= f.start_us < end_us for f in instant) / (
        scenario.hours - hours_inside
    )
    assert rate_inside > 5 * rate_outside
    assert not [f for f in findings if f.kind in ("episode", "exceedance") and f.value >= 1000]


def test_cli_replays_a_csv_and_lists_incidents(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from qala.cli.main import app

    csv = tmp_path / "obs.csv"
    rows = ["station,when,pm25"]
    rows += [
        f"st-a,2025-12-01T{h:02d}:00:00+05:00,{v}"
        for h, v in enumerate([20, 22, 1000, 1000, 1000, 21])
    ]
    csv.write_text("\n".join(rows) + "\n", encoding="utf-8")
    monkeypatch.setenv("QALA_DATABASE_URL", sqlite_url)
    runner = CliRunner()
    result = runner.invoke(
        app,
        [
            "operate",
            "replay",
            str(csv),
            "--sensor",
            "station",
            "--time",
            "when",
            "--value",
            "pm25",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout[result.stdout.index("{") :])
    assert report["stored"] == 6 and len(report["incidents_opened"]) == 1
    listed = runner.invoke(app, ["operate", "incidents", "list", "--json"])
    incidents = json.loads(listed.stdout[listed.stdout.index("[") :])
    assert [(i["category"], i["sensor"], i["service"]) for i in incidents] == [
        ("sensor_fault", "st-a", "ecology")
    ]
    for lang, words in {
        "ru": ("Инцидент", "открыто", "время Казахстана"),
        "kk": ("Оқиға", "ашық", "Қазақстан уақыты"),
    }.items():
        shown = runner.invoke(
            app, ["operate", "incidents", "list", "--lang", lang], env={"COLUMNS": "250"}
        )
        assert shown.exit_code == 0, shown.output
        assert all(word in shown.output for word in words), shown.output
        for english in ("open", "warning", "major", "ecology", "sensor_fault"):
            assert english not in shown.output.split(), shown.output
    refused = runner.invoke(app, ["operate", "incidents", "list", "--lang", "de"])
    assert refused.exit_code == 2 and "expected one of kk, ru, en" in refused.output
    bad = tmp_path / "bad.csv"
    bad.write_text("station,when,pm25\nst-a,2025-12-01 05:00,abc\n", encoding="utf-8")
    failed = runner.invoke(
        app,
        ["operate", "replay", str(bad), "--sensor", "station", "--time", "when", "--value", "pm25"],
    )
    assert failed.exit_code == 2
    message = " ".join(failed.output.split())  # the console wraps long lines
    assert "row 2, column `pm25`: value must be a finite number" in message


def test_soft_state_is_rewritten_after_its_interval(context: Context) -> None:
    clock = [0.0]
    runner = RulesRunner(soft_state_every_s=3600.0, clock=lambda: clock[0])
    t0 = 1_764_547_200_000_000
    ingest(context, [Reading("soft-1", "pm25", t0, 10.0, "ug/m3")], runner=runner)
    ingest(context, [Reading("soft-1", "pm25", t0 + 60_000_000, 11.0, "ug/m3")], runner=runner)

    def shown() -> float:
        with context.database.session() as session:
            entity = session.get(Entity, "urn:ngsi-ld:Device:soft-1")
            assert entity is not None
            return float(entity.attrs["pm25"]["value"])

    assert shown() == 10.0  # first sight is written at once, the next within the hour is buffered
    clock[0] = 3599.0
    ingest(context, [Reading("other", "pm25", t0, 5.0, "ug/m3")], runner=runner)
    assert shown() == 10.0
    clock[0] = 3600.0  # the interval has passed
    ingest(context, [Reading("other", "pm25", t0 + 1, 5.0, "ug/m3")], runner=runner)
    assert shown() == 11.0  # flushed with the next batch, even one without this sensor
    clock[0] = 3600.0 * 3  # quiet through a whole interval: its next reading is written at once
    ingest(context, [Reading("soft-1", "pm25", t0 + 120_000_000, 12.0, "ug/m3")], runner=runner)
    assert shown() == 12.0
    ingest(context, [Reading("soft-1", "pm25", t0 + 180_000_000, 13.0, "ug/m3")], runner=runner)
    assert shown() == 12.0  # and the one after it waits for the interval again
    write_soft_state(context, runner=runner)  # an ingester stopping writes what waits
    assert shown() == 13.0
    with context.database.session() as session:
        sensor = session.get(Sensor, "soft-1")
        assert sensor is not None and sensor.last_seen_us == t0 + 180_000_000


@pytest.mark.slow
def test_demo_loader_loads_once_and_writes_indicators(sqlite_context: Context) -> None:
    from qala.components.catalog.services import values_frame
    from qala.components.operate.demo import load_demo

    summary = load_demo(sqlite_context)
    assert summary.startswith("5 indicators written")
    assert load_demo(sqlite_context) == "operate demo already loaded"
    with sqlite_context.database.session() as session:
        values = values_frame(session, places=["astana"], indicators=["kz_sc.sensors.availability"])
        closed = session.scalars(select(Incident).where(Incident.category == "water")).one()
    assert len(values) == 1 and 90 < float(values["value"].iloc[0]) <= 100
    assert (closed.status, closed.close_reason, closed.illustrative) == ("closed", "resolved", True)
