"""Participation news: a ballot's receipt by e-mail (and only the fact of voting kept for
"mine"), a followed project's payments and milestones, in the resident's language."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from tests.components.budgeting.conftest import KEY, iin, make_town
from tests.components.notify.conftest import MailBox

from qala.components.accounts.services import create_user
from qala.components.budgeting.ballots import cast_ballot
from qala.components.budgeting.projects import (
    NewProject,
    add_milestone,
    complete_milestone,
    create_project,
    record_payment,
)
from qala.components.notify import services as notify
from qala.components.notify.models import OutboxMessage
from qala.components.notify.sender import Sender
from qala.registry import start_components


@pytest.fixture
def town(context: Any, tmp_path: Path) -> Any:
    context.settings.ledger_key_file = tmp_path / "ledger_key"
    start_components(context)
    return make_town(context)


def _resident(town: Any, **contact: Any) -> int:
    with town.context.database.transaction() as session:
        user = create_user(session, username="aigul", password="long enough pw", role="citizen")
        notify.save_preferences(session, "aigul", now=town.clock(), **contact)
        return int(user.id)


def _messages(town: Any) -> list[OutboxMessage]:
    with town.context.database.session() as session:
        return list(session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


def test_a_ballot_receipt_is_mailed_then_blanked_and_only_the_vote_is_remembered(
    town: Any, mailbox: MailBox
) -> None:
    account = _resident(
        town,
        email="aigul@example.kz",
        phone="+77015550000",
        language="kk",
        email_on=True,
        sms_on=True,
    )
    codes = town.voting_with([10_000_000, 20_000_000])
    with town.context.database.transaction() as session:
        receipt = cast_ballot(
            session,
            town.code,
            iin=iin(1),
            choices=[codes[0]],
            secret_key=KEY,
            now=town.clock(),
            account_id=account,
        )
    (message,) = _messages(town)
    assert message.channel == "email"  # never by SMS: the receipt is a secret
    assert message.subject == "«Бюджет участия Астаны 2026» бойынша дауысыңыз қабылданды"
    assert receipt.receipt in message.body
    with town.context.database.session() as session:
        (voted,) = notify.ballots_of(session, "aigul")
    assert voted.process == town.code and voted.receipt_mailed
    assert not hasattr(voted, "projects")  # what was chosen stays in the secret ballot

    town.context.settings.smtp_url = mailbox.url
    assert Sender.for_context(town.context).run_once() == {"sent": 1}
    assert receipt.receipt in mailbox.messages[0].get_content()
    (sent,) = _messages(town)
    assert sent.status == "sent" and sent.body == ""  # no copy of the receipt stays behind


def test_followers_of_a_project_hear_of_its_payments_and_milestones(town: Any) -> None:
    _resident(town, email="aigul@example.kz", phone="", language="ru", email_on=True, sms_on=True)
    now = town.clock()
    with town.context.database.transaction() as session:
        create_project(
            session,
            NewProject(
                code="park-1",
                place_code="astana",
                title={"kk": "Саябақ", "ru": "Парк у реки", "en": "Riverside park"},
                budget=5_000_000,
                planned_end=date(2026, 12, 1),
            ),
            actor="akimat",
            now=now,
        )
        notify.follow(
            session,
            "aigul",
            kind="project",
            code="park-1",
            label={"ru": "Парк у реки"},
            link="/budgeting/projects/park-1",
            language="ru",
            now=now,
        )
        record_payment(
            session,
            "park-1",
            paid_on=now.date(),
            amount=1_250_000,
            payee="ТОО Курылыс",
            actor="akimat",
            now=now,
        )
        milestone = add_milestone(
            session,
            "park-1",
            title="Посадка деревьев",
            due_on=date(2026, 5, 1),
            actor="akimat",
            now=now,
        )
        complete_milestone(
            session,
            "park-1",
            milestone["id"],
            done_on=now.date() - timedelta(days=1),
            actor="akimat",
            now=now,
        )
    payment, done = _messages(town)
    assert payment.subject == "«Парк у реки»: произведена оплата"
    assert "по проекту оплачено 1\u00a0250\u00a0000 тенге" in payment.body
    assert "http://127.0.0.1:8000/budgeting/projects/park-1" in payment.body
    assert done.subject == "«Парк у реки»: этап завершён"
    assert "28.02.2026 завершён этап «Посадка деревьев»." in done.body
    with town.context.database.session() as session:
        (followed,) = notify.followed_by(session, "aigul")
        notify.set_following(session, "aigul", followed.id, active=False)
        session.commit()
    with town.context.database.transaction() as session:
        record_payment(
            session, "park-1", paid_on=now.date(), amount=10, payee="x", actor="a", now=now
        )
    assert len(_messages(town)) == 2  # stopped: nothing more


def test_followers_of_a_consultation_get_its_outcome_in_their_language(town: Any) -> None:
    from qala.components.budgeting.consultations import (
        NewConsultation,
        create_consultation,
        record_outcome,
    )

    _resident(town, email="", phone="+77015550000", language="kk", email_on=True, sms_on=True)
    town.context.settings.public_base_url = "https://qala.astana.kz/"
    now = town.clock()
    with town.context.database.transaction() as session:
        create_consultation(
            session,
            NewConsultation(
                code="hearing-1",
                place_code="astana",
                kind="hearing",
                title={"kk": "Саябақ тыңдауы", "ru": "Слушания о парке"},
                opens_at=now,
                closes_at=now + timedelta(days=3),
                hearing_at=now + timedelta(days=2),
                venue="Akimat hall",
            ),
            actor="akimat",
            now=now,
        )
        notify.follow(
            session,
            "aigul",
            kind="consultation",
            code="hearing-1",
            label={"kk": "Саябақ тыңдауы"},
            link="/budgeting",
            language="kk",
            now=now,
        )
        record_outcome(
            session,
            "hearing-1",
            summary={"kk": "Саябақ сақталады.", "ru": "Парк сохранят."},
            now=now + timedelta(days=4),
        )
    (sms,) = _messages(town)
    assert sms.channel == "sms" and sms.recipient == "+77015550000"
    assert (
        sms.body
        == "Qala: «Саябақ тыңдауы» талқылауының қорытындысы. https://qala.astana.kz/budgeting"
    )
