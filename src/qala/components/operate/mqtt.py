"""MQTT ingestion from a real broker (Mosquitto) with at-least-once delivery and exactly-once effect.

The ingester connects with MQTT 5, a fixed client id and a persistent session (``clean_start``
false, session expiry one day), subscribes with QoS 1 and acknowledges a message (PUBACK, paho's
``manual_ack``) only after the transaction holding its observations has committed. If Qala stops
before that, the broker redelivers the message to the same session when Qala comes back; the
store's uniqueness on ``(sensor, quantity, time)`` and on the message ``id`` makes the repeat
harmless. So an acknowledged observation is never lost and never counted twice.

Every message is parsed and validated completely before it joins a batch (unit against quantity,
time, value range; unless provisioning mode is on, a registered sensor, the topic's own: see
:func:`~qala.components.operate.readings.reading_problems`). What cannot be ingested is recorded
in the dead letters with the reason and acknowledged with its batch; only transient database
errors are retried, and a batch failing otherwise is retried message by message so that the one
message at fault is dead-lettered and the others are stored.

Topic ``<prefix>/observations/<sensor>``; the payload is JSON: one observation, a list, or a
Smart Data Models entity (see :func:`~qala.components.operate.readings.readings_from_payload`);
``sensor`` defaults to the topic's last level. A payload may carry ``sent_us`` (publisher's clock,
epoch µs) so the end-to-end latency is measured.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from sqlalchemy.orm import Session

from qala.components.operate.dead_letters import Refusal
from qala.components.operate.incidents import escalate_due
from qala.components.operate.ingest import (
    IngestReport,
    RulesRunner,
    check_silence,
    ingest,
    now_us,
    runner_for,
    unknown_sensors,
    write_soft_state,
)
from qala.components.operate.readings import Reading, parse_payload
from qala.components.operate.routing import Router
from qala.core.errors import QalaError
from qala.runtime import Context
from qala.store.database import is_transient

log = logging.getLogger(__name__)
T = TypeVar("T")


# A message larger than this is a device error, not a reading (gateways send a few KiB).
MAX_MESSAGE_BYTES = 1_048_576
# The newest latencies and errors kept: an ingester runs for months.
LATENCY_SAMPLES = 100_000
ERRORS_KEPT = 100


@dataclass
class IngesterStats:
    """Counters of a running ingester (read them from another thread; counters only grow).

    ``latencies_us`` and ``errors`` keep only the newest entries, so memory stays bounded.
    """

    messages: int = 0
    observations: int = 0
    stored: int = 0
    duplicates: int = 0
    rejected_messages: int = 0
    routed_elsewhere: int = 0
    dead_letters: int = 0
    batches: int = 0
    findings: int = 0
    incidents_opened: int = 0
    retries: int = 0
    latencies_us: deque[int] = field(default_factory=lambda: deque(maxlen=LATENCY_SAMPLES))
    errors: deque[str] = field(default_factory=lambda: deque(maxlen=ERRORS_KEPT))

    def as_dict(self) -> dict[str, Any]:
        data = {k: v for k, v in self.__dict__.items() if k not in ("latencies_us", "errors")}
        data["latency_samples"] = len(self.latencies_us)
        data["errors"] = list(self.errors)
        return data


@dataclass
class ParsedMessage:
    """One MQTT message after parsing: its valid readings and what it refuses."""

    message: mqtt.MQTTMessage
    readings: list[Reading]
    refusals: list[Refusal]
    sent_us: int | None = None

    def refuse_all(self, reason: str) -> None:
        """Send the whole message to the dead letters (it cannot be ingested at all)."""
        self.refusals.append(
            Refusal(
                "mqtt",
                self.message.topic,
                reason,
                self.message.payload.decode("utf-8", "replace"),
                sensor=self.message.topic.rsplit("/", 1)[-1],
                key="message",
            )
        )
        self.readings = []


class MqttIngester:
    """Subscribe to observations on the broker and ingest them in batches.

    Parameters
    ----------
    context
        The platform context (store, bus).
    client_id
        Fixed id: the broker keeps this session's subscription and unacknowledged messages.
    batch_messages
        Flush when this many messages are pending…
    max_delay_s
        …or when the oldest pending message has waited this long.
    silence_every_s
        How often to check every stream for silence and escalate overdue incidents.
    receive_maximum
        Unacknowledged messages the broker may send at once (default: the
        ``mqtt_receive_maximum`` setting, 2,000). With the 1 MiB message limit this bounds the
        ingester's memory when the store is slower than the sensors: the rest of a backlog waits
        in the broker's queue, which must hold it (Mosquitto's ``max_queued_messages``, sized in
        ``deploy/mosquitto``), or the broker drops what does not fit.
    share_group
        Subscribe as one of several ingesters sharing the stream (MQTT 5 shared subscription
        ``$share/<group>/<topic>``): the broker hands each message to one member. Each member
        needs its own fixed ``client_id`` (its persistent session keeps what was sent to it while
        it is down). See :class:`~qala.components.operate.ingest.RulesRunner` for why the rule
        state stays right with several writers.
    router
        Run as one of several workers each owning its sensors (:mod:`.routing`): subscribe to
        the whole topic without ``$share`` and acknowledge, unread, the messages of sensors
        another worker owns. Exclusive with ``share_group``.
    provisioning
        Accept readings of unregistered sensors (default: the ``operate_provisioning`` setting);
        off, they go to the dead letters as ``unknown sensor``.
    """

    def __init__(
        self,
        context: Context,
        *,
        host: str | None = None,
        port: int | None = None,
        client_id: str = "qala-operate-ingest",
        topic: str | None = None,
        batch_messages: int = 200,
        max_delay_s: float = 0.05,
        silence_every_s: float = 60.0,
        session_expiry_s: int = 86_400,
        receive_maximum: int | None = None,
        share_group: str | None = None,
        provisioning: bool | None = None,
        router: Router | None = None,
        runner: RulesRunner | None = None,
        on_batch: Callable[[IngestReport], None] | None = None,
    ) -> None:
        settings = context.settings
        self.context = context
        self.host = host or settings.mqtt_host
        self.port = port or settings.mqtt_port
        self.topic = topic or f"{settings.mqtt_topic_prefix}/observations/#"
        if router is not None and share_group:
            raise ValueError("a routed worker does not share a subscription")
        self.share_group = share_group
        self.router = router
        self.subscription = f"$share/{share_group}/{self.topic}" if share_group else self.topic
        self.client_id = client_id
        self.batch_messages = batch_messages
        self.max_delay_s = max_delay_s
        self.silence_every_s = silence_every_s
        self.session_expiry_s = session_expiry_s
        self.receive_maximum = min(receive_maximum or settings.mqtt_receive_maximum, 65_535)
        self.provisioning = settings.operate_provisioning if provisioning is None else provisioning
        self._known_sensors: set[str] = set()
        self.runner = runner or runner_for(context)
        self.on_batch = on_batch
        self.stats = IngesterStats()
        self._pending: list[tuple[mqtt.MQTTMessage, float]] = []
        self._lock = threading.Condition()
        self._stop = threading.Event()
        self._connected = threading.Event()
        self._barriers: dict[int, threading.Event] = {}
        self._worker: threading.Thread | None = None
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=mqtt.MQTTv5,
            manual_ack=True,
        )
        if settings.mqtt_username:
            self._client.username_pw_set(settings.mqtt_username, settings.mqtt_password)
        self._client.on_connect = self._on_connect
        self._client.on_message = self._on_message
        self._client.on_disconnect = self._on_disconnect
        self._client.on_unsubscribe = self._on_unsubscribe
        context.readiness_checks()["mqtt"] = self._connected.is_set
        context.metrics().gauge(
            "qala_ingest_pending_messages",
            "Messages received from the broker and not yet committed (the ingester's queue).",
            self.pending,
        )

    def pending(self) -> int:
        """Messages received and not yet committed."""
        return len(self._pending)

    # ---- broker callbacks (paho's network thread) ---------------------------------------------

    def _on_connect(
        self, client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any
    ) -> None:
        if getattr(reason, "is_failure", False):
            self.stats.errors.append(f"connect refused: {reason}")
            return
        # A persistent session keeps its subscriptions: drop the other mode's, so that a worker
        # switched between shared and routed is not subscribed twice (an absent one is a no-op).
        if self.router is not None:
            client.unsubscribe(f"$share/qala/{self.topic}")
        elif self.share_group:
            client.unsubscribe(self.topic)
        client.subscribe(self.subscription, qos=1)
        self._connected.set()

    def _on_disconnect(
        self, _client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any
    ) -> None:
        self._connected.clear()

    def _on_unsubscribe(
        self, _client: mqtt.Client, _userdata: Any, mid: int, _reasons: Any, _props: Any
    ) -> None:
        with self._lock:
            barrier = self._barriers.pop(mid, None)
        if barrier is not None:
            barrier.set()

    def _on_message(self, client: mqtt.Client, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        router = self.router
        if router is not None:
            owner = router.owner(message.topic.rsplit("/", 1)[-1])
            if owner is not None and owner != router.worker:  # another worker's sensor
                client.ack(message.mid, message.qos)
                self.stats.routed_elsewhere += 1
                return
        with self._lock:
            pending = self._pending
            pending.append((message, time.monotonic()))
            # Wake the batching thread only when it has something new to do: a first message
            # starts the batch's delay, a full batch is due. In between it sleeps until the
            # delay ends (woken by every message, it re-checked and slept again each time).
            if len(pending) == 1 or len(pending) >= self.batch_messages:
                self._lock.notify()

    # ---- life cycle ---------------------------------------------------------------------------

    def _read(self, work: Callable[[Session], T]) -> T:
        with self.context.database.session() as session:
            return work(session)

    def start(self, *, wait_s: float = 10.0) -> MqttIngester:
        """Connect (persistent session) and start the batching worker; returns self."""
        router = self.router
        if router is not None:  # who owns which sensor, before the first message
            self._retrying(lambda: self._read(router.load))

        def preload(session: Session) -> int:  # every record this worker evaluates, at once
            return self.runner.preload(session, router.owns_subject if router else None)

        self._retrying(lambda: self._read(preload))
        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = self.session_expiry_s
        properties.ReceiveMaximum = self.receive_maximum
        self._client.connect(
            self.host, self.port, keepalive=30, clean_start=False, properties=properties
        )
        self._client.loop_start()
        self._worker = threading.Thread(target=self._run, name="qala-mqtt-ingest", daemon=True)
        self._worker.start()
        if not self._connected.wait(wait_s):
            self.stop()
            raise QalaError(
                f"MQTT broker at {self.host}:{self.port} did not accept the connection in {wait_s:g} s"
            )
        return self

    def stop(self) -> None:
        """Flush what is pending, then disconnect (unflushed messages stay with the broker)."""
        self._stop.set()
        with self._lock:
            self._lock.notify()
        if self._worker is not None:
            self._worker.join(timeout=30)
        try:
            write_soft_state(self.context, runner=self.runner)
        except Exception as exc:  # the history holds it all; the next reading rewrites it
            log.warning("could not write the sensors' buffered last-seen state: %s", exc)
        self._await_broker()
        self._client.disconnect()
        self._client.loop_stop()
        checks = self.context.readiness_checks()
        if checks.get("mqtt") == self._connected.is_set:  # stopped on purpose: not a failure
            del checks["mqtt"]

    def _await_broker(self, timeout_s: float = 5.0) -> None:
        """Return once the broker has read every acknowledgement sent so far.

        A broker reads a connection's packets in order, so the answer to an UNSUBSCRIBE sent after
        the PUBACKs proves it has them. Without this round trip a busy Mosquitto can take a
        restarted ingester's CONNECT first, close this connection as taken over and drop the
        PUBACKs still unread on it: the last batch comes back as duplicates.
        """
        if not self._connected.is_set():
            return
        barrier = threading.Event()
        with self._lock:  # paho may answer before unsubscribe() returns the mid
            result, mid = self._client.unsubscribe(f"{self.topic.rstrip('#')}$qala-barrier")
            if result != mqtt.MQTT_ERR_SUCCESS or mid is None:
                return
            self._barriers[mid] = barrier
        barrier.wait(timeout_s)

    def run_forever(self) -> None:
        self.start()
        try:
            while not self._stop.is_set():
                time.sleep(0.5)
        finally:
            self.stop()

    # ---- the worker ---------------------------------------------------------------------------

    def _take_batch(self) -> list[mqtt.MQTTMessage]:
        with self._lock:
            while not self._stop.is_set():
                if self._pending:
                    age = time.monotonic() - self._pending[0][1]
                    if len(self._pending) >= self.batch_messages or age >= self.max_delay_s:
                        break
                    self._lock.wait(self.max_delay_s - age)
                else:
                    self._lock.wait(0.5)
                    if not self._pending:
                        return []
            taken = [m for m, _t in self._pending[: self.batch_messages]]
            del self._pending[: len(taken)]
            return taken

    def _run(self) -> None:
        last_silence = time.monotonic()
        while True:
            messages = self._take_batch()
            if messages:
                try:
                    self._process(messages)
                except Exception as exc:  # not even a dead letter could be written: keep going
                    log.exception("MQTT batch failed; its messages stay unacknowledged")
                    self.stats.errors.append(f"batch failed: {exc}"[:500])
            if time.monotonic() - last_silence >= self.silence_every_s:
                last_silence = time.monotonic()
                try:
                    owns = self.router.owns_stream if self.router is not None else None
                    check_silence(self.context, runner=self.runner, owns=owns)
                    with self.context.database.transaction() as session:
                        escalate_due(session, now=self.context.clock())
                except Exception as exc:  # keep ingesting even if the periodic checks fail
                    self.stats.errors.append(f"silence/escalation check: {exc}")
            if self._stop.is_set():
                with self._lock:
                    rest = [m for m, _t in self._pending]
                    self._pending.clear()
                if rest:
                    self._process(rest)
                return

    def _parse(self, message: mqtt.MQTTMessage) -> ParsedMessage:
        parsed = ParsedMessage(message, [], [])
        if len(message.payload) > MAX_MESSAGE_BYTES:
            parsed.refuse_all(f"message larger than {MAX_MESSAGE_BYTES} bytes")
            return parsed
        try:
            payload = json.loads(message.payload)
        except ValueError as exc:
            parsed.refuse_all(f"not JSON: {exc}")
            return parsed
        sent = payload.get("sent_us") if isinstance(payload, dict) else None
        parsed.sent_us = sent if isinstance(sent, int) and not isinstance(sent, bool) else None
        default_sensor = message.topic.rsplit("/", 1)[-1]
        if isinstance(payload, dict) and "observations" in payload:
            items = payload["observations"]
            for item in items if isinstance(items, list) else []:
                if isinstance(item, dict):
                    item.setdefault("sensor", payload.get("sensor", default_sensor))
        elif isinstance(payload, dict) and "type" not in payload:
            payload.setdefault("sensor", default_sensor)
        elif isinstance(payload, list):
            for item in payload:
                if isinstance(item, dict) and "type" not in item:
                    item.setdefault("sensor", default_sensor)
        result = parse_payload(payload, source=f"MQTT {message.topic}")
        parsed.readings = result.readings
        for index, problems in result.problems.items():
            item = result.items[index]
            sensor = item.get("sensor", item.get("id")) if isinstance(item, dict) else None
            parsed.refusals.append(
                Refusal(
                    "mqtt",
                    message.topic,
                    "; ".join(
                        f"{p.column}: {p.reason}" if p.column else p.reason for p in problems
                    ),
                    json.dumps(item, ensure_ascii=False, default=str),
                    sensor=str(sensor) if sensor is not None else default_sensor,
                    key=f"item {index}",
                )
            )
        return parsed

    def _refuse_strangers(self, batch: list[ParsedMessage]) -> bool:
        """Outside provisioning mode, readings of unregistered sensors, and readings a message
        carries for another sensor than its topic's, become dead letters: the broker lets a
        device publish only to its own topic, so the topic is who sent it. False if stopped
        while the database was unreachable."""
        if self.provisioning:
            return True
        names = {r.sensor for p in batch for r in p.readings} - self._known_sensors
        unknown: set[str] = set()
        if names:

            def lookup() -> set[str]:
                with self.context.database.session() as session:
                    return unknown_sensors(session, names)

            found = self._retrying(lookup)
            if found is None:
                return False
            unknown = found
            self._known_sensors |= names - unknown
        for parsed in batch:
            sender = parsed.message.topic.rsplit("/", 1)[-1]
            reasons = {
                r.sensor: "unknown sensor"
                if r.sensor in unknown
                else f"sensor does not match the topic's device `{sender}`"
                for r in parsed.readings
                if r.sensor in unknown or r.sensor != sender
            }
            if not reasons:
                continue
            parsed.readings = [r for r in parsed.readings if r.sensor not in reasons]
            payload = parsed.message.payload.decode("utf-8", "replace")
            parsed.refusals.extend(
                Refusal("mqtt", parsed.message.topic, reason, payload, sensor, sensor)
                for sensor, reason in sorted(reasons.items())
            )
        return True

    def _retrying(self, work: Callable[[], T]) -> T | None:
        """``work()``, tried again with back-off while the database fails transiently (down,
        restarting, connections terminated, deadlock); None if stopped meanwhile. Raises what is
        not transient.

        A message is acknowledged only after its batch committed, and the broker redelivers an
        unacknowledged message only when the session reconnects: so every database call on the
        way to the acknowledgement must wait for the database, never give the batch up.
        """
        delay = 0.5
        while True:
            try:
                return work()
            except Exception as exc:
                if not is_transient(exc):
                    raise
                self.stats.errors.append(
                    f"database failed, retrying: {exc.__class__.__name__}: {exc}"[:500]
                )
                self.stats.retries += 1
                self.context.metrics().retries.labels("mqtt").inc()
                log.warning("database failed, retrying in %.1f s: %s", delay, exc)
                if self._stop.wait(delay):
                    return None  # not acknowledged: the broker redelivers after a restart
                delay = min(delay * 2, 10.0)

    def _commit(self, batch: list[ParsedMessage]) -> IngestReport | None:
        """Ingest a batch, retrying transient database errors; None if stopped meanwhile.

        Raises what is not transient (the batch can never be ingested as it is).
        """
        readings = [r for p in batch for r in p.readings]
        refusals = [f for p in batch for f in p.refusals]
        return self._retrying(
            lambda: ingest(
                self.context, readings, runner=self.runner, refusals=refusals, channel="mqtt"
            )
        )

    def _commit_isolating(self, batch: list[ParsedMessage]) -> IngestReport | None:
        """Commit a batch; if it fails for good, commit its messages one by one and dead-letter
        each one that still fails, with the error as the reason. None if stopped meanwhile."""
        try:
            return self._commit(batch)
        except Exception as exc:
            if len(batch) == 1:
                return self._dead_letter(batch[0], exc)
            log.warning("batch failed (%s); ingesting its messages one by one", exc)
        total = IngestReport()
        for parsed in batch:
            try:
                report = self._commit([parsed])
            except Exception as exc:
                report = self._dead_letter(parsed, exc)
            if report is None:
                return None
            total.merge(report)
        return total

    def _dead_letter(self, parsed: ParsedMessage, error: Exception) -> IngestReport | None:
        parsed.refuse_all(f"could not be ingested: {error.__class__.__name__}: {error}"[:2000])
        return self._commit([parsed])

    def _route(self, messages: list[mqtt.MQTTMessage]) -> list[mqtt.MQTTMessage] | None:
        """A routed worker's own messages among ``messages``, after looking up sensors it did not
        know; the others' are acknowledged unread. A sensor the store does not know is kept (see
        :mod:`.routing`). None if stopped while the database was unreachable."""
        router = self.router
        if router is None:
            return messages
        names = {m.topic.rsplit("/", 1)[-1] for m in messages}
        names = {n for n in names if router.owner(n) is None}
        if names:

            def lookup() -> set[str]:
                with self.context.database.session() as session:
                    return router.load(session, names)

            if self._retrying(lookup) is None:
                return None
        mine = []
        for message in messages:
            owner = router.owner(message.topic.rsplit("/", 1)[-1])
            if owner is None or owner == router.worker:
                mine.append(message)
            else:
                self._client.ack(message.mid, message.qos)
                self.stats.routed_elsewhere += 1
        return mine

    def _process(self, messages: list[mqtt.MQTTMessage]) -> None:
        routed = self._route(messages)
        if not routed:
            return
        messages = routed
        batch = [self._parse(message) for message in messages]
        if not self._refuse_strangers(batch):
            return
        report = self._commit_isolating(batch)
        if report is None:
            return
        done = now_us()
        for message in messages:
            self._client.ack(message.mid, message.qos)
        stats = self.stats
        stats.messages += len(messages)
        stats.observations += sum(len(p.readings) for p in batch)
        stats.rejected_messages += sum(1 for p in batch if p.refusals)
        stats.dead_letters += report.dead_letters
        stats.stored += report.stored
        stats.duplicates += report.duplicates
        stats.batches += 1
        stats.findings += report.findings
        stats.incidents_opened += len(report.incidents_opened)
        latencies = [done - p.sent_us for p in batch if p.sent_us is not None]
        stats.latencies_us.extend(latencies)
        metrics = self.context.metrics()
        metrics.ingest_messages.labels("mqtt").inc(len(messages))
        end_to_end = metrics.latency_seconds.labels("mqtt")
        for latency in latencies:
            end_to_end.observe(latency / 1e6)
        if self.on_batch is not None:
            self.on_batch(report)


def publish_readings(
    readings: list[dict[str, Any]],
    *,
    host: str = "127.0.0.1",
    port: int = 1883,
    topic_prefix: str = "qala",
    per_message: int = 1,
    client_id: str | None = None,
    stamp: bool = False,
    username: str | None = None,
    password: str | None = None,
) -> int:
    """Publish observations (dicts with sensor, quantity, time, value, unit, id) with QoS 1.

    ``per_message`` observations of one sensor go in one message (gateways batch). Returns the
    number of messages, after the broker acknowledged every one.
    """
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=client_id or "", protocol=mqtt.MQTTv5
    )
    if username:
        client.username_pw_set(username, password)
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.connect(host, port)
    client.loop_start()
    infos = []
    by_sensor: dict[str, list[dict[str, Any]]] = {}
    for reading in readings:
        by_sensor.setdefault(str(reading["sensor"]), []).append(reading)
    for sensor, items in by_sensor.items():
        for start in range(0, len(items), per_message):
            chunk = items[start : start + per_message]
            body: dict[str, Any] = {"sensor": sensor, "observations": chunk}
            if stamp:
                body["sent_us"] = now_us()
            infos.append(
                client.publish(f"{topic_prefix}/observations/{sensor}", json.dumps(body), qos=1)
            )
    for info in infos:
        info.wait_for_publish(timeout=60)
    client.disconnect()
    client.loop_stop()
    return len(infos)
