"""NGSI-LD notifications over MQTT (the specification's MQTT notification binding, clause 7).

A subscription whose ``notification.endpoint.uri`` is ``mqtt[s]://[user[:password]@]host[:port]/
topic[/subtopic]*`` is notified by publishing to that topic on that broker (default ports 1883,
and 8883 for mqtts over TLS). MQTT carries no headers, so the message is a JSON object with the
notification as ``body`` and what HTTP would send as headers (Content-Type, the @context's Link,
``receiverInfo``) as ``metadata`` (clause 7.2). ``notifierInfo`` chooses the protocol version
(``MQTT-Version``: ``mqtt3.1.1`` or ``mqtt5.0``, the default) and the quality of service
(``MQTT-QoS``: 0, the default, 1 or 2).

Each delivery round opens one connection per broker, publishes that broker's notifications and
waits for the broker to take them (PUBACK/PUBCOMP for QoS 1 and 2), then disconnects: a broker
that restarts or changes its passwords never leaves a stale connection behind.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from qala.components.operate.ngsi import NgsiError

log = logging.getLogger(__name__)

MQTT_SCHEMES = {"mqtt": 1883, "mqtts": 8883}
VERSIONS = {"mqtt3.1.1": mqtt.MQTTv311, "mqtt5.0": mqtt.MQTTv5}
DEFAULT_VERSION = "mqtt5.0"
VERSION_KEY = "MQTT-Version"
QOS_KEY = "MQTT-QoS"


@dataclass(frozen=True, slots=True)
class MqttEndpoint:
    """Where and how to publish: one broker connection serves every endpoint with the same
    ``broker`` key (host, port, TLS, login, protocol version)."""

    host: str
    port: int
    tls: bool
    username: str | None
    password: str | None
    topic: str
    version: str = DEFAULT_VERSION
    qos: int = 0

    @property
    def broker(self) -> tuple[str, int, bool, str | None, str | None, str]:
        return (self.host, self.port, self.tls, self.username, self.password, self.version)


def is_mqtt(uri: str) -> bool:
    return urlsplit(uri).scheme.lower() in MQTT_SCHEMES


def _notifier_options(notifier_info: Any) -> tuple[str, int]:
    """(version, QoS) from ``notifierInfo``: an array of {key, value}; unknown keys are left to
    other bindings, a wrong MQTT value is refused."""
    if notifier_info is None:
        return DEFAULT_VERSION, 0
    if not isinstance(notifier_info, list) or not all(
        isinstance(item, Mapping) and {"key", "value"} <= set(item) for item in notifier_info
    ):
        raise NgsiError("BadRequestData", "`notifierInfo` must be an array of {key, value}")
    options = {str(item["key"]): item["value"] for item in notifier_info}
    version = str(options.get(VERSION_KEY, DEFAULT_VERSION))
    if version not in VERSIONS:
        raise NgsiError(
            "BadRequestData",
            f"`notifierInfo` {VERSION_KEY} {version!r} is not one of {', '.join(VERSIONS)}",
        )
    qos = str(options.get(QOS_KEY, 0))
    if qos not in ("0", "1", "2"):
        raise NgsiError("BadRequestData", f"`notifierInfo` {QOS_KEY} {qos!r} is not 0, 1 or 2")
    return version, int(qos)


def mqtt_endpoint(endpoint: Mapping[str, Any]) -> MqttEndpoint:
    """The broker and topic of a subscription's ``notification.endpoint``; BadRequestData naming
    the member at fault when the URI or ``notifierInfo`` is not usable."""
    uri = str(endpoint.get("uri", ""))
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    if scheme not in MQTT_SCHEMES:
        raise NgsiError("BadRequestData", f"`notification.endpoint.uri` {uri!r} is not mqtt(s)")
    try:
        port = parts.port or MQTT_SCHEMES[scheme]
    except ValueError:
        raise NgsiError(
            "BadRequestData", f"`notification.endpoint.uri` {uri!r}: bad port"
        ) from None
    topic = unquote(parts.path.lstrip("/"))
    wildcard = "+" in topic or "#" in uri  # `#` also starts a URI fragment
    if not parts.hostname or not topic or wildcard or parts.query:
        raise NgsiError(
            "BadRequestData",
            "`notification.endpoint.uri` must be mqtt[s]://[user[:password]@]host[:port]/topic "
            "(a topic without wildcards)",
        )
    version, qos = _notifier_options(endpoint.get("notifierInfo"))
    return MqttEndpoint(
        host=parts.hostname,
        port=port,
        tls=scheme == "mqtts",
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None,
        topic=topic,
        version=version,
        qos=qos,
    )


def mqtt_message(headers: Mapping[str, str], body: Mapping[str, Any]) -> bytes:
    """The MQTT payload of one notification (clause 7.2): ``{"metadata": …, "body": …}``."""
    return json.dumps({"metadata": dict(headers), "body": body}, ensure_ascii=False).encode()


def publish(
    endpoint: MqttEndpoint, payloads: Sequence[tuple[str, int, bytes]], timeout_s: float
) -> bool:
    """Publish ``(topic, qos, payload)`` messages on ``endpoint``'s broker over one connection;
    whether the broker accepted the login and took every message within ``timeout_s``."""
    protocol = VERSIONS[endpoint.version]
    # No client id: the broker names a clean session; notifications keep no session state.
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=protocol)
    if endpoint.username is not None:
        client.username_pw_set(endpoint.username, endpoint.password)
    if endpoint.tls:
        client.tls_set()
    answered = threading.Event()
    accepted: list[bool] = []

    def on_connect(_client: Any, _data: Any, _flags: Any, reason: Any, _props: Any) -> None:
        accepted.append(not getattr(reason, "is_failure", False))
        answered.set()

    client.on_connect = on_connect
    try:
        client.connect(endpoint.host, endpoint.port, keepalive=max(5, int(timeout_s) * 2))
    except (OSError, ValueError) as error:
        log.warning("MQTT notification broker %s:%s: %s", endpoint.host, endpoint.port, error)
        return False
    client.loop_start()
    try:
        if not answered.wait(timeout_s) or not accepted[0]:
            log.warning("MQTT notification broker %s:%s refused", endpoint.host, endpoint.port)
            return False
        sent = [client.publish(topic, payload, qos=qos) for topic, qos, payload in payloads]
        for info in sent:
            info.wait_for_publish(timeout_s)
        return all(info.rc == mqtt.MQTT_ERR_SUCCESS and info.is_published() for info in sent)
    except (OSError, RuntimeError, ValueError) as error:
        log.warning("MQTT notification to %s:%s: %s", endpoint.host, endpoint.port, error)
        return False
    finally:
        client.disconnect()
        client.loop_stop()
