"""The Open311 GeoReport v2 API at ``/open311/v2/`` (JSON and XML), over the component's services.

Parameters are read leniently by FastAPI (as strings) and checked here, so every mistake comes
back in the standard's error format — a list of ``{code, description}`` — with the standard HTTP
status (400 bad input, 403 bad ``api_key`` or anonymous reports refused, 404 unknown thing, plus
413 too large and 429 too many requests).

These are the platform's busiest routes, so each handler finds its platform's :class:`Open311Desk`
through the ``request`` it already takes (:func:`open311_desk`) rather than through a FastAPI
dependency: resolving one costs about 30 µs a request, some 5 % of a GET's server CPU.
"""

from __future__ import annotations

import asyncio
import inspect
import re
import urllib.parse
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, TypeVar, cast

from fastapi import APIRouter, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.routing import APIRoute
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.middleware.body_limit import RequestBodyLimitMiddleware

from qala.components.accounts.deps import client_address
from qala.components.requests311 import formats
from qala.components.requests311.answer_cache import CachedAnswer, PublicAnswerCache
from qala.components.requests311.catalogue import parse_w3_datetime
from qala.components.requests311.intake import (
    NewRequest,
    Poster,
    RateLimited,
    ReportIntake,
    report_intake,
)
from qala.components.requests311.jurisdictions import (
    CatalogueCache,
    catalogue_cache,
    pick_jurisdiction,
)
from qala.components.requests311.photo_files import (
    MAX_PHOTO_BYTES,
    MAX_PHOTO_FORM_BYTES,
    MAX_PHOTOS,
    PHOTO_FIELD,
    PhotoUpload,
)
from qala.components.requests311.queries import MAX_PAGE_SIZE, PublicReads, RequestFilter
from qala.components.requests311.views import parse_request_id
from qala.core.errors import (
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    QalaError,
    UnavailableError,
    ValidationError,
)
from qala.core.i18n import Translator
from qala.core.messages import Message, msg
from qala.runtime import Context

if TYPE_CHECKING:
    from qala.store.on_loop import LoopRunner

T = TypeVar("T")

PREFIX = "/open311/v2"
STORAGE_RETRY_AFTER_S = 30
"""Seconds a client is told to wait when the photo storage failed."""
FORMATS = ("json", "xml")
MAX_BODY_BYTES = 64 * 1024
MAX_IDS = 200
DATABASE_THREADS = 6
REPORTS_ON_LOOP = 4
"""Reports (and reads of one request the answers' cache missed) whose store work runs on a
worker's event loop at once. Each holds a connection: with the six database threads that keeps
within the store's pool of ten, past which connections are opened and closed again under load
(measured: 12 at once made a cold start's p99 worse)."""
LANGUAGES = ("kk", "ru", "en")
CHANGESET = "2026-11-23T00:00:00Z"
DESK_KEY = "requests311.open311_desk"
"""Where :func:`open311_desk` keeps a platform's desk in ``Context.extras``."""

POST_FIELDS: dict[str, dict[str, Any]] = {
    "jurisdiction_id": {
        "type": "string",
        "maxLength": 80,
        "description": "City code, e.g. `astana`; needed when the server serves several.",
    },
    "service_code": {"type": "string", "maxLength": 100, "description": "From GET services."},
    "api_key": {
        "type": "string",
        "maxLength": 200,
        "description": "A trusted client's key; optional where anonymous reports are allowed.",
    },
    "lat": {
        "type": "number",
        "description": "WGS84 latitude (with long); or give address_string / address_id.",
    },
    "long": {"type": "number", "description": "WGS84 longitude."},
    "address_string": {"type": "string", "maxLength": 500},
    "address_id": {"type": "string", "maxLength": 120},
    "zipcode": {"type": "string", "maxLength": 20},
    "email": {"type": "string", "maxLength": 254, "description": "Never shown by the public API."},
    "device_id": {
        "type": "string",
        "maxLength": 200,
        "description": "Never shown by the public API.",
    },
    "account_id": {
        "type": "string",
        "maxLength": 200,
        "description": "Never shown by the public API.",
    },
    "first_name": {
        "type": "string",
        "maxLength": 120,
        "description": "Never shown by the public API.",
    },
    "last_name": {
        "type": "string",
        "maxLength": 120,
        "description": "Never shown by the public API.",
    },
    "phone": {"type": "string", "maxLength": 40, "description": "Never shown by the public API."},
    "description": {"type": "string", "maxLength": 4000},
    "media_url": {
        "type": "string",
        "maxLength": 2048,
        "description": "Public http(s) URL of a photo (not with uploaded `media`).",
    },
}
MEDIA_FIELD = {
    "type": "array",
    "maxItems": MAX_PHOTOS,
    "items": {"type": "string", "format": "binary", "maxLength": MAX_PHOTO_BYTES},
    "description": f"Up to {MAX_PHOTOS} photos (JPEG or PNG, each at most "
    f"{MAX_PHOTO_BYTES // (1024 * 1024)} MB), multipart only; the answer's request then has "
    "`media_url` pointing at the first, stored without EXIF.",
}

