"""The Open311 GeoReport v2 API at ``/open311/v2/`` (JSON and XML), over the services module.

Parameters are read leniently by FastAPI (as strings) and checked here, so every mistake comes
back in the standard's error format — a list of ``{code, description}`` — with the standard HTTP
status (400 bad input, 403 bad ``api_key`` or anonymous reports refused, 404 unknown thing, plus
413 too large and 429 too many requests).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
import urllib.parse
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response

from qala.components.requests311 import formats
from qala.components.requests311.catalogue import parse_w3_datetime
from qala.components.requests311.ratelimit import RateLimiter, SharedRateLimit
from qala.components.requests311.services import (
    MAX_PAGE_SIZE,
    CatalogueCache,
    JurisdictionInfo,
    NewRequest,
    RequestFilter,
    find_requests,
    get_public_request,
    parse_request_id,
    request_id_for_token,
    resolve_api_key,
    submit_request,
)
from qala.core.errors import (
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    QalaError,
    ValidationError,
)
from qala.runtime import Context

PREFIX = "/open311/v2"
FORMATS = ("json", "xml")
MAX_BODY_BYTES = 64 * 1024
MAX_IDS = 200
DATABASE_THREADS = 6
LANGUAGES = ("kk", "ru", "en")
CHANGESET = "2026-11-23T00:00:00Z"

POST_FIELDS: dict[str, dict[str, Any]] = {
    "jurisdiction_id": {
        "type": "string",
        "description": "City code, e.g. `astana`; needed when the server serves several.",
    },
    "service_code": {"type": "string", "description": "From GET services."},
    "api_key": {
        "type": "string",
        "description": "A trusted client's key; optional where anonymous reports are allowed.",
    },
    "lat": {
        "type": "number",
        "description": "WGS84 latitude (with long); or give address_string / address_id.",
    },
    "long": {"type": "number", "description": "WGS84 longitude."},
    "address_string": {"type": "string"},
    "address_id": {"type": "string"},
    "zipcode": {"type": "string"},
    "email": {"type": "string", "description": "Never shown by the public API."},
    "device_id": {"type": "string", "description": "Never shown by the public API."},
    "account_id": {"type": "string", "description": "Never shown by the public API."},
    "first_name": {"type": "string", "description": "Never shown by the public API."},
    "last_name": {"type": "string", "description": "Never shown by the public API."},
    "phone": {"type": "string", "description": "Never shown by the public API."},
    "description": {"type": "string", "maxLength": 4000},
    "media_url": {"type": "string", "description": "Public http(s) URL of a photo."},
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
        self, status: int, description: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.headers = headers


def _problems_to_errors(exc: ValidationError) -> list[tuple[int, str]]:
    if not exc.problems:
        return [(400, exc.summary)]
    out = []
    for problem in exc.problems:
        where = f"{problem.column}: " if problem.column else ""
        shown = "" if problem.value is None else f" (got {str(problem.value)[:80]!r})"
        out.append((400, f"{where}{problem.reason}{shown}"))
    return out


def _error_response(
    fmt: str, status: int, errors: list[tuple[int, str]], headers: dict[str, str] | None = None
) -> Response:
    body, media = formats.render(
        fmt if fmt in FORMATS else "json", "errors", formats.errors_entries(errors)
    )
    return Response(body, status_code=status, media_type=media, headers=headers)


def _answer(fmt: str, produce: Callable[[], tuple[str, Any]]) -> Response:
    """Run ``produce`` (returning the XML root and the document) and map errors to Open311's."""
    if fmt not in FORMATS:
        return _error_response(
            "json", 404, [(404, f"unknown format `{fmt[:20]}`; use .json or .xml")]
        )
    try:
        root, value = produce()
    except OpenError as exc:
        return _error_response(fmt, exc.status, [(exc.status, exc.description)], exc.headers)
    except ValidationError as exc:
        return _error_response(fmt, 400, _problems_to_errors(exc))
    except NotFoundError as exc:
        return _error_response(fmt, 404, [(404, str(exc))])
    except PermissionDeniedError as exc:
        return _error_response(fmt, 403, [(403, str(exc))])
    except ConflictError as exc:
        return _error_response(fmt, 409, [(409, str(exc))])
    except QalaError as exc:
        return _error_response(fmt, 400, [(400, str(exc))])
    body, media = formats.render(fmt, root, value)
    return Response(body, media_type=media)


