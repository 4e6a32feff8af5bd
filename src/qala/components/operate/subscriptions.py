"""NGSI-LD subscriptions: stored in the store, matched against changed entities after each commit,
and delivered as HTTP POST notifications, or MQTT messages to an ``mqtt(s)://`` endpoint
(:mod:`~qala.components.operate.notify_mqtt`), by a background sender (so ingestion never waits on
a slow endpoint). The changes to notify wait in the store's notification outbox (:mod:`.outbox`),
written with each change, so none is lost when a process stops; a failed delivery is tried again
with a growing pause. Delivery is at least once; outcomes are recorded on the subscription.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote

import httpx
from sqlalchemy import func, select, true, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from qala.components.operate import changes as change_views, jsonld, outbox
from qala.components.operate.changes import EntityChange
from qala.components.operate.linked import Lookup, join_entities, parse_join
from qala.components.operate.models import Entity, NotificationOutbox, Subscription
from qala.components.operate.ngsi import (
    CORE_CONTEXT,
    LD_CONTEXT_REL,
    MEMBERS,
    NgsiError,
    Projection,
    canonical_q,
    check_attribute_name,
    check_entity_id,
    compile_pattern,
    geo_matches,
    instances_of,
    names_of,
    parse_geo_query,
    parse_q,
    parse_type_selection,
    place_code_of,
    q_matches,
    render_entity,
    types_of,
)
from qala.components.operate.notify_mqtt import (
    MqttEndpoint,
    is_mqtt,
    mqtt_endpoint,
    mqtt_message,
    publish,
)
from qala.components.operate.tenancy import tenant_city
from qala.core.clock import utc_now
from qala.runtime import Context

log = logging.getLogger(__name__)
NOTIFIER_KEY = "operate.notifier"


NOTIFICATION_FORMATS = frozenset({"keyValues", "simplified", "normalized", "concise"})
NOTIFICATION_TRIGGERS = frozenset(
    {
        "entityCreated",
        "entityUpdated",
        "entityDeleted",
        "attributeCreated",
        "attributeUpdated",
        "attributeDeleted",
    }
)
DEFAULT_TRIGGERS = ("attributeCreated", "attributeUpdated")
"""What a subscription without ``notificationTrigger`` is notified of (clause 5.2.12); an
entity's creation creates its attributes, so it is among them."""


def _instant(data: Mapping[str, Any], key: str) -> datetime | None:
    raw = data.get(key)
    if raw is None:
        return None
    try:
        moment = datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
    except ValueError:
        raise NgsiError("BadRequestData", f"`{key}` {raw!r} is not an ISO 8601 date-time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def expiry(data: Mapping[str, Any]) -> datetime | None:
    """When the subscription ends: ``expiresAt`` (``expires`` in NGSI-LD 1.0–1.2)."""
    return _instant(data, "expiresAt") or _instant(data, "expires")


def _names(data: Mapping[str, Any], key: str, where: str = "") -> list[str] | None:
    names = data.get(key)
    if names is None:
        return None
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise NgsiError("BadRequestData", f"`{where}{key}` must be a non-empty array of names")
    for name in names:
        check_attribute_name(name)
    return names


def _check_notification(notification: Any) -> None:
    if not isinstance(notification, Mapping):
        raise NgsiError("BadRequestData", "a subscription needs `notification` with an `endpoint`")
    endpoint = notification.get("endpoint")
    uri = endpoint.get("uri") if isinstance(endpoint, Mapping) else None
    if isinstance(uri, str) and isinstance(endpoint, Mapping) and is_mqtt(uri):
        mqtt_endpoint(endpoint)  # broker, topic and notifierInfo (clause 7.2)
    elif not isinstance(uri, str) or not uri.startswith(("http://", "https://")):
        raise NgsiError(
            "BadRequestData", "`notification.endpoint.uri` must be an http(s) or mqtt(s) URI"
        )
    receivers = endpoint.get("receiverInfo") if isinstance(endpoint, Mapping) else None
    if receivers is not None and not (
        isinstance(receivers, list)
        and all(isinstance(r, Mapping) and {"key", "value"} <= set(r) for r in receivers)
    ):
        raise NgsiError("BadRequestData", "`receiverInfo` must be an array of {key, value}")
    attributes = _names(notification, "attributes", "notification.")
    if notification.get("format", "normalized") not in NOTIFICATION_FORMATS:
        raise NgsiError(
            "BadRequestData", f"notification format {notification.get('format')!r} unknown"
        )
    pick, omit = notification.get("pick"), notification.get("omit")
    if attributes and (pick or omit):
        raise NgsiError("BadRequestData", "`attributes` excludes `pick` and `omit`")
    if isinstance(pick, list) and isinstance(omit, list) and set(pick) & set(omit):
        raise NgsiError("BadRequestData", "a member is both picked and omitted")
    parse_join(notification.get("join"), notification.get("joinLevel"))


def validate_subscription(body: Any, *, now: datetime | None = None) -> dict[str, Any]:
    """Check a subscription body (clause 5.2.12) and return it with an id."""
    if not isinstance(body, Mapping):
        raise NgsiError("BadRequestData", "a subscription must be a JSON object")
    data = dict(body)
    if data.get("type", "Subscription") != "Subscription":
        raise NgsiError("BadRequestData", "subscription `type` must be Subscription")
    data["type"] = "Subscription"
    names_of(data.get("@context"))  # 503 when the subscription's @context is not available
    ld_context = data.get("jsonldContext")
    if ld_context is not None:
        if not isinstance(ld_context, str) or not re.match(
            r"^[A-Za-z][A-Za-z0-9+.-]*:", ld_context
        ):
            raise NgsiError(
                "BadRequestData", "`jsonldContext` must be the URI of a JSON-LD context"
            )
        names_of(ld_context)
    if "id" in data:
        data["id"] = check_entity_id(data["id"])
    else:
        data["id"] = f"urn:ngsi-ld:Subscription:{uuid.uuid4()}"
    entities = data.get("entities")
    if entities is not None and (not isinstance(entities, list) or not entities):
        raise NgsiError("BadRequestData", "`entities` must be a non-empty array of selectors")
    watched = _names(data, "watchedAttributes")
    if not entities and not watched:
        raise NgsiError("BadRequestData", "a subscription needs `entities` or `watchedAttributes`")
    for selector in entities or []:
        if not isinstance(selector, Mapping) or not isinstance(selector.get("type"), str):
            raise NgsiError("BadRequestData", "each `entities` item needs a `type`")
        if selector.get("id") is not None:
            check_entity_id(selector["id"])
        if selector.get("idPattern"):
            compile_pattern(str(selector["idPattern"]), what="idPattern")
    _check_notification(data.get("notification"))
    if data.get("q"):
        parse_q(subscription_q(data))
    for selector in entities or []:
        parse_type_selection(str(selector["type"]))
    geo_q = data.get("geoQ")
    if geo_q is not None:
        if not isinstance(geo_q, Mapping):
            raise NgsiError("BadRequestData", "`geoQ` must be an object")
        coordinates = geo_q.get("coordinates")
        parse_geo_query(
            geo_q.get("georel"),
            geo_q.get("geometry"),
            coordinates if isinstance(coordinates, str) else json.dumps(coordinates),
            geo_q.get("geoproperty"),
        )
    datasets = data.get("datasetId")
    if datasets is not None and (
        not isinstance(datasets, list)
        or not datasets
        or not all(isinstance(d, str) and (d == "@none" or ":" in d) for d in datasets)
    ):
        raise NgsiError("BadRequestData", "`datasetId` must be a non-empty array of URIs")
    if "isActive" in data and not isinstance(data["isActive"], bool):
        raise NgsiError("BadRequestData", "`isActive` must be true or false")
    expires = expiry(data)
    if expires is not None and expires <= (now or utc_now()):
        raise NgsiError("BadRequestData", "`expiresAt` must lie in the future")
    for key in ("throttling", "timeInterval"):
        value = data.get(key)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int | float) or value <= 0
        ):
            raise NgsiError("BadRequestData", f"`{key}` must be a positive number of seconds")
    triggers = data.get("notificationTrigger")
    if triggers is not None and (
        not isinstance(triggers, list)
        or not triggers
        or not all(isinstance(t, str) and t in NOTIFICATION_TRIGGERS for t in triggers)
    ):
        raise NgsiError(
            "BadRequestData",
            "`notificationTrigger` must be a non-empty array of "
            + ", ".join(sorted(NOTIFICATION_TRIGGERS)),
        )
    if data.get("timeInterval") is not None and (watched or data.get("throttling")):
        raise NgsiError(
            "BadRequestData", "`timeInterval` excludes `watchedAttributes` and `throttling`"
        )
    return data


