"""The request lifecycle on both stores: routing, transitions, duplicates, notes, audit, escalation,
bulk updates."""

from __future__ import annotations

from datetime import timedelta

import pytest
from tests.components.requests311.conftest import NOW, SARYARKA, YESIL, City

from qala.components.requests311.services import (
    Requests,
    escalate_overdue,
    follow_request,
)
from qala.core.errors import ConflictError, NotFoundError, PermissionDeniedError, ValidationError
from qala.events import Event


def staff(city: City, session: object, actor: str = "aigerim") -> Requests:
    return Requests(session, city.jurisdiction, actor=actor, now=city.clock(), bus=city.context.bus)  # type: ignore[arg-type]


def test_routing_by_service_and_district(city: City) -> None:
    # Snow: each district's akimat; waste: energy department except in Nura; heating: by service.
    cases = [
        ("snow_removal", YESIL, "akimat_yesil", "yesil"),
        ("snow_removal", SARYARKA, "akimat_saryarka", "saryarka"),
        ("waste_collection", (51.080, 71.390), "akimat_nura", "nura"),
        ("waste_collection", YESIL, "energy_housing", "yesil"),
        ("heating", SARYARKA, "energy_housing", "saryarka"),
        ("stray_animals", YESIL, "veterinary", "yesil"),
        (
            "snow_removal",
            (51.15, 71.88),
            "roads_transport",
            None,
        ),  # the city's edge, 27 km from every district centre: no district, service default
    ]
    for code, (lat, lon), department, district in cases:
        submitted = city.submit(code, lat=lat, lon=lon)
        assert (submitted.department, submitted.district) == (department, district), code


def test_lifecycle_with_audit_trail_and_public_vs_internal_notes(city: City) -> None:
    events: list[Event] = []
    city.context.bus.subscribe("*", events.append)
    request_id = int(city.submit("street_light", email="a@b.kz").service_request_id)
    assert [e.name for e in events] == ["requests311.created"]  # after the commit
    steps = [
        lambda s: s.acknowledge(request_id, note="Бригада выедет сегодня"),
        lambda s: s.add_note(request_id, text="Pole 17 needs a lift truck", public=False),
        lambda s: s.start(request_id),
        lambda s: s.close(request_id, reason="resolved", note="Лампа заменена"),
        lambda s: s.reopen(request_id, reason="Опять не горит"),
        lambda s: s.assign(request_id, assignee="nurlan", department="roads_transport"),
        lambda s: s.close(request_id, reason="resolved"),
    ]
    for hours, step in enumerate(steps, start=1):
        city.clock.now = NOW + timedelta(hours=hours)
        with city.context.database.transaction() as session:
            step(staff(city, session))
    with city.context.database.session() as session:
        detail = staff(city, session).detail(request_id)
        followed = follow_request(session, city.jurisdiction, str(request_id))
        by_token = follow_request(session, city.jurisdiction, detail.token)
    assert detail.status == "closed" and detail.close_reason == "resolved"
    assert detail.reopen_count == 1
    assert (detail.assignee, detail.department) == ("nurlan", "roads_transport")
    assert detail.closed_at == NOW + timedelta(hours=7)
    assert detail.reporter["email"] == "a@b.kz"
    assert [a.action for a in detail.audit] == [
        "created",
        "acknowledged",
        "internal_note",
        "started",
        "closed",
        "reopened",
        "assigned",
        "closed",
    ]
    assert detail.audit[4].changes["status"] == ["in_progress", "closed"]
    assert detail.audit[5].changes["reopen_count"] == [0, 1]
    assert all(a.actor == "aigerim" for a in detail.audit[1:])
    assert [(n.public, n.text) for n in detail.notes] == [
        (True, "Бригада выедет сегодня"),
        (False, "Pole 17 needs a lift truck"),
        (True, "Лампа заменена"),
        (True, "Опять не горит"),
    ]
    # Citizens see public updates only, by id or by token.
    assert [u.text for u in followed.updates] == [
        "Бригада выедет сегодня",
        "Лампа заменена",
        "Опять не горит",
    ]
    assert by_token.request.service_request_id == str(request_id)
    assert followed.request.status_notes == "Опять не горит"
    assert [e.name for e in events].count("requests311.closed") == 2
    assert "requests311.reopened" in [e.name for e in events]


def test_transitions_that_make_no_sense_are_refused(city: City) -> None:
    request_id = int(city.submit("pothole").service_request_id)
    with city.context.database.transaction() as session:
        s = staff(city, session)
        with pytest.raises(ConflictError, match=r"cannot reopen request \d+: it is open"):
            s.reopen(request_id, reason="why")
        with pytest.raises(ValidationError, match="reason"):
            s.close(request_id, reason="bored")
        with pytest.raises(ValidationError, match="mark duplicates with merge"):
            s.close(request_id, reason="duplicate")
        s.close(request_id, reason="not_actionable")
        with pytest.raises(ConflictError, match="cannot acknowledge"):
            s.acknowledge(request_id)
        with pytest.raises(NotFoundError):
            s.start(10_000)
        with pytest.raises(NotFoundError, match="no department `mayor`"):
            s.assign(request_id, department="mayor")