def pick_language(request: Request, locale: str | None, default: str) -> str:
    """``locale`` (kk, ru, en; a GeoReport v2.1 draft extension), else Accept-Language, else default."""
    if locale:
        code = locale.strip().lower()[:2]
        if code in LANGUAGES:
            return code
    header = request.headers.get("accept-language", "")
    for part in header.split(","):
        code = part.strip().lower()[:2]
        if code in LANGUAGES:
            return code
    return default


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


def parse_request_form(pairs: list[tuple[str, str]]) -> tuple[NewRequest, dict[str, str]]:
    """Open311 POST fields → a NewRequest (and the plain fields, for api_key and jurisdiction)."""
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
    )
    return new, plain


def _float(value: str | None, field: str) -> float | None:
    if value is None or value.strip() == "":
        return None
    try:
        return float(value)
    except ValueError:
        raise OpenError(400, f"{field}: expected a decimal number (got {value[:40]!r})") from None


class _KeyCache:
    """Resolved api_key hashes for a minute, so trusted clients don't cost a query per post."""

    def __init__(self, ttl: float = 60.0) -> None:
        self.ttl = ttl
        self._known: dict[str, tuple[int, float]] = {}

    def get(self, key: str) -> int | None:
        found = self._known.get(hashlib.sha256(key.encode()).hexdigest())
        if found and time.monotonic() - found[1] < self.ttl:
            return found[0]
        return None

    def put(self, key: str, client_id: int) -> None:
        if len(self._known) > 10_000:
            self._known.clear()
        self._known[hashlib.sha256(key.encode()).hexdigest()] = (client_id, time.monotonic())


