"""How fast a city answers its people: indicators computed from requests, written to the catalogue.

Per city and year (the year a request was filed):

- ``kz_sc.requests.median_hours_to_close`` and ``kz_sc.requests.p90_hours_to_close`` — hours from
  filing to the (last) closing, over closed requests that were not duplicates; percentiles are
  linear interpolations (numpy's default, Hyndman & Fan type 7).
- ``kz_sc.requests.share_closed_within_sla`` — percent of requests closed no later than their
  deadline (filing time + the service's SLA, even after a reopen), among those whose outcome is
  known (closed, or past the deadline while still open);
  duplicates are left out, since their original carries the answer.
- ``kz_sc.requests.reopen_rate`` — percent of closed non-duplicate requests reopened at least once.
- ``kz_sc.requests.per_1000_residents`` — requests filed (duplicates included: each is a
  resident's report) per 1,000 residents of the city that year (catalogue population).

The same time-to-close figures per service are returned for the dashboard but not written (the
catalogue holds one value per place, indicator and year).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from qala.components.requests311.jurisdictions import JurisdictionInfo
from qala.components.requests311.models import Request, Service
from qala.store.database import Database

INDICATORS = {
    "median": "kz_sc.requests.median_hours_to_close",
    "p90": "kz_sc.requests.p90_hours_to_close",
    "within_sla": "kz_sc.requests.share_closed_within_sla",
    "reopen": "kz_sc.requests.reopen_rate",
    "per_1000": "kz_sc.requests.per_1000_residents",
}
SOURCE = "Qala requests311: computed from Open311 service requests"


@dataclass
class RequestIndicators:
    """Computed figures: ``by_city`` (one row per year) and ``by_service`` (per year and service)."""

    jurisdiction: str
    by_city: pd.DataFrame
    by_service: pd.DataFrame
    illustrative: bool

    def long_frame(self) -> pd.DataFrame:
        """Rows for the catalogue's ``import_frame``: place, indicator, year, value, source, note."""
        rows = []
        for record in self.by_city.itertuples(index=False):
            for key, column in (
                ("median", "median_hours_to_close"),
                ("p90", "p90_hours_to_close"),
                ("within_sla", "share_closed_within_sla"),
                ("reopen", "reopen_rate"),
                ("per_1000", "per_1000_residents"),
            ):
                value = getattr(record, column)
                if value is None or not np.isfinite(value):
                    continue
                note = f"{int(record.requests)} requests, {int(record.closed)} closed"
                rows.append(
                    (
                        self.jurisdiction,
                        INDICATORS[key],
                        int(record.year),
                        float(value),
                        SOURCE,
                        note,
                    )
                )
        return pd.DataFrame(rows, columns=["place", "indicator", "year", "value", "source", "note"])


def request_frame(session: Session, jurisdiction: JurisdictionInfo) -> pd.DataFrame:
    """One row per request with the times the indicators need."""
    rows = session.execute(
        select(
            Request.id,
            Service.code,
            Request.requested_at,
            Service.sla_hours,
            Request.closed_at,
            Request.status,
            Request.close_reason,
            Request.reopen_count,
            Request.illustrative,
        )
        .join(Service, Service.id == Request.service_id)
        .where(Request.jurisdiction_id == jurisdiction.id)
    ).all()
    frame = pd.DataFrame(
        rows,
        columns=[
            "id",
            "service",
            "requested_at",
            "sla_hours",
            "closed_at",
            "status",
            "close_reason",
            "reopen_count",
            "illustrative",
        ],
    )
    for column in ("requested_at", "closed_at"):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    # The deadline counts from filing, even when a reopen gave the department a fresh one.
    frame["deadline"] = frame["requested_at"] + pd.to_timedelta(
        frame["sla_hours"].astype(float), unit="h"
    )
    return frame


def summarise(frame: pd.DataFrame, *, now: datetime) -> pd.DataFrame:
    """The figures for one group of requests (a city-year or a service-year) as a one-row frame."""
    now_ts = (
        pd.Timestamp(now).tz_convert(UTC) if pd.Timestamp(now).tzinfo else pd.Timestamp(now, tz=UTC)
    )
    originals = frame[frame["close_reason"].fillna("") != "duplicate"]
    closed = originals[originals["status"] == "closed"]
    hours = (closed["closed_at"] - closed["requested_at"]).dt.total_seconds().to_numpy() / 3600.0
    known = originals[(originals["status"] == "closed") | (originals["deadline"] < now_ts)]
    on_time = (known["status"] == "closed") & (known["closed_at"] <= known["deadline"])
    return pd.DataFrame(
        {
            "requests": [len(frame)],
            "closed": [len(closed)],
            "median_hours_to_close": [float(np.median(hours)) if len(hours) else np.nan],
            "p90_hours_to_close": [float(np.percentile(hours, 90)) if len(hours) else np.nan],
            "share_closed_within_sla": [100.0 * float(on_time.mean()) if len(known) else np.nan],
            "reopen_rate": [
                100.0 * float((closed["reopen_count"] > 0).mean()) if len(closed) else np.nan
            ],
        }
    )


def compute_indicators(
    session: Session,
    jurisdiction: JurisdictionInfo,
    *,
    now: datetime,
    years: list[int] | None = None,
    populations: dict[int, int | None] | None = None,
) -> RequestIndicators:
    """Indicators of one city for each year with requests (or the given ``years``).

    ``populations`` maps year → residents; without it the catalogue's population is used.
    """
    frame = request_frame(session, jurisdiction)
    frame["year"] = frame["requested_at"].dt.year
    chosen = sorted(set(frame["year"].tolist())) if years is None else years
    city_rows = []
    service_rows = []
    if populations is None:
        populations = _catalogue_populations(session, jurisdiction.code, chosen)
    for year in chosen:
        of_year = frame[frame["year"] == year]
        if of_year.empty:
            continue
        row = summarise(of_year, now=now)
        row.insert(0, "year", year)
        residents = populations.get(year)
        row["population"] = residents
        row["per_1000_residents"] = 1000.0 * len(of_year) / residents if residents else np.nan
        city_rows.append(row)
        for service, of_service in of_year.groupby("service"):
            srow = summarise(of_service, now=now)
            srow.insert(0, "service", service)
            srow.insert(0, "year", year)
            service_rows.append(srow)
    by_city = pd.concat(city_rows, ignore_index=True) if city_rows else pd.DataFrame()
    by_service = pd.concat(service_rows, ignore_index=True) if service_rows else pd.DataFrame()
    return RequestIndicators(
        jurisdiction.code, by_city, by_service, bool(frame["illustrative"].any())
    )


def _catalogue_populations(
    session: Session, place_code: str, years: list[int]
) -> dict[int, int | None]:
    from qala.components.catalog.services import get_place, population
    from qala.core.errors import NotFoundError

    try:
        place = get_place(session, place_code)
    except NotFoundError:
        return dict.fromkeys(years)
    return {year: population(session, place.id, year) for year in years}


def write_indicators(
    database: Database, result: RequestIndicators, *, imported_by: str | None = None
) -> int:
    """Write the city figures to the catalogue (marked illustrative when any request was)."""
    from qala.components.catalog.services import import_frame

    frame = result.long_frame()
    if frame.empty:
        return 0
    report = import_frame(
        database,
        frame,
        file=f"requests311:indicators:{result.jurisdiction}",
        illustrative=result.illustrative,
        imported_by=imported_by,
    )
    return report.rows_written
