"""Residents' photos of requests in the store: attaching checked photos to a new request, who
may see which (the public sees a photo unless an operator hid it; staff of the request's city
and department see all), hiding and showing again with a reason (audited), and the request's
Open311 ``media_url`` (its first photo the public may see)."""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from qala.components.requests311.models import AuditEntry, Photo, Request
from qala.components.requests311.photo_files import DiskPhotoStore, PhotoStore, PreparedPhoto
from qala.core.clock import as_utc
from qala.core.errors import (
    ConfigurationError,
    NotFoundError,
    Problem,
    UnavailableError,
    raise_if_problems,
)
from qala.core.messages import msg
from qala.runtime import Context
from qala.settings import Settings

log = logging.getLogger("qala.requests311.photos")

MEDIA_PATH = "/media/requests311"
"""Where photos are served: ``{MEDIA_PATH}/{name}``."""
STORE_KEY = "requests311.photo_store"
MAX_HIDE_REASON = 500


def store_for(settings: Settings) -> PhotoStore:
    """The photo store ``settings`` configure: a bucket when ``QALA_MEDIA_S3_URL`` is set
    (ConfigurationError when boto3, the ``s3`` extra, is missing), else the folder
    ``QALA_MEDIA_DIR``."""
    if not settings.media_s3_url or not settings.media_s3_bucket:
        return DiskPhotoStore(settings.media_dir)
    if importlib.util.find_spec("boto3") is None:
        raise ConfigurationError(
            "QALA_MEDIA_S3_URL is set but boto3 is not installed: pip install 'qala[s3]'"
        )
    from qala.components.requests311.photo_s3 import S3PhotoStore

    secret = settings.media_s3_secret_key
    return S3PhotoStore(
        settings.media_s3_url,
        settings.media_s3_bucket,
        access_key=settings.media_s3_access_key,
        secret_key=secret.get_secret_value() if secret is not None else None,
        region=settings.media_s3_region,
        prefix=settings.media_s3_prefix,
    )


def photo_store(context: Context) -> PhotoStore:
    """The platform's photo store (see :func:`store_for`), kept in ``context.extras``."""
    store = context.extras.get(STORE_KEY)
    if store is None:
        store = context.extras[STORE_KEY] = store_for(context.settings)
    return store


def photo_url(base_url: str, name: str) -> str:
    return f"{base_url.rstrip('/')}{MEDIA_PATH}/{name}"


@dataclass(frozen=True)
class PhotoView:
    """A photo as a page or the staff API shows it."""

    id: int
    request_id: int
    url: str
    thumb_url: str
    content_type: str
    width: int
    height: int
    hidden: bool
    hidden_reason: str | None
    hidden_by: str | None
    hidden_at: datetime | None


def write_files(store: PhotoStore, photos: list[PreparedPhoto]) -> None:
    """Put each photo and its thumbnail in ``store``; on failure none of them stays."""
    written: list[str] = []
    try:
        for photo in photos:
            for name, data in ((photo.name, photo.data), (photo.thumb_name, photo.thumb)):
                written.append(name)  # before the put: one that failed late may have landed
                store.put(name, data)
    except BaseException:
        remove_names(store, written)
        raise


def remove_files(store: PhotoStore, photos: list[PreparedPhoto]) -> None:
    remove_names(store, [name for photo in photos for name in (photo.name, photo.thumb_name)])


def remove_names(store: PhotoStore, names: list[str]) -> None:
    """Delete ``names`` from ``store``; when the storage itself fails, the rest would wait as
    long, so they are left and logged for the operator to remove."""
    for at, name in enumerate(names):
        try:
            store.delete(name)
        except UnavailableError:
            log.warning("photo storage failed; files of a refused report left: %s", names[at:])
            return
        except OSError:  # nothing more can be done for this one
            log.warning("photo %s of a refused report could not be removed", name)


@dataclass(frozen=True)
class SweepReport:
    """What :func:`sweep_orphans` found: files no report names, older than the grace period."""

    orphans: list[str]
    removed: int
    kept_recent: int
    """Unnamed files younger than the grace period: a report may still be committing them."""

    def as_dict(self) -> dict[str, Any]:
        return {"orphans": self.orphans, "removed": self.removed, "kept_recent": self.kept_recent}


def sweep_orphans(
    session: Session,
    store: PhotoStore,
    *,
    now: datetime,
    grace: timedelta = timedelta(hours=1),
    dry_run: bool = False,
) -> SweepReport:
    """Delete the photo files that no stored photo names and that are older than ``grace``.

    A report writes its files before its transaction commits, and removes them when it is
    refused; a server killed between the two leaves files nobody names. The grace period keeps
    the files of reports still on their way to the database."""
    named: set[str] = set()
    for name, thumb in session.execute(select(Photo.name, Photo.thumb_name)):
        named.update((name, thumb))
    orphans: list[str] = []
    recent = 0
    for name, written in store.listing():
        if name in named:
            continue
        if written > now - grace:
            recent += 1
        else:
            orphans.append(name)
    orphans.sort()
    removed = 0
    if not dry_run:
        for name in orphans:
            store.delete(name)
            removed += 1
    if orphans:
        log.info("photo files no report names: %d found, %d removed", len(orphans), removed)
    return SweepReport(orphans, removed, recent)


