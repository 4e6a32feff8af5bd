"""The report form with photos kept in an S3-compatible bucket (moto's S3 server on loopback),
chosen by the settings alone: the photo lands in the bucket and is shown through Qala's route;
a storage that is down gives the resident the form back, 503, with a translated reason, and
nothing is stored."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.components.requests311.conftest import free_port
from tests.components.requests311.test_photo_s3 import (
    ACCESS_KEY,
    PREFIX,
    SECRET_KEY,
    moto_s3,
    new_bucket,
    objects,
    s3_settings,
)
from tests.components.requests311.test_photos import jpeg_with_gps
from tests.web.test_request_photos import client, counts, report

from qala.components.requests311.demo import astana_catalogue
from qala.components.requests311.photo_s3 import S3PhotoStore
from qala.components.requests311.photos import STORE_KEY, store_for
from qala.components.requests311.services import load_catalogue
from qala.runtime import Context
from qala.settings import Settings

PLACE = {
    "lat": "51.1201",
    "long": "71.4302",
    # The nearby open reports were shown already (the form's script marks it).
    "nearby_seen": "street_light|51.1201|71.4302",
}


@pytest.fixture(scope="module")
def s3_site(
    sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Context, object, str, str]]:
    from qala.api.app import create_app

    folder = tmp_path_factory.mktemp("photos-s3")
    shutil.copy(sqlite_template, folder / "qala.sqlite")
    with moto_s3() as endpoint:
        bucket = new_bucket(endpoint)
        settings = Settings(
            database_url=f"sqlite:///{folder / 'qala.sqlite'}",
            secret_key="photos",
            media_dir=folder / "media",
            media_s3_url=endpoint,
            media_s3_bucket=bucket,
            media_s3_access_key=ACCESS_KEY,
            media_s3_secret_key=SECRET_KEY,
            media_s3_prefix=PREFIX,
        )
        context = Context.from_settings(settings)
        app = create_app(settings, context=context)
        with context.database.transaction() as session:
            load_catalogue(session, astana_catalogue())
        yield context, app, endpoint, bucket
        context.database.dispose()


def test_the_form_keeps_the_photo_in_the_bucket_and_shows_it(
    s3_site: tuple[Context, object, str, str],
) -> None:
    context, app, endpoint, bucket = s3_site
    assert isinstance(context.extras[STORE_KEY], S3PhotoStore)  # chosen by the settings
    http = client((context, app, Path()))
    sent = report(http, [("media", ("IMG_1.jpg", jpeg_with_gps(), "image/jpeg"))], **PLACE)
    assert sent.status_code == 303, sent.text
    page = http.get(sent.headers["location"])
    assert page.status_code == 200
    stored = objects(endpoint, bucket)
    assert len(stored) == 2 and all(key.startswith(f"{PREFIX}requests311/") for key in stored)
    photo_key = next(key for key in stored if ".thumb." not in key)
    name = photo_key.rsplit("/", 1)[-1]
    assert f"/media/requests311/{name}" in page.text
    served = http.get(f"/media/requests311/{name}")
    assert served.status_code == 200 and served.headers["content-type"] == "image/jpeg"
    assert not (context.settings.media_dir / "requests311").exists()


@pytest.mark.parametrize("language", ["ru", "kk"])
def test_a_storage_that_is_down_gives_the_form_back_with_a_translated_reason(
    s3_site: tuple[Context, object, str, str], language: str
) -> None:
    context, app, _, _ = s3_site
    working = context.extras[STORE_KEY]
    context.extras[STORE_KEY] = store_for(
        s3_settings(f"http://127.0.0.1:{free_port()}", "qala-photos")
    )
    try:
        before = counts(context)
        http = client((context, app, Path()), language)
        answer = report(http, [("media", ("IMG_2.jpg", jpeg_with_gps(), "image/jpeg"))], **PLACE)
    finally:
        context.extras[STORE_KEY] = working
    assert answer.status_code == 503
    expected = {
        "ru": "сейчас не удалось сохранить фотографии",
        "kk": "фотосуреттерді қазір сақтау мүмкін болмады",
    }[language]
    assert expected in answer.text
    assert "photo storage" not in answer.text and SECRET_KEY not in answer.text
    assert 'name="description"' in answer.text  # the form, filled in, to send again
    assert counts(context) == before