def create_subscription(session: Session, body: Any, tenant: str | None = None) -> Subscription:
    """Store a subscription made under ``tenant`` (None: none, it watches every city)."""
    data = validate_subscription(body)
    if session.get(Subscription, data["id"]) is not None:
        raise NgsiError("AlreadyExists", f"subscription {data['id']} already exists")
    record = Subscription(
        id=data["id"],
        body=data,
        endpoint=data["notification"]["endpoint"]["uri"],
        active=data.get("isActive", True),
        created_at=utc_now(),
        tenant=tenant,
    )
    record.periodic_due_at = first_due(data, record.created_at)
    session.add(record)
    session.flush()
    return record


def get_subscription(
    session: Session, subscription_id: str, tenant: str | None = None
) -> Subscription:
    """The subscription ``subscription_id``; under a tenant, one made under another tenant (or
    under none) is as absent as one never made."""
    record = session.get(Subscription, subscription_id)
    if record is None or (tenant is not None and record.tenant != tenant):
        raise NgsiError("ResourceNotFound", f"subscription {subscription_id} does not exist")
    return record


def _of_tenant(tenant: str | None) -> Any:
    """The condition selecting the subscriptions seen under ``tenant`` (all when None)."""
    return Subscription.tenant == tenant if tenant is not None else true()


def list_subscriptions(
    session: Session, *, limit: int, offset: int, tenant: str | None = None
) -> list[Subscription]:
    """One page of the subscriptions seen under ``tenant``, oldest first."""
    statement = select(Subscription).where(_of_tenant(tenant)).order_by(Subscription.created_at)
    return list(session.scalars(statement.limit(limit).offset(offset)))


def count_subscriptions(session: Session, tenant: str | None = None) -> int:
    statement = select(func.count()).select_from(Subscription).where(_of_tenant(tenant))
    return int(session.scalar(statement) or 0)


def delete_subscription(session: Session, subscription_id: str, tenant: str | None = None) -> None:
    session.delete(get_subscription(session, subscription_id, tenant))


def update_subscription(
    session: Session, subscription_id: str, patch: Any, tenant: str | None = None
) -> Subscription:
    record = get_subscription(session, subscription_id, tenant)
    if not isinstance(patch, Mapping):
        raise NgsiError("BadRequestData", "the update must be a JSON object")
    if not patch or set(patch) <= {"@context"}:
        raise NgsiError("BadRequestData", "the update holds no member")
    if patch.get("id") not in (None, subscription_id):
        raise NgsiError("BadRequestData", f"the update's id is not {subscription_id}")
    data = dict(record.body)
    for key, value in patch.items():
        if key in ("id", "@context"):
            continue
        if value is None:  # merge-patch: null removes the member
            data.pop(key, None)
        else:
            data[key] = value
    data = validate_subscription(data)
    if data.get("timeInterval") != record.body.get("timeInterval"):
        record.periodic_due_at = first_due(data, utc_now())
    record.body = data
    record.endpoint = data["notification"]["endpoint"]["uri"]
    record.active = data.get("isActive", True)
    return record


