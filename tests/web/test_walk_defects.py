"""The defects of the issue 15 walk, each checked through the app (the browser walk in
test_browser_walk.py meets them as a resident does): the language switch keeps the query string,
the rating's region filter puts rank and interval on one basis, a close needs its reason, voting
answers with a redirect (a refresh casts nothing) and a returning voter is told they voted and
changes the ballot with the receipt, the import report reads in Kazakh and Russian."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from tests.web.conftest import load_small_demo
from tests.web.crawl import VisibleText, latin_words
from tests.web.test_every_word import ALLOWED

from qala.runtime import Context
from qala.settings import Settings

Site = tuple[Context, object, str | None, int | None]


@pytest.fixture(scope="module")
def site(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    from qala.api.app import create_app

    folder = tmp_path_factory.mktemp("walk-defects")
    shutil.copy(sqlite_template, folder / "qala.sqlite")
    settings = Settings(database_url=f"sqlite:///{folder / 'qala.sqlite'}", secret_key="walk")
    context = Context.from_settings(settings)
    app = create_app(settings, context=context)
    incident, process = load_small_demo(context, replications=5, years=1)
    yield context, app, process, incident
    context.database.dispose()


def client_for(site: Site, language: str = "en") -> TestClient:
    headers = {"accept": "text/html", "accept-language": language}
    return TestClient(site[1], headers=headers, follow_redirects=False)  # type: ignore[arg-type]


def csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "form without a CSRF token"
    return found.group(1)


def signed_in(site: Site, username: str, language: str = "en") -> TestClient:
    client = client_for(site, language)
    answer = client.post(
        "/login",
        data={
            "username": username,
            "password": f"{username}-demo-2026",
            "csrf_token": csrf(client.get("/login").text),
            "next": "/",
        },
    )
    assert answer.status_code == 303, answer.text[:300]
    return client


def visible_text(html: str) -> str:
    parser = VisibleText()
    parser.feed(html)
    return "\n".join(parser.parts)


# -- language switch ---------------------------------------------------------------------------
def test_the_language_switch_keeps_the_query_string(site: Site) -> None:
    page = client_for(site).get("/rating?region=karaganda-region&kind=city&lang=ru").text
    switch = page[
        page.index('<form class="lang"') : page.index("</form>", page.index('class="lang"'))
    ]
    assert '<input type="hidden" name="region" value="karaganda-region">' in switch
    assert '<input type="hidden" name="kind" value="city">' in switch
    assert 'name="lang"' in switch and 'type="hidden" name="lang"' not in switch
    assert "data-keep-typed" in switch  # the script keeps what was typed (the browser walk)


def test_the_language_switch_does_not_carry_a_one_time_message(site: Site) -> None:
    page = client_for(site).get("/rating?flash=Done&kind=ok&fsig=abc&lang=ru").text
    switch = page[
        page.index('<form class="lang"') : page.index("</form>", page.index('class="lang"'))
    ]
    assert 'name="flash"' not in switch and 'name="fsig"' not in switch
    assert 'name="kind"' not in switch


# -- rating filter -----------------------------------------------------------------------------
def test_a_filtered_rating_gives_rank_and_interval_on_one_basis(site: Site) -> None:
    page = client_for(site, "ru").get("/rating?region=karaganda-region").text
    assert 'id="selection-basis"' in page
    rows = re.findall(
        r'<td class="num rank">(\d+)</td>\s*<td class="num rank-national">(\d+)</td>\s*'
        r'<td class="interval-text">(\d+)–(\d+)</td>',
        page,
    )
    assert len(rows) >= 2
    assert [int(r[0]) for r in rows] == list(range(1, len(rows) + 1))
    for _, national, low, high in rows:
        assert int(low) <= int(national) <= int(high)
    assert any(int(national) > int(selected) for selected, national, _, _ in rows)
    # The chart's dots are national ranks too: each inside its own interval bar.
    chart = page[page.index('<svg class="chart"') :]
    for x1, x2, cx in re.findall(
        r'<line class="interval [^"]*" x1="([\d.]+)" y1="[\d.]+" x2="([\d.]+)"[^>]*/>'
        r'<circle class="dot [^"]*" cx="([\d.]+)"',
        chart,
    ):
        assert float(x1) - 0.1 <= float(cx) <= float(x2) + 0.1


def test_the_whole_rating_keeps_its_single_rank_column(site: Site) -> None:
    page = client_for(site, "ru").get("/rating").text
    assert 'class="num rank-national"' not in page and 'id="selection-basis"' not in page


# -- operator close ----------------------------------------------------------------------------
def test_a_close_needs_a_reason_the_operator_chose(site: Site) -> None:
    context, _, _, incident = site
    assert incident is not None
    operator = signed_in(site, "operator", "ru")
    board = operator.get("/operator").text
    card = board[board.index(f'id="incident-{incident}"') :]
    card = card[: card.index("</article>")]
    assert 'name="reason" required><option value="">' in card
    assert "data-confirm=" in card and f"№{incident}" in card
    answer = operator.post(
        f"/operator/incidents/{incident}/close",
        data={"csrf_token": csrf(board), "reason": "", "note": ""},
        headers={"referer": "/operator"},
    )
    assert answer.status_code == 303
    shown = operator.get(answer.headers["location"]).text
    assert "Выберите причину закрытия" in shown
    from qala.components.operate import incidents

    with context.database.session() as session:
        assert incidents.view(incidents.get_incident(session, incident)).status != "closed"


@pytest.mark.parametrize(
    ("language", "expected"),
    [("ru", "подтвердить можно только открытый инцидент"), ("kk", "тек ашық оқиғаны растауға")],
)
def test_a_refused_action_on_the_board_says_why_in_the_page_language(
    site: Site, language: str, expected: str
) -> None:
    _, _, _, incident = site
    assert incident is not None
    operator = signed_in(site, "operator", language)
    board = operator.get("/operator").text
    for _ in range(2):  # the second acknowledgement is refused: the incident is no longer open
        answer = operator.post(
            f"/operator/incidents/{incident}/acknowledge",
            data={"csrf_token": csrf(board)},
            headers={"referer": "/operator"},
        )
        assert answer.status_code == 303
    shown = visible_text(operator.get(answer.headers["location"]).text)
    assert expected in shown
    assert "only an open incident" not in shown


def test_a_long_description_on_the_board_says_there_is_more(site: Site) -> None:
    from qala.components.operate import incidents

    context = site[0]
    text = "Течь усиливается, вода уходит под асфальт; " * 10
    with context.database.transaction() as session:
        opened = incidents.open_incident(
            session,
            category="water",
            severity="warning",
            now=context.clock(),
            actor="test",
            title="Течь",
            description=text,
            place_code="astana",
            lat=51.02,
            lon=71.40,
        )
        number = opened.incident.id
    board = signed_in(site, "operator", "ru").get("/operator").text
    card = board[board.index(f'id="incident-{number}"') :]
    card = card[: card.index("</article>")]
    assert '<details class="full-text">' in card and "…" in card
    assert text.strip() in card.replace("&#39;", "'")


# -- ballot ------------------------------------------------------------------------------------
def test_voting_redirects_names_projects_and_a_returning_voter_changes_the_ballot(
    site: Site,
) -> None:
    from sqlalchemy import func, select

    from qala.components.accounts.services import create_user
    from qala.components.budgeting import ballots
    from qala.components.budgeting.iin import make_iin
    from qala.components.budgeting.models import Ballot

    context, _, process, _ = site
    assert process is not None
    with context.database.transaction() as session:
        create_user(session, username="voter-walk", password="voter-walk-demo-2026")
    voter = signed_in(site, "voter-walk", "ru")
    page = voter.get(f"/budgeting/{process}").text
    assert 'id="you-voted"' not in page and 'id="change-with-receipt"' in page
    codes = re.findall(r'name="project" value="([^"]+)"', page)
    names = {
        code: re.search(rf'<label for="proj-{code}">([^<]+)</label>', page).group(1)  # type: ignore[union-attr]
        for code in codes[:2]
    }
    iin = make_iin(date(1979, 11, 2), sex="female", serial=77)
    cast = voter.post(
        f"/budgeting/{process}/ballot",
        data={"csrf_token": csrf(page), "iin": iin, "project": codes[0]},
    )
    # Sent on to the page: a refresh reloads it and casts nothing.
    assert cast.status_code == 303, cast.text[:500]
    assert cast.headers["location"].startswith(f"/budgeting/{process}")
    with context.database.session() as session:
        before = session.scalar(select(func.count()).select_from(Ballot))
    shown = voter.get(f"/budgeting/{process}").text
    again = voter.get(f"/budgeting/{process}").text
    with context.database.session() as session:
        assert session.scalar(select(func.count()).select_from(Ballot)) == before
    receipt = re.search(r'id="ballot-receipt">.*?<code>([^<]+)</code>', shown, re.S)
    assert receipt and receipt.group(1) in again
    listed = re.search(r'id="receipt-projects">([^<]+)<', shown)
    assert listed and names[codes[0]] in listed.group(1) and codes[0] not in listed.group(1)
    assert 'id="you-voted"' in shown
    # Later, without the receipt in the browser: told they voted; the receipt changes it.
    voter.cookies.delete("qala_pb_receipt")
    back = voter.get(f"/budgeting/{process}").text
    assert 'id="you-voted"' in back and 'id="ballot-receipt"' not in back
    assert (
        'name="receipt" type="text" maxlength="100" autocomplete="off" spellcheck="false" required'
        in back
    )
    wrong = voter.post(
        f"/budgeting/{process}/ballot",
        data={"csrf_token": csrf(back), "iin": iin, "project": codes[1], "receipt": "nope"},
    )
    assert wrong.status_code == 409 and "нет бюллетеня с такой квитанцией" in wrong.text
    changed = voter.post(
        f"/budgeting/{process}/ballot",
        data={
            "csrf_token": csrf(back),
            "iin": iin,
            "project": codes[1],
            "receipt": receipt.group(1),
        },
    )
    assert changed.status_code == 303
    after = voter.get(f"/budgeting/{process}").text
    assert "квитанция осталась прежней" in after
    assert names[codes[1]] in re.search(r'id="receipt-projects">([^<]+)<', after).group(1)  # type: ignore[union-attr]
    with context.database.session() as session:
        assert ballots.check_ballot(session, process, receipt.group(1)).projects == [codes[1]]
        assert session.scalar(select(func.count()).select_from(Ballot)) == before
    # A second ballot without the receipt is refused in the reader's language.
    twice = voter.post(
        f"/budgeting/{process}/ballot",
        data={"csrf_token": csrf(after), "iin": iin, "project": codes[0]},
    )
    assert twice.status_code == 409 and "уже проголосовали" in twice.text


def test_a_forged_receipt_cookie_shows_nothing(site: Site) -> None:
    _, _, process, _ = site
    client = client_for(site, "ru")
    client.cookies.set("qala_pb_receipt", f"{process}|abc|0|0000", path=f"/budgeting/{process}")
    assert 'id="ballot-receipt"' not in client.get(f"/budgeting/{process}").text


def test_the_vote_button_says_why_it_is_disabled(site: Site) -> None:
    _, _, process, _ = site
    from qala.components.accounts.services import create_user

    with site[0].database.transaction() as session:
        create_user(session, username="voter-why", password="voter-why-demo-2026")
    page = signed_in(site, "voter-why", "kk").get(f"/budgeting/{process}").text
    assert 'aria-describedby="cast-why"' in page and 'id="cast-why"' in page
    for reason in ("data-why-none", "data-why-over", "data-why-many"):
        text = re.search(rf'{reason}="([^"]+)"', page)
        assert text and not latin_words(text.group(1)) - ALLOWED


# -- import report -----------------------------------------------------------------------------
FAULTY = (
    "place,indicator,year,value,unit,source\n"
    "atlantis,kz_sc.requests.median_hours_to_close,2025,3,,akimat\n"
    ",kz_sc.requests.median_hours_to_close,2025,3,,akimat\n"
    "astana,no.such.indicator,2025,3,,akimat\n"
    "astana,,2025,3,,akimat\n"
    "astana,kz_sc.requests.median_hours_to_close,1800,3,,akimat\n"
    "astana,kz_sc.requests.median_hours_to_close,2024,many,,akimat\n"
    "astana,kz_sc.requests.median_hours_to_close,2023,,,akimat\n"
    "astana,kz_sc.requests.median_hours_to_close,2022,-5,,akimat\n"
    "astana,kz_sc.requests.median_hours_to_close,2021,5,kg,akimat\n"
    "karaganda,kz_sc.requests.median_hours_to_close,2025,4,,akimat\n"
    "karaganda,kz_sc.requests.median_hours_to_close,2025,6,,akimat\n"
    "almaty,kz_sc.requests.median_hours_to_close,2025,4,,akimat\n"
    "almaty,kz_sc.requests.median_hours_to_close,2025,4,,akimat\n"
    "shymkent,kz_sc.requests.median_hours_to_close,2025,4,," + "с" * 2100 + "\n"
)


def report_reasons(html: str) -> list[str]:
    """The reason column of the report's problem and warning tables."""
    reasons = []
    for table in re.findall(r'<table id="report-\w+">.*?</table>', html, re.S):
        for row in re.findall(r"<tr>(.*?)</tr>", table, re.S)[1:]:
            cells = re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
            reasons.append(cells[-1])
    return reasons