_ERROR_SCHEMA = {
    "type": "array",
    "items": {
        "type": "object",
        "properties": {"code": {"type": "integer"}, "description": {"type": "string"}},
        "required": ["code", "description"],
    },
}


def _error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    reasons = {
        400: "Bad input",
        403: "Forbidden",
        404: "Not found",
        413: "Too large",
        429: "Too many requests",
    }
    return {
        code: {
            "description": f"{reasons[code]} (Open311 error list)",
            "content": {"application/json": {"schema": _ERROR_SCHEMA}, "text/xml": {}},
        }
        for code in codes
    }


Format = Annotated[
    str,
    Path(
        description="Response format: `json` or `xml`.", json_schema_extra={"enum": list(FORMATS)}
    ),
]
JurisdictionId = Annotated[
    str | None,
    Query(
        description="City code (e.g. `astana`); optional when the server serves one city.",
        max_length=80,
    ),
]
Locale = Annotated[
    str | None, Query(description="Language of names: kk, ru or en (extension).", max_length=20)
]


class OpenError(Exception):
    def __init__(
        self,
        status: int,
        description: str,
        headers: dict[str, str] | None = None,
        message: Message | None = None,
    ) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.headers = headers
        self.message = message


@dataclass
class Open311Desk:
    """What one platform's Open311 routes share: the cached catalogue, the public reads, the
    intake of reports (rate limits, known api keys) and the threads that do database work.

    One per context (tests build many apps with different stores in one process), made by the
    component's API start-up and found by :func:`open311_desk`.
    """

    context: Context
    catalogue: CatalogueCache
    reads: PublicReads
    intake: ReportIntake
    executor: ThreadPoolExecutor
    default_language: str
    max_body: int
    """The largest form-encoded request body accepted, bytes."""
    max_photo_body: int
    """The largest multipart body (with photos) accepted, bytes."""
    answers: PublicAnswerCache
    """Answers of GET one request kept in this process (PostgreSQL only)."""
    loop_runner: LoopRunner | None
    """Runs reports' store work on the event loop (PostgreSQL only: store/on_loop.py)."""

    @classmethod
    def for_context(cls, context: Context) -> Open311Desk:
        """The context's desk, made on first use and kept in ``context.extras``."""
        desk = context.extras.get(DESK_KEY)
        if not isinstance(desk, Open311Desk):
            desk = context.extras[DESK_KEY] = cls(
                context,
                catalogue_cache(context),
                PublicReads(context.database),
                report_intake(context),
                # Database work runs on a few threads of our own rather than anyio's default
                # forty: under load, forty threads fighting for the GIL make latency worse.
                ThreadPoolExecutor(max_workers=DATABASE_THREADS, thread_name_prefix="open311"),
                context.settings.default_language,
                min(MAX_BODY_BYTES, context.settings.max_upload_bytes),
                min(MAX_PHOTO_FORM_BYTES, context.settings.max_upload_bytes),
                PublicAnswerCache(
                    context.database.url if context.database.backend == "postgresql" else None
                ),
                _loop_runner(context),
            )
        return desk

    async def in_pool(
        self, fmt: str, produce: Callable[..., tuple[str, Any]], *args: Any, language: str = "en"
    ) -> Response:
        """The answer of ``produce(*args)``, computed on the desk's database threads (errors
        described in ``language``)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, _answer, fmt, language, produce, *args)

    async def report(
        self, fmt: str, jurisdiction_id: str | None, new: NewRequest, poster: Poster, language: str
    ) -> Response:
        """Store a report and answer it. On PostgreSQL a report without photos runs on the
        event loop, its waits for the store awaited there (store/on_loop.py): no hand-off to a
        database thread and back, no turns at the GIL against the loop. Photos are written to
        files first, so those reports, and every report on SQLite, go to the database threads."""
        if new.photos:
            return await self.in_pool(
                fmt, _stored_report, self, jurisdiction_id, new, poster, language=language
            )
        return await self.store_work(
            _answer, fmt, language, _stored_report, self, jurisdiction_id, new, poster
        )

    async def store_work(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)``: on the event loop on PostgreSQL (store/on_loop.py), on the database
        threads on SQLite."""
        if self.loop_runner is not None:
            return await self.loop_runner.run(fn, *args)
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    async def one_request(
        self,
        fmt: str,
        jurisdiction_id: str | None,
        request_id: str,
        language: str,
        *,
        missed: bool = False,
    ) -> Response:
        """GET one request: from this process's cache of answers when it holds a current one
        (on the event loop, no thread hop or query), else read and rendered: on the event loop
        on PostgreSQL (store/on_loop.py), on the database threads on SQLite.
        ``missed``: the caller has just found no current answer in the cache."""
        wanted = parse_request_id(request_id)
        if wanted is None or fmt not in FORMATS or not self.catalogue.fresh:
            return await self.in_pool(
                fmt, _one_request_document, self, jurisdiction_id, request_id, language
            )
        catalogue = self.catalogue.get()
        hit = None if missed else self.cached_answer(wanted, fmt, jurisdiction_id, language)
        if hit is not None:
            return Response(hit.body, media_type=hit.media_type)
        generation = self.answers.generation()
        response, city_id = await self.store_work(
            _one_request_answer, self, fmt, jurisdiction_id, wanted, language
        )
        if city_id is not None and response.status_code == 200:
            answer = CachedAnswer(
                city_id,
                catalogue,
                bytes(response.body),
                str(response.media_type),
                tuple(response.raw_headers),
            )
            self.answers.put(wanted, fmt, language, answer, generation)
        return response

    def cached_answer(
        self, request_id: int, fmt: str, jurisdiction_id: str | None, language: str
    ) -> CachedAnswer | None:
        """The current cached answer of GET one request, if this process holds one."""
        if not self.catalogue.fresh:
            return None
        hit = self.answers.get(request_id, fmt, language)
        catalogue = self.catalogue.get()
        if hit is None or hit.catalogue is not catalogue:
            return None
        try:
            city = pick_jurisdiction(catalogue, jurisdiction_id)
        except QalaError:
            return None
        return hit if city.id == hit.jurisdiction_id else None

    async def from_catalogue(
        self, fmt: str, produce: Callable[..., tuple[str, Any]], *args: Any, language: str = "en"
    ) -> Response:
        """Answer documents built from the catalogue alone on the event loop while the cached
        catalogue is fresh (a thread hop costs more than the work); refreshing it reads the
        store, so that goes to the pool."""
        if self.catalogue.fresh:
            return _answer(fmt, language, produce, *args)
        return await self.in_pool(fmt, produce, *args, language=language)


