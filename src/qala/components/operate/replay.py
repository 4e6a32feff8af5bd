"""Replaying observation tables (real CSV data or the simulator) through the same ingestion path
as live readings: sensors registered, batches in time order, rules evaluated, incidents opened."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from qala.components.operate.ingest import (
    IngestReport,
    RulesRunner,
    flush_rules,
    ingest,
    register_sensors,
    runner_for,
)
from qala.components.operate.readings import Reading
from qala.core.errors import ValidationError
from qala.engines.detect import columns_from_frame, normalise_unit
from qala.runtime import Context

# AirData.kz open data (hourly files): the layout Qala recognises without options.
AIRDATA_KZ = {
    "sensor": "station_id",
    "time": "datetime_utc",
    "value": "value_ugm3",
    "lat": "lat",
    "lon": "lon",
    "group": "cluster_name",
    "name": "station_name",
}


@dataclass
class ObservationTable:
    """Validated readings and the sensors they come from."""

    readings: list[Reading]
    sensors: list[dict[str, object]]


def read_observations(
    path: Path | str,
    *,
    sensor: str | None = None,
    time: str | None = None,
    value: str | None = None,
    quantity: str | None = None,
    unit: str | None = None,
    default_quantity: str = "pm25",
    default_unit: str = "ug/m3",
    place_code: str | None = None,
) -> ObservationTable:
    """Read a CSV of observations; AirData.kz hourly files are recognised by their columns.

    Times must carry their UTC offset (``2025-12-01 00:00:00-08:00`` is honoured as 08:00 UTC).
    """
    frame = pd.read_csv(path)
    return table_from_frame(
        frame,
        sensor=sensor,
        time=time,
        value=value,
        quantity=quantity,
        unit=unit,
        default_quantity=default_quantity,
        default_unit=default_unit,
        place_code=place_code,
        file=str(path),
    )


def table_from_frame(
    frame: pd.DataFrame,
    *,
    sensor: str | None = None,
    time: str | None = None,
    value: str | None = None,
    quantity: str | None = None,
    unit: str | None = None,
    default_quantity: str = "pm25",
    default_unit: str = "ug/m3",
    place_code: str | None = None,
    file: str = "frame",
) -> ObservationTable:
    layout = (
        AIRDATA_KZ
        if AIRDATA_KZ["sensor"] in frame.columns and AIRDATA_KZ["value"] in frame.columns
        else {}
    )
    sensor = sensor or layout.get("sensor", "sensor")
    time = time or layout.get("time", "time")
    value = value or layout.get("value", "value")
    if quantity is None and "quantity" in frame.columns:
        quantity = "quantity"
    if unit is None and "unit" in frame.columns:
        unit = "unit"
    try:
        columns = columns_from_frame(
            frame,
            sensor=sensor,
            time=time,
            value=value,
            quantity=quantity,
            unit=unit,
            default_quantity=None if quantity else default_quantity,
            default_unit=None if unit else default_unit,
        )
    except ValidationError as exc:
        located = [dataclasses.replace(p, file=p.file or file) for p in exc.problems]
        raise ValidationError(located, f"invalid observations in {file}") from None
    readings = [
        Reading(s, q, t, v, normalise_unit(u))
        for s, q, t, v, u in zip(
            columns.sensor.tolist(),
            columns.quantity.tolist(),
            columns.time_us.tolist(),
            columns.value.tolist(),
            columns.unit.tolist(),
            strict=True,
        )
    ]
    sensors: list[dict[str, object]] = []
    lat, lon, group, name = (layout.get(k) for k in ("lat", "lon", "group", "name"))
    for sensor_id, rows in frame.groupby(sensor, sort=True):
        first = rows.iloc[0]
        sensors.append(
            {
                "id": str(sensor_id),
                "name": str(first[name]) if name and name in rows else None,
                "group_id": str(first[group]) if group and group in rows else None,
                "lat": float(first[lat]) if lat and lat in rows else None,
                "lon": float(first[lon]) if lon and lon in rows else None,
                "place_code": place_code,
            }
        )
    return ObservationTable(readings, sensors)


def replay(
    context: Context,
    table: ObservationTable,
    *,
    batch_size: int = 1000,
    runner: RulesRunner | None = None,
    flush: bool = True,
    illustrative: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> IngestReport:
    """Ingest a table in time-ordered batches (each its own transaction), then close the windows."""
    runner = runner or runner_for(context)
    with context.database.transaction() as session:
        register_sensors(session, table.sensors)
    ordered = sorted(table.readings, key=lambda r: r.time_us)
    total = IngestReport()
    for start in range(0, len(ordered), batch_size):
        total.merge(
            ingest(
                context,
                ordered[start : start + batch_size],
                runner=runner,
                illustrative=illustrative,
            )
        )
        if progress is not None:
            progress(min(start + batch_size, len(ordered)), len(ordered))
    if flush:
        total.merge(flush_rules(context, runner=runner, illustrative=illustrative))
    return total
