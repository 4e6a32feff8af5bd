"""Duplicate hints and support on both stores: open requests of the same service within 50 m are
found (60 m, another service or a closed one are not), text similarity reorders them, support is
counted once per supporter, and a merge carries supporters to the original."""

from __future__ import annotations

import math

import pytest
from sqlalchemy import select
from tests.components.requests311.conftest import YESIL, City

from qala.components.requests311.duplicates import (
    Supporter,
    distance_metres,
    find_nearby,
    support_request,
    text_similarity,
)
from qala.components.requests311.models import AuditEntry, Support
from qala.components.requests311.services import Requests, get_public_request
from qala.core.errors import ConflictError, NotFoundError, ValidationError

LAT, LON = YESIL


def north(metres: float) -> tuple[float, float]:
    """The point ``metres`` due north of YESIL."""
    return LAT + metres / 111_195.0, LON


def east(metres: float) -> tuple[float, float]:
    return LAT, LON + metres / (111_195.0 * math.cos(math.radians(LAT)))


def file(city: City, service: str, point: tuple[float, float], text: str | None = None) -> int:
    submitted = city.submit(service, lat=point[0], lon=point[1], description=text)
    return int(submitted.service_request_id)


def nearby(city: City, service: str = "pothole", text: str | None = None) -> list[int]:
    with city.context.database.session() as session:
        found = find_nearby(
            session, city.jurisdiction, service_code=service, lat=LAT, lon=LON, description=text
        )
    return [int(n.request.service_request_id) for n in found]


def support(city: City, request_id: int, **who: str) -> tuple[int, bool]:
    with city.context.database.transaction() as session:
        done = support_request(
            session,
            city.jurisdiction,
            request_id,
            Supporter(**who),
            now=city.clock(),
            bus=city.context.bus,
        )
    return done.supporters, done.added


def test_the_points_used_are_where_they_say() -> None:
    assert distance_metres(LAT, LON, *north(50)) == pytest.approx(50, abs=0.5)
    assert distance_metres(LAT, LON, *east(60)) == pytest.approx(60, abs=0.5)


def test_within_50_m_found_60_m_other_service_and_closed_not(city: City) -> None:
    near_north = file(city, "pothole", north(45))
    near_east = file(city, "pothole", east(30))
    file(city, "pothole", north(60))  # too far
    file(city, "pothole", east(-60))  # too far, the other side
    file(city, "street_light", north(5))  # another service
    closed = file(city, "pothole", north(10))
    with city.context.database.transaction() as session:
        Requests(session, city.jurisdiction, actor="op", now=city.clock()).close(
            closed, reason="resolved"
        )
    assert nearby(city) == [near_east, near_north]  # nearest first
    assert nearby(city, "street_light") != []
    assert nearby(city, "no_such_service") == []


def test_similar_text_ranks_a_farther_request_first(city: City) -> None:
    close_other = file(city, "pothole", east(10), "Яма у остановки автобуса")
    farther_same = file(
        city, "pothole", north(35), "Глубокая яма на проезжей части Кабанбай батыра"
    )
    assert nearby(city) == [close_other, farther_same]
    text = "Глубокая яма на проезжей части улицы Кабанбай батыра"
    assert nearby(city, text=text) == [farther_same, close_other]
    assert text_similarity(text, "ЯМА НА ПРОЕЗЖЕЙ части") > 0
    assert text_similarity(text, "") == 0


def test_bad_points_are_refused_naming_the_field(city: City) -> None:
    with city.context.database.session() as session, pytest.raises(ValidationError) as caught:
        find_nearby(session, city.jurisdiction, service_code="pothole", lat=91, lon=LON)
    assert caught.value.problems[0].column == "lat"


