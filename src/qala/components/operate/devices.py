"""Devices authenticate: provisioning a sensor gives it MQTT credentials the broker enforces.

Each device logs in to Mosquitto with its sensor id as username and a random password, and the
broker's ACL (``deploy/mosquitto/acl``: ``pattern write <prefix>/observations/%u``) lets it publish
only to its own topic. Qala keeps the Mosquitto hash of each password (``$7$``: PBKDF2-SHA512, the
format ``mosquitto_passwd`` writes) and writes the broker's password file from them; the password
itself is shown once, when the device is provisioned (provisioning again replaces it).
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from qala.components.operate.ingest import register_sensors
from qala.components.operate.models import DeviceCredential
from qala.core.clock import utc_now
from qala.core.errors import ValidationError

# A username goes into the password file (``user:hash``) and, through the ACL's %u, into a topic:
# no ``:``, ``/``, ``+``, ``#`` or spaces.
DEVICE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
PBKDF2_ITERATIONS = 101  # mosquitto_passwd's default for $7$


@dataclass(frozen=True)
class DeviceCredentials:
    """What a device is configured with: broker login and the one topic it may publish to."""

    sensor: str
    username: str
    password: str
    topic: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def mosquitto_hash(password: str, *, salt: bytes | None = None) -> str:
    """The password's hash as Mosquitto's password file holds it (``$7$101$salt$digest``)."""
    salt = salt if salt is not None else secrets.token_bytes(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, PBKDF2_ITERATIONS)
    encode = base64.b64encode
    return f"$7${PBKDF2_ITERATIONS}${encode(salt).decode()}${encode(digest).decode()}"


def check_device_id(sensor: str) -> str:
    if not DEVICE_ID.match(sensor):
        raise ValidationError.single(
            "a device id is 1-128 letters, digits, '.', '_' or '-' (it is the MQTT username "
            "and the last level of the device's topic)",
            column="sensor",
            value=sensor,
        )
    return sensor


def provision_device(
    session: Session, sensor: str, *, topic_prefix: str, **record: Any
) -> DeviceCredentials:
    """Register the sensor (``record``: name, place_code, group_id, lat, lon) and give it a new
    password; returns the credentials to configure the device with (shown only now)."""
    check_device_id(sensor)
    register_sensors(session, [{"id": sensor, **record}])
    password = secrets.token_urlsafe(24)
    credential = session.get(DeviceCredential, sensor)
    if credential is None:
        credential = DeviceCredential(sensor=sensor, created_at=utc_now())
        session.add(credential)
    credential.password_hash = mosquitto_hash(password)
    credential.created_at = utc_now()
    session.flush()
    return DeviceCredentials(sensor, sensor, password, f"{topic_prefix}/observations/{sensor}")


def password_file(session: Session, *, services: Mapping[str, str] | None = None) -> str:
    """Mosquitto's password file: every provisioned device, plus ``services`` (username →
    password, e.g. the ingester's own login)."""
    lines = [f"{user}:{mosquitto_hash(password)}" for user, password in (services or {}).items()]
    lines += [
        f"{sensor}:{password_hash}"
        for sensor, password_hash in session.execute(
            select(DeviceCredential.sensor, DeviceCredential.password_hash).order_by(
                DeviceCredential.sensor
            )
        )
    ]
    return "\n".join(lines) + "\n"
