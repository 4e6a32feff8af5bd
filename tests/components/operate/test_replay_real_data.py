"""Real AirData.kz rows for Astana (../shared/data/sensors, CC BY-NC 4.0, read in place, never
copied) replayed through ingestion and the rules: kgmt_9's saturated readings (exactly 1000)
are faults, not a pollution episode."""

from __future__ import annotations

import pandas as pd
import pytest
from sqlalchemy import select
from tests.conftest import shared_file

from qala.components.operate.models import Finding, Incident, Observation
from qala.components.operate.replay import read_observations, replay
from qala.runtime import Context

pytestmark = [pytest.mark.shared, pytest.mark.slow]


def test_astana_replay_catches_saturated_station_as_fault(context: Context) -> None:
    path = shared_file("sensors/airdatakz_astana_pm25_hourly_2025-12_2026-01.csv")
    raw = pd.read_csv(path)
    table = read_observations(path)
    report = replay(context, table, batch_size=1000)
    assert report.stored == len(raw) == 4709
    with context.database.session() as session:
        saturated_times = sorted(
            t
            for (t,) in session.execute(
                select(Observation.time_us).where(
                    Observation.sensor == "kgmt_9", Observation.value == 1000.0
                )
            )
        )
        findings = session.scalars(select(Finding).where(Finding.sensor == "kgmt_9")).all()
        incidents = session.scalars(select(Incident).where(Incident.sensor == "kgmt_9")).all()
    assert len(saturated_times) == 134  # as SOURCE.md counts them
    saturated_findings = sorted(f.start_us for f in findings if f.rule_id == "fault.saturated")
    assert saturated_findings == saturated_times  # every capped reading is flagged as a fault
    # No exceedance or episode finding of kgmt_9 is made of capped readings.
    for finding in findings:
        if finding.kind in ("exceedance", "episode"):
            assert finding.value < 1000.0, finding.explanation
    fault_incidents = [i for i in incidents if i.category == "sensor_fault"]
    assert len(fault_incidents) == 1 and fault_incidents[0].service == "ecology"
    # Replaying the same file again stores nothing and opens nothing.
    again = replay(context, table, batch_size=1000)
    assert (again.stored, again.incidents_opened) == (0, [])
