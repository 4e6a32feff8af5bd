"""Demo data: Astana's service catalogue and ILLUSTRATIVE historical requests.

The requests are generated (seeded), marked ``illustrative`` and say so in their description; they
exist so that the operator queue, the public API and the indicators have something to show.
Times to close are drawn around each service's SLA, with some late answers, reopenings and
duplicates, and the most recent requests still open.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
from sqlalchemy import func, select

from qala.components.requests311.catalogue import CityCatalogue
from qala.components.requests311.intake import NewRequest, submit_request
from qala.components.requests311.jurisdictions import (
    CATALOGUE_CACHE_KEY,
    CatalogueCache,
    JurisdictionInfo,
)
from qala.components.requests311.lifecycle import Requests
from qala.components.requests311.models import Request
from qala.components.requests311.national import city_catalogue, load_city_catalogues
from qala.components.requests311.sla import escalate_overdue
from qala.runtime import Context

DEMO_REQUESTS = 480
DEMO_START = datetime(2023, 1, 1, tzinfo=UTC)
ILLUSTRATIVE_NOTE = "(иллюстративное обращение, сгенерировано для демонстрации)"


def astana_catalogue() -> CityCatalogue:
    """Astana's catalogue: the national template with its own districts, akimats and routing."""
    return city_catalogue("astana")


@dataclass
class DemoReport:
    services: int
    cities: int
    requests_created: int
    indicator_values: int

    def summary(self) -> str:
        made = (
            f"{self.requests_created} illustrative requests"
            if self.requests_created
            else "requests already there"
        )
        return (
            f"{self.cities} cities' catalogues; Astana's of {self.services} services; {made};"
            f" {self.indicator_values} indicator values"
        )


_SAMPLE_VALUES = {
    "number": "3",
    "string": "12",
    "text": "near the bus stop",
}


def _attributes(
    rng: np.random.Generator, jurisdiction: JurisdictionInfo, code: str, moment: datetime
) -> dict[str, list[str]]:
    chosen: dict[str, list[str]] = {}
    for attribute in jurisdiction.services[code].attributes:
        if not attribute.required and rng.random() < 0.5:
            continue
        if attribute.datatype == "singlevaluelist":
            chosen[attribute.code] = [
                attribute.values[int(rng.integers(len(attribute.values)))].key
            ]
        elif attribute.datatype == "multivaluelist":
            k = int(rng.integers(1, len(attribute.values) + 1))
            chosen[attribute.code] = [
                v.key for v in rng.permutation(np.array(attribute.values, dtype=object))[:k]
            ]
        elif attribute.datatype == "datetime":
            chosen[attribute.code] = [(moment - timedelta(hours=2)).isoformat()]
        else:
            chosen[attribute.code] = [_SAMPLE_VALUES[attribute.datatype]]
    return chosen


