"""NGSI-LD context sources (ETSI GS CIM 009 clauses 5.2.9, 5.9–5.11): registrations of other
systems that hold context data, their discovery by query, subscriptions to them, and the
distributed query that forwards entity reads to the registered sources and merges the answers.

A registration says which entities (types, ids, id patterns) and attributes a source at
``endpoint`` provides. ``GET /entities`` and ``GET /entities/{id}`` ask every matching source
(whose ``operations`` allow the read) with ``local=true``, so
that two brokers registered with each other do not bounce a query back and forth, and merge what
they answer into the local result. A source that fails is named in an ``NGSILD-Warning`` header;
the answer still holds what the others gave.

Subscriptions to registrations are notified (``triggerReason`` newlyMatching, updated,
noLongerMatching) after the commit of each change, by a background sender.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import uuid
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast
from urllib.parse import urlencode

import httpx
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from qala.components.operate.models import CSourceRegistration, CSourceSubscription
from qala.components.operate.ngsi import (
    GEOJSON_TYPES,
    GeoQuery,
    NgsiError,
    QNode,
    QTerm,
    check_attribute_name,
    check_entity_id,
    check_geometry,
    compile_pattern,
    geo_matches,
    names_of,
    parse_geo_query,
    parse_q,
    q_matches,
)
from qala.components.operate.subscriptions import (
    ngsi_datetime,
    render_subscription,
    status_of,
    validate_subscription,
)
from qala.core.clock import utc_now
from qala.runtime import Context

log = logging.getLogger(__name__)

REGISTRATION_TYPE = "ContextSourceRegistration"
MODES = ("inclusive", "exclusive", "redirect", "auxiliary")
OPERATIONS = frozenset(
    {
        "createEntity",
        "updateEntity",
        "appendAttrs",
        "updateAttrs",
        "deleteAttrs",
        "deleteEntity",
        "createBatch",
        "upsertBatch",
        "updateBatch",
        "deleteBatch",
        "upsertTemporal",
        "appendAttrsTemporal",
        "deleteAttrsTemporal",
        "updateAttrsTemporal",
        "deleteAttrInstanceTemporal",
        "deleteTemporal",
        "mergeEntity",
        "replaceEntity",
        "replaceAttrs",
        "mergeBatch",
        "retrieveEntity",
        "queryEntity",
        "queryBatch",
        "retrieveTemporal",
        "queryTemporal",
        "retrieveEntityTypes",
        "retrieveEntityTypeDetails",
        "retrieveEntityTypeInfo",
        "retrieveAttrTypes",
        "retrieveAttrTypeDetails",
        "retrieveAttrTypeInfo",
        "createSubscription",
        "updateSubscription",
        "retrieveSubscription",
        "querySubscription",
        "deleteSubscription",
        "queryEntityMap",
        "createEntityMap",
        "updateEntityMap",
        "deleteEntityMap",
        "retrieveEntityMap",
        # operation groups (clause 6.3.19)
        "federationOps",
        "updateOps",
        "retrieveOps",
        "redirectionOps",
    }
)
# Which operation groups include the reads this broker forwards.
READ_GROUPS = {
    "queryEntity": {"queryEntity", "federationOps", "retrieveOps", "redirectionOps"},
    "retrieveEntity": {"retrieveEntity", "federationOps", "retrieveOps", "redirectionOps"},
    "queryBatch": {"queryBatch", "federationOps", "retrieveOps", "redirectionOps"},
}
RESERVED_MEMBERS = frozenset({"createdAt", "modifiedAt"})
NAME_MEMBERS = ("propertyNames", "relationshipNames", "properties", "relationships")
"""RegistrationInfo's attribute names (``properties``/``relationships`` in NGSI-LD 1.0–1.2)."""
FORWARD_TIMEOUT_S = 5.0
MAX_PARALLEL_SOURCES = 8
"""Sources asked at the same time by one distributed read."""


# ---------------------------------------------------------------------------------------------
# Validation


