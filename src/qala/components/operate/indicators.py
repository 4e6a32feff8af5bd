"""Indicators Operate computes from its history and writes back to the catalogue (``import_frame``).

- ``kz_sc.air.share_hours_within_norms`` — % of monitored station-hours in which every measured
  pollutant's hourly mean stayed within the Kazakh one-time limit (ПДК м.р., ҚР ДСМ-70). Readings
  found faulty by the rules (saturation, stuck, quarantine) are left out: a broken sensor is
  neither clean nor polluted air.
- ``kz_sc.incidents.per_100000`` — incidents opened in the year per 100,000 residents.
- ``kz_sc.incidents.median_minutes_to_acknowledge`` / ``median_hours_to_resolve``.
- ``kz_sc.sensors.availability`` — % of expected hourly reports received: for each sensor, hours
  with at least one reading over the hours between its first and last reading in the year.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from statistics import median
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from qala.components.catalog.services import get_place, import_frame, population
from qala.components.operate.models import Finding, Incident, Observation, Sensor
from qala.components.operate.readings import AIR_QUANTITIES
from qala.engines.detect import load_norm_table
from qala.runtime import Context

US_PER_HOUR = 3_600_000_000
SOURCE = "Qala Operate (computed from sensor observations and incidents)"


@dataclass
class IndicatorReport:
    city: str
    year: int
    values: dict[str, float]
    rows_written: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "city": self.city,
            "year": self.year,
            "values": self.values,
            "rows_written": self.rows_written,
        }


def _year_bounds_us(year: int) -> tuple[int, int]:
    start = datetime(year, 1, 1, tzinfo=UTC)
    end = datetime(year + 1, 1, 1, tzinfo=UTC)
    return int(start.timestamp() * 1e6), int(end.timestamp() * 1e6)


def _city_sensors(session: Session, city_code: str) -> list[Sensor]:
    """Sensors placed in the city or one of its districts (district codes start with the city's)."""
    return [
        s
        for s in session.scalars(select(Sensor))
        if s.place_code and (s.place_code == city_code or s.place_code.startswith(city_code + "-"))
    ]


def share_hours_within_norms(session: Session, sensor_ids: list[str], year: int) -> float | None:
    """% of station-hours with every pollutant's hourly mean within the one-time ПДК."""
    if not sensor_ids:
        return None
    low, high = _year_bounds_us(year)
    rows = session.execute(
        select(
            Observation.sensor, Observation.quantity, Observation.time_us, Observation.value
        ).where(
            Observation.sensor.in_(sensor_ids),
            Observation.quantity.in_(sorted(AIR_QUANTITIES)),
            Observation.time_us >= low,
            Observation.time_us < high,
        )
    ).all()
    if not rows:
        return None
    frame = pd.DataFrame(rows, columns=["sensor", "quantity", "time_us", "value"])
    faults = session.execute(
        select(Finding.sensor, Finding.quantity, Finding.start_us, Finding.end_us).where(
            Finding.kind == "fault", Finding.sensor.in_(sensor_ids)
        )
    ).all()
    bad = np.zeros(len(frame), dtype=bool)
    for sensor, quantity, start, end in faults:
        bad |= (
            (frame["sensor"].to_numpy() == sensor)
            & (frame["quantity"].to_numpy() == quantity)
            & (frame["time_us"].to_numpy() >= start)
            & (frame["time_us"].to_numpy() <= max(end, start))
        )
    frame = frame[~bad]
    limits = {
        limit.quantity: limit.value
        for limit in load_norm_table("air_kz_dsm70").limits
        if limit.averaging == "instant"
    }
    frame = frame[frame["quantity"].isin(list(limits))]
    if frame.empty:
        return None
    frame["hour"] = frame["time_us"] // US_PER_HOUR
    hourly = frame.groupby(["sensor", "hour", "quantity"])["value"].mean().reset_index()
    hourly["within"] = hourly["value"] <= hourly["quantity"].map(limits)
    station_hours = hourly.groupby(["sensor", "hour"])["within"].all()
    return float(100.0 * station_hours.mean())


def sensor_availability(session: Session, sensors: list[Sensor], year: int) -> float | None:
    """% of hours with a report, between each sensor's first and last report in the year."""
    low, high = _year_bounds_us(year)
    expected = received = 0
    for sensor in sensors:
        hours = {
            t // US_PER_HOUR
            for (t,) in session.execute(
                select(Observation.time_us).where(
                    Observation.sensor == sensor.id,
                    Observation.time_us >= low,
                    Observation.time_us < high,
                )
            )
        }
        if not hours:
            continue
        expected += max(hours) - min(hours) + 1
        received += len(hours)
    return None if expected == 0 else 100.0 * received / expected


def incident_figures(session: Session, city_code: str, year: int) -> dict[str, float]:
    start, end = datetime(year, 1, 1, tzinfo=UTC), datetime(year + 1, 1, 1, tzinfo=UTC)
    incidents = [
        i
        for i in session.scalars(
            select(Incident).where(Incident.opened_at >= start, Incident.opened_at < end)
        )
        # Incidents without a place cannot be counted for any city.
        if i.place_code is not None
        and (i.place_code == city_code or i.place_code.startswith(city_code + "-"))
    ]
    figures: dict[str, float] = {"count": float(len(incidents))}
    acknowledge = [
        (_aware(i.acknowledged_at) - _aware(i.opened_at)).total_seconds() / 60
        for i in incidents
        if i.acknowledged_at
    ]
    resolve = [
        (_aware(i.closed_at) - _aware(i.opened_at)).total_seconds() / 3600
        for i in incidents
        if i.closed_at
    ]
    if acknowledge:
        figures["median_minutes_to_acknowledge"] = float(median(acknowledge))
    if resolve:
        figures["median_hours_to_resolve"] = float(median(resolve))
    return figures


def _aware(moment: datetime | None) -> datetime:
    assert moment is not None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def compute_indicators(session: Session, *, city: str, year: int) -> dict[str, float]:
    """The five Operate indicators of one city and year (those with data)."""
    place = get_place(session, city)
    sensors = _city_sensors(session, place.code)
    values: dict[str, float] = {}
    air = share_hours_within_norms(session, [s.id for s in sensors], year)
    if air is not None:
        values["kz_sc.air.share_hours_within_norms"] = round(air, 2)
    availability = sensor_availability(session, sensors, year)
    if availability is not None:
        values["kz_sc.sensors.availability"] = round(availability, 2)
    figures = incident_figures(session, place.code, year)
    people = population(session, place.id, year)
    if people:
        values["kz_sc.incidents.per_100000"] = round(figures["count"] / people * 100_000, 3)
    if "median_minutes_to_acknowledge" in figures:
        values["kz_sc.incidents.median_minutes_to_acknowledge"] = round(
            figures["median_minutes_to_acknowledge"], 2
        )
    if "median_hours_to_resolve" in figures:
        values["kz_sc.incidents.median_hours_to_resolve"] = round(
            figures["median_hours_to_resolve"], 3
        )
    return values


def write_indicators(
    context: Context, *, city: str, year: int, illustrative: bool = False
) -> IndicatorReport:
    """Compute the indicators and write them to the catalogue through ``import_frame``."""
    with context.database.session() as session:
        place = get_place(session, city)
        values = compute_indicators(session, city=city, year=year)
    if not values:
        return IndicatorReport(place.code, year, {}, 0)
    frame = pd.DataFrame(
        [
            {
                "place": place.code,
                "indicator": k,
                "year": year,
                "value": v,
                "source": SOURCE,
                "note": "computed by Qala Operate",
            }
            for k, v in values.items()
        ]
    )
    report = import_frame(
        context.database, frame, file="operate:indicators", illustrative=illustrative
    )
    return IndicatorReport(place.code, year, values, report.rows_written)
