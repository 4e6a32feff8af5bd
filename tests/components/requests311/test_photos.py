"""Residents' photos: checked by content, stored without EXIF, refused with nothing stored, sent
and served over Open311, and hidden by operators (SQLite and PostgreSQL)."""

from __future__ import annotations

import io
import json
import os
import struct
import time
import zlib
from pathlib import Path

import httpx
import pytest
from PIL import Image
from sqlalchemy import func, select
from tests.components.requests311.conftest import YESIL, City, LiveServer

from qala.components.requests311.models import AuditEntry, Photo, Request
from qala.components.requests311.photo_files import (
    MAX_PHOTO_PIXELS,
    DiskPhotoStore,
    PhotoUpload,
    prepare_photos,
)
from qala.components.requests311.photos import STORE_KEY

GPS_LAT, GPS_LON = 51.125, 71.43


def jpeg_with_gps(colour: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    """A JPEG as a phone writes it: camera make and model, and where it was taken."""
    image = Image.new("RGB", (96, 64), colour)
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"
    exif[0x0110] = "Model 7"
    gps = exif.get_ifd(0x8825)
    gps[1], gps[2] = "N", (51.0, 7.0, 30.0)
    gps[3], gps[4] = "E", (71.0, 25.0, 48.0)
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif)
    return out.getvalue()


def png_bomb(side: int = 30_000) -> bytes:
    """A PNG of a few hundred bytes whose header declares ``side`` × ``side`` pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    rows = zlib.compress(b"\x00" * (side + 1) * 16, 9)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")
    )


@pytest.fixture
def media(city: City, tmp_path: Path) -> Path:
    """The city's photo store in a folder of the test's own."""
    folder = tmp_path / "media"
    city.context.extras[STORE_KEY] = DiskPhotoStore(folder)
    return folder


def stored_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def count(city: City, model: type) -> int:
    with city.context.database.session() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def post(live: LiveServer, files: list[tuple[str, tuple[str, bytes, str]]], **extra: str):  # type: ignore[no-untyped-def]
    data = {
        "jurisdiction_id": "astana",
        "service_code": "pothole",
        "attribute[size]": "large",
        "lat": str(YESIL[0]),
        "long": str(YESIL[1]),
        "description": "Яма у остановки",
        **extra,
    }
    return httpx.post(f"{live.open311}/requests.json", data=data, files=files, timeout=30)


def test_a_gps_photo_is_kept_without_exif_and_its_position_is_suggested() -> None:
    original = jpeg_with_gps()
    assert Image.open(io.BytesIO(original)).getexif().get_ifd(0x8825)  # the test's premise
    [photo], problems = prepare_photos([PhotoUpload(original, "IMG_0001.jpg")])
    assert problems == []
    assert photo.location == pytest.approx((51.125, 71.43), abs=1e-4)
    stored = Image.open(io.BytesIO(photo.data))
    assert stored.format == "JPEG" and photo.content_type == "image/jpeg"
    assert dict(stored.getexif()) == {}
    assert b"PhoneMaker" not in photo.data and b"Exif" not in photo.data
    thumb = Image.open(io.BytesIO(photo.thumb))
    assert max(thumb.size) <= 320 and dict(thumb.getexif()) == {}


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 30, 30)).save(out, "PNG")
    return out.getvalue()


@pytest.mark.parametrize(
    "payload",
    [
        b"PK\x03\x04" + b"\x00" * 26 + b"<html><script>alert(1)</script></html>",
        b"<!doctype html><script>alert(1)</script>",
        b"%PDF-1.7\n",
    ],
)
@pytest.mark.parametrize("picture", ["jpeg", "png"])
def test_a_polyglot_is_refused(picture: str, payload: bytes) -> None:
    data = (jpeg_with_gps() if picture == "jpeg" else _png()) + payload
    prepared, problems = prepare_photos([PhotoUpload(data, "cat.jpg")])
    assert prepared == []
    assert [(p.code, p.value) for p in problems] == [("photo_polyglot", "#1")]


def test_a_motion_photo_keeps_its_picture_and_loses_its_video() -> None:
    video = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + b"\x00" * 64
    [photo], problems = prepare_photos([PhotoUpload(jpeg_with_gps() + video, "MVIMG.jpg")])
    assert problems == []
    assert b"ftyp" not in photo.data
    assert photo.data.endswith(b"\xff\xd9")  # the JPEG's own end is the file's end


def test_a_plain_photo_has_nothing_after_its_end() -> None:
    for data in (jpeg_with_gps(), _png(), jpeg_with_gps() + b"\x00" * 16):
        [_photo], problems = prepare_photos([PhotoUpload(data, "x")])
        assert problems == []


def test_bad_photos_are_refused_each_by_number() -> None:
    html = b"<!doctype html><html><script>alert(1)</script></html>"
    heic = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 64
    prepared, problems = prepare_photos(
        [
            PhotoUpload(html, "photo.jpg"),
            PhotoUpload(png_bomb(), "b.png"),
            PhotoUpload(heic, "x.heic"),
        ]
    )
    assert prepared == []
    assert [(p.code, p.column, p.value) for p in problems] == [
        ("photo_not_image", "media", "#1"),
        ("photo_too_many_pixels", "media", "#2"),
        ("photo_heif", "media", "#3"),
    ]
    assert MAX_PHOTO_PIXELS < 30_000 * 30_000
    _, four = prepare_photos([PhotoUpload(jpeg_with_gps())] * 4)
    assert [p.code for p in four] == ["photo_too_many"]


def test_open311_multipart_post_answers_a_media_url_that_serves_the_photo(
    live_city: tuple[City, LiveServer], media: Path
) -> None:
    city, live = live_city
    answer = post(
        live,
        [
            ("media", ("IMG_0001.jpg", jpeg_with_gps(), "image/jpeg")),
            ("media", ("IMG_0002.jpg", jpeg_with_gps((10, 120, 10)), "image/jpeg")),
        ],
    )
    assert answer.status_code == 200, answer.text
    request_id = answer.json()[0]["service_request_id"]
    [read] = httpx.get(f"{live.open311}/requests/{request_id}.json").json()
    url = read["media_url"]
    assert url.startswith(city.context.settings.public_base_url + "/media/requests311/")
    served = httpx.get(live.base_url + url[len(city.context.settings.public_base_url) :])
    assert served.status_code == 200
    assert served.headers["content-type"] == "image/jpeg"
    assert served.headers["x-content-type-options"] == "nosniff"
    assert served.headers["content-disposition"] == "inline"
    assert "sandbox" in served.headers["content-security-policy"]
    picture = Image.open(io.BytesIO(served.content))
    assert picture.format == "JPEG" and dict(picture.getexif()) == {}
    assert len(stored_files(media)) == 4  # two photos, two thumbnails
    assert count(city, Photo) == 2


def noisy_jpeg(side: int = 640) -> bytes:
    """A JPEG that does not compress: some 0.5 MB of random pixels."""
    image = Image.frombytes("RGB", (side, side), os.urandom(side * side * 3))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=95)
    return out.getvalue()


def test_photos_past_the_ordinary_body_limit_are_taken_under_the_posts_own(
    live_city: tuple[City, LiveServer], media: Path
) -> None:
    """A post with photos may be larger than an ordinary route's body (``max_request_bytes``);
    the report's route raises the limit for itself, and so must whatever answers it."""
    city, live = live_city
    photos = [noisy_jpeg(), noisy_jpeg(), noisy_jpeg()]
    assert sum(map(len, photos)) > city.context.settings.max_request_bytes
    answer = post(
        live, [("media", (f"IMG_{n}.jpg", p, "image/jpeg")) for n, p in enumerate(photos)]
    )
    assert answer.status_code == 200, answer.text
    assert count(city, Photo) == 3