def _instant(value: Any, where: str) -> datetime:
    if not isinstance(value, str):
        raise NgsiError("BadRequestData", f"`{where}` must be an ISO 8601 date-time text")
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise NgsiError("BadRequestData", f"`{where}` {value!r} is not a date-time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _interval(data: Mapping[str, Any], key: str) -> None:
    value = data.get(key)
    if value is None:
        return
    if not isinstance(value, Mapping) or "startAt" not in value:
        raise NgsiError("BadRequestData", f"`{key}` must be an object with `startAt` [`endAt`]")
    start = _instant(value["startAt"], f"{key}.startAt")
    if value.get("endAt") is not None and _instant(value["endAt"], f"{key}.endAt") < start:
        raise NgsiError("BadRequestData", f"`{key}` ends before it starts")


def _check_names(info: Mapping[str, Any], key: str) -> None:
    names = info.get(key)
    if names is None:
        return
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise NgsiError("BadRequestData", f"`information.{key}` must be a non-empty name array")
    for name in names:
        check_attribute_name(name)


def _check_information(information: Any) -> None:
    if not isinstance(information, list) or not information:
        raise NgsiError(
            "BadRequestData",
            "a registration needs `information`: a non-empty RegistrationInfo array",
        )
    for info in information:
        if not isinstance(info, Mapping):
            raise NgsiError("BadRequestData", "each `information` item must be an object")
        unknown = set(info) - {"entities", *NAME_MEMBERS}
        if unknown:
            raise NgsiError(
                "BadRequestData", f"RegistrationInfo members {sorted(unknown)} are not defined"
            )
        if not info:
            raise NgsiError(
                "BadRequestData",
                "a RegistrationInfo needs entities, propertyNames or relationshipNames",
            )
        entities = info.get("entities")
        if entities is not None:
            if not isinstance(entities, list) or not entities:
                raise NgsiError(
                    "BadRequestData", "`information.entities` must be a non-empty array"
                )
            for selector in entities:
                _check_entity_info(selector)
        for key in NAME_MEMBERS:
            _check_names(info, key)


def _check_entity_info(selector: Any) -> None:
    if not isinstance(selector, Mapping):
        raise NgsiError("BadRequestData", "each EntityInfo must be an object")
    entity_type = selector.get("type")
    types = entity_type if isinstance(entity_type, list) else [entity_type]
    if not types or not all(isinstance(t, str) and t for t in types):
        raise NgsiError("BadRequestData", "each EntityInfo needs a `type`")
    if selector.get("id") is not None:
        check_entity_id(selector["id"])
    if selector.get("idPattern") is not None:
        if not isinstance(selector["idPattern"], str):
            raise NgsiError("BadRequestData", "`idPattern` must be a text")
        compile_pattern(selector["idPattern"], what="idPattern")


def _check_management(management: Any) -> None:
    if management is None:
        return
    if not isinstance(management, Mapping):
        raise NgsiError("BadRequestData", "`management` must be an object")
    if "localOnly" in management and not isinstance(management["localOnly"], bool):
        raise NgsiError("BadRequestData", "`management.localOnly` must be true or false")
    for key in ("cacheDuration", "timeout", "cooldown"):
        value = management.get(key)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int | float) or value <= 0
        ):
            raise NgsiError("BadRequestData", f"`management.{key}` must be a positive number")


def validate_registration(body: Any, *, now: datetime | None = None) -> dict[str, Any]:
    """Check a CSourceRegistration (clause 5.2.9) and return it with an id (``@context`` out)."""
    if not isinstance(body, Mapping):
        raise NgsiError("BadRequestData", "a context source registration must be a JSON object")
    data = {k: v for k, v in body.items() if k != "@context"}
    if data.get("type") != REGISTRATION_TYPE:
        raise NgsiError("BadRequestData", f"registration `type` must be {REGISTRATION_TYPE}")
    if "id" in data:
        data["id"] = check_entity_id(data["id"])
    else:
        data["id"] = f"urn:ngsi-ld:ContextSourceRegistration:{uuid.uuid4()}"
    _check_information(data.get("information"))
    endpoint = data.get("endpoint")
    if not isinstance(endpoint, str) or not endpoint.startswith(("http://", "https://")):
        raise NgsiError("BadRequestData", "`endpoint` must be an http(s) URI")
    for key in ("expiresAt", "expires"):
        if data.get(key) is not None and _instant(data[key], key) <= (now or utc_now()):
            raise NgsiError("BadRequestData", f"`{key}` must lie in the future")
    _interval(data, "observationInterval")
    _interval(data, "managementInterval")
    for key in ("location", "observationSpace", "operationSpace"):
        if data.get(key) is not None:
            geometry = data[key]
            if not isinstance(geometry, Mapping) or geometry.get("type") not in GEOJSON_TYPES:
                raise NgsiError("BadRequestData", f"`{key}` must be a GeoJSON geometry")
            check_geometry(key, geometry)
    mode = data.get("mode", "inclusive")
    if mode not in MODES:
        raise NgsiError("BadRequestData", f"`mode` {mode!r} is not one of {', '.join(MODES)}")
    operations = data.get("operations")
    if operations is not None and (
        not isinstance(operations, list)
        or not operations
        or not all(isinstance(o, str) and o in OPERATIONS for o in operations)
    ):
        raise NgsiError("BadRequestData", "`operations` must be an array of NGSI-LD operations")
    _check_management(data.get("management"))
    info = data.get("contextSourceInfo")
    if info is not None and not (
        isinstance(info, list)
        and all(isinstance(i, Mapping) and {"key", "value"} <= set(i) for i in info)
    ):
        raise NgsiError("BadRequestData", "`contextSourceInfo` must be an array of {key, value}")
    for key in ("registrationName", "description", "tenant"):
        if data.get(key) is not None and not isinstance(data[key], str):
            raise NgsiError("BadRequestData", f"`{key}` must be a text")
    for key in RESERVED_MEMBERS & set(data):
        data.pop(key)
    return data


# ---------------------------------------------------------------------------------------------
# Store


