"""Photos on the report form: sent with the request, refused with a translated reason and nothing
stored, the photo's position offered as the location, shown on the request's page, and hidden by
an operator from the board (the public then sees none, the operator still does)."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from tests.components.requests311.test_photos import jpeg_with_gps
from tests.web.conftest import shot

from qala.components.requests311.demo import astana_catalogue
from qala.components.requests311.models import Photo, Request
from qala.components.requests311.services import load_catalogue
from qala.runtime import Context
from qala.settings import Settings

PASSWORD = "photo-Operator-2026!"


@pytest.fixture(scope="module")
def site(
    sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Context, object, Path]]:
    from qala.api.app import create_app
    from qala.components.accounts.services import create_user

    folder = tmp_path_factory.mktemp("photos")
    shutil.copy(sqlite_template, folder / "qala.sqlite")
    settings = Settings(
        database_url=f"sqlite:///{folder / 'qala.sqlite'}",
        secret_key="photos",
        media_dir=folder / "media",
    )
    context = Context.from_settings(settings)
    app = create_app(settings, context=context)
    with context.database.transaction() as session:
        load_catalogue(session, astana_catalogue())
        create_user(
            session, username="photo.op", password=PASSWORD, role="operator", place="astana"
        )
    yield context, app, folder / "media"
    context.database.dispose()


def client(site: tuple[Context, object, Path], language: str = "en") -> TestClient:
    headers = {"accept": "text/html", "accept-language": language}
    return TestClient(site[1], headers=headers, follow_redirects=False)  # type: ignore[arg-type]


def csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found
    return found.group(1)


def report(http: TestClient, files: list[tuple[str, tuple[str, bytes, str]]], **fields: str):  # type: ignore[no-untyped-def]
    form = http.get("/requests/new?city=astana").text
    data = {
        "csrf_token": csrf(form),
        "city": "astana",
        "service_code": "street_light",
        "description": "Lamp dark (photo test)",
        **fields,
    }
    return http.post("/requests/new", data=data, files=files)


def counts(context: Context) -> tuple[int, int]:
    with context.database.session() as session:
        requests = session.scalar(select(func.count()).select_from(Request)) or 0
        photos = session.scalar(select(func.count()).select_from(Photo)) or 0
    return int(requests), int(photos)


def test_the_form_takes_photos_from_camera_or_gallery(site: tuple[Context, object, Path]) -> None:
    page = client(site).get("/requests/new?city=astana").text
    assert 'enctype="multipart/form-data"' in page
    assert re.search(
        r'<input id="media-camera" name="media" type="file"[^>]*capture="environment"', page
    )
    assert re.search(r'<input id="media" name="media" type="file"[^>]*multiple', page)


def test_a_non_image_named_jpg_is_refused_in_the_readers_language_and_nothing_is_kept(
    site: tuple[Context, object, Path],
) -> None:
    context, _, media = site
    before = counts(context)
    answer = report(
        client(site, "kk"),
        [("media", ("lamp.jpg", b"<html><script>alert(1)</script></html>", "image/jpeg"))],
        lat="51.1201",
        long="71.4302",
    )
    assert answer.status_code == 422
    assert "1 фотосурет JPEG немесе PNG суреті емес" in answer.text
    assert counts(context) == before
    assert not media.exists() or not any(p.is_file() for p in media.rglob("*"))


def test_the_photos_position_is_offered_when_no_place_was_chosen(
    site: tuple[Context, object, Path],
) -> None:
    media = site[2]
    before = sorted(media.rglob("*"))
    answer = report(client(site, "ru"), [("media", ("IMG_1.jpg", jpeg_with_gps(), "image/jpeg"))])
    assert answer.status_code == 422
    assert sorted(media.rglob("*")) == before  # a report refused for its place keeps no file
    assert 'id="lat" name="lat" type="text" inputmode="decimal" value="51.125000"' in answer.text
    assert "Мы подставили место, где сделана фотография" in answer.text
    assert "выберите фотографии ещё раз" in answer.text


def test_a_photo_sent_with_the_form_is_shown_and_an_operator_can_hide_it(
    site: tuple[Context, object, Path],
) -> None:
    citizen = client(site)
    answer = report(
        citizen,
        [
            ("media", ("IMG_2.jpg", jpeg_with_gps(), "image/jpeg")),
            ("media", ("", b"", "application/octet-stream")),
        ],
        lat="51.1201",
        long="71.4302",
    )
    assert answer.status_code == 303, answer.text[:600]
    followed = citizen.get(answer.headers["location"]).text
    thumb = re.search(r'<img src="(/media/requests311/[\w-]+\.thumb\.jpg)"', followed)
    assert thumb, followed[-2000:]
    assert citizen.get(thumb.group(1)).headers["content-type"] == "image/jpeg"
    request_id = re.search(r'id="request-id">(\d+)<', followed).group(1)  # type: ignore[union-attr]

    operator = client(site)
    login = operator.get("/login").text
    signed = operator.post(
        "/login",
        data={"username": "photo.op", "password": PASSWORD, "csrf_token": csrf(login), "next": "/"},
    )
    assert signed.status_code == 303
    board = operator.get("/operator?sort=newest").text
    action = re.search(rf'action="(/operator/requests/{request_id}/photos/\d+/hide)"', board)
    assert action, "the board offers no way to hide the photo"
    hidden = operator.post(
        action.group(1),
        data={"csrf_token": csrf(board), "city": "astana", "reason": "a neighbour's face"},
    )
    assert hidden.status_code == 303
    assert "a neighbour&#39;s face" in operator.get("/operator?sort=newest").text
    assert operator.get(thumb.group(1)).status_code == 200

    again = citizen.get(answer.headers["location"]).text
    assert 'id="request-photos"' not in again
    assert citizen.get(thumb.group(1)).status_code == 404


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.parametrize("language", ["kk", "ru"])
def test_photos_fit_a_phone_on_the_request_page_and_the_board(
    site: tuple[Context, object, Path], browser: Any, language: str
) -> None:
    import threading
    import time

    import uvicorn

    citizen = client(site)
    filed = report(
        citizen,
        [
            ("media", (f"IMG_{i}.jpg", jpeg_with_gps((40 * i, 90, 200)), "image/jpeg"))
            for i in range(3)
        ],
        # a spot of its own: a report within 50 m of an open one of the same service is first
        # shown the nearby requests (duplicate hints) instead of being filed
        lat={"kk": "51.1250", "ru": "51.1300"}[language],
        long="71.4302",
    )
    assert filed.status_code == 303
    server = uvicorn.Server(uvicorn.Config(site[1], host="127.0.0.1", port=0, log_level="warning"))  # type: ignore[arg-type]
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    page = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True).new_page()
    try:
        page.goto(f"{base}{filed.headers['location']}&lang={language}")
        assert page.locator("#request-photos img").count() == 3
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        shot(page, f"request-photos-{language}")
        page.goto(f"{base}/login?lang={language}")
        page.fill("#username", "photo.op")
        page.fill("#password", PASSWORD)
        page.locator("form[action='/login'] [type=submit]").click()
        page.goto(f"{base}/operator?sort=newest&lang={language}")
        assert page.locator(".queue-item .photo-list img").count() >= 3
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        shot(page, f"operator-photos-{language}")
    finally:
        page.context.close()
        server.should_exit = True
        thread.join(10)


def test_a_form_past_its_limit_is_cut_off_with_a_translated_page(
    site: tuple[Context, object, Path],
) -> None:
    context, _, media = site
    before = counts(context), sorted(media.rglob("*"))
    big = b"\xff\xd8" + b"\x00" * (31 * 1024 * 1024)
    answer = report(client(site, "ru"), [("media", ("huge.jpg", big, "image/jpeg"))])
    assert answer.status_code == 413
    assert "Файл или форма слишком велики" in answer.text
    assert (counts(context), sorted(media.rglob("*"))) == before
