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

import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from qala.components.catalog.services import get_place, import_frame, population
from qala.components.operate.models import (
    Finding,
    HourlyRollup,
    Incident,
    Observation,
    Sensor,
)
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
    """% of station-hours with every pollutant's hourly mean within the one-time ПДК.

    Hourly means come from the hourly roll-up; only the hours a fault finding touches are
    recomputed from the raw readings, leaving out those inside the fault.
    """
    if not sensor_ids:
        return None
    low, high = _year_bounds_us(year)
    limits = {
        limit.quantity: limit.value
        for limit in load_norm_table("air_kz_dsm70").limits
        if limit.averaging == "instant"
    }
    quantities = sorted(set(limits) & AIR_QUANTITIES)
    hourly: dict[tuple[str, str, int], float] = {
        (sensor, quantity, start // US_PER_HOUR): total / count
        for sensor, quantity, start, total, count in session.execute(
            select(
                HourlyRollup.sensor,
                HourlyRollup.quantity,
                HourlyRollup.start_us,
                HourlyRollup.total,
                HourlyRollup.count,
            ).where(
                HourlyRollup.sensor.in_(sensor_ids),
                HourlyRollup.quantity.in_(quantities),
                HourlyRollup.start_us >= low,
                HourlyRollup.start_us < high,
            )
        )
    }
    faults = session.execute(
        select(Finding.sensor, Finding.quantity, Finding.start_us, Finding.end_us).where(
            Finding.kind == "fault",
            Finding.sensor.in_(sensor_ids),
            Finding.quantity.in_(quantities),
            Finding.start_us < high,
            func.coalesce(Finding.end_us, Finding.start_us) >= low,
        )
    ).all()
    windows: dict[tuple[str, str], list[tuple[int, int]]] = {}
    for sensor, quantity, start, end in faults:
        windows.setdefault((sensor, quantity), []).append((start, max(end or start, start)))
    for (sensor, quantity), spans in windows.items():
        _recompute_faulty_hours(session, hourly, sensor, quantity, spans, low, high)
    if not hourly:
        return None
    within: dict[tuple[str, int], bool] = {}
    for (sensor, quantity, hour), mean in hourly.items():
        within[sensor, hour] = within.get((sensor, hour), True) and mean <= limits[quantity]
    return float(100.0 * sum(within.values()) / len(within))


def _recompute_faulty_hours(
    session: Session,
    hourly: dict[tuple[str, str, int], float],
    sensor: str,
    quantity: str,
    spans: list[tuple[int, int]],
    low: int,
    high: int,
) -> None:
    """Replace the means of the hours the fault spans touch by the mean of their readings
    outside every span (or drop the hour when none is left)."""
    hours = {
        hour
        for start, end in spans
        for hour in range(max(start, low) // US_PER_HOUR, min(end, high - 1) // US_PER_HOUR + 1)
    }
    for hour in hours:
        hourly.pop((sensor, quantity, hour), None)
    if not hours:
        return
    first, last = min(hours) * US_PER_HOUR, (max(hours) + 1) * US_PER_HOUR
    sums: dict[int, list[float]] = {}
    for time_us, value in session.execute(
        select(Observation.time_us, Observation.value).where(
            Observation.sensor == sensor,
            Observation.quantity == quantity,
            Observation.time_us >= first,
            Observation.time_us < last,
        )
    ):
        hour = time_us // US_PER_HOUR
        if hour not in hours or any(start <= time_us <= end for start, end in spans):
            continue
        bucket = sums.setdefault(hour, [0.0, 0.0])
        bucket[0] += value
        bucket[1] += 1
    for hour, (total, count) in sums.items():
        hourly[sensor, quantity, hour] = total / count


def sensor_availability(session: Session, sensors: list[Sensor], year: int) -> float | None:
    """% of hours with a report, between each sensor's first and last report in the year
    (the hourly roll-up's buckets are those hours)."""
    low, high = _year_bounds_us(year)
    hours: dict[str, set[int]] = {}
    for sensor, start in session.execute(
        select(HourlyRollup.sensor, HourlyRollup.start_us).where(
            HourlyRollup.sensor.in_([s.id for s in sensors]),
            HourlyRollup.start_us >= low,
            HourlyRollup.start_us < high,
        )
    ):
        hours.setdefault(sensor, set()).add(start // US_PER_HOUR)
    expected = sum(max(h) - min(h) + 1 for h in hours.values())
    received = sum(len(h) for h in hours.values())
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
