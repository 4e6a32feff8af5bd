"""Residents' photos as files: checked by their content, re-encoded without metadata, thumbnailed
and kept in a :class:`PhotoStore` (a folder on disk by default).

A photo is taken only when Pillow recognises it, by its bytes and never its name, as JPEG or PNG
(or HEIC/HEIF where the optional ``pillow-heif`` is installed), within :data:`MAX_PHOTO_BYTES`
and :data:`MAX_PHOTO_PIXELS` (checked from the header, before anything is decoded, so a
decompression bomb costs nothing). Its EXIF position is read as a suggested location, then the
picture is drawn again from its pixels (turned upright first) into a new file: EXIF, XMP,
comments and text chunks are not carried over.

A file that is a picture and something else (a polyglot: a zip, HTML or script after the
picture's own end) is refused, found by walking the JPEG segments or PNG chunks to their end.
The one trailer taken is a video (an ISO media file, ``ftyp``), which phones' "motion photos"
append; it is dropped with the rest when the picture is drawn again.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import re
import secrets
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from PIL import Image, ImageOps, UnidentifiedImageError

from qala.core.errors import NotFoundError, Problem, UnavailableError
from qala.core.messages import msg

MAX_PHOTOS = 3
"""Photos one report may carry."""
MAX_PHOTO_BYTES = 10 * 1024 * 1024
"""The largest photo file taken, as sent."""
MAX_PHOTO_PIXELS = 50_000_000
"""The most pixels a photo may declare (a 48-megapixel phone camera fits)."""
MAX_PHOTO_FORM_BYTES = MAX_PHOTOS * MAX_PHOTO_BYTES + 256 * 1024
"""The largest multipart body of a report with photos (the web form's and Open311's)."""
LONGEST_SIDE = 2560
"""Stored photos are scaled down to this longest side."""
THUMB_SIDE = 320
PHOTO_FIELD = "media"
"""The form field (web and Open311 multipart) that carries photos."""

_TYPES = {"JPEG": ("image/jpeg", "jpg"), "PNG": ("image/png", "png")}
CONTENT_TYPES = {"jpg": "image/jpeg", "png": "image/png"}
NAME_PATTERN = re.compile(r"^[A-Za-z0-9_-]{24}(\.thumb)?\.(jpg|png)$")
"""Every stored photo's name: a random token, ``.thumb`` for its thumbnail, its type."""
_HEIF_BRANDS = (b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1")

try:  # pragma: no cover - only where the deployment installed it
    import pillow_heif

    pillow_heif.register_heif_opener()
    HEIF = True
except ImportError:
    HEIF = False


@dataclass(frozen=True)
class PhotoUpload:
    """A photo as sent: its bytes and the name the sender gave (only ever shown back)."""

    data: bytes
    filename: str = ""


@dataclass(frozen=True)
class PreparedPhoto:
    """A checked photo ready to store: the re-encoded picture and its thumbnail."""

    name: str
    thumb_name: str
    content_type: str
    data: bytes
    thumb: bytes
    width: int
    height: int
    location: tuple[float, float] | None
    """(lat, lon) from the photo's GPS EXIF, a suggestion only (never stored)."""


def _problem(code: str, reason: str, index: int, **params: Any) -> Problem:
    return Problem(
        reason,
        column=PHOTO_FIELD,
        value=f"#{index + 1}",
        code=code,
        message=msg(f"problem.{code}", number=index + 1, **params),
    )


def _is_heif(data: bytes) -> bool:
    return data[4:8] == b"ftyp" and data[8:12] in _HEIF_BRANDS


def _degrees(value: Any, ref: Any) -> float | None:
    """Degrees from EXIF's (degrees, minutes, seconds) rationals and N/S/E/W reference."""
    try:
        d, m, s = (float(part) for part in value)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    number = d + m / 60 + s / 3600
    if not math.isfinite(number):
        return None
    return -number if str(ref).strip().upper() in ("S", "W") else number


def gps_location(image: Image.Image) -> tuple[float, float] | None:
    """(lat, lon) from ``image``'s GPS EXIF, or None when it has none (or nonsense)."""
    try:
        gps = image.getexif().get_ifd(0x8825)
    except Exception:  # a damaged EXIF block is no reason to refuse the photo
        return None
    lat = _degrees(gps.get(2), gps.get(1))
    lon = _degrees(gps.get(4), gps.get(3))
    if lat is None or lon is None or not (-90 <= lat <= 90 and -180 <= lon <= 180):
        return None
    if lat == 0 and lon == 0:
        return None
    return round(lat, 6), round(lon, 6)


def _encode(image: Image.Image, kind: str) -> bytes:
    out = io.BytesIO()
    if kind == "png":
        image.save(out, "PNG")
    else:
        if image.mode not in ("RGB", "L"):
            image = image.convert("RGB")
        image.save(out, "JPEG", quality=85, optimize=True)
    return out.getvalue()


def _too_many_pixels(index: int) -> Problem:
    return _problem(
        "photo_too_many_pixels",
        f"photo {index + 1} has more than {MAX_PHOTO_PIXELS // 1_000_000} megapixels",
        index,
        megapixels=MAX_PHOTO_PIXELS // 1_000_000,
    )


def _open(upload: PhotoUpload, index: int) -> tuple[Image.Image, str] | Problem:
    """The opened (not yet decoded) picture and its stored type, or why it is refused."""
    if len(upload.data) > MAX_PHOTO_BYTES:
        return _problem(
            "photo_too_large",
            f"photo {index + 1} is larger than {MAX_PHOTO_BYTES // (1024 * 1024)} MB",
            index,
            mb=MAX_PHOTO_BYTES // (1024 * 1024),
        )
    if _is_heif(upload.data) and not HEIF:
        return _problem("photo_heif", f"photo {index + 1} is HEIC/HEIF; send JPEG or PNG", index)
    formats = ["JPEG", "PNG", *(["HEIF"] if HEIF else [])]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(upload.data), formats=formats)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        return _too_many_pixels(index)
    except UnidentifiedImageError:
        return _problem("photo_not_image", f"photo {index + 1} is not a JPEG or PNG picture", index)
    except (OSError, ValueError, SyntaxError):
        return _problem("photo_not_image", f"photo {index + 1} is damaged", index)
    width, height = image.size
    if width < 1 or height < 1 or width * height > MAX_PHOTO_PIXELS:
        return _too_many_pixels(index)
    kind = "png" if image.format == "PNG" else "jpg"
    return image, kind