def test_duplicates_merge_into_the_original_and_cannot_be_reopened(city: City) -> None:
    original = int(city.submit("illegal_dumping").service_request_id)
    first_copy = int(city.submit("illegal_dumping").service_request_id)
    second_copy = int(city.submit("illegal_dumping").service_request_id)
    with city.context.database.transaction() as session:
        s = staff(city, session)
        s.merge_duplicate(first_copy, into=original)
        merged = s.merge_duplicate(
            second_copy, into=first_copy
        )  # follows the chain to the original
        assert merged.duplicate_of == original and merged.close_reason == "duplicate"
        with pytest.raises(ConflictError, match="reopen that one"):
            s.reopen(second_copy, reason="still there")
        with pytest.raises(ConflictError, match="itself"):
            s.merge_duplicate(original, into=first_copy)
    with city.context.database.session() as session:
        detail = staff(city, session).detail(original)
        assert [n.text for n in detail.notes] == [
            f"Request {first_copy} was merged into this one.",
            f"Request {second_copy} was merged into this one.",
        ]
        assert not any(n.public for n in detail.notes)
        followed = follow_request(session, city.jurisdiction, str(second_copy))
        assert followed.duplicate_of == str(original)


def test_escalation_levels_follow_sla_periods_and_run_idempotently(city: City) -> None:
    heating = int(city.submit("heating").service_request_id)  # SLA 24 h
    pothole = int(city.submit("pothole").service_request_id)  # SLA 168 h
    closed = int(city.submit("electricity").service_request_id)  # SLA 12 h, closed in time
    with city.context.database.transaction() as session:
        staff(city, session).close(closed, reason="resolved")

    def scan(hours: float) -> list[tuple[int, int]]:
        with city.context.database.transaction() as session:
            return escalate_overdue(session, city.jurisdiction, now=NOW + timedelta(hours=hours))

    assert scan(23.9) == []
    assert scan(24.5) == [(heating, 1)]
    assert scan(30) == []  # nothing new
    assert scan(49) == [(heating, 2)]
    assert sorted(scan(24 * 8)) == [(heating, 3), (pothole, 1)]
    assert scan(24 * 30) == [(pothole, 3)]  # the heating request stays at the top level
    city.clock.now = NOW + timedelta(days=30)
    with city.context.database.session() as session:
        queue = staff(city, session).queue(overdue_only=True)
        assert [(r.id, r.escalation_level, r.overdue) for r in queue] == [
            (heating, 3, True),
            (pothole, 3, True),
        ]
        audit = staff(city, session).detail(heating).audit
        assert [a.changes["escalation_level"] for a in audit if a.action == "escalated"] == [
            [0, 1],
            [1, 2],
            [2, 3],
        ]
        assert {a.actor for a in audit if a.action == "escalated"} == {"escalation"}
    # A reopen restarts the clock.
    with city.context.database.transaction() as session:
        s = staff(city, session)
        s.close(heating, reason="resolved")
        s.reopen(heating, reason="cold again")
    assert scan(24 * 30 + 1) == []
    assert scan(24 * 31 + 1) == [(heating, 1)]


def test_queue_per_department_and_bulk_updates_all_or_nothing(city: City) -> None:
    snow = [
        int(city.submit("snow_removal", lat=YESIL[0], lon=YESIL[1]).service_request_id)
        for _ in range(3)
    ]
    heating = int(city.submit("heating").service_request_id)
    with city.context.database.session() as session:
        s = staff(city, session)
        assert [r.id for r in s.queue(department="akimat_yesil")] == snow
        assert [r.id for r in s.queue(department="energy_housing")] == [heating]
        assert s.queue(department="akimat_nura") == []
    with city.context.database.transaction() as session:
        s = staff(city, session)
        s.close(snow[0], reason="resolved")
    with city.context.database.transaction() as session:
        with pytest.raises(ValidationError) as caught:
            staff(city, session).bulk(snow, "acknowledge")
        assert [p.value for p in caught.value.problems] == [snow[0]]
        assert "nothing was changed" in str(caught.value)
    with city.context.database.session() as session:
        assert {r.status for r in staff(city, session).queue(department="akimat_yesil")} == {"open"}
    with city.context.database.transaction() as session:
        done = staff(city, session).bulk(snow[1:], "close", reason="resolved", note="Cleared")
        assert [r.status for r in done] == ["closed", "closed"]
    with city.context.database.session() as session:
        assert staff(city, session).queue(department="akimat_yesil") == []
        with pytest.raises(ValidationError, match="expected one of"):
            staff(city, session).bulk(snow, "explode")


def test_cities_may_refuse_anonymous_reports(city: City) -> None:
    from dataclasses import replace

    from qala.components.requests311.services import NewRequest, submit_request

    closed_city = replace(city.jurisdiction, anonymous_allowed=False)
    with (
        city.context.database.transaction() as session,
        pytest.raises(PermissionDeniedError, match="api_key"),
    ):
        submit_request(session, closed_city, NewRequest("heating", lat=51.1, lon=71.4), now=NOW)


def test_escalation_timer_scans_every_city_repeatedly(city: City) -> None:
    import time as wallclock

    from qala.components.requests311.escalation import EscalationTimer

    heating = int(city.submit("heating").service_request_id)
    city.clock.advance(hours=25)
    seen: list[dict[str, list[tuple[int, int]]]] = []
    timer = EscalationTimer(city.context, interval=0.05, on_scan=seen.append).start()
    deadline = wallclock.monotonic() + 10
    while len(seen) < 3 and wallclock.monotonic() < deadline:
        wallclock.sleep(0.02)
    timer.stop()
    assert seen[0] == {"astana": [(heating, 1)]}
    assert all(scan == {"astana": []} for scan in seen[1:3])  # idempotent between scans
    with pytest.raises(ValueError):
        EscalationTimer(city.context, interval=0)