def ngsi_datetime(moment: datetime) -> str:
    """NGSI-LD DateTime text (UTC, milliseconds, ``Z``); a naive time (SQLite) is UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def render_subscription(record: Subscription, *, entity_triggers: bool = True) -> dict[str, Any]:
    """The subscription as given, with what delivery recorded (clause 5.2.14): ``timesSent``,
    ``lastNotification``/``lastSuccess``/``lastFailure`` and ``status`` once anything was sent,
    and (``entity_triggers``: an entity subscription) its ``notificationTrigger`` default. A
    context-source subscription has no triggers of that kind (clause 5.2.12 is about entities
    and attributes)."""
    data = {k: v for k, v in record.body.items() if k != "@context"}
    notification = dict(data.get("notification", {}))
    if record.times_sent:
        notification["timesSent"] = record.times_sent
    for key, moment in (
        ("lastNotification", record.last_notification),
        ("lastSuccess", record.last_success),
        ("lastFailure", record.last_failure),
    ):
        if moment is not None:
            notification[key] = ngsi_datetime(moment)
    if record.last_notification is not None:
        failed = record.last_failure is not None and (
            record.last_success is None or record.last_failure >= record.last_success
        )
        notification["status"] = "failed" if failed else "ok"
    data["notification"] = notification
    data["status"] = status_of(record)
    if entity_triggers:
        data.setdefault("notificationTrigger", list(DEFAULT_TRIGGERS))
    return data


def subscription_context(subscription: Mapping[str, Any]) -> Any:
    """The @context notifications are compacted with: ``jsonldContext``, else the one the
    subscription came with, else the core context."""
    context = subscription.get("jsonldContext") or subscription.get("@context") or CORE_CONTEXT
    if isinstance(context, list) and len(context) == 1:
        context = context[0]
    return context


def status_of(record: Subscription, now: datetime | None = None) -> str:
    """``active``, ``paused`` (isActive false) or ``expired`` (past its ``expiresAt``)."""
    if not record.active:
        return "paused"
    expires = expiry(record.body)
    if expires is not None and expires <= (now or utc_now()):
        return "expired"
    return "active"


def subscription_q(subscription: Mapping[str, Any]) -> str:
    """The subscription's ``q``, percent-escapes decoded: clients copy it from a URL, where
    the query language is percent-encoded (``name=="Eiffel%20Tower"``)."""
    text = str(subscription["q"])
    return unquote(text) if re.search(r"%[0-9A-Fa-f]{2}", text) else text


def matches(
    subscription: Mapping[str, Any], entity: Entity, changed: Sequence[str] | None = None
) -> bool:
    """Whether a change of ``entity`` concerns the subscription (selectors, watched attributes
    among the ``changed`` ones when known, q, geoQ)."""
    names = names_of(subscription.get("@context"))
    selectors = subscription.get("entities") or []
    if selectors:
        ok = False
        types = types_of(entity.type, entity.attrs)
        for selector in selectors:
            # A type selection (clause 4.17): ``(Building|Tower)``, ``Building;Museum``…
            groups = parse_type_selection(str(selector.get("type")))
            if not any(all(names.canonical(t) in types for t in group) for group in groups):
                continue
            if selector.get("id") and selector["id"] != entity.id:
                continue
            pattern = selector.get("idPattern")
            if pattern and not compile_pattern(pattern, what="idPattern").fullmatch(entity.id):
                continue
            ok = True
            break
        if not ok:
            return False
    watched = subscription.get("watchedAttributes")
    if watched:
        stored = set(names.canonical_list(watched))
        changes = changed if changed is not None else list(entity.attrs)
        if not any(name in stored for name in changes):
            return False
    if subscription.get("q") and not q_matches(
        canonical_q(parse_q(subscription_q(subscription)), names), entity.attrs
    ):
        return False
    geo_q = subscription.get("geoQ")
    if isinstance(geo_q, Mapping):
        coordinates = geo_q.get("coordinates")
        query = parse_geo_query(
            geo_q.get("georel"),
            geo_q.get("geometry"),
            coordinates if isinstance(coordinates, str) else json.dumps(coordinates),
            names.canonical(geo_q["geoproperty"]) if geo_q.get("geoproperty") else None,
        )
        if query is not None and not geo_matches(query, entity.attrs):
            return False
    return True


def triggers_of(subscription: Mapping[str, Any]) -> frozenset[str]:
    return frozenset(subscription.get("notificationTrigger") or DEFAULT_TRIGGERS)


def watched_of(subscription: Mapping[str, Any]) -> frozenset[str] | None:
    """The watched attributes by their stored names (None: every attribute is watched)."""
    watched = subscription.get("watchedAttributes")
    if not watched:
        return None
    return frozenset(names_of(subscription.get("@context")).canonical_list(watched))


def triggered(subscription: Mapping[str, Any], change: EntityChange) -> bool:
    """Whether ``change`` is one the subscription's ``notificationTrigger`` asks to be told
    of (clause 5.2.12), on its watched attributes."""
    triggers = triggers_of(subscription)
    watched = watched_of(subscription)

    def seen(names: set[str]) -> bool:
        return bool(names if watched is None else names & watched)

    if change.deleted is not None:
        return "entityDeleted" in triggers or (
            "attributeDeleted" in triggers and seen(change.attributes_deleted)
        )
    if change.created:
        if "entityCreated" in triggers:
            return True
        created = "attributeCreated" in triggers
        return created and (watched is None or seen(change.attributes_created))
    if not change.known:  # readings: the attributes are not told, each may have changed
        return bool(triggers & {"entityUpdated", "attributeUpdated"})
    if "entityUpdated" in triggers and seen(
        change.attributes_created | change.attributes_updated | change.attributes_deleted
    ):
        return True
    return (
        ("attributeCreated" in triggers and seen(change.attributes_created))
        or ("attributeUpdated" in triggers and seen(change.attributes_updated))
        or ("attributeDeleted" in triggers and seen(change.attributes_deleted))
    )


def changed_attributes(
    subscription: Mapping[str, Any], entity: Entity, change: EntityChange | None
) -> dict[str, Any]:
    """The attributes a notification shows of ``entity``: as they are now, with those the
    change deleted as NGSI-LD Null instances (when the subscription is told of deletions or
    shows changes), and with ``showChanges`` what each updated one held before; a deleted
    entity shows only its deleted attributes, and those only then."""
    if change is None:
        return dict(entity.attrs)
    spec = subscription.get("notification", {})
    show_changes = bool(spec.get("showChanges"))
    triggers = triggers_of(subscription)
    watched = watched_of(subscription)
    system = bool(spec.get("sysAttrs"))
    attrs = {} if change.deleted is not None else dict(entity.attrs)
    told = show_changes or "attributeDeleted" in triggers
    if told and change.deleted_at is not None:
        deleted_at = ngsi_datetime(change.deleted_at) if system else None
        for name, gone in change.deleted_instances.items():
            if change.deleted is not None and watched is not None and name not in watched:
                continue
            kept = [] if change.deleted is not None else instances_of(attrs.get(name))
            if not kept:  # the whole attribute went: one Null (of its default instance) tells it
                first = next((i for i in gone if i.get("datasetId") is None), gone[0])
                gone = [{k: v for k, v in first.items() if k != "datasetId"}]
            markers = [
                change_views.deleted_instance(
                    instance, show_changes=show_changes, deleted_at=deleted_at
                )
                for instance in gone
            ]
            shown = [*kept, *markers]
            attrs[name] = shown[0] if len(shown) == 1 else shown
    if show_changes and change.deleted is None:
        for name in change.attributes_updated:
            if name in attrs and name in change.previous:
                attrs[name] = change_views.with_previous(attrs[name], change.previous[name])
    return attrs


def of_datasets(subscription: Mapping[str, Any], attrs: dict[str, Any]) -> dict[str, Any]:
    """Only the attribute instances of the subscription's ``datasetId`` list (``@none``: the
    default instance), when it has one (clause 5.2.12); attributes left with none drop out."""
    datasets = subscription.get("datasetId")
    if not datasets:
        return attrs
    wanted = set(datasets)
    shown: dict[str, Any] = {}
    for name, attribute in attrs.items():
        if name in MEMBERS:
            shown[name] = attribute
            continue
        kept = [i for i in instances_of(attribute) if i.get("datasetId", "@none") in wanted]
        if kept:
            shown[name] = kept[0] if len(kept) == 1 else kept
    return shown


def notification_for(
    subscription: Mapping[str, Any],
    entities: Sequence[Entity],
    lookup: Lookup | None = None,
    changes: Mapping[str, EntityChange] | None = None,
) -> dict[str, Any]:
    """The notification of ``entities`` to ``subscription``; with its ``notification.join``
    the entities they link to are found through ``lookup`` (clause 4.5.23); ``changes`` tells
    what happened to each (deletions, previous values)."""
    spec = subscription.get("notification", {})
    chosen = spec.get("format", "normalized")
    names = names_of(subscription.get("@context"))
    reader = names_of(subscription_context(subscription))
    attributes = names.canonical_list(spec.get("attributes") or ()) or None
    pick, omit = spec.get("pick"), spec.get("omit")

    def stored(members: list[str]) -> frozenset[str]:
        return frozenset(m if m in ("id", "type") else names.canonical(m) for m in members)

    projection = Projection(
        pick=stored(pick) if isinstance(pick, list) else None,
        omit=stored(omit) if isinstance(omit, list) else frozenset(),
    )
    key_values = chosen in ("keyValues", "simplified")

    def render(
        entity: Entity, shown: Projection, members: Sequence[str] | None = None
    ) -> dict[str, Any]:
        system = None
        change = (changes or {}).get(entity.id)
        if spec.get("sysAttrs"):
            system = {
                "createdAt": ngsi_datetime(entity.created_at),
                "modifiedAt": ngsi_datetime(entity.modified_at),
            }
        if change is not None and change.deleted is not None:
            system = {**(system or {}), "deletedAt": ngsi_datetime(change.deleted.deleted_at)}
        return jsonld.compact_entity(
            render_entity(
                entity.id,
                entity.type,
                of_datasets(subscription, changed_attributes(subscription, entity, change)),
                key_values=key_values,
                concise=chosen == "concise",
                pick=members,
                projection=shown,
                system=system,
            ),
            reader,
        )

    data = [render(entity, projection, attributes) for entity in entities]
    join = parse_join(spec.get("join"), spec.get("joinLevel"))
    if join is not None and lookup is not None:
        data = join_entities(
            list(zip(entities, data, strict=True)),
            join,
            projection,
            lookup=lookup,
            render=render,
            key_values=key_values,
        )
    return {
        "id": f"urn:ngsi-ld:Notification:{uuid.uuid4()}",
        "type": "Notification",
        "subscriptionId": subscription["id"],
        "notifiedAt": utc_now().isoformat().replace("+00:00", "Z"),
        "data": data,
    }


def delivery_headers(subscription: Mapping[str, Any], body: dict[str, Any]) -> dict[str, str]:
    """The notification's headers (``receiverInfo`` included) and its @context: in the body for
    ``accept: application/ld+json``, else as a Link header."""
    endpoint = subscription.get("notification", {}).get("endpoint", {})
    accept = endpoint.get("accept", "application/json")
    context = subscription_context(subscription)
    headers = {"Content-Type": accept}
    if accept == "application/ld+json":
        body["@context"] = context
        for item in body.get("data", []):
            item["@context"] = context
    elif isinstance(context, str):
        headers["Link"] = f'<{context}>; rel="{LD_CONTEXT_REL}"; type="application/ld+json"'
    for item in endpoint.get("receiverInfo") or []:
        headers[str(item["key"])] = str(item["value"])
    return headers


class Notifier:
    """Sends notifications from a daemon thread; ``drain()`` waits until nothing is due.

    What to notify is read from the notification outbox (:mod:`.outbox`), where each write
    staged its changes in its own transaction: a change committed is notified even when this
    process stops before sending it (the next one finds the rows), and a failed delivery is
    kept and tried again after a growing pause, ``MAX_ATTEMPTS`` times in all. Each round
    claims at most ``CHUNK`` rows; the changes of one entity among them are notified once, with
    its newest state and the values from before the first change. A write wakes the thread;
    otherwise it sleeps until the next retry is due, ``POLL_S`` at most (rows other processes
    left). Delivery is at least once.

    A round's HTTP notifications go to ``SENDERS`` endpoints at once, each endpoint's one after
    another; an endpoint that times out or cannot be reached is sent nothing more in the round.
    So an endpoint that does not answer costs the round one timeout, and the others are told
    meanwhile (the round's rows stay leased until its slowest endpoint is done).
    """

    CHUNK = 500  # outbox rows claimed, looked up and matched per round
    TICK_S = 1.0  # how often due periodic (``timeInterval``) subscriptions are looked for
    PERIODIC_BATCH = 100  # periodic subscriptions notified per tick, the soonest due first
    PERIODIC_ENTITIES = 1000  # entities one periodic notification carries at most
    RETRY_S = 30.0  # pause before the store is asked again after it failed
    POLL_S = 10.0  # longest sleep: rows left by a crashed or other process are found this soon
    MIN_PAUSE_S = 0.5  # shortest sleep between rounds not woken by a write
    # Claimed rows are this process's this long (longer when its round may take longer): rows
    # a crashed process had claimed are sent by another, or after its restart, once it ends.
    LEASE_S = 15.0
    MAX_ATTEMPTS = 8  # deliveries tried per notification before it is given up
    BACKOFF_S = 2.0  # pause after the first failed delivery, doubled after each next one
    BACKOFF_MAX_S = 600.0
    KEEP_FAILED = timedelta(days=7)  # notifications given up stay this long for operators
    SENDERS = 8  # HTTP endpoints notified at once in a round
    PURGE_EVERY_S = 60.0  # how often given-up notifications past KEEP_FAILED are deleted

    def __init__(self, context: Context, *, timeout_s: float = 5.0, connect_s: float = 2.0) -> None:
        """``timeout_s`` bounds each HTTP step and an MQTT delivery; ``connect_s`` (at most
        ``timeout_s``) bounds the TCP and TLS connect: a black-holed address is given up sooner,
        while a connect whose first SYN was lost (resent after 1 s) still succeeds."""
        self.context = context
        self.timeout_s = timeout_s
        self.connect_s = min(connect_s, timeout_s)
        self._next_purge = 0.0
        self.delivered = 0  # notifications this notifier delivered
        self._woken = True  # look at the outbox once on start: rows a crash left
        self._idle = False
        self._busy = False
        self._stopped = False
        self._periodic = False
        self._next_tick = 0.0
        self._wake_at = 0.0
        self._isolating = 0  # rounds of one row still to go after a round failed
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="qala-ngsi-notifier", daemon=True)
        self._client = httpx.Client(timeout=httpx.Timeout(timeout_s, connect=self.connect_s))
        self._thread.start()

    def wake(self) -> None:
        """Look at the outbox now (a write committed changes there)."""
        with self._changed:
            self._woken = True
            self._idle = False
            self._changed.notify_all()

    def drain(self, timeout_s: float = 10.0) -> None:
        """Block until a round found nothing due in the outbox (tests, orderly shutdown)."""
        self.wake()
        with self._changed:
            self._changed.wait_for(lambda: self._idle or self._stopped, timeout_s)

    def stop(self, timeout_s: float = 10.0) -> None:
        """End the thread after its current round (what is left stays in the outbox)."""
        with self._changed:
            self._stopped = True
            self._changed.notify_all()
        self._thread.join(timeout_s)

    def wake_periodic(self) -> None:
        """Look for due ``timeInterval`` subscriptions every tick from now on (until none is
        left in the store)."""
        with self._changed:
            self._periodic = True
            self._next_tick = 0.0
            self._changed.notify_all()

    def _sleep_s(self) -> float:
        now = time.monotonic()
        until = self._wake_at
        if self._periodic:
            until = min(until, self._next_tick)
        return max(0.0, until - now)

    def _run(self) -> None:
        while True:
            with self._changed:
                self._changed.wait_for(
                    lambda: self._woken or self._stopped or self._sleep_s() <= 0,
                    self._sleep_s(),
                )
                if self._stopped or getattr(self.context.database, "disposed", False):
                    self._stopped = True
                    self._changed.notify_all()
                    return
                outbox = self._woken or time.monotonic() >= self._wake_at
                self._woken = False
                tick = self._tick_due()
                self._busy = True
            more = False
            try:
                if outbox:
                    self._wake_at = time.monotonic() + self.RETRY_S  # unless the round ends well
                    more = self._outbox_round()
                if tick:
                    self._next_tick = time.monotonic() + self.RETRY_S
                    self._periodic = self._notify_periodic(utc_now())
                    self._next_tick = time.monotonic() + self.TICK_S
            except Exception:  # a broken endpoint or store must not stop the thread
                log.exception("NGSI-LD notification failed")
            finally:
                with self._changed:
                    self._busy = False
                    if more:
                        self._woken = True
                    elif outbox:
                        self._idle = not self._woken
                    self._changed.notify_all()

    def _outbox_round(self) -> bool:
        """A round of the outbox; after a round failed (not the store: a row), ``CHUNK`` rounds
        of one row each, so that a row that cannot be notified is put off on its own, as a
        failed delivery, and does not hold back the others. Returns whether to go on at once."""
        if not self._isolating:
            try:
                return self._notify_outbox(utc_now())
            except SQLAlchemyError:
                raise  # the store failed: the whole round is tried again later
            except Exception:
                log.exception("NGSI-LD notification round failed; trying its rows one by one")
                self._isolating = self.CHUNK
                return True
        try:
            more = self._notify_outbox(utc_now(), limit=1)
        except SQLAlchemyError:
            raise
        except Exception:
            log.exception("NGSI-LD notification of an outbox row failed; it is put off")
            self._put_off(utc_now())
            more = True
        self._isolating = self._isolating - 1 if more else 0
        return more

    def _put_off(self, now: datetime) -> None:
        """Try the first row due again later (or give it up), as a failed delivery."""
        with self.context.database.transaction() as session:
            for row in outbox.claim(session, now, limit=1, lease_s=self.LEASE_S):
                outbox.put_off(row, now=now, delay_s=self._backoff_s(row.attempts + 1))

    def _notify_outbox(self, now: datetime, limit: int | None = None) -> bool:
        """One round: claim due outbox rows (``CHUNK`` unless ``limit``), notify, record what
        became of each; returns whether as many rows as asked were claimed (more may be due).
        The claim is committed first, so the store is not held while endpoints answer; rows of
        a round that failed are given back at once (due again at ``now``)."""
        limit = limit or self.CHUNK
        with self.context.database.transaction() as session:
            rows = outbox.claim(session, now, limit=limit, lease_s=self.LEASE_S)
        if rows:
            try:
                self._notify_rows(rows, now)
            except BaseException:
                self._give_back(rows, now)
                raise
        with self.context.database.session() as session:
            due = outbox.next_due(session)
        pause = self.POLL_S
        if due is not None:
            due = due if due.tzinfo else due.replace(tzinfo=UTC)
            # Rows due already came meanwhile (a write wakes this thread anyway) or were given
            # back: looked at again after a short pause, not in a busy loop.
            pause = min(pause, max(self.MIN_PAUSE_S, (due - utc_now()).total_seconds()))
        self._wake_at = time.monotonic() + pause
        return len(rows) >= limit

    def _notify_rows(self, rows: Sequence[NotificationOutbox], now: datetime) -> None:
        """Send what the claimed rows call for, then delete them or keep failed notifications."""
        with self.context.database.session() as session:
            sends, dropped = self._sends(session, rows, now)
        self._hold(
            rows, max(Counter(record.endpoint for record, _b, _k in sends).values(), default=0)
        )
        outcomes = self._send([(record, body) for record, body, _row in sends])
        stamp = utc_now()
        with self.context.database.transaction() as session:
            done = [row.id for row in rows if row.entity_id is not None] + dropped
            for (record, body, kept), (_id, ok) in zip(sends, outcomes, strict=True):
                if ok:
                    self.delivered += 1
                    if kept is not None:
                        done.append(kept.id)
                    continue
                attempts = (kept.attempts if kept is not None else 0) + 1
                delay = self._backoff_s(attempts)
                outbox.retry_later(session, record.id, body, kept, now=stamp, delay_s=delay)
            outbox.remove(session, done)
            self._record_outcomes(session, sorted(outcomes), stamp)
            if time.monotonic() >= self._next_purge:
                # Housekeeping, not every round: each statement before this commit is time a
                # receiver may already read the subscription without its lastSuccess.
                self._next_purge = time.monotonic() + self.PURGE_EVERY_S
                outbox.purge_failed(session, stamp - self.KEEP_FAILED, limit=self.CHUNK)

    def _hold(self, rows: Sequence[NotificationOutbox], in_turn: int) -> None:
        """Lease the rows longer when the round's deliveries may outlast half of ``LEASE_S``:
        endpoints are told at once, each endpoint's ``in_turn`` notifications (the most any
        endpoint has) one after another, each waiting for its connection and its answer at
        most; so that no other process sends them again meanwhile."""
        needed_s = (self.connect_s + self.timeout_s) * in_turn
        if needed_s > self.LEASE_S / 2:
            until = utc_now() + timedelta(seconds=needed_s + self.LEASE_S)
            with self.context.database.transaction() as session:
                outbox.due_again(session, [row.id for row in rows], until)

    def _give_back(self, rows: Sequence[NotificationOutbox], now: datetime) -> None:
        """Make the rows of a failed round due again (if the store fails too, they are when
        their lease ends)."""
        try:
            with self.context.database.transaction() as session:
                outbox.due_again(session, [row.id for row in rows], now)
        except SQLAlchemyError:
            log.warning("NGSI-LD outbox rows not given back", exc_info=True)

    def _sends(
        self, session: Session, rows: Sequence[NotificationOutbox], now: datetime
    ) -> tuple[list[tuple[Subscription, dict[str, Any], NotificationOutbox | None]], list[int]]:
        """The notifications the claimed rows call for: those the changes among them make
        (a failed one is kept on its own row), and those kept to be tried again (with their
        row); and the ids of kept rows no longer to be sent (their subscription went away or
        paused meanwhile)."""
        changes = outbox.merged_changes(rows)
        sends: list[tuple[Subscription, dict[str, Any], NotificationOutbox | None]] = [
            (record, body, None)
            for record, body in (
                self._change_notifications(session, changes, now) if changes else []
            )
        ]
        dropped = []
        for row in rows:
            if row.entity_id is not None:
                continue  # removed once the round is done
            record = session.get(Subscription, row.subscription_id)
            if record is None or status_of(record, now) != "active" or not row.notification:
                dropped.append(row.id)
            else:
                sends.append((record, row.notification, row))
        return sends, dropped

    def _backoff_s(self, attempts: int) -> float | None:
        """The pause before the next delivery after ``attempts`` failed (None: give up)."""
        if attempts >= self.MAX_ATTEMPTS:
            return None
        return float(min(self.BACKOFF_S * 2 ** (attempts - 1), self.BACKOFF_MAX_S))

    def _tick_due(self) -> bool:
        return self._periodic and time.monotonic() >= self._next_tick

    def _notify_periodic(self, now: datetime) -> bool:
        """Notify the ``timeInterval`` subscriptions due (at most ``PERIODIC_BATCH``) of the
        entities they match; returns whether any periodic subscription is left."""
        due = claim_periodic(self.context, now, limit=self.PERIODIC_BATCH)
        bodies: list[tuple[Subscription, dict[str, Any]]] = []
        with self.context.database.session() as session:

            def lookup(entity_id: str, session: Session = session) -> Entity | None:
                return session.get(Entity, entity_id)

            for subscription_id in due:
                record = session.get(Subscription, subscription_id)
                if record is None or status_of(record, now) != "active":
                    continue
                entities = periodic_entities(
                    session,
                    record.body,
                    limit=self.PERIODIC_ENTITIES,
                    places=_places_of(session, record.tenant),
                )
                if entities:
                    bodies.append((record, notification_for(record.body, entities, lookup)))
            left = session.scalar(
                select(Subscription.id).where(Subscription.periodic_due_at.is_not(None)).limit(1)
            )
        self._deliver(bodies)
        return left is not None

    def _change_notifications(
        self, session: Session, changes: dict[str, EntityChange], now: datetime
    ) -> list[tuple[Subscription, dict[str, Any]]]:
        """The notifications the changes call for: per subscription they concern (active, not
        throttled, not periodic), one carrying the entities it matches."""
        subscriptions = [
            record
            for record in session.scalars(select(Subscription).where(Subscription.active.is_(True)))
            if status_of(record, now) == "active"
            and not _throttled(record, now)
            and not record.body.get("timeInterval")  # told periodically, not on change
        ]
        if not subscriptions:
            return []
        entities = _changed_entities(session, changes)
        bodies: list[tuple[Subscription, dict[str, Any]]] = []
        cities: dict[str | None, frozenset[str] | None] = {}  # each tenant's places, read once

        def lookup(entity_id: str, session: Session = session) -> Entity | None:
            return session.get(Entity, entity_id)  # linked entities (`notification.join`)

        for record in subscriptions:
            chosen = []
            if record.tenant not in cities:
                cities[record.tenant] = _places_of(session, record.tenant)
            places = cities[record.tenant]
            for entity in entities:
                if places is not None and entity.place_code not in places:
                    continue  # another city's entity: not this tenant's to be told of
                change = changes[entity.id]
                moment = change.deleted.deleted_at if change.deleted else entity.modified_at
                if _later(record.created_at, moment):
                    continue  # the change came before the subscription did
                if triggered(record.body, change) and matches(
                    record.body, entity, _names_changed(change)
                ):
                    chosen.append(entity)
            if chosen:
                body = notification_for(record.body, chosen, lookup, changes)
                bodies.append((record, body))
        return bodies

    def _deliver(self, bodies: Sequence[tuple[Subscription, dict[str, Any]]]) -> None:
        """Send each notification (HTTP or MQTT) and record the outcome on the subscription."""
        outcomes = self._send(bodies)
        if outcomes:
            with self.context.database.transaction() as session:
                self._record_outcomes(session, outcomes, utc_now())

    @staticmethod
    def _record_outcomes(
        session: Session, outcomes: Sequence[tuple[str, bool]], stamp: datetime
    ) -> None:
        """Count each delivery tried on its subscription (``timesSent``) and stamp its
        ``lastNotification`` and ``lastSuccess`` or ``lastFailure``."""
        for subscription_id, ok in outcomes:
            stored = session.get(Subscription, subscription_id)
            if stored is None:
                continue
            stored.times_sent += 1
            stored.last_notification = stamp
            if ok:
                stored.last_success = stamp
            else:
                stored.last_failure = stamp

    def _send(
        self, bodies: Sequence[tuple[Subscription, dict[str, Any]]]
    ) -> list[tuple[str, bool]]:
        """POST each notification to its HTTP endpoint, or publish it to its MQTT broker (one
        connection per broker); (subscription id, delivered) for each, in the order given.

        The HTTP endpoints are posted to from a pool of at most ``SENDERS`` threads, each
        endpoint's notifications in turn (:meth:`_post_in_turn`); the MQTT brokers are published
        to one after another meanwhile, from this thread."""
        outcomes: list[tuple[str, bool]] = [(record.id, False) for record, _body in bodies]
        posts: dict[str, list[tuple[int, bytes, dict[str, str]]]] = {}
        brokers: dict[tuple[Any, ...], list[tuple[int, MqttEndpoint, bytes]]] = {}
        for index, (record, body) in enumerate(bodies):
            headers = delivery_headers(record.body, body)
            if is_mqtt(record.endpoint):
                target = mqtt_endpoint(record.body["notification"]["endpoint"])
                brokers.setdefault(target.broker, []).append(
                    (index, target, mqtt_message(headers, body))
                )
            else:
                content = json.dumps(body, ensure_ascii=False).encode()
                posts.setdefault(record.endpoint, []).append((index, content, headers))
        senders = max(1, min(self.SENDERS, len(posts)))
        with ThreadPoolExecutor(senders, thread_name_prefix="qala-ngsi-post") as pool:
            posting = [pool.submit(self._post_in_turn, url, sends) for url, sends in posts.items()]
            for messages in brokers.values():
                payloads = [(target.topic, target.qos, payload) for _i, target, payload in messages]
                ok = publish(messages[0][1], payloads, self.timeout_s)
                for index, _target, _payload in messages:
                    outcomes[index] = (outcomes[index][0], ok)
            for posted in posting:  # an error other than HTTP's fails the round, as before
                for index, ok in posted.result():
                    outcomes[index] = (outcomes[index][0], ok)
        return outcomes

    def _post_in_turn(
        self, url: str, sends: Sequence[tuple[int, bytes, dict[str, str]]]
    ) -> list[tuple[int, bool]]:
        """POST one endpoint's notifications one after another (it is not flooded with
        connections); (index, delivered) for those sent. Once it timed out or could not be
        reached the rest are not sent: each would cost the timeout again, and they count as
        failed deliveries (kept and retried like one refused)."""
        outcomes = []
        for index, content, headers in sends:
            try:
                response = self._client.post(url, content=content, headers=headers)
            except (httpx.TimeoutException, httpx.ConnectError):
                break
            except httpx.HTTPError:
                outcomes.append((index, False))
            else:
                outcomes.append((index, response.status_code < 400))
        return outcomes


def first_due(data: Mapping[str, Any], now: datetime) -> datetime | None:
    """When a subscription is first notified periodically: one ``timeInterval`` after ``now``
    (None: it has none)."""
    interval = data.get("timeInterval")
    return now + timedelta(seconds=float(interval)) if interval else None


def claim_periodic(context: Context, now: datetime, *, limit: int) -> list[str]:
    """The ids of periodic subscriptions due at ``now`` (the soonest ``limit``), each moved on
    to its next time in the store. The move is conditional on the time read, so that of
    several processes looking at once only one notifies a subscription."""
    claimed = []
    with context.database.transaction() as session:
        due = session.execute(
            select(Subscription.id, Subscription.periodic_due_at, Subscription.body)
            .where(Subscription.periodic_due_at <= now)
            .order_by(Subscription.periodic_due_at)
            .limit(limit)
        ).all()
        for subscription_id, due_at, body in due:
            interval = body.get("timeInterval") if isinstance(body, Mapping) else None
            following = None
            if interval:
                step = timedelta(seconds=float(interval))
                moment = due_at if due_at.tzinfo else due_at.replace(tzinfo=UTC)
                # After a pause (a restart) the next one is a whole interval away, not a burst.
                following = moment + step if moment + step > now else now + step
            moved = session.execute(
                update(Subscription)
                .where(Subscription.id == subscription_id, Subscription.periodic_due_at == due_at)
                .values(periodic_due_at=following)
            )
            if moved.rowcount == 1 and following is not None:  # type: ignore[attr-defined]
                claimed.append(subscription_id)
    return claimed


def periodic_entities(
    session: Session,
    subscription: Mapping[str, Any],
    *,
    limit: int,
    places: frozenset[str] | None = None,
) -> list[Entity]:
    """The entities a periodic notification tells: those the subscription's selectors, ``q``
    and ``geoQ`` match, read by type (at most ``limit``), of ``places`` only when given (the
    city of the tenant it was made under)."""
    names = names_of(subscription.get("@context"))
    types = {
        names.canonical(name)
        for selector in subscription.get("entities") or []
        for group in parse_type_selection(str(selector.get("type")))
        for name in group
    }
    statement = select(Entity).where(Entity.type.in_(sorted(types))).order_by(Entity.id)
    if places is not None:
        statement = statement.where(Entity.place_code.in_(sorted(places)))
    return [
        entity
        for entity in session.scalars(statement.limit(limit))
        if matches(subscription, entity)
    ]


def _places_of(session: Session, tenant: str | None) -> frozenset[str] | None:
    return tenant_city(session, tenant) if tenant is not None else None


def _changed_entities(session: Session, changes: Mapping[str, EntityChange]) -> list[Entity]:
    """The entities changed, as they are now; a deleted one as it was (not in the session)."""
    found = {
        entity.id: entity
        for entity in session.scalars(select(Entity).where(Entity.id.in_(list(changes))))
    }
    entities = []
    for entity_id, change in changes.items():
        if change.deleted is not None:
            gone = change.deleted
            entities.append(
                Entity(
                    id=entity_id,
                    type=gone.type,
                    attrs=gone.attrs,
                    created_at=gone.created_at,
                    modified_at=gone.modified_at,
                    place_code=place_code_of(gone.attrs),
                )
            )
        elif entity_id in found:
            entities.append(found[entity_id])
    return entities


def _names_changed(change: EntityChange) -> list[str] | None:
    """Every attribute the change touched (None: not known)."""
    if not change.known:
        return None
    return sorted(change.attributes_created | change.attributes_updated | change.attributes_deleted)


def _later(first: datetime | None, second: datetime | None) -> bool:
    """Whether ``first`` is after ``second`` (unknown: no); naive times are UTC (SQLite)."""
    if first is None or second is None:
        return False
    if first.tzinfo is None:
        first = first.replace(tzinfo=UTC)
    if second.tzinfo is None:
        second = second.replace(tzinfo=UTC)
    return first > second


def _throttled(record: Subscription, now: datetime) -> bool:
    """Whether the subscription's ``throttling`` forbids a notification this soon."""
    throttling = record.body.get("throttling")
    last = record.last_notification
    if not throttling or last is None:
        return False
    if last.tzinfo is None:
        last = last.replace(tzinfo=UTC)
    return (now - last).total_seconds() < float(throttling)


def resume_notifications(context: Context) -> None:
    """Start notifying in this process when the store holds work: outbox rows a stopped
    process left, or ``timeInterval`` subscriptions (their times are in the store, so a
    restart carries on)."""
    try:
        with context.database.session() as session:
            periodic = session.scalar(
                select(Subscription.id).where(Subscription.periodic_due_at.is_not(None)).limit(1)
            )
            waiting = outbox.next_due(session)
    except SQLAlchemyError:  # a store not migrated yet has none
        log.warning("NGSI-LD notifications not resumed", exc_info=True)
        return
    if periodic is not None:
        notifier_for(context).wake_periodic()
    if waiting is not None:
        notifier_for(context).wake()


def notifier_for(context: Context) -> Notifier:
    notifier = context.extras.get(NOTIFIER_KEY)
    if notifier is None:
        notifier = context.extras[NOTIFIER_KEY] = Notifier(context)
    return notifier


def notify_changed(context: Context) -> None:
    """Wake the notifier: a write committed changes to the outbox."""
    notifier_for(context).wake()