def _tenant(tenant: str | None) -> str | None:
    return (tenant or "").strip().lower() or None


def create_registration(
    session: Session, body: Any, *, context: Any = None, tenant: str | None = None
) -> CSourceRegistration:
    data = validate_registration(body)
    written_context = body.get("@context", context) if isinstance(body, Mapping) else context
    names_of(written_context)  # a context that cannot be retrieved: 503 (clause 6.3.5)
    if session.get(CSourceRegistration, data["id"]) is not None:
        raise NgsiError("AlreadyExists", f"registration {data['id']} already exists")
    now = utc_now()
    record = CSourceRegistration(
        id=data["id"],
        body=data,
        context=written_context,
        endpoint=data["endpoint"],
        mode=data.get("mode", "inclusive"),
        tenant=_tenant(tenant),
        created_at=now,
        modified_at=now,
    )
    session.add(record)
    session.flush()
    return record


def get_registration(
    session: Session, registration_id: str, *, tenant: str | None = None
) -> CSourceRegistration:
    record = session.get(CSourceRegistration, registration_id)
    if record is None or record.tenant != _tenant(tenant):
        raise NgsiError("ResourceNotFound", f"registration {registration_id} does not exist")
    return record


def update_registration(
    session: Session, registration_id: str, patch: Any, *, tenant: str | None = None
) -> tuple[CSourceRegistration, dict[str, Any]]:
    """Merge ``patch`` into the registration (clause 5.9.3); returns it and its former body."""
    record = get_registration(session, registration_id, tenant=tenant)
    if not isinstance(patch, Mapping):
        raise NgsiError("BadRequestData", "the update must be a JSON object")
    members = {k: v for k, v in patch.items() if k != "@context"}
    if not members:
        raise NgsiError("BadRequestData", "the update holds no member")
    if members.get("id") not in (None, registration_id):
        raise NgsiError("BadRequestData", f"the update's id is not {registration_id}")
    before = dict(record.body)
    data = dict(before)
    for key, value in members.items():
        if key == "id":
            continue
        if value is None:  # merge-patch: null removes the member (mandatory ones then refused)
            data.pop(key, None)
        else:
            data[key] = value
    data = validate_registration(data)
    record.body = data
    record.endpoint = data["endpoint"]
    record.mode = data.get("mode", "inclusive")
    record.modified_at = utc_now()
    return record, before


def delete_registration(
    session: Session, registration_id: str, *, tenant: str | None = None
) -> dict[str, Any]:
    record = get_registration(session, registration_id, tenant=tenant)
    body = dict(record.body)
    session.delete(record)
    return body


def render_registration(record: CSourceRegistration, *, system: bool = False) -> dict[str, Any]:
    data = dict(record.body)
    if system:
        data["createdAt"] = ngsi_datetime(record.created_at)
        data["modifiedAt"] = ngsi_datetime(record.modified_at)
    return data


# ---------------------------------------------------------------------------------------------
# Discovery


@dataclass(frozen=True)
class TimeQuery:
    relation: str
    start: datetime
    end: datetime | None
    property: str = "observedAt"


@dataclass(frozen=True)
class CSourceQuery:
    """What a discovery asks (clause 5.10.2); every part given must match."""

    ids: tuple[str, ...] = ()
    types: tuple[str, ...] = ()
    id_pattern: str | None = None
    attrs: tuple[str, ...] = ()
    q: QNode | QTerm | None = None
    csf: QNode | QTerm | None = None
    geo: GeoQuery | None = None
    time: TimeQuery | None = None

    @property
    def empty(self) -> bool:
        return not (
            self.ids or self.types or self.id_pattern or self.attrs or self.q or self.csf
        ) and (self.geo is None and self.time is None)


def parse_time_query(
    timerel: str | None, time_at: str | None, end_time_at: str | None, timeproperty: str | None
) -> TimeQuery | None:
    if timerel is None and time_at is None:
        return None
    if timerel not in ("before", "after", "between") or time_at is None:
        raise NgsiError(
            "BadRequestData", "a temporal query needs timerel (before|after|between) and timeAt"
        )
    end = _instant(end_time_at, "endTimeAt") if end_time_at else None
    if timerel == "between" and end is None:
        raise NgsiError("BadRequestData", "timerel=between needs endTimeAt")
    prop = timeproperty or "observedAt"
    if prop not in ("observedAt", "createdAt", "modifiedAt"):
        raise NgsiError("BadRequestData", f"timeproperty {prop!r} is not defined")
    return TimeQuery(timerel, _instant(time_at, "timeAt"), end, prop)


def _type_names(selector: Mapping[str, Any]) -> list[str]:
    entity_type = selector.get("type")
    names = entity_type if isinstance(entity_type, list) else [entity_type]
    return [str(name) for name in names if name]


def _entity_matches(selector: Mapping[str, Any], query: CSourceQuery) -> bool:
    """Whether an EntityInfo may provide entities the query asks for (a registered id must
    match the asked pattern; two patterns are taken to overlap)."""
    if query.types and not set(_type_names(selector)) & set(query.types):
        return False
    if query.id_pattern and selector.get("id"):
        return bool(compile_pattern(query.id_pattern, what="idPattern").fullmatch(selector["id"]))
    return True


