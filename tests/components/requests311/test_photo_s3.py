"""Residents' photos in an S3-compatible bucket: a real S3 server on loopback (moto's, speaking
the S3 HTTP protocol) holds the objects, read back with boto3; Qala still serves them with its
own headers and hides what operators hid; a refused report and a storage that is down leave
neither an object nor a row (SQLite and PostgreSQL)."""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image
from tests.components.requests311.conftest import City, LiveServer, free_port
from tests.components.requests311.test_photos import count, jpeg_with_gps, post

from qala.components.requests311.intake import report_intake
from qala.components.requests311.models import Photo, Request
from qala.components.requests311.photo_files import DiskPhotoStore, PhotoUpload, prepare_photos
from qala.components.requests311.photo_s3 import S3PhotoStore
from qala.components.requests311.photos import STORE_KEY, store_for, write_files
from qala.components.requests311.ratelimit import SharedRateLimit
from qala.core.errors import NotFoundError, UnavailableError
from qala.settings import Settings

ACCESS_KEY = "qala-test-access"
SECRET_KEY = "qala-test-SECRET-do-not-show-9f3c"
PREFIX = "city-a/"


@contextmanager
def moto_s3() -> Iterator[str]:
    """moto's S3 server on a free loopback port; yields its endpoint URL."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def s3_client(endpoint: str) -> Any:
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
    )


def new_bucket(endpoint: str) -> str:
    name = f"qala-photos-{uuid.uuid4().hex[:12]}"
    s3_client(endpoint).create_bucket(Bucket=name)
    return name


def objects(endpoint: str, bucket: str) -> list[str]:
    listed = s3_client(endpoint).list_objects_v2(Bucket=bucket)
    return sorted(item["Key"] for item in listed.get("Contents", []))


def s3_settings(endpoint: str, bucket: str, **extra: Any) -> Settings:
    return Settings(
        secret_key="t",
        media_s3_url=endpoint,
        media_s3_bucket=bucket,
        media_s3_access_key=ACCESS_KEY,
        media_s3_secret_key=SECRET_KEY,
        media_s3_prefix=PREFIX,
        **extra,
    )


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    with moto_s3() as url:
        yield url


@pytest.fixture
def bucket(city: City, endpoint: str) -> str:
    """A fresh private bucket, chosen for the city through the settings."""
    name = new_bucket(endpoint)
    city.context.extras[STORE_KEY] = store_for(s3_settings(endpoint, name))
    return name


def test_the_settings_choose_the_bucket_and_never_show_the_secret(endpoint: str) -> None:
    store = store_for(s3_settings(endpoint, "qala-photos"))
    assert isinstance(store, S3PhotoStore)
    assert SECRET_KEY not in repr(store)
    settings = s3_settings(endpoint, "qala-photos")
    assert SECRET_KEY not in repr(settings) and SECRET_KEY not in str(settings.model_dump())
    assert isinstance(store_for(Settings(secret_key="t")), DiskPhotoStore)


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"media_s3_url": "ftp://127.0.0.1:9000"}, "https://"),
        ({"media_s3_url": "http://user:pw@127.0.0.1:9000"}, "endpoint alone"),
        ({"media_s3_url": "https://s3.example.kz/photos"}, "endpoint alone"),
        ({"media_s3_bucket": "Qala_Photos"}, "lowercase"),
        ({"media_s3_bucket": "ab"}, "3-63"),
        ({"media_s3_bucket": "192.168.1.10"}, "IP address"),
        ({"media_s3_bucket": "qala..photos"}, "'..'"),
        ({"media_s3_bucket": None}, "needs QALA_MEDIA_S3_BUCKET"),
        ({"media_s3_access_key": None}, "both"),
        ({"media_s3_prefix": "../other"}, "prefix"),
    ],
)
def test_unusable_storage_settings_stop_the_start_without_echoing_them(
    overrides: dict[str, Any], reason: str
) -> None:
    values: dict[str, Any] = {
        "media_s3_url": "http://127.0.0.1:9000",
        "media_s3_bucket": "qala-photos",
        "media_s3_access_key": ACCESS_KEY,
        "media_s3_secret_key": SECRET_KEY,
        **overrides,
    }
    with pytest.raises(ValueError, match=reason) as refused:
        Settings(secret_key="t", **values)
    assert SECRET_KEY not in str(refused.value)
    assert "pw@" not in str(refused.value)


def test_the_app_starts_without_importing_boto3(tmp_path: Path) -> None:
    """boto3 (about half a second of imports) is loaded by the first photo, not at start."""
    probe = (
        "import sys\n"
        "from qala.api.app import create_app\n"
        "from qala.settings import Settings\n"
        f"settings = Settings(database_url='sqlite:///{tmp_path / 'q.sqlite'}', secret_key='t',"
        " media_s3_url='http://127.0.0.1:9', media_s3_bucket='qala-photos')\n"
        "app = create_app(settings)\n"
        "print(type(app.state.context.extras['requests311.photo_store']).__name__,"
        " sorted(m for m in sys.modules if m.split('.')[0] in ('boto3', 'botocore')))\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["S3PhotoStore", "[]"]


def test_a_photo_goes_to_the_bucket_without_exif_and_is_served_by_qala(
    live_city: tuple[City, LiveServer], endpoint: str, bucket: str
) -> None:
    city, live = live_city
    answer = post(live, [("media", ("IMG_0001.jpg", jpeg_with_gps(), "image/jpeg"))])
    assert answer.status_code == 200, answer.text
    with city.context.database.session() as session:
        photo = session.query(Photo).one()
        name, thumb = photo.name, photo.thumb_name
    assert objects(endpoint, bucket) == sorted(
        [f"{PREFIX}requests311/{name}", f"{PREFIX}requests311/{thumb}"]
    )
    stored = s3_client(endpoint).get_object(Bucket=bucket, Key=f"{PREFIX}requests311/{name}")
    assert stored["ContentType"] == "image/jpeg"
    data = stored["Body"].read()
    picture = Image.open(io.BytesIO(data))
    assert picture.format == "JPEG" and dict(picture.getexif()) == {}
    assert not (city.context.settings.media_dir / "requests311").exists()  # not on disk
    served = httpx.get(f"{live.base_url}/media/requests311/{name}")
    assert served.status_code == 200
    assert served.content == data  # Qala's own route, no redirect to the bucket
    assert served.headers["content-type"] == "image/jpeg"
    assert served.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in served.headers["content-security-policy"]
    assert httpx.get(f"{live.base_url}/media/requests311/{thumb}").status_code == 200


def test_a_hidden_photo_in_the_bucket_is_gone_for_the_public(
    live_city: tuple[City, LiveServer], endpoint: str, bucket: str
) -> None:
    from qala.components.accounts.services import create_user, issue_token

    city, live = live_city
    answer = post(live, [("media", ("a.jpg", jpeg_with_gps(), "image/jpeg"))])
    request_id = int(answer.json()[0]["service_request_id"])
    with city.context.database.session() as session:
        photo = session.query(Photo).one()
        photo_id, name = photo.id, photo.name
    with city.context.database.transaction() as session:
        user = create_user(
            session, username="op-s3", password="x-Long-pass-2026!", role="operator", place="astana"
        )
        token = issue_token(session, user)
    staff = {"authorization": f"Bearer {token}"}
    hidden = httpx.post(
        f"{live.base_url}/api/v1/requests/{request_id}/photos/{photo_id}/hide",
        json={"reason": "a number plate"},
        headers=staff,
    )
    assert hidden.status_code == 200, hidden.text
    assert httpx.get(f"{live.base_url}/media/requests311/{name}").status_code == 404
    kept = httpx.get(f"{live.base_url}/media/requests311/{name}", headers=staff)
    assert kept.status_code == 200 and kept.headers["cache-control"] == "private, no-store"
    assert len(objects(endpoint, bucket)) == 2  # hidden, not deleted


def test_a_refused_report_leaves_no_object(
    live_city: tuple[City, LiveServer], endpoint: str, bucket: str
) -> None:
    city, live = live_city
    not_a_picture = b"<html><body>not a picture</body></html>"
    bad_photo = post(
        live,
        [
            ("media", ("fine.jpg", jpeg_with_gps(), "image/jpeg")),
            ("media", ("page.jpg", not_a_picture, "image/jpeg")),
        ],
    )
    assert bad_photo.status_code == 400
    assert objects(endpoint, bucket) == []
    # The photos are fine and written first; the report is then refused inside its transaction
    # (the count all server processes share is spent: one other process took the last post),
    # so the objects are deleted again.
    intake = report_intake(city.context)
    intake.anonymous_shared = SharedRateLimit(1)
    first = post(live, [("media", ("a.jpg", jpeg_with_gps(), "image/jpeg"))])
    assert first.status_code == 200, first.text
    kept = objects(endpoint, bucket)
    refused = post(live, [("media", ("b.jpg", jpeg_with_gps((0, 0, 200)), "image/jpeg"))])
    assert refused.status_code == 429, refused.text
    assert objects(endpoint, bucket) == kept and len(kept) == 2
    assert count(city, Request) == 1 and count(city, Photo) == 1


def storage_down(city: City, endpoint: str, why: str) -> None:
    if why == "endpoint down":
        url, name = f"http://127.0.0.1:{free_port()}", "qala-photos"
    else:  # the bucket was never made
        url, name = endpoint, f"qala-missing-{uuid.uuid4().hex[:8]}"
    city.context.extras[STORE_KEY] = store_for(s3_settings(url, name))


@pytest.mark.parametrize("why", ["endpoint down", "no bucket"])
def test_a_storage_that_fails_answers_503_and_stores_nothing(
    live_city: tuple[City, LiveServer],
    endpoint: str,
    why: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    city, live = live_city
    storage_down(city, endpoint, why)
    caplog.set_level(logging.DEBUG)
    answer = post(live, [("media", ("a.jpg", jpeg_with_gps(), "image/jpeg"))], locale="ru")
    assert answer.status_code == 503, answer.text
    assert answer.headers["retry-after"] == "30"
    [error] = answer.json()
    assert error["code"] == 503
    assert error["description"].startswith("сейчас не удалось сохранить фотографии")
    xml = post(live, [("media", ("a.jpg", jpeg_with_gps(), "image/jpeg"))])
    assert xml.status_code == 503 and "photos could not be saved" in xml.text
    assert count(city, Request) == 0 and count(city, Photo) == 0
    assert SECRET_KEY not in answer.text and SECRET_KEY not in caplog.text
    assert "photo storage" in caplog.text  # the operator learns why from the log
    # The same report without photos needs no storage.
    assert post(live, []).status_code == 200


def test_serving_from_a_storage_that_went_down_answers_503(
    live_city: tuple[City, LiveServer], endpoint: str, bucket: str
) -> None:
    city, live = live_city
    answer = post(live, [("media", ("a.jpg", jpeg_with_gps(), "image/jpeg"))])
    assert answer.status_code == 200, answer.text
    with city.context.database.session() as session:
        name = session.query(Photo).one().name
    storage_down(city, endpoint, "endpoint down")
    served = httpx.get(f"{live.base_url}/media/requests311/{name}")
    assert served.status_code == 503
    assert served.headers["cache-control"] == "no-store"
    assert SECRET_KEY not in served.text


def test_the_store_itself_reads_writes_and_deletes(endpoint: str) -> None:
    bucket = new_bucket(endpoint)
    store = store_for(s3_settings(endpoint, bucket))
    name = "A" * 24 + ".png"
    store.put(name, b"\x89PNG not really")
    assert store.get(name) == b"\x89PNG not really"
    head = s3_client(endpoint).head_object(Bucket=bucket, Key=f"{PREFIX}requests311/{name}")
    assert head["ContentType"] == "image/png"
    store.delete(name)
    with pytest.raises(NotFoundError):
        store.get(name)
    with pytest.raises(NotFoundError):
        store.get("../../etc/passwd")
    store.delete(name)  # deleting twice is no error
    missing = store_for(s3_settings(endpoint, "qala-never-made"))
    with pytest.raises(UnavailableError) as failed:
        missing.put(name, b"x")
    assert "NoSuchBucket" in str(failed.value) and SECRET_KEY not in str(failed.value)


def test_a_storage_failing_midway_leaves_none_of_the_reports_files(tmp_path: Path) -> None:
    """The second photo's folder cannot be made (a file is in its place): the first photo and
    its thumbnail, already written, are removed again and the failure is a 503 error."""
    while True:
        prepared, _ = prepare_photos([PhotoUpload(jpeg_with_gps()), PhotoUpload(jpeg_with_gps())])
        if prepared[0].name[:2] != prepared[1].name[:2]:
            break
    root = tmp_path / "media"
    blocked = root / "requests311" / prepared[1].name[:2]
    blocked.parent.mkdir(parents=True)
    blocked.write_bytes(b"")
    with pytest.raises(UnavailableError) as failed:
        write_files(DiskPhotoStore(root), prepared)
    assert failed.value.message is not None
    assert sorted(p for p in root.rglob("*") if p.is_file()) == [blocked]


def test_the_sweep_lists_the_bucket_page_by_page_and_removes_orphans(
    endpoint: str, sqlite_url: str
) -> None:
    """The bucket is listed in pages (S3 answers 1,000 keys at most, and a prefix shared with
    other data is left alone); files no photo row names go once past the grace period."""
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session

    from qala.components.requests311.photos import sweep_orphans

    bucket = new_bucket(endpoint)
    store = store_for(s3_settings(endpoint, bucket))
    names = [f"{i:024d}.jpg" for i in range(1_005)]
    client = s3_client(endpoint)
    for name in names:
        client.put_object(Bucket=bucket, Key=f"{PREFIX}requests311/{name}", Body=b"x")
    client.put_object(Bucket=bucket, Key=f"{PREFIX}other/{names[0]}", Body=b"not ours")
    assert sorted(n for n, _ in store.listing()) == names
    now = datetime.now(UTC)
    engine = create_engine(sqlite_url)  # a store where no report has a photo
    with Session(engine) as session:
        assert sweep_orphans(session, store, now=now).kept_recent == 1_005
        swept = sweep_orphans(session, store, now=now + timedelta(hours=2))
    engine.dispose()
    assert swept.removed == 1_005
    assert list(store.listing()) == []
    assert client.head_object(Bucket=bucket, Key=f"{PREFIX}other/{names[0]}")