def open311_desk(request: Request) -> Open311Desk:
    """The desk of the platform serving ``request``."""
    context: Context = request.scope["app"].state.context
    desk = context.extras.get(DESK_KEY)
    return desk if isinstance(desk, Open311Desk) else Open311Desk.for_context(context)


def _problems_to_errors(exc: ValidationError, t: Translator) -> list[tuple[int, str]]:
    if not exc.problems:
        return [(400, t.message(exc.message) if exc.message else exc.summary)]
    out = []
    for problem in exc.problems:
        where = f"{problem.column}: " if problem.column else ""
        got = str(problem.value)[:80]
        # A message that names what it got (a length) says it in the reader's words.
        said = problem.message is not None and "got" in problem.message.params
        shown = "" if problem.value is None or said else t("open311.got", value=repr(got))
        text = problem.reason if t.language == "en" else t.problem(problem)
        if t.language == "en":
            shown = "" if problem.value is None else f" (got {got!r})"
        out.append((400, f"{where}{text}{shown}"))
    return out


def _error_response(
    fmt: str, status: int, errors: list[tuple[int, str]], headers: dict[str, str] | None = None
) -> Response:
    body, media = formats.render(
        fmt if fmt in FORMATS else "json", "errors", formats.errors_entries(errors)
    )
    return Response(body, status_code=status, media_type=media, headers=headers)


def _unknown_format(fmt: str) -> Response:
    return _error_response("json", 404, [(404, f"unknown format `{fmt[:20]}`; use .json or .xml")])


_STATUS: dict[type[QalaError], int] = {
    NotFoundError: 404,
    PermissionDeniedError: 403,
    ConflictError: 409,
    UnavailableError: 503,
}


def _refusal(fmt: str, exc: OpenError | QalaError, language: str = "en") -> Response:
    """The Open311 error answer for ``exc``, its descriptions in ``language`` where the
    catalogues have them (else as the error says)."""
    t = Translator(language)
    if isinstance(exc, OpenError):
        text = t.message(exc.message) if exc.message else exc.description
        return _error_response(fmt, exc.status, [(exc.status, text)], exc.headers)
    if isinstance(exc, RateLimited):
        headers = {"Retry-After": str(exc.retry_after)}
        text = t("open311.rate_limited", seconds=exc.retry_after)
        return _error_response(fmt, 429, [(429, text)], headers)
    if isinstance(exc, ValidationError):
        return _error_response(fmt, 400, _problems_to_errors(exc, t))
    status = next((s for kind, s in _STATUS.items() if isinstance(exc, kind)), 400)
    # Storage that failed (photos): nothing was stored, the same post may be sent again later.
    retry = {"Retry-After": str(STORAGE_RETRY_AFTER_S)} if status == 503 else None
    return _error_response(fmt, status, [(status, t.message(exc.message or str(exc)))], retry)


