"""Residents who support a request hear about it as the reporter does, in their own language:
a confirmation, each status change, and — when their request is merged into another — the merge,
after which they follow the original."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from tests.components.requests311.conftest import YESIL

from qala.components.notify.models import OutboxMessage, Subscription
from qala.components.requests311.duplicates import Supporter, support_request
from qala.components.requests311.services import Requests
from qala.registry import start_components


def _support(city: Any, request_id: int, email: str, language: str) -> None:
    with city.context.database.transaction() as session:
        support_request(
            session,
            city.jurisdiction,
            request_id,
            Supporter(email=email, language=language),
            now=city.clock(),
            bus=city.context.bus,
        )


def _staff(city: Any, action: str, request_id: int, **options: Any) -> None:
    with city.context.database.transaction() as session:
        staff = Requests(
            session, city.jurisdiction, actor="op", now=city.clock(), bus=city.context.bus
        )
        staff.apply(action, request_id, **options)
    city.clock.advance(minutes=5)


def _mail_to(city: Any, address: str) -> list[tuple[str, str, str]]:
    with city.context.database.session() as session:
        rows = session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.recipient == address, OutboxMessage.channel == "email")
            .order_by(OutboxMessage.id)
        ).all()
        return [(r.kind, r.subject, r.body) for r in rows]


def test_supporters_hear_of_status_changes_and_merges_in_their_language(city: Any) -> None:
    start_components(city.context)
    original = int(city.submit("pothole", lat=YESIL[0], lon=YESIL[1]).service_request_id)
    duplicate = int(
        city.submit(
            "pothole", lat=YESIL[0], lon=YESIL[1], email="asel@example.kz", language="en"
        ).service_request_id
    )
    _support(city, original, "dana@example.kz", "ru")
    _support(city, original, "dana@example.kz", "ru")  # again: no second confirmation
    _support(city, duplicate, "erlan@example.kz", "kk")
    _staff(city, "acknowledge", original, note="Бригада выедет завтра")

    dana = _mail_to(city, "dana@example.kz")
    assert [kind for kind, _, _ in dana] == ["request.supported", "request.acknowledged"]
    assert dana[0][1] == f"Вы поддержали обращение №{original}"
    assert (
        f"Сотрудники приняли к рассмотрению поддержанное вами обращение №{original}" in dana[1][2]
    )
    assert "Пояснение сотрудника: Бригада выедет завтра" in dana[1][2]
    assert f"/requests/{original}?city=astana" in dana[1][2]

    _staff(city, "merge", duplicate, into=original)
    erlan = _mail_to(city, "erlan@example.kz")
    assert [kind for kind, _, _ in erlan] == ["request.supported", "request.closed"]
    assert erlan[0][1] == f"Сіз №{duplicate} өтінішті қолдадыңыз"
    assert f"Өтініш №{original} өтінішімен біріктірілді" in erlan[1][2]

    # From now on the duplicate's supporter follows the original.
    _staff(city, "close", original, reason="resolved")
    erlan = _mail_to(city, "erlan@example.kz")
    assert erlan[-1][1] == f"Өтініш №{original} жабылды"
    assert "Сіз қолдаған «" in erlan[-1][2] and f"№{original} өтініш жабылды" in erlan[-1][2]
    assert _mail_to(city, "dana@example.kz")[-1][1] == f"Обращение №{original} закрыто"
    # The duplicate's reporter too: told of the merge, then of the original as a supporter.
    asel = _mail_to(city, "asel@example.kz")
    assert [kind for kind, _, _ in asel] == ["request.received", "request.closed", "request.closed"]
    assert f"merged into request No. {original}" in asel[1][2]
    assert f"Request No. {original} “Pothole" in asel[2][2] and "which you support" in asel[2][2]
    with city.context.database.session() as session:
        topics = session.scalars(
            select(Subscription.topic).where(Subscription.email == "erlan@example.kz")
        ).all()
    assert topics == [f"support:astana:{original}"]


def test_a_reporter_whose_second_report_is_merged_is_told_once(city: Any) -> None:
    start_components(city.context)
    first = city.submit("pothole", lat=YESIL[0], lon=YESIL[1], email="dana@example.kz")
    second = city.submit("pothole", lat=YESIL[0], lon=YESIL[1], email="dana@example.kz")
    original, duplicate = int(first.service_request_id), int(second.service_request_id)
    _staff(city, "merge", duplicate, into=original)
    _staff(city, "start", original)
    kinds = [kind for kind, _, _ in _mail_to(city, "dana@example.kz")]
    assert kinds == [
        "request.received",
        "request.received",
        "request.closed",
        "request.in_progress",
    ]


def test_a_supporter_following_both_is_told_once_after_the_merge(city: Any) -> None:
    start_components(city.context)
    original = int(city.submit("pothole", lat=YESIL[0], lon=YESIL[1]).service_request_id)
    duplicate = int(city.submit("pothole", lat=YESIL[0], lon=YESIL[1]).service_request_id)
    _support(city, original, "dana@example.kz", "en")
    _support(city, duplicate, "dana@example.kz", "en")
    _staff(city, "merge", duplicate, into=original)
    _staff(city, "start", original)
    kinds = [kind for kind, _, _ in _mail_to(city, "dana@example.kz")]
    assert kinds == [
        "request.supported",
        "request.supported",
        "request.closed",
        "request.in_progress",
    ]
