"""MQTT ingestion from a real broker (Mosquitto) with at-least-once delivery and exactly-once effect.

The ingester connects with MQTT 5, a fixed client id and a persistent session (``clean_start``
false, session expiry one day), subscribes with QoS 1 and acknowledges a message (PUBACK, paho's
``manual_ack``) only after the transaction holding its observations has committed. If Qala stops
before that, the broker redelivers the message to the same session when Qala comes back; the
store's uniqueness on ``(sensor, quantity, time)`` and on the message ``id`` makes the repeat
harmless. So an acknowledged observation is never lost and never counted twice.

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
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from qala.components.operate.incidents import escalate_due
from qala.components.operate.ingest import (
    IngestReport,
    RulesRunner,
    check_silence,
    ingest,
    now_us,
    runner_for,
)
from qala.components.operate.readings import Reading, readings_from_payload
from qala.core.errors import QalaError
from qala.runtime import Context

log = logging.getLogger(__name__)


@dataclass
class IngesterStats:
    """Counters of a running ingester (read them from another thread; values only grow)."""

    messages: int = 0
    observations: int = 0
    stored: int = 0
    duplicates: int = 0
    rejected_messages: int = 0
    batches: int = 0
    findings: int = 0
    incidents_opened: int = 0
    latencies_us: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        data = {k: v for k, v in self.__dict__.items() if k != "latencies_us"}
        data["latency_samples"] = len(self.latencies_us)
        return data


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
        runner: RulesRunner | None = None,
        on_batch: Callable[[IngestReport], None] | None = None,
    ) -> None:
        settings = context.settings
        self.context = context
        self.host = host or settings.mqtt_host
        self.port = port or settings.mqtt_port
        self.topic = topic or f"{settings.mqtt_topic_prefix}/observations/#"
        self.client_id = client_id
        self.batch_messages = batch_messages
        self.max_delay_s = max_delay_s
        self.silence_every_s = silence_every_s
        self.session_expiry_s = session_expiry_s
        self.runner = runner or runner_for(context)
        self.on_batch = on_batch
        self.stats = IngesterStats()
        self._pending: list[tuple[mqtt.MQTTMessage, float]] = []
        self._lock = threading.Condition()
        self._stop = threading.Event()
        self._connected = threading.Event()
        self._worker: threading.Thread | None = None
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=mqtt.MQTTv5,
            manual_ack=True,
        )
        self._client.on_connect = self._on_connect
        self._client.on_message = self._on_message
        self._client.on_disconnect = self._on_disconnect

    # ---- broker callbacks (paho's network thread) ---------------------------------------------

    def _on_connect(
        self, client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any
    ) -> None:
        if getattr(reason, "is_failure", False):
            self.stats.errors.append(f"connect refused: {reason}")
            return
        client.subscribe(self.topic, qos=1)
        self._connected.set()

    def _on_disconnect(
        self, _client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any
    ) -> None:
        self._connected.clear()

    def _on_message(self, _client: mqtt.Client, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        with self._lock:
            self._pending.append((message, time.monotonic()))
            self._lock.notify()

    # ---- life cycle ---------------------------------------------------------------------------

    def start(self, *, wait_s: float = 10.0) -> MqttIngester:
        """Connect (persistent session) and start the batching worker; returns self."""
        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = self.session_expiry_s
        properties.ReceiveMaximum = 65_535
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
        self._client.disconnect()
        self._client.loop_stop()

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
                self._process(messages)
            if time.monotonic() - last_silence >= self.silence_every_s:
                last_silence = time.monotonic()
                try:
                    check_silence(self.context, runner=self.runner)
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

    def _parse(self, message: mqtt.MQTTMessage) -> tuple[list[Reading], int | None]:
        payload = json.loads(message.payload)
        sent = payload.get("sent_us") if isinstance(payload, dict) else None
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
        return readings_from_payload(payload, source=f"MQTT {message.topic}"), sent if isinstance(
            sent, int
        ) else None

    def _process(self, messages: list[mqtt.MQTTMessage]) -> None:
        readings: list[Reading] = []
        sent_times: list[int] = []
        for message in messages:
            try:
                parsed, sent = self._parse(message)
            except (ValueError, QalaError) as exc:
                # A malformed message would be redelivered for ever; log it and let it go.
                self.stats.rejected_messages += 1
                self.stats.errors.append(f"{message.topic}: {exc}"[:500])
                continue
            readings.extend(parsed)
            if sent is not None:
                sent_times.append(sent)
        delay = 0.5
        while True:
            try:
                report = ingest(self.context, readings, runner=self.runner)
                break
            except Exception as exc:  # the store is down or busy: keep the messages, retry
                self.stats.errors.append(
                    f"ingest failed, retrying: {exc.__class__.__name__}: {exc}"[:500]
                )
                log.warning("ingest failed, retrying in %.1f s: %s", delay, exc)
                if self._stop.wait(delay):
                    return  # not acknowledged: the broker redelivers after a restart
                delay = min(delay * 2, 10.0)
        done = now_us()
        for message in messages:
            self._client.ack(message.mid, message.qos)
        stats = self.stats
        stats.messages += len(messages)
        stats.observations += len(readings)
        stats.stored += report.stored
        stats.duplicates += report.duplicates
        stats.batches += 1
        stats.findings += report.findings
        stats.incidents_opened += len(report.incidents_opened)
        stats.latencies_us.extend(done - sent for sent in sent_times)
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
) -> int:
    """Publish observations (dicts with sensor, quantity, time, value, unit, id) with QoS 1.

    ``per_message`` observations of one sensor go in one message (gateways batch). Returns the
    number of messages, after the broker acknowledged every one.
    """
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=client_id or "", protocol=mqtt.MQTTv5
    )
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