def attach_photos(
    session: Session,
    request_id: int,
    photos: list[PreparedPhoto],
    *,
    now: datetime,
    base_url: str,
) -> str | None:
    """Rows for ``photos`` (already in the store) of request ``request_id``; returns the
    request's new ``media_url`` (its first photo's address), or None without photos."""
    for position, photo in enumerate(photos):
        session.add(
            Photo(
                request_id=request_id,
                position=position,
                name=photo.name,
                thumb_name=photo.thumb_name,
                content_type=photo.content_type,
                width=photo.width,
                height=photo.height,
                size_bytes=len(photo.data),
                created_at=now,
                hidden=False,
            )
        )
    session.flush()
    return photo_url(base_url, photos[0].name) if photos else None


def _view(photo: Photo, base_url: str) -> PhotoView:
    return PhotoView(
        id=photo.id,
        request_id=photo.request_id,
        url=photo_url(base_url, photo.name),
        thumb_url=photo_url(base_url, photo.thumb_name),
        content_type=photo.content_type,
        width=photo.width,
        height=photo.height,
        hidden=bool(photo.hidden),
        hidden_reason=photo.hidden_reason,
        hidden_by=photo.hidden_by,
        hidden_at=as_utc(photo.hidden_at),
    )


def photos_of(
    session: Session, request_ids: Iterable[int], *, base_url: str, public: bool
) -> dict[int, list[PhotoView]]:
    """The photos of each request in ``request_ids``, in the order sent; ``public``: only
    those not hidden."""
    ids = sorted(set(request_ids))
    if not ids:
        return {}
    query = (
        select(Photo).where(Photo.request_id.in_(ids)).order_by(Photo.request_id, Photo.position)
    )
    if public:
        query = query.where(Photo.hidden.is_(False))
    out: dict[int, list[PhotoView]] = {}
    for photo in session.scalars(query):
        out.setdefault(photo.request_id, []).append(_view(photo, base_url))
    return out


@dataclass(frozen=True)
class StoredPhoto:
    """What serving one file needs: its type, whether it is hidden and whose request it is."""

    content_type: str
    hidden: bool
    request_id: int
    jurisdiction_id: int


def stored_photo(session: Session, name: str) -> StoredPhoto:
    """The photo (or thumbnail) stored under ``name``; NotFoundError if none."""
    # A thumbnail is named after its photo, so both are found through the photo's unique index.
    photo_name = name.replace(".thumb.", ".", 1)
    wanted = Photo.name == photo_name
    if photo_name != name:
        wanted = wanted & (Photo.thumb_name == name)
    found = session.execute(
        select(Photo.content_type, Photo.hidden, Photo.request_id, Request.jurisdiction_id)
        .join(Request, Request.id == Photo.request_id)
        .where(wanted)
    ).first()
    if found is None:
        raise NotFoundError("no such photo")
    return StoredPhoto(found[0], bool(found[1]), found[2], found[3])


def set_photo_hidden(
    requests: Any, request_id: int, photo_id: int, *, hidden: bool, reason: str, base_url: str
) -> PhotoView:
    """Hide photo ``photo_id`` of request ``request_id`` from the public (or show it again),
    with ``reason``, recorded in the request's audit trail. ``requests`` is the actor's
    :class:`~qala.components.requests311.lifecycle.Requests` (its city and departments)."""
    request = requests.load(request_id)  # NotFoundError outside the actor's scope
    session: Session = requests.session
    reason = reason.strip()
    problems: list[Problem] = []
    if not reason:
        problems.append(
            Problem(
                "is required", column="reason", code="required", message=msg("problem.photo_reason")
            )
        )
    elif len(reason) > MAX_HIDE_REASON:
        problems.append(
            Problem(
                f"at most {MAX_HIDE_REASON} characters",
                column="reason",
                value=f"{len(reason)} characters",
                message=msg(
                    "problem.too_long", count=MAX_HIDE_REASON, n=MAX_HIDE_REASON, got=len(reason)
                ),
            )
        )
    raise_if_problems(problems, "the photo's visibility was not changed")
    photo = session.get(Photo, photo_id)
    if photo is None or photo.request_id != request.id:
        raise NotFoundError(f"request {request_id} has no photo {photo_id}")
    photo.hidden = hidden
    photo.hidden_reason = reason if hidden else None
    photo.hidden_by = requests.actor if hidden else None
    photo.hidden_at = requests.now if hidden else None
    before = request.media_url
    request.media_url = public_media_url(session, request.id, base_url, fallback=before)
    session.add(
        AuditEntry(
            request_id=request.id,
            at=requests.now,
            actor=requests.actor,
            action="photo_hidden" if hidden else "photo_shown",
            changes={
                "photo": [photo.id, photo.id],
                "hidden": [not hidden, hidden],
                "reason": [None, reason],
            },
        )
    )
    request.updated_at = requests.now
    session.flush()
    return _view(photo, base_url)


def public_media_url(
    session: Session, request_id: int, base_url: str, *, fallback: str | None
) -> str | None:
    """The request's first photo the public may see; None when every photo is hidden;
    ``fallback`` (the posted ``media_url``) when it has no photos at all."""
    session.flush()
    rows = session.execute(
        select(Photo.name, Photo.hidden)
        .where(Photo.request_id == request_id)
        .order_by(Photo.position)
    ).all()
    if not rows:
        return fallback
    visible = [name for name, hidden in rows if not hidden]
    return photo_url(base_url, visible[0]) if visible else None
