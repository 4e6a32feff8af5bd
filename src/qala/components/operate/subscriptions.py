"""NGSI-LD subscriptions: stored in the store, matched against changed entities after each commit,
and delivered as HTTP POST notifications by a background sender (so ingestion never waits on a
slow endpoint). Delivery is at most once per change; failures are recorded on the subscription.
"""

from __future__ import annotations

import itertools
import logging
import threading
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session

from qala.components.operate.models import Entity, Subscription
from qala.components.operate.ngsi import (
    NgsiError,
    check_entity_id,
    compile_pattern,
    parse_q,
    q_matches,
    render_entity,
)
from qala.core.clock import utc_now
from qala.runtime import Context

log = logging.getLogger(__name__)
NOTIFIER_KEY = "operate.notifier"


def validate_subscription(body: Any) -> dict[str, Any]:
    """Check a subscription body (clause 5.2.12) and return it with an id."""
    if not isinstance(body, Mapping):
        raise NgsiError("BadRequestData", "a subscription must be a JSON object")
    data = dict(body)
    data.pop("@context", None)
    if data.get("type", "Subscription") != "Subscription":
        raise NgsiError("BadRequestData", "subscription `type` must be Subscription")
    data["type"] = "Subscription"
    data["id"] = check_entity_id(data.get("id") or f"urn:ngsi-ld:Subscription:{uuid.uuid4()}")
    entities = data.get("entities")
    watched = data.get("watchedAttributes")
    if not entities and not watched:
        raise NgsiError("BadRequestData", "a subscription needs `entities` or `watchedAttributes`")
    for selector in entities or []:
        if not isinstance(selector, Mapping) or not isinstance(selector.get("type"), str):
            raise NgsiError("BadRequestData", "each `entities` item needs a `type`")
        if selector.get("idPattern"):
            compile_pattern(str(selector["idPattern"]), what="idPattern")
    notification = data.get("notification")
    endpoint = notification.get("endpoint") if isinstance(notification, Mapping) else None
    uri = endpoint.get("uri") if isinstance(endpoint, Mapping) else None
    if not isinstance(uri, str) or not uri.startswith(("http://", "https://")):
        raise NgsiError("BadRequestData", "`notification.endpoint.uri` must be an http(s) URL")
    if data.get("q"):
        parse_q(str(data["q"]))
    data.setdefault("isActive", True)
    return data


def create_subscription(session: Session, body: Any) -> Subscription:
    data = validate_subscription(body)
    if session.get(Subscription, data["id"]) is not None:
        raise NgsiError("AlreadyExists", f"subscription {data['id']} already exists")
    record = Subscription(
        id=data["id"],
        body=data,
        endpoint=data["notification"]["endpoint"]["uri"],
        active=bool(data.get("isActive", True)),
        created_at=utc_now(),
    )
    session.add(record)
    session.flush()
    return record


def get_subscription(session: Session, subscription_id: str) -> Subscription:
    record = session.get(Subscription, subscription_id)
    if record is None:
        raise NgsiError("ResourceNotFound", f"subscription {subscription_id} does not exist")
    return record


def list_subscriptions(session: Session, *, limit: int, offset: int) -> list[Subscription]:
    """One page of the subscriptions, oldest first."""
    statement = select(Subscription).order_by(Subscription.created_at)
    return list(session.scalars(statement.limit(limit).offset(offset)))


def delete_subscription(session: Session, subscription_id: str) -> None:
    session.delete(get_subscription(session, subscription_id))


def update_subscription(session: Session, subscription_id: str, patch: Any) -> Subscription:
    record = get_subscription(session, subscription_id)
    if not isinstance(patch, Mapping):
        raise NgsiError("BadRequestData", "the update must be a JSON object")
    data = dict(record.body)
    data.update({k: v for k, v in patch.items() if k not in ("id", "@context")})
    data = validate_subscription(data)
    record.body = data
    record.endpoint = data["notification"]["endpoint"]["uri"]
    record.active = bool(data.get("isActive", True))
    return record


def render_subscription(record: Subscription) -> dict[str, Any]:
    data = dict(record.body)
    notification = dict(data.get("notification", {}))
    notification.update(
        {
            "timesSent": record.times_sent,
            "lastNotification": record.last_notification.isoformat()
            if record.last_notification
            else None,
            "lastSuccess": record.last_success.isoformat() if record.last_success else None,
            "lastFailure": record.last_failure.isoformat() if record.last_failure else None,
            "status": "ok"
            if record.last_failure is None
            or (record.last_success and record.last_success > record.last_failure)
            else "failed",
        }
    )
    data["notification"] = {k: v for k, v in notification.items() if v is not None}
    data["status"] = "active" if record.active else "paused"
    return data