def _info_matches(info: Mapping[str, Any], query: CSourceQuery) -> bool:
    entities = info.get("entities")
    if (
        entities
        and (query.types or query.id_pattern)
        and not any(_entity_matches(selector, query) for selector in entities)
    ):
        return False
    if query.attrs:
        names = {name for key in NAME_MEMBERS for name in info.get(key) or []}
        if names and not names & set(query.attrs):
            return False
    return True


def _as_attributes(data: Mapping[str, Any]) -> dict[str, Any]:
    """The registration's members as attributes, for ``q``/``csf`` and geo-queries."""
    attrs: dict[str, Any] = {}
    for key, value in data.items():
        if key in ("location", "observationSpace", "operationSpace"):
            attrs[key] = {"type": "GeoProperty", "value": value}
        else:
            attrs[key] = {"type": "Property", "value": value}
    return attrs


def _time_matches(data: Mapping[str, Any], query: TimeQuery) -> bool:
    key = "observationInterval" if query.property == "observedAt" else "managementInterval"
    interval = data.get(key)
    if not isinstance(interval, Mapping):
        return False
    start = _instant(interval["startAt"], f"{key}.startAt")
    end = _instant(interval["endAt"], f"{key}.endAt") if interval.get("endAt") else None
    if query.relation == "before":
        return start < query.start
    if query.relation == "after":
        return end is None or end > query.start
    assert query.end is not None
    return start < query.end and (end is None or end > query.start)


def registration_matches(data: Mapping[str, Any], query: CSourceQuery) -> bool:
    if query.ids:
        wanted = set(query.ids)
        own = data.get("id") in wanted
        named = any(
            selector.get("id") in wanted
            for info in data.get("information") or []
            for selector in info.get("entities") or []
        )
        if not own and not named:
            return False
    information = data.get("information") or []
    if (query.types or query.id_pattern or query.attrs) and not any(
        _info_matches(info, query) for info in information
    ):
        return False
    attrs = _as_attributes(data)
    for tree in (query.q, query.csf):
        if tree is not None and not q_matches(tree, attrs):
            return False
    if query.geo is not None and not geo_matches(query.geo, attrs):
        return False
    return query.time is None or _time_matches(data, query.time)


def _live(record: CSourceRegistration, now: datetime) -> bool:
    expires = record.body.get("expiresAt") or record.body.get("expires")
    return expires is None or _instant(expires, "expiresAt") > now


def query_registrations(
    session: Session, query: CSourceQuery, *, tenant: str | None = None
) -> list[CSourceRegistration]:
    """The registrations of the tenant that match, oldest first (expired ones left out)."""
    statement = (
        select(CSourceRegistration)
        .where(
            CSourceRegistration.tenant.is_(None)
            if _tenant(tenant) is None
            else CSourceRegistration.tenant == _tenant(tenant)
        )
        .order_by(CSourceRegistration.created_at, CSourceRegistration.id)
    )
    now = utc_now()
    return [
        record
        for record in session.scalars(statement)
        if _live(record, now) and registration_matches(record.body, query)
    ]


def count_registrations(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(CSourceRegistration)) or 0)


def _query_language(text: str | None, name: str) -> QNode | QTerm | None:
    """``q`` or ``csf`` parsed; a syntax error is the request's data (400 BadRequestData)."""
    if not text:
        return None
    try:
        return parse_q(text)
    except NgsiError as exc:
        raise NgsiError("BadRequestData", f"`{name}`: {exc.detail}") from None


def parse_discovery(
    *,
    ids: Sequence[str],
    types: Sequence[str],
    id_pattern: str | None,
    attrs: Sequence[str],
    q: str | None,
    csf: str | None,
    geo: tuple[str | None, str | None, str | None, str | None],
    time: tuple[str | None, str | None, str | None, str | None],
) -> CSourceQuery:
    for entity_id in ids:
        check_entity_id(entity_id)
    if id_pattern:
        compile_pattern(id_pattern, what="idPattern")
    query = CSourceQuery(
        ids=tuple(ids),
        types=tuple(types),
        id_pattern=id_pattern or None,
        attrs=tuple(attrs),
        q=_query_language(q, "q"),
        csf=_query_language(csf, "csf"),
        geo=parse_geo_query(*geo),
        time=parse_time_query(*time),
    )
    return query


# ---------------------------------------------------------------------------------------------
# Subscriptions to registrations


def create_subscription(
    session: Session, body: Any, *, tenant: str | None = None
) -> CSourceSubscription:
    data = validate_subscription(body)
    if session.get(CSourceSubscription, data["id"]) is not None:
        raise NgsiError("AlreadyExists", f"subscription {data['id']} already exists")
    record = CSourceSubscription(
        id=data["id"],
        body=data,
        endpoint=data["notification"]["endpoint"]["uri"],
        active=data.get("isActive", True),
        tenant=_tenant(tenant),
        times_sent=0,
        created_at=utc_now(),
    )
    session.add(record)
    session.flush()
    return record