@pytest.mark.parametrize("language", ["kk", "ru"])
def test_the_import_report_reads_in_the_readers_language(site: Site, language: str) -> None:
    analyst = signed_in(site, "analyst", language)
    answer = analyst.post(
        "/admin/import",
        data={"csrf_token": csrf(analyst.get("/admin").text), "mode": "check"},
        files={"file": ("города-2025.csv", FAULTY.encode(), "text/csv")},
    )
    assert answer.status_code == 200
    assert "<code>города-2025.csv</code>" in answer.text and "/tmp" not in answer.text
    reasons = report_reasons(answer.text)
    assert len(reasons) >= 12, reasons
    english = [r for r in reasons if latin_words(r) - ALLOWED]
    assert not english, english
    codes = set(re.findall(r"<td><code>([^<]*)</code></td>", answer.text))
    assert {"place", "indicator", "year", "value", "unit", "source"} <= codes


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("пусто.csv", b"place,indicator,year,value\n", {"ru": "нет строк с данными"}),
        ("столбцы.csv", b"city,when,amount\nastana,2025,3\n", {"ru": "ожидается длинный вид"}),
        ("кодировка.csv", b"\xef\xbb\xbfplace,\xff\xfe\n", {"ru": "метки порядка байтов"}),
    ],
)
def test_a_file_that_cannot_be_read_is_explained_in_russian(
    site: Site, name: str, content: bytes, expected: dict[str, str]
) -> None:
    analyst = signed_in(site, "analyst", "ru")
    answer = analyst.post(
        "/admin/import",
        data={"csrf_token": csrf(analyst.get("/admin").text), "mode": "check"},
        files={"file": (name, content, "text/csv")},
    )
    assert answer.status_code == 422
    assert "Файл не читается как файл данных" in visible_text(answer.text)
    reasons = report_reasons(answer.text)
    assert reasons and expected["ru"] in reasons[0]
    assert not latin_words(reasons[0]) - ALLOWED, reasons