def _jpeg_end(data: bytes) -> int | None:
    """Where a JPEG's end-of-image marker ends, walking its segments (None if malformed)."""
    at, size = 2, len(data)
    while at + 2 <= size:
        if data[at] != 0xFF:
            return None
        marker = data[at + 1]
        if marker == 0xFF:  # fill byte
            at += 1
        elif marker == 0xD9:  # end of image
            return at + 2
        elif 0xD0 <= marker <= 0xD7 or marker == 0x01:  # markers without a length
            at += 2
        else:
            if at + 4 > size:
                return None
            at += 2 + int.from_bytes(data[at + 2 : at + 4], "big")
            if marker == 0xDA:  # a scan: coded data runs to the next marker not RSTn / FF00
                while True:
                    at = data.find(b"\xff", at)
                    if at < 0 or at + 1 >= size:
                        return None
                    following = data[at + 1]
                    if following == 0x00 or 0xD0 <= following <= 0xD7 or following == 0xFF:
                        at += 1
                        continue
                    break
    return None


def _png_end(data: bytes) -> int | None:
    """Where a PNG's IEND chunk ends, walking its chunks (None if malformed)."""
    at, size = 8, len(data)
    while at + 12 <= size:
        length = int.from_bytes(data[at : at + 4], "big")
        kind = data[at + 4 : at + 8]
        at += 12 + length
        if kind == b"IEND":
            return at if at <= size else None
    return None


def _carries_more(data: bytes, kind: str) -> bool:
    """Whether bytes other than a motion photo's video follow the picture's own end."""
    end = _png_end(data) if kind == "png" else _jpeg_end(data) if kind == "jpg" else None
    if end is None:
        return False  # Pillow decodes what it can; nothing of the file is kept anyway
    trailer = data[end:]
    if not trailer.strip(b"\x00\r\n\t "):
        return False
    return trailer[4:8] != b"ftyp"