def get_subscription(
    session: Session, subscription_id: str, *, tenant: str | None = None
) -> CSourceSubscription:
    record = session.get(CSourceSubscription, subscription_id)
    if record is None or record.tenant != _tenant(tenant):
        raise NgsiError("ResourceNotFound", f"subscription {subscription_id} does not exist")
    return record


def list_subscriptions(
    session: Session, *, limit: int, offset: int, tenant: str | None = None
) -> tuple[list[CSourceSubscription], int]:
    where = (
        CSourceSubscription.tenant.is_(None)
        if _tenant(tenant) is None
        else CSourceSubscription.tenant == _tenant(tenant)
    )
    statement = select(CSourceSubscription).where(where)
    statement = statement.order_by(CSourceSubscription.created_at, CSourceSubscription.id)
    rows = list(session.scalars(statement.limit(limit).offset(offset)))
    total = session.scalar(select(func.count()).select_from(CSourceSubscription).where(where))
    return rows, int(total or 0)


def update_subscription(
    session: Session, subscription_id: str, patch: Any, *, tenant: str | None = None
) -> CSourceSubscription:
    record = get_subscription(session, subscription_id, tenant=tenant)
    if not isinstance(patch, Mapping):
        raise NgsiError("BadRequestData", "the update must be a JSON object")
    members = {k: v for k, v in patch.items() if k != "@context"}
    if not members:
        raise NgsiError("BadRequestData", "the update holds no member")
    if members.get("id") not in (None, subscription_id):
        raise NgsiError("BadRequestData", f"the update's id is not {subscription_id}")
    if "type" in members and members["type"] != "Subscription":
        raise NgsiError("BadRequestData", "subscription `type` must be Subscription")
    data = dict(record.body)
    for key, value in members.items():
        if key == "id":
            continue
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    data = validate_subscription(data)
    record.body = data
    record.endpoint = data["notification"]["endpoint"]["uri"]
    record.active = data.get("isActive", True)
    return record


def delete_subscription(
    session: Session, subscription_id: str, *, tenant: str | None = None
) -> None:
    session.delete(get_subscription(session, subscription_id, tenant=tenant))


def render_csource_subscription(record: CSourceSubscription) -> dict[str, Any]:
    return render_subscription(cast(Any, record), entity_triggers=False)


def relevant_information(
    subscription: Mapping[str, Any], data: Mapping[str, Any]
) -> list[dict[str, Any]] | None:
    """The RegistrationInfo items of ``data`` the subscription concerns (None: no match)."""
    selectors = subscription.get("entities") or [None]
    watched = tuple(subscription.get("watchedAttributes") or ())
    chosen: list[dict[str, Any]] = []
    for info in data.get("information") or []:
        for selector in selectors:
            query = CSourceQuery(attrs=watched)
            entity_id = None
            if selector is not None:
                query = CSourceQuery(
                    types=tuple(_type_names(selector)),
                    id_pattern=selector.get("idPattern"),
                    attrs=watched,
                )
                entity_id = selector.get("id")
            if not _info_matches(info, query):
                continue
            if (
                entity_id
                and info.get("entities")
                and not any(
                    e.get("id") in (None, entity_id)
                    and (
                        not e.get("idPattern")
                        or compile_pattern(e["idPattern"], what="idPattern").fullmatch(entity_id)
                    )
                    for e in info["entities"]
                )
            ):
                continue
            chosen.append(dict(info))
            break
    if not chosen:
        return None
    attrs = _as_attributes(data)
    if subscription.get("q") and not q_matches(parse_q(str(subscription["q"])), attrs):
        return None
    if subscription.get("csf") and not q_matches(parse_q(str(subscription["csf"])), attrs):
        return None
    geo_q = subscription.get("geoQ")
    if isinstance(geo_q, Mapping):
        coordinates = geo_q.get("coordinates")
        geo = parse_geo_query(
            geo_q.get("georel"),
            geo_q.get("geometry"),
            coordinates if isinstance(coordinates, str) else json.dumps(coordinates),
            geo_q.get("geoproperty"),
        )
        if geo is not None and not geo_matches(geo, attrs):
            return None
    temporal = subscription.get("temporalQ")
    if isinstance(temporal, Mapping):
        time = parse_time_query(
            temporal.get("timerel"),
            temporal.get("timeAt"),
            temporal.get("endTimeAt"),
            temporal.get("timeproperty"),
        )
        if time is not None and not _time_matches(data, time):
            return None
    return chosen


@dataclass
class Change:
    """One registration before and after a committed change (None: absent)."""

    tenant: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None


@dataclass
class _Delivery:
    subscription_id: str
    reason: str
    data: list[dict[str, Any]] = field(default_factory=list)


