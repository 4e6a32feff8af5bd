"""What the requests component does, under one name for its older importers (the web pages, the
CLI): this module re-exports the public names of the modules that hold them.

- :mod:`.jurisdictions` — the catalogue in the store and in memory (loading, cache, routing);
- :mod:`.intake` — checking and storing new requests, api keys, rate limits;
- :mod:`.lifecycle` — staff transitions, notes, assignment, merging, bulk;
- :mod:`.queries` — public reads, following a request, the staff queue, counts;
- :mod:`.sla` — deadlines and escalation;
- :mod:`.views` — the public and staff views of a request;
- :mod:`.after_commit` — events published once the transaction has committed.

Every function takes a SQLAlchemy ``Session`` (the caller owns the transaction) and returns plain
dataclasses. Reporters' personal data only ever appears in :class:`StaffRequest`.
"""

from __future__ import annotations

from qala.components.requests311.access import scoped_requests, staff_jurisdiction
from qala.components.requests311.after_commit import publish_after_commit
from qala.components.requests311.intake import (
    MAX_ADDRESS,
    MAX_DESCRIPTION,
    MAX_URL,
    OUTSIDE_CODE,
    NewRequest,
    Submitted,
    check_new_request,
    create_api_client,
    resolve_api_key,
    submit_request,
)
from qala.components.requests311.jurisdictions import (
    CatalogueCache,
    DepartmentInfo,
    JurisdictionInfo,
    ServiceInfo,
    catalogue_cache,
    load_catalogue,
    load_jurisdictions,
    pick_jurisdiction,
)
from qala.components.requests311.lifecycle import CLOSE_REASONS, MAX_NOTE, Requests
from qala.components.requests311.national import (
    city_catalogue,
    load_city_catalogues,
    national_catalogues,
)
from qala.components.requests311.photos import PhotoView, photos_of, set_photo_hidden
from qala.components.requests311.queries import (
    DEFAULT_WINDOW,
    MAX_PAGE_SIZE,
    FollowedRequest,
    PublicUpdate,
    RequestFilter,
    count_requests,
    find_requests,
    follow_request,
    get_public_request,
    jurisdiction_of_token,
    latest_change,
    newest_request_city,
    request_id_for_token,
    search_text,
)
from qala.components.requests311.sla import ESCALATION_LEVELS, escalate_overdue
from qala.components.requests311.views import (
    MAX_ID,
    OPEN_STATUSES,
    AuditView,
    NoteView,
    PublicRequest,
    StaffRequest,
    as_utc,
    parse_request_id,
)
from qala.engines.geo.area import haversine_km

__all__ = [
    "CLOSE_REASONS",
    "DEFAULT_WINDOW",
    "ESCALATION_LEVELS",
    "MAX_ADDRESS",
    "MAX_DESCRIPTION",
    "MAX_ID",
    "MAX_NOTE",
    "MAX_PAGE_SIZE",
    "MAX_URL",
    "OPEN_STATUSES",
    "OUTSIDE_CODE",
    "AuditView",
    "CatalogueCache",
    "DepartmentInfo",
    "FollowedRequest",
    "JurisdictionInfo",
    "NewRequest",
    "NoteView",
    "PhotoView",
    "PublicRequest",
    "PublicUpdate",
    "RequestFilter",
    "Requests",
    "ServiceInfo",
    "StaffRequest",
    "Submitted",
    "as_utc",
    "catalogue_cache",
    "check_new_request",
    "city_catalogue",
    "count_requests",
    "create_api_client",
    "escalate_overdue",
    "find_requests",
    "follow_request",
    "get_public_request",
    "haversine_km",
    "jurisdiction_of_token",
    "latest_change",
    "load_catalogue",
    "load_city_catalogues",
    "load_jurisdictions",
    "national_catalogues",
    "newest_request_city",
    "parse_request_id",
    "photos_of",
    "pick_jurisdiction",
    "publish_after_commit",
    "request_id_for_token",
    "resolve_api_key",
    "scoped_requests",
    "search_text",
    "set_photo_hidden",
    "staff_jurisdiction",
    "submit_request",
]