def build_open311_router(context: Context) -> APIRouter:
    """The GeoReport v2 endpoints, bound to ``context``."""
    router = APIRouter(prefix=PREFIX, tags=["open311"])
    catalogue = CatalogueCache(context.database.session, ttl=5.0)
    context.extras["requests311.catalogue_cache"] = catalogue
    # (this process's count, every process's count) for anonymous reporters by address, and for
    # trusted applications by api_key, which post for many residents and get a higher limit.
    anonymous_limits = (
        RateLimiter(context.settings.rate_limit_per_minute),
        SharedRateLimit(context.settings.rate_limit_per_minute),
    )
    trusted_limits = (
        RateLimiter(context.settings.trusted_rate_limit_per_minute),
        SharedRateLimit(context.settings.trusted_rate_limit_per_minute),
    )
    keys = _KeyCache()
    default_language = context.settings.default_language
    # Public reads are single SELECTs: run them outside a transaction (no BEGIN/ROLLBACK round
    # trips) on Core connections from the same pool.
    reader = context.database.engine.execution_options(isolation_level="AUTOCOMMIT")
    # Database work runs on a few threads of our own rather than anyio's default forty: under
    # load, forty threads fighting for the GIL make latency worse, not throughput better.
    executor = ThreadPoolExecutor(max_workers=DATABASE_THREADS, thread_name_prefix="open311")

    async def in_pool(function: Callable[..., Response], *args: Any) -> Response:
        return await asyncio.get_running_loop().run_in_executor(executor, function, *args)

    async def from_catalogue(fmt: str, produce: Callable[[], tuple[str, Any]]) -> Response:
        """Answer documents built from the catalogue alone on the event loop while the cached
        catalogue is fresh (a thread hop costs more than the work); refreshing it reads the
        store, so that goes to the pool."""
        if catalogue.fresh:
            return _answer(fmt, produce)
        return await in_pool(_answer, fmt, produce)

    max_body = min(MAX_BODY_BYTES, context.settings.max_upload_bytes)

    def jurisdiction(code: str | None) -> JurisdictionInfo:
        return catalogue.jurisdiction(code)

    @router.get(
        "/discovery.{format}", summary="Open311 service discovery", responses=_error_responses(404)
    )
    async def discovery(request: Request, format: Format) -> Response:
        def produce() -> tuple[str, Any]:
            known = catalogue.get()
            contacts = (
                "; ".join(j.contact for j in known.values() if j.contact)
                or "Qala city administration"
            )
            key_service = "; ".join(j.key_service for j in known.values() if j.key_service) or None
            base = context.settings.public_base_url.rstrip("/") + PREFIX
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
            }

        return await from_catalogue(format, produce)

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
        def produce() -> tuple[str, Any]:
            city = jurisdiction(jurisdiction_id)
            language = pick_language(request, locale, default_language)
            return "services", [
                formats.service_entry(s, language) for s in city.services.values() if s.active
            ]

        return await from_catalogue(format, produce)

    @router.get(
        "/services/{service_code}.{format}",
        summary="A service's definition (its form attributes)",
        responses=_error_responses(400, 404),
    )
    async def service_definition(
        request: Request,
        service_code: str,
        format: Format,
        jurisdiction_id: JurisdictionId = None,
        locale: Locale = None,
    ) -> Response:
        def produce() -> tuple[str, Any]:
            city = jurisdiction(jurisdiction_id)
            service = city.service(service_code)
            language = pick_language(request, locale, default_language)
            return "service_definition", formats.service_definition(service, language)

        return await from_catalogue(format, produce)

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
            str | None, Query(description="Comma-separated ids; overrides the other filters.")
        ] = None,
        service_code: Annotated[
            str | None, Query(description="Comma-separated service codes.")
        ] = None,
        start_date: Annotated[
            str | None, Query(description="Earliest requested_datetime (W3C).")
        ] = None,
        end_date: Annotated[
            str | None, Query(description="Latest requested_datetime (W3C).")
        ] = None,
        status: Annotated[str | None, Query(description="Comma-separated: open, closed.")] = None,
        page: Annotated[str | None, Query(description="Page number from 1 (extension).")] = None,
        page_size: Annotated[
            str | None,
            Query(description=f"Requests per page, at most {MAX_PAGE_SIZE} (extension)."),
        ] = None,
        locale: Locale = None,
    ) -> Response:
        def produce() -> tuple[str, Any]:
            city = jurisdiction(jurisdiction_id)
            ids_text = _split(service_request_id, field="service_request_id")
            bad = [i for i in ids_text if parse_request_id(i) is None]
            if bad:
                raise OpenError(
                    400, f"service_request_id: expected numeric ids (got {bad[0][:20]!r})"
                )
            statuses = _split(status, field="status", limit=10)
            allowed = ("open", "closed", "acknowledged", "in_progress")
            wrong = [s for s in statuses if s not in allowed]
            if wrong:
                raise OpenError(400, f"status: expected open or closed (got {wrong[0][:20]!r})")
            where = RequestFilter(
                service_request_ids=[int(i) for i in ids_text] or None,
                service_codes=_split(service_code, field="service_code") or None,
                start_date=_date(start_date, "start_date"),
                end_date=_date(end_date, "end_date"),
                statuses=statuses or None,
                page=_positive_int(page, "page", 1, 1_000_000),
                page_size=_positive_int(page_size, "page_size", MAX_PAGE_SIZE, MAX_PAGE_SIZE),
            )
            if where.start_date and where.end_date and where.start_date > where.end_date:
                raise OpenError(400, "start_date: must not be after end_date")
            language = pick_language(request, locale, default_language)
            with reader.connect() as session:
                found = find_requests(session, city, where, now=context.clock(), language=language)
            return "service_requests", [formats.request_entry(r) for r in found]

        return await in_pool(_answer, format, produce)

    @router.get(
        "/requests/{service_request_id}.{format}",
        summary="One service request (GET request)",
        responses=_error_responses(400, 404),
    )
    async def one_request(
        request: Request,
        service_request_id: str,
        format: Format,
        jurisdiction_id: JurisdictionId = None,
        locale: Locale = None,
    ) -> Response:
        def produce() -> tuple[str, Any]:
            city = jurisdiction(jurisdiction_id)
            wanted = parse_request_id(service_request_id)
            if wanted is None:
                raise NotFoundError(f"no service request {service_request_id[:40]!r}")
            language = pick_language(request, locale, default_language)
            with reader.connect() as session:
                found = get_public_request(session, city, wanted, language=language)
            return "service_requests", [formats.request_entry(found)]

        return await in_pool(_answer, format, produce)

    @router.get(
        "/tokens/{token}.{format}",
        summary="The request id behind a token (GET service_request_id from a token)",
        responses=_error_responses(400, 404),
    )
    async def token_lookup(
        request: Request, token: str, format: Format, jurisdiction_id: JurisdictionId = None
    ) -> Response:
        def produce() -> tuple[str, Any]:
            city = jurisdiction(jurisdiction_id)
            if len(token) > 40:
                raise NotFoundError("no service request has this token")
            with reader.connect() as session:
                request_id = request_id_for_token(session, city, token)
            return "service_requests", [{"service_request_id": str(request_id), "token": token}]

        return await in_pool(_answer, format, produce)

    @router.post(
        "/requests.{format}",
        summary="Report a problem (POST request), form-encoded",
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
                                "description": "attribute[CODE]=value",
                            },
                        }
                    }
                },
            }
        },
    )
    async def create_request(request: Request, format: Format) -> Response:
        fmt = format if format in FORMATS else "json"
        if format not in FORMATS:
            return _error_response(
                fmt, 404, [(404, f"unknown format `{format[:20]}`; use .json or .xml")]
            )
        declared = request.headers.get("content-length")
        if declared and (not declared.isdigit() or int(declared) > max_body):
            return _error_response(
                fmt, 413, [(413, f"the request body may be at most {max_body} bytes")]
            )
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > max_body:
                return _error_response(
                    fmt, 413, [(413, f"the request body may be at most {max_body} bytes")]
                )
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        try:
            if content_type in ("application/x-www-form-urlencoded", ""):
                try:
                    text = body.decode("utf-8")
                except UnicodeDecodeError:
                    raise OpenError(400, "the body must be UTF-8 text") from None
                pairs = urllib.parse.parse_qsl(text, keep_blank_values=True, max_num_fields=500)
            elif content_type == "multipart/form-data":
                form = await request.form(max_files=0, max_fields=500)
                pairs = [(k, v) for k, v in form.multi_items() if isinstance(v, str)]
            else:
                raise OpenError(
                    400, "send the request form-encoded (application/x-www-form-urlencoded)"
                )
            new, plain = parse_request_form(pairs)
        except OpenError as exc:
            return _error_response(fmt, exc.status, [(exc.status, exc.description)])
        except ValueError as exc:  # parse_qsl's field limit
            return _error_response(fmt, 400, [(400, f"unreadable form: {str(exc)[:100]}")])

        api_key = plain.get("api_key") or request.query_params.get("api_key")
        address_key = f"ip:{request.client.host if request.client else 'unknown'}"
        app_key = f"key:{hashlib.sha256(api_key.encode()).hexdigest()[:16]}" if api_key else None

        def too_many(wait: float) -> OpenError:
            seconds = RateLimiter.retry_after_seconds(wait)
            return OpenError(
                429,
                f"too many requests from this client; try again in {seconds} s",
                {"Retry-After": str(seconds)},
            )

        # This process's own count first: a flood is refused before it costs a transaction. Only
        # a key already known to be valid gets the trusted limit here; any other post counts
        # against its address, so made-up keys can't buy a flood the higher limit.
        if api_key and keys.get(api_key) is not None:
            wait = trusted_limits[0].hit(str(app_key))
        else:
            wait = anonymous_limits[0].hit(address_key)
        if wait:
            refused = too_many(wait)
            return _error_response(fmt, 429, [(429, refused.description)], refused.headers)

        def store() -> tuple[str, Any]:
            city = jurisdiction(
                plain.get("jurisdiction_id") or request.query_params.get("jurisdiction_id")
            )
            client_id: int | None = None
            if api_key:
                client_id = keys.get(api_key)
                if client_id is None:
                    with context.database.session() as session:
                        try:
                            client_id = resolve_api_key(session, api_key)
                        except PermissionDeniedError:
                            raise OpenError(403, "api_key is not valid") from None
                    keys.put(api_key, client_id)
            with context.database.transaction() as session:
                # Every process's count, in the store: raising rolls the count back too.
                if client_id is not None:
                    wait = trusted_limits[1].hit(session, str(app_key))
                else:
                    wait = anonymous_limits[1].hit(session, address_key)
                if wait:
                    raise too_many(wait)
                submitted = submit_request(
                    session,
                    city,
                    new,
                    now=context.clock(),
                    api_client_id=client_id,
                    bus=context.bus,
                )
            return "service_requests", [
                {
                    "service_request_id": submitted.service_request_id,
                    "token": submitted.token,
                    "service_notice": submitted.service_notice,
                    "account_id": None,
                }
            ]

        return await in_pool(_answer, fmt, store)

    return router