def notification_body(subscription: Mapping[str, Any], delivery: _Delivery) -> dict[str, Any]:
    return {
        "id": f"urn:ngsi-ld:Notification:{uuid.uuid4()}",
        "type": "ContextSourceNotification",
        "subscriptionId": subscription["id"],
        "notifiedAt": ngsi_datetime(utc_now()),
        "triggerReason": delivery.reason,
        "data": delivery.data,
    }


class CSourceNotifier:
    """Sends csource notifications in order from a daemon thread."""

    def __init__(self, context: Context, *, timeout_s: float = 5.0) -> None:
        self.context = context
        self._queue: queue.Queue[_Delivery] = queue.Queue()
        self._client = httpx.Client(timeout=timeout_s)
        self._thread = threading.Thread(target=self._run, name="qala-csource-notifier", daemon=True)
        self._thread.start()

    def submit(self, deliveries: Iterable[_Delivery]) -> None:
        for delivery in deliveries:
            self._queue.put(delivery)

    def drain(self) -> None:
        self._queue.join()

    def _run(self) -> None:
        while True:
            delivery = self._queue.get()
            try:
                self._send(delivery)
            except Exception:  # one broken endpoint must not stop the others
                log.exception("csource notification failed")
            finally:
                self._queue.task_done()

    def _send(self, delivery: _Delivery) -> None:
        with self.context.database.session() as session:
            record = session.get(CSourceSubscription, delivery.subscription_id)
            if record is None or status_of(cast(Any, record)) != "active":
                return
            subscription = dict(record.body)
        body = notification_body(subscription, delivery)
        endpoint = subscription["notification"]["endpoint"]
        headers = {"Content-Type": endpoint.get("accept", "application/json")}
        for item in endpoint.get("receiverInfo") or []:
            headers[str(item["key"])] = str(item["value"])
        try:
            response = self._client.post(
                endpoint["uri"], content=json.dumps(body, ensure_ascii=False), headers=headers
            )
            ok = response.status_code < 400
        except httpx.HTTPError:
            ok = False
        stamp = utc_now()
        with self.context.database.transaction() as session:
            stored = session.get(CSourceSubscription, delivery.subscription_id)
            if stored is None:
                return
            stored.times_sent = (stored.times_sent or 0) + 1
            stored.last_notification = stamp
            if ok:
                stored.last_success = stamp
            else:
                stored.last_failure = stamp


NOTIFIER_KEY = "operate.csource_notifier"


def notifier_for(context: Context) -> CSourceNotifier:
    notifier = context.extras.get(NOTIFIER_KEY)
    if notifier is None:
        notifier = context.extras[NOTIFIER_KEY] = CSourceNotifier(context)
    return cast(CSourceNotifier, notifier)


def _reason(before: list[Any] | None, after: list[Any] | None) -> str | None:
    if after is not None:
        return "updated" if before is not None else "newlyMatching"
    return "noLongerMatching" if before is not None else None


def notify_changes(context: Context, changes: Sequence[Change]) -> None:
    """After a commit: queue the notifications the registration changes cause."""
    if not changes:
        return
    with context.database.session() as session:
        subscriptions = list(session.scalars(select(CSourceSubscription)))
        live = [(s.id, s.tenant, dict(s.body)) for s in subscriptions if s.active]
    deliveries = []
    for subscription_id, tenant, body in live:
        for change in changes:
            if change.tenant != tenant:
                continue
            before = relevant_information(body, change.before) if change.before else None
            after = relevant_information(body, change.after) if change.after else None
            reason = _reason(before, after)
            if reason is None:
                continue
            shown = change.after if change.after is not None else change.before
            assert shown is not None
            data = {**shown, "information": after if after is not None else before}
            deliveries.append(_Delivery(subscription_id, reason, [data]))
    if deliveries:
        notifier_for(context).submit(deliveries)


def notify_subscription(context: Context, subscription_id: str) -> None:
    """After a subscription was created or updated: one notification with every registration
    it matches now (``newlyMatching``), if any."""
    with context.database.session() as session:
        record = session.get(CSourceSubscription, subscription_id)
        if record is None or not record.active:
            return
        body, tenant = dict(record.body), record.tenant
        registrations = query_registrations(session, CSourceQuery(), tenant=tenant)
        data = []
        for registration in registrations:
            chosen = relevant_information(body, registration.body)
            if chosen is not None:
                data.append({**registration.body, "information": chosen})
    if data:
        notifier_for(context).submit([_Delivery(subscription_id, "newlyMatching", data)])


# ---------------------------------------------------------------------------------------------
# Distributed operations


@dataclass(frozen=True)
class Source:
    """A registered source a read is forwarded to."""

    registration_id: str
    endpoint: str
    timeout_s: float
    headers: tuple[tuple[str, str], ...] = ()


def _allows(data: Mapping[str, Any], operation: str) -> bool:
    operations = data.get("operations")
    if operations is None:
        return True  # no operations given: every operation (clause 5.2.9)
    return bool(set(operations) & READ_GROUPS[operation])