def _loop_runner(context: Context) -> LoopRunner | None:
    if context.database.backend != "postgresql":
        return None
    from qala.store.on_loop import LoopRunner  # greenlet and psycopg: PostgreSQL only

    return LoopRunner(REPORTS_ON_LOOP)


def _answer(
    fmt: str, language: str, produce: Callable[..., tuple[str, Any]], *args: Any
) -> Response:
    """Run ``produce(*args)`` (returning the XML root and the document) and render it, or the
    Open311 error its failure means (described in ``language``)."""
    if fmt not in FORMATS:
        return _unknown_format(fmt)
    try:
        root, value = produce(*args)
    except (OpenError, QalaError) as exc:
        return _refusal(fmt, exc, language)
    body, media = formats.render(fmt, root, value)
    return Response(body, media_type=media)


def pick_language(request: Request, locale: str | None, default: str) -> str:
    """``locale`` (kk, ru, en; a GeoReport v2.1 draft extension), else Accept-Language, else default."""
    return choose_language(locale, request.headers.get("accept-language", ""), default)


def choose_language(locale: str | None, accept_language: str, default: str) -> str:
    """:func:`pick_language` from the raw values: ``locale``, the Accept-Language header."""
    if locale:
        code = locale.strip().lower()[:2]
        if code in LANGUAGES:
            return code
    for part in accept_language.split(","):
        code = part.strip().lower()[:2]
        if code in LANGUAGES:
            return code
    return default


def error_language(request: Request, locale: str | None = None) -> str:
    """The language of error descriptions: ``locale`` (query or form), else Accept-Language,
    else English (an integration that names no language reads the standard's language)."""
    return pick_language(request, locale or request.query_params.get("locale"), "en")


def _split(value: str | None, *, field: str, limit: int = MAX_IDS) -> list[str]:
    if value is None:
        return []
    items = [v.strip() for v in value.split(",") if v.strip()]
    if len(items) > limit:
        raise OpenError(400, f"{field}: at most {limit} values")
    return items


def _date(value: str | None, field: str) -> datetime | None:
    if value is None or not value.strip():
        return None
    try:
        return parse_w3_datetime(value)
    except (ValueError, OverflowError):
        raise OpenError(
            400,
            f"{field}: expected a W3C date-time such as 2025-01-01T00:00:00Z (got {value[:40]!r})",
        ) from None


def _positive_int(value: str | None, field: str, default: int, maximum: int) -> int:
    if value is None or value == "":
        return default
    if not (value.strip().isascii() and value.strip().isdigit()) or len(value) > 9:
        raise OpenError(400, f"{field}: expected a positive whole number (got {value[:20]!r})")
    number = int(value)
    if not 1 <= number <= maximum:
        raise OpenError(400, f"{field}: expected 1 to {maximum}")
    return number


def parse_request_form(
    pairs: list[tuple[str, str]], photos: list[PhotoUpload] | None = None
) -> tuple[NewRequest, dict[str, str]]:
    """Open311 POST fields (and uploaded photos) → a NewRequest (and the plain fields, for
    api_key and jurisdiction)."""
    plain: dict[str, str] = {}
    attributes: dict[str, list[str]] = {}
    for key, value in pairs:
        if key.startswith("attribute[") and "]" in key:
            code = key[len("attribute[") : key.index("]")]
            attributes.setdefault(code, []).append(value)
        elif key in plain and key in POST_FIELDS:
            raise OpenError(400, f"{key}: given more than once")
        else:
            plain[key] = value
    lat = _float(plain.get("lat"), "lat")
    lon = _float(plain.get("long"), "long")
    new = NewRequest(
        service_code=plain.get("service_code", "").strip(),
        lat=lat,
        lon=lon,
        address_string=plain.get("address_string"),
        address_id=plain.get("address_id"),
        zipcode=plain.get("zipcode"),
        description=plain.get("description"),
        media_url=plain.get("media_url"),
        attributes=attributes,
        email=plain.get("email"),
        phone=plain.get("phone"),
        first_name=plain.get("first_name"),
        last_name=plain.get("last_name"),
        device_id=plain.get("device_id"),
        account_id=plain.get("account_id"),
        photos=list(photos or []),
    )
    return new, plain


def _float(value: str | None, field: str) -> float | None:
    if value is None or value.strip() == "":
        return None
    try:
        return float(value)
    except ValueError:
        raise OpenError(400, f"{field}: expected a decimal number (got {value[:40]!r})") from None


