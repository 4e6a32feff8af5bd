"""The data call's pages through the ASGI app in Kazakh and Russian: the status board, a place's
form with evidence and plausibility flags, the reviewer's queue with accept and return, the
answer to a return, publication; a submitter of another place is refused and nothing is written."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from tests.web.conftest import load_demo_call

from qala.components.catalog.calls import status_board
from qala.components.catalog.models import CallEvent, CallValue
from qala.components.catalog.services import import_frame
from qala.runtime import Context
from qala.settings import Settings

UNEMPLOYMENT = "iso37120.5.1"
LIFE = "iso37120.11.1"


@pytest.fixture(scope="module")
def site(
    sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Context, object, int]]:
    from qala.api.app import create_app
    from qala.components.accounts.services import create_user, ensure_demo_users

    folder = tmp_path_factory.mktemp("calls")
    shutil.copy(sqlite_template, folder / "qala.sqlite")
    settings = Settings(database_url=f"sqlite:///{folder / 'qala.sqlite'}", secret_key="calls")
    context = Context.from_settings(settings)
    app = create_app(settings, context=context)
    with context.database.transaction() as session:
        ensure_demo_users(session)
        create_user(
            session,
            username="shymkent-data",
            password="shymkent-data-demo-2026",
            role="submitter",
            place="shymkent",
        )
    history = pd.DataFrame(
        {
            "place": ["shymkent", "astana", "almaty", "aktau"],
            "indicator": [UNEMPLOYMENT] * 4,
            "year": [2025] * 4,
            "value": [4.0, 4.6, 4.8, 5.1],
        }
    )
    import_frame(context.database, history, file="history.csv")
    call = load_demo_call(context)
    yield context, app, call
    context.database.dispose()


def signed_in(site: tuple[Context, object, int], username: str, language: str) -> TestClient:
    client = TestClient(
        site[1],  # type: ignore[arg-type]
        headers={"accept": "text/html", "accept-language": language},
        follow_redirects=False,
    )
    page = client.get("/login")
    answer = client.post(
        "/login",
        data={
            "username": username,
            "password": f"{username}-demo-2026",
            "csrf_token": csrf(page.text),
            "next": "/",
        },
    )
    assert answer.status_code == 303, answer.text[:300]
    return client


def csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "form without a CSRF token"
    return found.group(1)


def written(context: Context) -> tuple[int, list[tuple[object, ...]]]:
    with context.database.session() as session:
        events = session.scalar(select(func.count()).select_from(CallEvent)) or 0
        values = [
            (v.place_id, v.indicator_id, v.value, v.status, v.answer)
            for v in session.scalars(select(CallValue).order_by(CallValue.id))
        ]
    return events, values


@pytest.mark.parametrize(
    ("language", "words"),
    [
        ("ru", ("Сводка по статусам", "просрочено", "Очередь проверки")),
        ("kk", ("Мәртебелер тақтасы", "кешіктірілді", "Тексеру кезегі")),
    ],
)
def test_the_board_in_kazakh_and_russian(site, language: str, words: tuple[str, ...]) -> None:
    _context, _app, call = site
    reviewer = signed_in(site, "reviewer", language)
    assert str(call) in reviewer.get("/calls").text
    board = reviewer.get(f"/calls/{call}")
    assert board.status_code == 200
    for word in words:
        assert word in board.text
    # Per place: Astana 1 submitted, 1 returned; Almaty 2 accepted; Shymkent 2 missing, overdue.
    rows = re.findall(r'<tr>\s*<th scope="row">.*?</tr>', board.text, flags=re.S)
    cells = [re.findall(r'<td class="num">(\d+)</td>', row) for row in rows]
    assert cells == [["1", "0", "1", "0"], ["0", "2", "0", "0"], ["0", "0", "0", "2"]]
    assert board.text.count('<span class="badge returned">') == 1  # only Shymkent is overdue
    # A submitter sees its own place's row only; the publisher also sees the publish form.
    mine = signed_in(site, "submitter", language).get(f"/calls/{call}").text
    assert mine.count('<th scope="row">') == 1 and f"/calls/{call}/places/astana" in mine
    assert '/publish"' not in mine and '/review"' not in mine
    assert (
        f'action="/calls/{call}/publish"'
        in signed_in(site, "publisher", language).get(f"/calls/{call}").text
    )


def test_a_submitter_fills_in_its_place_and_sees_the_flags(site) -> None:
    context, _app, call = site
    client = signed_in(site, "shymkent-data", "ru")
    form = client.get(f"/calls/{call}/places/shymkent")
    assert form.status_code == 200
    assert 'name="value:iso37120.5.1"' in form.text and "реквизиты документа" in form.text
    sent = client.post(
        f"/calls/{call}/places/shymkent",
        data={
            "csrf_token": csrf(form.text),
            "value:iso37120.5.1": "10,5",
            "evidence:iso37120.5.1": "письмо акимата № 3",
        },
    )
    assert sent.status_code == 303, sent.text[:500]
    after = client.get(sent.headers["location"]).text
    assert "Представлено значений: 1 (отмечено для проверки: 1)." in after
    assert "Изменение к прошлому году: 162 % (прошлый год: 4,0)." in after
    assert "Вне диапазона сопоставимых населённых пунктов (4,6–5,1)." in after
    with context.database.session() as session:
        board = {r["place"]: r for r in status_board(session, call)}
    assert board["shymkent"]["submitted"] == 1 and board["shymkent"]["missing"] == 1


def test_a_submitter_of_another_place_is_refused_and_nothing_is_written(site) -> None:
    context, _app, call = site
    client = signed_in(site, "submitter", "kk")  # Astana's submitter
    token = csrf(client.get(f"/calls/{call}/places/astana").text)
    before = written(context)
    assert client.get(f"/calls/{call}/places/almaty").status_code == 403
    refused = client.post(
        f"/calls/{call}/places/almaty",
        data={"csrf_token": token, "value:iso37120.11.1": "70"},
    )
    assert refused.status_code == 403
    answer = client.post(
        f"/calls/{call}/places/almaty/answer",
        data={"csrf_token": token, "indicator": LIFE, "answer": "түзетілді"},
    )
    assert answer.status_code == 403
    assert written(context) == before
    # Nor may a submitter review or publish.
    assert client.get(f"/calls/{call}/review").status_code == 403
    assert client.post(f"/calls/{call}/publish", data={"csrf_token": token}).status_code == 403
    assert written(context) == before


def test_return_answer_accept_and_publish(site) -> None:
    context, _app, call = site
    reviewer = signed_in(site, "reviewer", "kk")
    queue = reviewer.get(f"/calls/{call}/review")
    assert queue.status_code == 200 and "Тексеру кезегі" in queue.text
    token = csrf(queue.text)
    # Returning needs a reason: the queue comes back with the problem, nothing written.
    before = written(context)
    bare = reviewer.post(
        f"/calls/{call}/review",
        data={
            "csrf_token": token,
            "place": "astana",
            "indicator": UNEMPLOYMENT,
            "decision": "return",
        },
    )
    assert bare.status_code == 422 and 'id="problems"' in bare.text
    assert written(context) == before
    accepted = reviewer.post(
        f"/calls/{call}/review",
        data={
            "csrf_token": token,
            "place": "astana",
            "indicator": UNEMPLOYMENT,
            "decision": "accept",
        },
    )
    assert accepted.status_code == 303

    submitter = signed_in(site, "submitter", "kk")
    form = submitter.get(f"/calls/{call}/places/astana").text
    assert "Нет ссылки на таблицу БНС" in form and "Тексерушіге жауап" in form
    answered = submitter.post(
        f"/calls/{call}/places/astana/answer",
        data={
            "csrf_token": csrf(form),
            "indicator": LIFE,
            "answer": "БНС 6521 кестесі",
            "value": "73,8",
            "evidence": "https://stat.gov.kz/6521",
        },
    )
    assert answered.status_code == 303, answered.text[:300]
    queue = reviewer.get(f"/calls/{call}/review").text
    assert "БНС 6521 кестесі" in queue
    reviewer.post(
        f"/calls/{call}/review",
        data={"csrf_token": token, "place": "astana", "indicator": LIFE, "decision": "accept"},
    )
    publisher = signed_in(site, "publisher", "ru")
    board = publisher.get(f"/calls/{call}").text
    ptoken = csrf(board)
    # Shymkent is incomplete: refused unless forced with a reason.
    refused = publisher.post(f"/calls/{call}/publish", data={"csrf_token": ptoken})
    assert refused.status_code == 409 and 'id="problems"' in refused.text
    no_reason = publisher.post(
        f"/calls/{call}/publish", data={"csrf_token": ptoken, "force": "yes"}
    )
    assert no_reason.status_code == 422
    forced = publisher.post(
        f"/calls/{call}/publish",
        data={"csrf_token": ptoken, "force": "yes", "reason": "Шымкент представит в мае"},
    )
    assert forced.status_code == 303
    shown = publisher.get(forced.headers["location"]).text
    assert "Опубликован выпуск № " in shown and "Шымкент представит в мае" in shown


def test_unknown_and_impossible_calls_are_4xx_pages(site) -> None:
    reviewer = signed_in(site, "reviewer", "ru")
    assert reviewer.get("/calls/999").status_code == 404
    assert reviewer.get("/calls/99999999999999999999").status_code == 422
    assert reviewer.get(f"/calls/1/places/{'x' * 200}").status_code == 422
    assert reviewer.get("/calls/1/places/taraz").status_code == 404  # not asked by the call


def test_official_imports_are_folded_below_the_calls_cities_answer(site) -> None:
    """One import call per year of official statistics would bury the call the cities answer
    under two dozen cards: they are listed in one folded block, counted in the reader's
    language."""
    from qala.components.catalog.calls import publish_import

    context, _app, call = site
    for year in (2022, 2023):
        frame = pd.DataFrame(
            {
                "place": ["astana", "almaty"],
                "indicator": [UNEMPLOYMENT] * 2,
                "value": [4.1, 4.3],
                "evidence": ["BNS table 1"] * 2,
            }
        )
        with context.database.transaction() as session:
            publish_import(
                session,
                frame,
                year=year,
                title=f"official {year}",
                actor="reviewer",
                official=True,
            )
    for language, counted in (
        ("ru", "2 импорта официальной статистики"),
        ("kk", "Ресми статистиканың 2 импорты"),
    ):
        page = signed_in(site, "reviewer", language).get("/calls").text
        folded = page[page.index('<details class="card official-imports">') :]
        assert counted in folded
        assert folded.count('<a href="/calls/') == 2
        # The city-answered call stays on top, outside the fold.
        above = page[: page.index('<details class="card official-imports">')]
        assert f'<a href="/calls/{call}">' in above