def sources_for(
    session: Session,
    *,
    operation: str,
    types: Sequence[str] = (),
    entity_id: str | None = None,
    attrs: Sequence[str] = (),
    tenant: str | None = None,
) -> list[Source]:
    """The registrations a read should be forwarded to: every mode provides reads (``mode``
    only decides where updates go, and Qala forwards no updates); ``operations`` must allow
    the read and ``management.localOnly`` must not keep the source out."""
    query = CSourceQuery(types=tuple(types), attrs=tuple(attrs))
    found = []
    for record in query_registrations(session, query, tenant=tenant):
        data = record.body
        if not _allows(data, operation):
            continue
        if (data.get("management") or {}).get("localOnly"):
            continue
        if entity_id is not None and not _names_entity(data, entity_id):
            continue
        timeout_ms = (data.get("management") or {}).get("timeout")
        headers = tuple(
            (str(i["key"]), str(i["value"])) for i in data.get("contextSourceInfo") or []
        )
        if data.get("tenant"):  # the tenant the source is asked under (clause 5.2.9)
            headers += (("NGSILD-Tenant", str(data["tenant"])),)
        found.append(
            Source(
                record.id,
                record.endpoint.rstrip("/"),
                float(timeout_ms) / 1000 if timeout_ms else FORWARD_TIMEOUT_S,
                headers,
            )
        )
    return found


def _names_entity(data: Mapping[str, Any], entity_id: str) -> bool:
    for info in data.get("information") or []:
        entities = info.get("entities")
        if not entities:
            return True
        for selector in entities:
            if selector.get("id") == entity_id:
                return True
            pattern = selector.get("idPattern")
            if pattern and compile_pattern(pattern, what="idPattern").fullmatch(entity_id):
                return True
            if not selector.get("id") and not pattern:
                return True
    return False


@dataclass
class Forwarded:
    """What the sources answered: entities by id, and a warning per failed source."""

    entities: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    total: int = 0


def _warning(source: Source, reason: str) -> str:
    text = reason.replace('"', "'")[:200]
    return f'199 {source.registration_id} "{text}"'


def _ask(
    source: Source,
    method: str,
    path: str,
    query: Sequence[tuple[str, str]],
    headers: Mapping[str, str],
    body: Any,
) -> httpx.Response | str:
    """One source's answer, or why there is none."""
    url = f"{source.endpoint}/ngsi-ld/v1{path}?{urlencode(list(query))}"
    sent = httpx.Headers(dict(headers))
    for key, value in source.headers:
        sent[key] = value  # replaces the caller's header of that name, whatever its case
    try:
        return httpx.request(
            method,
            url,
            headers=sent,
            content=None if body is None else json.dumps(body),
            timeout=source.timeout_s,
        )
    except httpx.HTTPError as exc:
        return f"not reachable: {exc}"


def forward(
    sources: Sequence[Source],
    path: str,
    params: Sequence[tuple[str, str]],
    headers: Mapping[str, str],
    *,
    method: str = "GET",
    body: Any = None,
) -> Forwarded:
    """``path`` (under ``/ngsi-ld/v1``) asked of every source at once, with ``local=true``;
    the entities in the order of the sources."""
    result = Forwarded()
    query = [(k, v) for k, v in params if k != "local"] + [("local", "true")]
    workers = max(1, min(MAX_PARALLEL_SOURCES, len(sources)))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="qala-csource") as pool:
        answers = list(pool.map(lambda s: _ask(s, method, path, query, headers, body), sources))
    for source, answer in zip(sources, answers, strict=True):
        if isinstance(answer, str):
            result.warnings.append(_warning(source, answer))
            continue
        if answer.status_code == 404 and not path.endswith("/entities"):
            continue
        if answer.status_code >= 400:
            result.warnings.append(_warning(source, f"answered {answer.status_code}"))
            continue
        try:
            decoded = answer.json()
        except ValueError:
            result.warnings.append(_warning(source, "answered a body that is not JSON"))
            continue
        items = decoded if isinstance(decoded, list) else [decoded]
        for item in items:
            if isinstance(item, dict) and isinstance(item.get("id"), str):
                item.pop("@context", None)
                result.entities.append(item)
        counted = answer.headers.get("NGSILD-Results-Count")
        result.total += int(counted) if counted and counted.isdigit() else len(items)
    return result