def generate_requests(
    context: Context, jurisdiction: JurisdictionInfo, *, count: int, seed: int = 109
) -> int:
    """Add ``count`` illustrative requests from ``DEMO_START`` to now, with their lifecycles."""
    rng = np.random.default_rng(seed)
    now = context.clock()
    span = (now - DEMO_START).total_seconds()
    codes = sorted(jurisdiction.services)
    # Heating and snow dominate a Kazakh winter; weights are illustrative.
    weights = np.array(
        [3.0 if c in ("heating", "snow_removal", "waste_collection") else 1.0 for c in codes]
    )
    weights /= weights.sum()
    # Most requests are history; the last few days' stay unclosed so the queues have work.
    backlog = max(1, count // 20)
    history = sorted(
        DEMO_START + timedelta(seconds=float(s))
        for s in rng.uniform(0, span - 10 * 86400, count - backlog)
    )
    recent = sorted(now - timedelta(seconds=float(s)) for s in rng.uniform(0, 10 * 86400, backlog))
    moments = [(m, False) for m in history] + [(m, True) for m in sorted(recent)]
    districts = [d for d in jurisdiction.districts if d.get("lat") is not None]
    created = 0
    with context.database.transaction() as session:
        recent_ids: list[int] = []
        for moment, unclosed in moments:
            code = str(rng.choice(codes, p=weights))
            district = districts[int(rng.integers(len(districts)))]
            new = NewRequest(
                service_code=code,
                lat=float(district["lat"]) + float(rng.normal(0, 0.008)),
                lon=float(district["lon"]) + float(rng.normal(0, 0.012)),
                description=f"{jurisdiction.services[code].names['ru']} {ILLUSTRATIVE_NOTE}",
                attributes=_attributes(rng, jurisdiction, code, moment),
            )
            submitted = submit_request(session, jurisdiction, new, now=moment, illustrative=True)
            request_id = int(submitted.service_request_id)
            created += 1
            sla = jurisdiction.services[code].sla_hours
            # Hours to close: lognormal around 60 % of the SLA, so roughly a quarter are late.
            hours = float(rng.lognormal(np.log(0.6 * sla), 0.6))
            if unclosed:
                stage = int(rng.integers(3))  # 0 open, 1 acknowledged, 2 in progress
                staff = Requests(
                    session,
                    jurisdiction,
                    actor="operator",
                    now=min(now, moment + timedelta(hours=1)),
                )
                if stage == 1:
                    staff.acknowledge(request_id, note="Заявка принята. (иллюстративно)")
                elif stage == 2:
                    staff.start(request_id, note="Бригада на месте. (иллюстративно)")
                continue
            if recent_ids and rng.random() < 0.04:
                original = recent_ids[
                    int(rng.integers(max(0, len(recent_ids) - 5), len(recent_ids)))
                ]
                Requests(
                    session, jurisdiction, actor="operator", now=moment + timedelta(minutes=30)
                ).merge_duplicate(request_id, into=original)
                continue
            recent_ids.append(request_id)
            acknowledged = moment + timedelta(hours=min(hours / 4, 2.0))
            closed_at = moment + timedelta(hours=hours)
            if acknowledged < now:
                Requests(session, jurisdiction, actor="operator", now=acknowledged).acknowledge(
                    request_id
                )
            if moment + timedelta(hours=hours / 2) < now:
                Requests(
                    session, jurisdiction, actor="operator", now=moment + timedelta(hours=hours / 2)
                ).start(request_id)
            if closed_at < now:
                Requests(session, jurisdiction, actor="operator", now=closed_at).close(
                    request_id, reason="resolved", note="Устранено. (иллюстративно)"
                )
                if rng.random() < 0.06:
                    reopened = closed_at + timedelta(hours=float(rng.uniform(2, 48)))
                    if reopened < now:
                        Requests(session, jurisdiction, actor="operator", now=reopened).reopen(
                            request_id, reason="Проблема вернулась. (иллюстративно)"
                        )
                        again = reopened + timedelta(
                            hours=float(rng.lognormal(np.log(0.5 * sla), 0.5))
                        )
                        if again < now:
                            Requests(session, jurisdiction, actor="operator", now=again).close(
                                request_id, reason="resolved"
                            )
        escalate_overdue(session, jurisdiction, now=now)
    return created


def load_demo(context: Context, *, count: int = DEMO_REQUESTS) -> DemoReport:
    """Load every city's catalogue and, on a store without them, Astana's illustrative requests;
    then compute Astana's indicators and write them to the catalogue."""
    from qala.components.requests311.indicators import compute_indicators, write_indicators

    with context.database.transaction() as session:
        loaded = load_city_catalogues(session, year=context.clock().year)
        jurisdiction = next(j for j in loaded.jurisdictions if j.code == "astana")
        existing = session.scalar(
            select(func.count())
            .select_from(Request)
            .where(Request.jurisdiction_id == jurisdiction.id, Request.illustrative.is_(True))
        )
    created = 0 if existing else generate_requests(context, jurisdiction, count=count)
    with context.database.session() as session:
        result = compute_indicators(session, jurisdiction, now=context.clock())
    written = write_indicators(context.database, result, imported_by="requests311 demo")
    cache = context.extras.get(CATALOGUE_CACHE_KEY)
    if isinstance(cache, CatalogueCache):
        cache.invalidate()
    return DemoReport(len(jurisdiction.services), len(loaded.jurisdictions), created, written)