def test_a_refused_photo_stores_nothing(live_city: tuple[City, LiveServer], media: Path) -> None:
    city, live = live_city
    before = count(city, Request)
    html = b"<html><body>not a picture</body></html>"
    answer = post(
        live,
        [
            ("media", ("fine.jpg", jpeg_with_gps(), "image/jpeg")),
            ("media", ("holiday.jpg", html, "image/jpeg")),
        ],
        locale="ru",
    )
    assert answer.status_code == 400
    assert answer.json() == [
        {
            "code": 400,
            "description": "media: фотография 2 не является изображением JPEG или PNG"
            " (или повреждена) (получено '#2')",
        }
    ]
    four = post(live, [("media", (f"{i}.jpg", jpeg_with_gps(), "image/jpeg")) for i in range(4)])
    assert four.status_code == 400 and "at most 3 photos" in four.text
    bomb = post(live, [("media", ("big.png", png_bomb(), "image/png"))])
    assert bomb.status_code == 400 and "megapixels" in bomb.text
    assert count(city, Request) == before and count(city, Photo) == 0
    assert stored_files(media) == []


def test_a_multipart_body_past_the_limit_is_cut_off_with_the_open311_error(
    live_city: tuple[City, LiveServer], media: Path
) -> None:
    city, live = live_city
    boundary = "qala-photo-test"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="service_code"\r\n\r\npothole\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="media"; filename="a.jpg"\r\n'
        "Content-Type: image/jpeg\r\n\r\n"
    ).encode()

    def body():  # type: ignore[no-untyped-def]
        yield head
        for _ in range(40 * 16):  # 40 MiB in 64 KiB pieces, without a Content-Length
            yield b"\xff" * 65536

    answer = httpx.post(
        f"{live.open311}/requests.json",
        content=body(),
        headers={"content-type": f"multipart/form-data; boundary={boundary}"},
        timeout=60,
    )
    assert answer.status_code == 413
    assert answer.json()[0]["code"] == 413
    assert count(city, Request) == 0 and stored_files(media) == []