def merge_entities(
    local: Sequence[dict[str, Any]], remote: Sequence[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Local entities first, each completed with the attributes a source adds; entities only a
    source holds after them, in the order received (an attribute the broker holds wins)."""
    merged: dict[str, dict[str, Any]] = {e["id"]: dict(e) for e in local if "id" in e}
    for entity in remote:
        mine = merged.get(entity["id"])
        if mine is None:
            merged[entity["id"]] = dict(entity)
            continue
        for key, value in entity.items():
            mine.setdefault(key, value)
    return list(merged.values())


def federated_query(
    context: Context,
    content: list[dict[str, Any]],
    total: int,
    *,
    params: Sequence[tuple[str, str]],
    headers: Mapping[str, str],
    types: Sequence[str],
    attrs: Sequence[str],
    limit: int,
    tenant: str | None = None,
    body: Any = None,
) -> tuple[list[dict[str, Any]], int, list[str]]:
    """``GET /entities`` (or, with the Query ``body``, ``POST /entityOperations/query``)
    completed with what the registered sources hold."""
    operation = "queryEntity" if body is None else "queryBatch"
    with context.database.session() as session:
        sources = sources_for(session, operation=operation, types=types, attrs=attrs, tenant=tenant)
    if not sources:
        return content, total, []
    if body is None:
        answer = forward(sources, "/entities", params, headers)
    else:
        remote_body = {**body, "local": True} if isinstance(body, Mapping) else body
        answer = forward(
            sources,
            "/entityOperations/query",
            params,
            {**headers, "Content-Type": "application/json"},
            method="POST",
            body=remote_body,
        )
    merged = merge_entities(content, answer.entities)
    added = len(merged) - len(content)
    return merged[:limit], total + added, answer.warnings


def federated_read(
    context: Context,
    entity_id: str,
    local: dict[str, Any] | None,
    *,
    params: Sequence[tuple[str, str]],
    headers: Mapping[str, str],
    tenant: str | None = None,
) -> tuple[dict[str, Any] | None, list[str]]:
    """``GET /entities/{id}`` completed with what the registered sources hold (None: nowhere)."""
    with context.database.session() as session:
        sources = sources_for(
            session, operation="retrieveEntity", entity_id=entity_id, tenant=tenant
        )
    if not sources:
        return local, []
    answer = forward(sources, f"/entities/{entity_id}", params, headers)
    merged = merge_entities([local] if local else [], answer.entities)
    return (merged[0] if merged else None), answer.warnings


# ---------------------------------------------------------------------------------------------
# Units of work for the routes (each write one transaction, notifications after the commit)


def register(context: Context, body: Any, link: Any, tenant: str | None) -> str:
    with context.database.transaction() as session:
        record = create_registration(session, body, context=link, tenant=tenant)
        registration_id, change = record.id, Change(record.tenant, None, dict(record.body))
    notify_changes(context, [change])
    return registration_id


def discover(
    context: Context,
    query: CSourceQuery,
    *,
    limit: int,
    offset: int,
    tenant: str | None,
    system: bool = False,
) -> tuple[list[dict[str, Any]], int]:
    """One page of the matching registrations and how many match (clause 5.10.2: a query
    names at least a type, an attribute, an id, a pattern, q, csf, a geo or temporal query)."""
    if query.empty:
        raise NgsiError(
            "BadRequestData",
            "a registration query needs type, attrs, id, idPattern, q, csf, "
            "a geo-query or a temporal query",
        )
    with context.database.session() as session:
        found = query_registrations(session, query, tenant=tenant)
        page = found[offset : offset + limit]
        return [render_registration(r, system=system) for r in page], len(found)


def registration(
    context: Context, registration_id: str, *, tenant: str | None, system: bool = False
) -> tuple[dict[str, Any], Any]:
    """The registration and the @context URL it was made with (None if none or not a URL)."""
    with context.database.session() as session:
        record = get_registration(session, registration_id, tenant=tenant)
        stored = record.context
        if isinstance(stored, list) and len(stored) == 1:
            stored = stored[0]
        return render_registration(record, system=system), stored if isinstance(
            stored, str
        ) else None


def update(context: Context, registration_id: str, patch: Any, tenant: str | None) -> None:
    with context.database.transaction() as session:
        record, before = update_registration(session, registration_id, patch, tenant=tenant)
        change = Change(record.tenant, before, dict(record.body))
    notify_changes(context, [change])


def unregister(context: Context, registration_id: str, tenant: str | None) -> None:
    with context.database.transaction() as session:
        before = delete_registration(session, registration_id, tenant=tenant)
    notify_changes(context, [Change(_tenant(tenant), before, None)])


def subscribe(context: Context, body: Any, tenant: str | None) -> str:
    with context.database.transaction() as session:
        subscription_id = create_subscription(session, body, tenant=tenant).id
    notify_subscription(context, subscription_id)
    return subscription_id


def subscriptions(
    context: Context, *, limit: int, offset: int, tenant: str | None
) -> tuple[list[dict[str, Any]], int]:
    with context.database.session() as session:
        rows, total = list_subscriptions(session, limit=limit, offset=offset, tenant=tenant)
        return [render_csource_subscription(r) for r in rows], total


def subscription(context: Context, subscription_id: str, tenant: str | None) -> dict[str, Any]:
    with context.database.session() as session:
        record = get_subscription(session, subscription_id, tenant=tenant)
        return render_csource_subscription(record)


def change_subscription(
    context: Context, subscription_id: str, patch: Any, tenant: str | None
) -> None:
    with context.database.transaction() as session:
        update_subscription(session, subscription_id, patch, tenant=tenant)
    notify_subscription(context, subscription_id)


def unsubscribe(context: Context, subscription_id: str, tenant: str | None) -> None:
    with context.database.transaction() as session:
        delete_subscription(session, subscription_id, tenant=tenant)