def matches(
    subscription: Mapping[str, Any], entity: Entity, changed: Sequence[str] | None = None
) -> bool:
    """Whether a change of ``entity`` concerns the subscription (selectors, watched attributes, q)."""
    selectors = subscription.get("entities") or []
    if selectors:
        ok = False
        for selector in selectors:
            if selector.get("type") != entity.type:
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
        names = changed if changed is not None else list(entity.attrs)
        if not any(name in watched for name in names):
            return False
    if subscription.get("q"):
        return q_matches(parse_q(str(subscription["q"])), entity.attrs)
    return True


def notification_for(subscription: Mapping[str, Any], entities: Sequence[Entity]) -> dict[str, Any]:
    spec = subscription.get("notification", {})
    key_values = spec.get("format") in ("keyValues", "simplified")
    attributes = spec.get("attributes") or None
    return {
        "id": f"urn:ngsi-ld:Notification:{uuid.uuid4()}",
        "type": "Notification",
        "subscriptionId": subscription["id"],
        "notifiedAt": utc_now().isoformat().replace("+00:00", "Z"),
        "data": [
            render_entity(e.id, e.type, e.attrs, key_values=key_values, pick=attributes)
            for e in entities
        ],
    }


class Notifier:
    """Sends notifications from a daemon thread; ``drain()`` waits until nothing is pending.

    Pending changes are a set of entity ids, not a queue of every change: an entity changed again
    before its notification went out is notified once, with its newest state. So a slow endpoint
    costs memory in proportion to the entities, never to the readings ingested meanwhile.
    """

    CHUNK = 500  # entity ids looked up and matched per round

    def __init__(self, context: Context, *, timeout_s: float = 5.0) -> None:
        self.context = context
        self.timeout_s = timeout_s
        self._pending: dict[str, None] = {}  # insertion-ordered set
        self._busy = False
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="qala-ngsi-notifier", daemon=True)
        self._client = httpx.Client(timeout=timeout_s)
        self._thread.start()

    def submit(self, entity_ids: Sequence[str]) -> None:
        with self._changed:
            self._pending.update(dict.fromkeys(entity_ids))
            self._changed.notify_all()

    def pending(self) -> int:
        """Entities waiting for their notification."""
        return len(self._pending)

    def drain(self, timeout_s: float = 10.0) -> None:
        """Block until every submitted change has been delivered (tests, orderly shutdown)."""
        with self._changed:
            self._changed.wait_for(lambda: not self._pending and not self._busy, timeout_s)

    def _run(self) -> None:
        while True:
            with self._changed:
                self._changed.wait_for(lambda: bool(self._pending))
                chunk = list(itertools.islice(self._pending, self.CHUNK))
                for entity_id in chunk:
                    del self._pending[entity_id]
                self._busy = True
            try:
                self._deliver(chunk)
            except Exception:  # a broken endpoint must not stop notifications to the others
                log.exception("NGSI-LD notification failed")
            finally:
                with self._changed:
                    self._busy = False
                    self._changed.notify_all()

    def _deliver(self, entity_ids: list[str]) -> None:
        with self.context.database.session() as session:
            subscriptions = list(
                session.scalars(select(Subscription).where(Subscription.active.is_(True)))
            )
            if not subscriptions:
                return
            entities = list(session.scalars(select(Entity).where(Entity.id.in_(entity_ids))))
        outcomes: list[tuple[str, bool]] = []
        for record in subscriptions:
            chosen = [e for e in entities if matches(record.body, e)]
            if not chosen:
                continue
            body = notification_for(record.body, chosen)
            accept = (
                record.body.get("notification", {})
                .get("endpoint", {})
                .get("accept", "application/json")
            )
            try:
                response = self._client.post(
                    record.endpoint, json=body, headers={"Content-Type": accept}
                )
                outcomes.append((record.id, response.status_code < 400))
            except httpx.HTTPError:
                outcomes.append((record.id, False))
        if outcomes:
            now = utc_now()
            with self.context.database.transaction() as session:
                for subscription_id, ok in outcomes:
                    stored = session.get(Subscription, subscription_id)
                    if stored is None:
                        continue
                    stored.times_sent += 1
                    stored.last_notification = now
                    if ok:
                        stored.last_success = now
                    else:
                        stored.last_failure = now


def notifier_for(context: Context) -> Notifier:
    notifier = context.extras.get(NOTIFIER_KEY)
    if notifier is None:
        notifier = context.extras[NOTIFIER_KEY] = Notifier(context)
    return notifier


def notify_changed(context: Context, entity_ids: Sequence[str]) -> None:
    """Queue notifications for changed entities (after their transaction committed)."""
    if entity_ids:
        notifier_for(context).submit(entity_ids)