def test_a_hidden_photo_is_gone_for_the_public_and_kept_for_its_operators(
    live_city: tuple[City, LiveServer], media: Path
) -> None:
    city, live = live_city
    answer = post(live, [("media", ("a.jpg", jpeg_with_gps(), "image/jpeg"))])
    request_id = int(answer.json()[0]["service_request_id"])
    with city.context.database.session() as session:
        photo = session.scalars(select(Photo).where(Photo.request_id == request_id)).one()
        photo_id, name, thumb = photo.id, photo.name, photo.thumb_name
    from qala.components.accounts.services import create_user, issue_token

    with city.context.database.transaction() as session:
        user = create_user(
            session,
            username="op-astana",
            password="x-Long-pass-2026!",
            role="operator",
            place="astana",
        )
        token = issue_token(session, user)
        elsewhere = create_user(
            session,
            username="op-almaty",
            password="y-Long-pass-2026!",
            role="operator",
            place="almaty",
        )
        other_token = issue_token(session, elsewhere)
    with httpx.Client(
        base_url=live.base_url, headers={"authorization": f"Bearer {token}"}
    ) as staff:
        empty = staff.post(
            f"/api/v1/requests/{request_id}/photos/{photo_id}/hide", json={"reason": ""}
        )
        assert empty.status_code == 422
        hidden = staff.post(
            f"/api/v1/requests/{request_id}/photos/{photo_id}/hide",
            json={"reason": "a child's face"},
        )
        assert hidden.status_code == 200, hidden.text
        assert hidden.json()["hidden"] is True
        assert staff.get(f"/media/requests311/{name}").status_code == 200
        assert (
            staff.get(f"/media/requests311/{name}").headers["cache-control"] == "private, no-store"
        )
        detail = staff.get(f"/api/v1/requests/{request_id}").json()
        assert detail["photos"][0]["hidden_reason"] == "a child's face"
    assert httpx.get(f"{live.base_url}/media/requests311/{name}").status_code == 404
    other_city = {"authorization": f"Bearer {other_token}"}
    assert (
        httpx.get(f"{live.base_url}/media/requests311/{name}", headers=other_city).status_code
        == 404
    )
    assert httpx.get(f"{live.base_url}/media/requests311/{thumb}").status_code == 404
    [read] = httpx.get(f"{live.open311}/requests/{request_id}.json").json()
    assert read.get("media_url") is None
    with city.context.database.session() as session:
        actions = session.scalars(
            select(AuditEntry.action).where(AuditEntry.request_id == request_id)
        ).all()
    assert "photo_hidden" in actions


def test_the_sweep_removes_only_old_files_no_report_names(
    live_city: tuple[City, LiveServer], media: Path
) -> None:
    """A server stopped between writing a report's files and committing (or refusing) it
    leaves files nobody names; the sweep removes those once they are older than the grace
    period, and never a stored report's photo or a file whose report may still be saving."""
    from datetime import UTC, datetime, timedelta

    from typer.testing import CliRunner

    from qala.cli.main import app
    from qala.components.requests311.photos import sweep_orphans

    city, live = live_city
    assert post(live, [("media", ("a.jpg", jpeg_with_gps(), "image/jpeg"))]).status_code == 200
    store = city.context.extras[STORE_KEY]
    orphan, fresh = "O" * 24 + ".jpg", "F" * 24 + ".thumb.jpg"
    store.put(orphan, b"left by a crash")
    store.put(fresh, b"a report still saving")
    old = time.time() - 2 * 3600
    os.utime(next(p for p in stored_files(media) if p.name == orphan), (old, old))
    now = datetime.now(UTC)
    with city.context.database.session() as session:
        dry = sweep_orphans(session, store, now=now, dry_run=True)
        assert (dry.orphans, dry.removed, dry.kept_recent) == ([orphan], 0, 1)
        assert len(stored_files(media)) == 4
        done = sweep_orphans(session, store, now=now, grace=timedelta(hours=1))
    assert (done.orphans, done.removed) == ([orphan], 1)
    names = sorted(p.name for p in stored_files(media))
    assert orphan not in names and fresh in names and len(names) == 3
    later = CliRunner().invoke(
        app,
        ["requests", "photos-sweep", "--older-than-hours", "0.05", "--json"],
        env={"QALA_DATABASE_URL": city.context.settings.database_url, "QALA_MEDIA_DIR": str(media)},
    )
    assert later.exit_code == 0, later.output
    assert json.loads(later.stdout[later.stdout.index("{") :])["kept_recent"] == 1
    with city.context.database.session() as session:
        gone = sweep_orphans(session, store, now=now + timedelta(hours=2))
    assert gone.orphans == [fresh]
    assert len(stored_files(media)) == 2  # the report's photo and its thumbnail