def prepare_photo(upload: PhotoUpload, index: int = 0) -> PreparedPhoto | Problem:
    """``upload`` checked and re-encoded without metadata (see the module's notes), or the
    :class:`Problem` saying why it is refused (field ``media``, translated)."""
    opened = _open(upload, index)
    if isinstance(opened, Problem):
        return opened
    image, kind = opened
    if _carries_more(upload.data, kind):
        return _problem(
            "photo_polyglot", f"photo {index + 1} carries another file after the picture", index
        )
    location = gps_location(image)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image.load()
            upright = ImageOps.exif_transpose(image)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombWarning):
        return _problem("photo_not_image", f"photo {index + 1} is damaged", index)
    if kind == "png" and upright.mode not in ("RGB", "RGBA", "L", "LA"):
        upright = upright.convert("RGBA")
    # A new picture from the pixels alone: no EXIF, XMP, comments or text chunks.
    clean = Image.new(upright.mode, upright.size)
    clean.paste(upright)
    clean.thumbnail((LONGEST_SIDE, LONGEST_SIDE), Image.Resampling.LANCZOS)
    thumb = clean.copy()
    thumb.thumbnail((THUMB_SIDE, THUMB_SIDE), Image.Resampling.LANCZOS)
    token = secrets.token_urlsafe(18)
    return PreparedPhoto(
        name=f"{token}.{kind}",
        thumb_name=f"{token}.thumb.{kind}",
        content_type=CONTENT_TYPES[kind],
        data=_encode(clean, kind),
        thumb=_encode(thumb, kind),
        width=clean.width,
        height=clean.height,
        location=location,
    )


def prepare_photos(uploads: list[PhotoUpload]) -> tuple[list[PreparedPhoto], list[Problem]]:
    """Every upload checked (at most :data:`MAX_PHOTOS`); the problems name each refused one."""
    if len(uploads) > MAX_PHOTOS:
        return [], [
            Problem(
                f"at most {MAX_PHOTOS} photos per report",
                column=PHOTO_FIELD,
                value=f"{len(uploads)} photos",
                code="photo_too_many",
                message=msg("problem.photo_too_many", count=MAX_PHOTOS, n=MAX_PHOTOS),
            )
        ]
    prepared: list[PreparedPhoto] = []
    problems: list[Problem] = []
    for index, upload in enumerate(uploads):
        outcome = prepare_photo(upload, index)
        if isinstance(outcome, Problem):
            problems.append(outcome)
        else:
            prepared.append(outcome)
    return prepared, problems


def location_of(uploads: list[PhotoUpload]) -> tuple[float, float] | None:
    """The first GPS position among ``uploads`` (read from their headers, nothing decoded), to
    offer as the report's location; photos that would be refused are passed over."""
    for index, upload in enumerate(uploads[:MAX_PHOTOS]):
        opened = _open(upload, index)
        if not isinstance(opened, Problem):
            found = gps_location(opened[0])
            if found is not None:
                return found
    return None


class PhotoStore(Protocol):
    """Where photo files live, by name (:data:`NAME_PATTERN`). A storage that fails raises
    :class:`~qala.core.errors.UnavailableError` (answered 503); a missing file NotFoundError."""

    def put(self, name: str, data: bytes) -> None: ...

    def get(self, name: str) -> bytes: ...

    def delete(self, name: str) -> None: ...

    def listing(self) -> Iterator[tuple[str, datetime]]:
        """Every stored photo's name with the time it was written (UTC)."""
        ...


def _unavailable(detail: str) -> UnavailableError:
    return UnavailableError(
        f"the photo storage is unavailable ({detail}); try again later"
    ).with_message(msg("problem.photo_storage_unavailable"))


class DiskPhotoStore:
    """Photos as files under ``root`` (``QALA_MEDIA_DIR``), in folders by the name's first two
    characters, each written whole (a temporary file renamed into place)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _path(self, name: str) -> Path:
        if not NAME_PATTERN.match(name):
            raise NotFoundError("no such photo")
        return self.root / "requests311" / name[:2] / name

    def put(self, name: str, data: bytes) -> None:
        path = self._path(name)
        temporary = path.with_name(f".{name}.{secrets.token_hex(4)}")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(temporary, "wb") as out:
                out.write(data)
            os.chmod(temporary, 0o640)
            os.replace(temporary, path)
        except OSError as exc:  # a full disk, a folder it may not write
            with contextlib.suppress(OSError):
                temporary.unlink(missing_ok=True)
            raise _unavailable(f"writing a photo under {self.root}: {exc.strerror}") from None

    def get(self, name: str) -> bytes:
        try:
            return self._path(name).read_bytes()
        except FileNotFoundError:
            raise NotFoundError("no such photo") from None
        except OSError as exc:
            raise _unavailable(f"reading a photo under {self.root}: {exc.strerror}") from None

    def delete(self, name: str) -> None:
        self._path(name).unlink(missing_ok=True)

    def listing(self) -> Iterator[tuple[str, datetime]]:
        folder = self.root / "requests311"
        if not folder.is_dir():
            return
        for path in folder.glob("*/*"):
            if NAME_PATTERN.match(path.name):
                with contextlib.suppress(FileNotFoundError):  # deleted meanwhile
                    yield path.name, datetime.fromtimestamp(path.stat().st_mtime, UTC)