@dataclass(frozen=True)
class RequestQuery:
    """GET requests' filters as sent (strings), checked by :meth:`parse`."""

    service_request_id: str | None
    service_code: str | None
    start_date: str | None
    end_date: str | None
    status: str | None
    page: str | None
    page_size: str | None

    def parse(self) -> RequestFilter:
        """The filter these parameters ask for; OpenError names the first bad one."""
        ids_text = _split(self.service_request_id, field="service_request_id")
        bad = [i for i in ids_text if parse_request_id(i) is None]
        if bad:
            raise OpenError(400, f"service_request_id: expected numeric ids (got {bad[0][:20]!r})")
        statuses = _split(self.status, field="status", limit=10)
        allowed = ("open", "closed", "acknowledged", "in_progress")
        wrong = [s for s in statuses if s not in allowed]
        if wrong:
            raise OpenError(400, f"status: expected open or closed (got {wrong[0][:20]!r})")
        where = RequestFilter(
            service_request_ids=[int(i) for i in ids_text] or None,
            service_codes=_split(self.service_code, field="service_code") or None,
            start_date=_date(self.start_date, "start_date"),
            end_date=_date(self.end_date, "end_date"),
            statuses=statuses or None,
            page=_positive_int(self.page, "page", 1, 1_000_000),
            page_size=_positive_int(self.page_size, "page_size", MAX_PAGE_SIZE, MAX_PAGE_SIZE),
        )
        if where.start_date and where.end_date and where.start_date > where.end_date:
            raise OpenError(400, "start_date: must not be after end_date")
        return where


def _too_large(max_body: int) -> OpenError:
    return OpenError(413, f"the request body may be at most {max_body} bytes")


async def _read_form(
    request: Request, max_body: int, max_photo_body: int
) -> tuple[list[tuple[str, str]], list[PhotoUpload]]:
    """The posted form's fields, in order, and its photos; OpenError for a body too large or not
    a form. Form-encoded bodies may be ``max_body`` bytes; multipart ones, which carry photos,
    ``max_photo_body``, read as they come and cut off there."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "multipart/form-data":
        return await _read_multipart(request, max_photo_body)
    declared = request.headers.get("content-length")
    if declared and (not declared.isdigit() or int(declared) > max_body):
        raise _too_large(max_body)
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > max_body:
            raise _too_large(max_body)
    if content_type in ("application/x-www-form-urlencoded", ""):
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise OpenError(400, "the body must be UTF-8 text") from None
        try:
            return urllib.parse.parse_qsl(text, keep_blank_values=True, max_num_fields=500), []
        except ValueError as exc:  # the field limit
            raise OpenError(400, f"unreadable form: {str(exc)[:100]}") from None
    raise OpenError(
        400,
        "send the request form-encoded (application/x-www-form-urlencoded), or as"
        " multipart/form-data with photos",
    )


async def _read_multipart(
    request: Request, max_body: int
) -> tuple[list[tuple[str, str]], list[PhotoUpload]]:
    """A multipart form's fields and its ``media`` files, the body cut off past ``max_body``."""
    declared = request.headers.get("content-length")
    if declared and (not declared.isdigit() or int(declared) > max_body):
        raise _too_large(max_body)

    async def limited() -> Any:
        seen = 0
        async for chunk in request.stream():
            seen += len(chunk)
            if seen > max_body:
                raise _too_large(max_body)
            yield chunk

    parser = MultiPartParser(
        request.headers, limited(), max_files=20, max_fields=500, max_part_size=64 * 1024
    )
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        raise OpenError(400, f"unreadable form: {exc.message[:100]}") from None
    fields: list[tuple[str, str]] = []
    photos: list[PhotoUpload] = []
    try:
        for key, value in form.multi_items():
            if isinstance(value, str):
                fields.append((key, value))
            elif key != PHOTO_FIELD:
                raise OpenError(400, f"{key[:40]}: only `{PHOTO_FIELD}` takes files")
            else:
                photos.append(await _read_upload(value))
    finally:
        await form.close()
    if len(photos) > MAX_PHOTOS:
        problem = msg("problem.photo_too_many", count=MAX_PHOTOS, n=MAX_PHOTOS)
        raise OpenError(400, f"{PHOTO_FIELD}: at most {MAX_PHOTOS} photos", message=problem)
    return fields, photos


async def _read_upload(upload: UploadFile) -> PhotoUpload:
    # One byte past the limit is enough to refuse the photo for its size, with its number.
    data = await upload.read(MAX_PHOTO_BYTES + 1)
    return PhotoUpload(data, (upload.filename or "")[:200])


def _discovery_document(desk: Open311Desk) -> tuple[str, Any]:
    known = desk.catalogue.get()
    contacts = (
        "; ".join(j.contact for j in known.values() if j.contact) or "Qala city administration"
    )
    key_service = "; ".join(j.key_service for j in known.values() if j.key_service) or None
    base = desk.context.settings.public_base_url.rstrip("/") + PREFIX
    return "discovery", {
        "changeset": CHANGESET,
        "contact": contacts,
        "key_service": key_service,
        "endpoints": [
            {
                "specification": formats.SPECIFICATION,
                "url": base,
                "changeset": CHANGESET,
                "type": "production",
                "formats": ["text/xml", "application/json"],
            }
        ],
        # An extension: every city this server takes requests for, by jurisdiction_id.
        "jurisdictions": [
            {
                "jurisdiction_id": j.code,
                "name_kk": j.names["kk"],
                "name_ru": j.names["ru"],
                "name_en": j.names["en"],
                "services": sum(1 for s in j.services.values() if s.active),
                "contact": j.contact,
            }
            for j in sorted(known.values(), key=lambda j: j.code)
        ],
    }