def test_support_is_counted_once_per_account_email_or_token(city: City) -> None:
    request_id = file(city, "pothole", north(20))
    assert support(city, request_id, account="aigerim") == (1, True)
    assert support(city, request_id, account="aigerim") == (1, False)
    assert support(city, request_id, email="Nurlan@Example.kz") == (2, True)
    assert support(city, request_id, email="nurlan@example.kz ") == (2, False)
    assert support(city, request_id, follow_token="browser-1") == (3, True)
    assert support(city, request_id, follow_token="browser-1") == (3, False)
    # The same browser later giving an e-mail is still one supporter, and so is that e-mail.
    assert support(city, request_id, email="dana@example.kz", follow_token="browser-2") == (4, True)
    assert support(city, request_id, follow_token="browser-2") == (4, False)
    assert support(city, request_id, email="dana@example.kz") == (4, False)
    with city.context.database.session() as session:
        public = get_public_request(session, city.jurisdiction, request_id)
        audit = session.scalars(
            select(AuditEntry.changes).where(
                AuditEntry.request_id == request_id, AuditEntry.action == "supported"
            )
        ).all()
    assert public.supporters == 4
    assert [c["supporters"] for c in audit] == [[0, 1], [1, 2], [2, 3], [3, 4]]


def test_the_reporter_does_not_count_twice_and_closed_or_absent_requests_refuse(
    city: City,
) -> None:
    own = int(city.submit("pothole", lat=LAT, lon=LON, email="me@example.kz").service_request_id)
    assert support(city, own, email="ME@example.kz") == (0, False)
    with pytest.raises(ValidationError):
        support(city, own)  # nobody named
    with pytest.raises(ValidationError):
        support(city, own, email="not an address")
    with pytest.raises(NotFoundError):
        support(city, 999_999, account="aigerim")
    with city.context.database.transaction() as session:
        Requests(session, city.jurisdiction, actor="op", now=city.clock()).close(
            own, reason="resolved"
        )
    with pytest.raises(ConflictError):
        support(city, own, account="aigerim")


def test_merging_carries_supporters_and_the_reporter_to_the_original_once(city: City) -> None:
    original = file(city, "pothole", north(5))
    duplicate = file(city, "pothole", north(15))
    support(city, original, account="aigerim")
    support(city, duplicate, account="aigerim")  # supports both: counted once after the merge
    support(city, duplicate, email="nurlan@example.kz")
    with city.context.database.transaction() as session:
        merged = Requests(session, city.jurisdiction, actor="op", now=city.clock())
        merged.merge_duplicate(duplicate, into=original)
        # aigerim, nurlan, and the duplicate's (anonymous) reporter
        assert merged.detail(original).supporters == 3
    with city.context.database.session() as session:
        assert get_public_request(session, city.jurisdiction, duplicate).supporters == 0
        keys = session.scalars(
            select(Support.supporter_key).where(Support.request_id == original)
        ).all()
        assert session.scalar(select(Support.id).where(Support.request_id == duplicate)) is None
    assert sorted(k.split(":")[0] for k in keys) == ["account", "email", "request"]
    assert nearby(city) == [original]  # the merged copy is closed


def test_a_reporter_merged_twice_or_into_their_own_report_counts_once(city: City) -> None:
    mine = int(city.submit("pothole", lat=LAT, lon=LON, email="dana@example.kz").service_request_id)
    again = int(
        city.submit("pothole", lat=LAT, lon=LON, email="Dana@example.kz").service_request_id
    )
    neighbour = int(city.submit("pothole", lat=LAT, lon=LON, account_id="erlan").service_request_id)
    neighbour_again = int(
        city.submit("pothole", lat=LAT, lon=LON, account_id="erlan").service_request_id
    )
    with city.context.database.transaction() as session:
        staff = Requests(session, city.jurisdiction, actor="op", now=city.clock())
        staff.merge_duplicate(again, into=mine)  # her own second report: not a supporter
        staff.merge_duplicate(neighbour, into=mine)
        staff.merge_duplicate(neighbour_again, into=mine)  # the same account: once
        assert staff.detail(mine).supporters == 1