def _services_document(
    desk: Open311Desk, jurisdiction_id: str | None, language: str
) -> tuple[str, Any]:
    city = desk.catalogue.jurisdiction(jurisdiction_id)
    return "services", [
        formats.service_entry(s, language) for s in city.services.values() if s.active
    ]


def _service_definition_document(
    desk: Open311Desk, jurisdiction_id: str | None, service_code: str, language: str
) -> tuple[str, Any]:
    service = desk.catalogue.jurisdiction(jurisdiction_id).service(service_code)
    return "service_definition", formats.service_definition(service, language)


def _requests_document(
    desk: Open311Desk, jurisdiction_id: str | None, query: RequestQuery, language: str
) -> tuple[str, Any]:
    city = desk.catalogue.jurisdiction(jurisdiction_id)
    where = query.parse()
    found = desk.reads.find(city, where, now=desk.context.clock(), language=language)
    return "service_requests", [formats.request_entry(r) for r in found]


def _one_request_document(
    desk: Open311Desk, jurisdiction_id: str | None, request_id: str, language: str
) -> tuple[str, Any]:
    city = desk.catalogue.jurisdiction(jurisdiction_id)
    wanted = parse_request_id(request_id)
    if wanted is None:
        raise NotFoundError(f"no service request {request_id[:40]!r}")
    found = desk.reads.one(city, wanted, language=language)
    return "service_requests", [formats.request_entry(found)]


def _one_request_answer(
    desk: Open311Desk, fmt: str, jurisdiction_id: str | None, wanted: int, language: str
) -> tuple[Response, int | None]:
    """The answer of GET one request and the id of the city it was found in (None on error)."""
    try:
        city = desk.catalogue.jurisdiction(jurisdiction_id)
        found = desk.reads.one(city, wanted, language=language)
    except (OpenError, QalaError) as exc:
        # Described in English, as every read route's refusals (``in_pool``'s default).
        return _refusal(fmt, exc), None
    body, media = formats.render(fmt, "service_requests", [formats.request_entry(found)])
    return Response(body, media_type=media), city.id


def _token_document(desk: Open311Desk, jurisdiction_id: str | None, token: str) -> tuple[str, Any]:
    city = desk.catalogue.jurisdiction(jurisdiction_id)
    if len(token) > 40:
        raise NotFoundError("no service request has this token")
    request_id = desk.reads.id_for_token(city, token)
    return "service_requests", [{"service_request_id": str(request_id), "token": token}]


def _stored_report(
    desk: Open311Desk, jurisdiction_id: str | None, new: NewRequest, poster: Poster
) -> tuple[str, Any]:
    city = desk.catalogue.jurisdiction(jurisdiction_id)
    submitted = desk.intake.submit(city, new, poster)
    return "service_requests", [
        {
            "service_request_id": submitted.service_request_id,
            "token": submitted.token,
            "service_notice": submitted.service_notice,
            "account_id": None,
        }
    ]


class Open311Route(APIRoute):
    """Parameters FastAPI refuses (a value past its length, a bad number) are answered as every
    other Open311 error: a 400 list of ``code`` and ``description`` in the route's format, not
    FastAPI's 422 document."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as exc:
                fmt = str(request.path_params.get("format", "json"))
                described = "; ".join(
                    f"{'.'.join(str(p) for p in e.get('loc', ())[1:])}: {e.get('msg')}"
                    for e in exc.errors()
                )
                return _refusal(fmt if fmt in FORMATS else "json", OpenError(400, described))

        return route


router = APIRouter(prefix=PREFIX, tags=["open311"], route_class=Open311Route)


@router.get(
    "/discovery.{format}", summary="Open311 service discovery", responses=_error_responses(404)
)
async def discovery(request: Request, format: Format) -> Response:
    desk = open311_desk(request)
    return await desk.from_catalogue(format, _discovery_document, desk)


@router.get(
    "/services.{format}",
    summary="List the service types (GET services)",
    responses=_error_responses(400, 404),
)
async def services(
    request: Request,
    format: Format,
    jurisdiction_id: JurisdictionId = None,
    locale: Locale = None,
) -> Response:
    desk = open311_desk(request)
    language = pick_language(request, locale, desk.default_language)
    return await desk.from_catalogue(format, _services_document, desk, jurisdiction_id, language)


@router.get(
    "/services/{service_code}.{format}",
    summary="A service's definition (its form attributes)",
    responses=_error_responses(400, 404),
)
async def service_definition(
    request: Request,
    service_code: Annotated[str, Path(max_length=100)],
    format: Format,
    jurisdiction_id: JurisdictionId = None,
    locale: Locale = None,
) -> Response:
    desk = open311_desk(request)
    language = pick_language(request, locale, desk.default_language)
    return await desk.from_catalogue(
        format, _service_definition_document, desk, jurisdiction_id, service_code, language
    )


@router.get(
    "/requests.{format}",
    summary="Find service requests (GET requests)",
    responses=_error_responses(400, 404),
)
async def list_requests(
    request: Request,
    format: Format,
    jurisdiction_id: JurisdictionId = None,
    service_request_id: Annotated[
        str | None,
        Query(description="Comma-separated ids; overrides the other filters.", max_length=4000),
    ] = None,
    service_code: Annotated[
        str | None, Query(description="Comma-separated service codes.", max_length=2000)
    ] = None,
    start_date: Annotated[
        str | None, Query(description="Earliest requested_datetime (W3C).", max_length=40)
    ] = None,
    end_date: Annotated[
        str | None, Query(description="Latest requested_datetime (W3C).", max_length=40)
    ] = None,
    status: Annotated[
        str | None, Query(description="Comma-separated: open, closed.", max_length=200)
    ] = None,
    page: Annotated[
        str | None, Query(description="Page number from 1 (extension).", max_length=12)
    ] = None,
    page_size: Annotated[
        str | None,
        Query(
            description=f"Requests per page, at most {MAX_PAGE_SIZE} (extension).", max_length=12
        ),
    ] = None,
    locale: Locale = None,
) -> Response:
    desk = open311_desk(request)
    language = pick_language(request, locale, desk.default_language)
    query = RequestQuery(
        service_request_id, service_code, start_date, end_date, status, page, page_size
    )
    return await desk.in_pool(format, _requests_document, desk, jurisdiction_id, query, language)


@router.get(
    "/requests/{service_request_id}.{format}",
    summary="One service request (GET request)",
    responses=_error_responses(400, 404),
)
async def one_request(
    request: Request,
    service_request_id: Annotated[str, Path(max_length=40)],
    format: Format,
    jurisdiction_id: JurisdictionId = None,
    locale: Locale = None,
) -> Response:
    desk = open311_desk(request)
    language = pick_language(request, locale, desk.default_language)
    return await desk.one_request(format, jurisdiction_id, service_request_id, language)


@router.get(
    "/tokens/{token}.{format}",
    summary="The request id behind a token (GET service_request_id from a token)",
    responses=_error_responses(400, 404),
)
async def token_lookup(
    request: Request,
    token: Annotated[str, Path(max_length=200)],
    format: Format,
    jurisdiction_id: JurisdictionId = None,
) -> Response:
    desk = open311_desk(request)
    return await desk.in_pool(format, _token_document, desk, jurisdiction_id, token)


@router.post(
    "/requests.{format}",
    summary="Report a problem (POST request), form-encoded or multipart with photos",
    # Past the handler's own cut-off, so a too-large body gets the Open311 error list.
    max_body_size=MAX_PHOTO_FORM_BYTES + 1024 * 1024,
    responses={
        200: {"description": "The new request's id and token (Open311 list of one)"},
        **_error_responses(400, 403, 404, 413, 429),
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/x-www-form-urlencoded": {
                    "schema": {
                        "type": "object",
                        "properties": POST_FIELDS,
                        "required": ["service_code"],
                        "additionalProperties": {
                            "type": "string",
                            "maxLength": 4000,
                            "description": "attribute[CODE]=value",
                        },
                    }
                },
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {**POST_FIELDS, PHOTO_FIELD: MEDIA_FIELD},
                        "required": ["service_code"],
                        "additionalProperties": {
                            "type": "string",
                            "maxLength": 4000,
                            "description": "attribute[CODE]=value",
                        },
                    }
                },
            },
        }
    },
)
async def create_request(request: Request, format: Format) -> Response:
    desk = open311_desk(request)
    if format not in FORMATS:
        return _unknown_format(format)
    try:
        pairs, photos = await _read_form(request, desk.max_body, desk.max_photo_body)
        new, plain = parse_request_form(pairs, photos)
        api_key = plain.get("api_key") or request.query_params.get("api_key")
        poster = Poster.of(api_key, client_address(request))
        # This process's own count first: a flood is refused before it costs a transaction.
        desk.intake.admit(poster)
    except (OpenError, RateLimited) as exc:
        return _refusal(format, exc, error_language(request))
    jurisdiction_id = plain.get("jurisdiction_id") or request.query_params.get("jurisdiction_id")
    language = error_language(request, plain.get("locale"))
    return await desk.report(format, jurisdiction_id, new, poster, language)


ONE_REQUEST_PATH = re.compile(re.escape(PREFIX) + r"/requests/([0-9]{1,10})\.(json|xml)")
ONE_REQUEST_QUERY = {"jurisdiction_id": 80, "locale": 20}
"""The query parameters of GET one request and their longest accepted values."""
NEW_REQUEST_PATH = re.compile(re.escape(PREFIX) + r"/requests\.(json|xml)")


def _route_of(endpoint: Callable[..., Any]) -> APIRoute:
    return next(r for r in router.routes if isinstance(r, APIRoute) and r.endpoint is endpoint)


class Open311BeforeRouting:
    """ASGI middleware answering the two operations Open311 apps call most without FastAPI's
    routing: ``GET /open311/v2/requests/{id}.{json|xml}`` in its plain form (an id, a format, at
    most ``jurisdiction_id`` and ``locale`` within their lengths) and ``POST
    /open311/v2/requests.{json|xml}``. Anything else goes on to the router.

    Routing (about twenty routes matched in turn, twice), parameter solving and the response
    layers cost as much as sending a cached answer, and a fifth of a report's CPU. The answers
    are the routes' own: a kept GET answer is sent as the route sent it, a missed one is read by
    the same desk method, and a POST runs the route's handler itself, under the route's body
    limit. Whatever they raise meets the app's exception handlers, as behind the router (a store
    outage: the Open311 503 with ``Retry-After``); an exception no handler takes goes up to the
    last-resort one. Added inside the security headers and the request metrics, which count
    these answers under the routes' paths.
    """

    def __init__(self, app: Any) -> None:
        self.app = app
        self.one_route = _route_of(one_request)
        self.create_route = _route_of(create_request)
        # The route's own limit on the body, which raises the app's for photo forms.
        limit = self.create_route.max_body_size
        self.create: Any = (
            self._create if limit is None else RequestBodyLimitMiddleware(self._create, limit)
        )

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and DESK_KEY in scope["app"].state.context.extras:
            method = scope["method"]
            if method == "GET" and await self._one(scope, receive, send):
                return
            if method == "POST" and NEW_REQUEST_PATH.fullmatch(scope["path"]):
                scope["route"] = self.create_route
                await self.create(scope, receive, send)
                return
        await self.app(scope, receive, send)

    async def _one(self, scope: Any, receive: Any, send: Any) -> bool:
        """Answer GET one request in its plain form; False for any other GET."""
        found = ONE_REQUEST_PATH.fullmatch(scope["path"])
        plain = _plain_one_request(scope) if found is not None else None
        wanted = parse_request_id(found.group(1)) if found is not None else None
        if found is None or plain is None or wanted is None:
            return False
        desk, jurisdiction_id, language = plain
        fmt = found.group(2)
        scope["route"] = self.one_route
        hit = desk.cached_answer(wanted, fmt, jurisdiction_id, language)
        if hit is not None:
            await send({"type": "http.response.start", "status": 200, "headers": list(hit.headers)})
            await send({"type": "http.response.body", "body": hit.body})
            return True
        try:
            answer = await desk.one_request(
                fmt, jurisdiction_id, found.group(1), language, missed=True
            )
        except Exception as exc:
            answer = await _handled(Request(scope, receive), exc)
        await answer(scope, receive, send)
        return True

    async def _create(self, scope: Any, receive: Any, send: Any) -> None:
        request = Request(scope, receive)
        try:
            answer = await create_request(request, scope["path"].rsplit(".", 1)[1])
        except Exception as exc:
            answer = await _handled(request, exc)
        await answer(scope, receive, send)


async def _handled(request: Request, exc: Exception) -> Response:
    """The answer of the app's handler for ``exc``, as the exception middleware behind the router
    would give it; ``exc`` raised again when only the last-resort handler (``Exception``, which
    runs outside every middleware) would take it."""
    handlers = request.app.exception_handlers
    for kind in type(exc).__mro__:
        if kind is Exception:
            break
        handler = handlers.get(kind)
        if handler is not None:
            answer = handler(request, exc)
            return cast(Response, await answer if inspect.isawaitable(answer) else answer)
    raise exc


def _plain_one_request(scope: Any) -> tuple[Open311Desk, str | None, str] | None:
    """The desk, ``jurisdiction_id`` and language of GET one request in its plain form; None if
    the query holds anything else (another parameter, one twice, a value too long)."""
    desk = scope["app"].state.context.extras.get(DESK_KEY)
    if not isinstance(desk, Open311Desk):
        return None
    params: dict[str, str] = {}
    query = scope.get("query_string", b"")
    if query:
        pairs = urllib.parse.parse_qsl(query.decode("latin-1"), keep_blank_values=True)
        for name, value in pairs:
            limit = ONE_REQUEST_QUERY.get(name)
            if limit is None or name in params or len(value) > limit:
                return None
            params[name] = value
    accept = ""
    for header, value in scope["headers"]:
        if header == b"accept-language":
            accept = value.decode("latin-1")
            break
    language = choose_language(params.get("locale"), accept, desk.default_language)
    return desk, params.get("jurisdiction_id"), language
