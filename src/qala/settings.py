"""Typed settings, read from the environment (prefix ``QALA_``) and passed in explicitly.

Nothing reads settings from a global: ``create_app(settings)`` and the CLI build one object and hand
it down, so tests can build their own with a temporary SQLite file.
"""

from __future__ import annotations

import re
import secrets
from pathlib import Path
from typing import Literal, TypedDict
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

Language = Literal["kk", "ru", "en"]
LANGUAGES: tuple[Language, ...] = ("kk", "ru", "en")


def default_database_url() -> str:
    return f"sqlite:///{Path('var') / 'qala.sqlite'}"


SECRET_KEY_FILE = Path("var") / "secret_key"


def persistent_secret_key() -> str:
    """The key kept in ``var/secret_key``, created once with owner-only permissions.

    Every process (the CLI loading data, the server) must share one key: it signs sessions and
    keys the hashes of personal identifiers (IINs), so a key drawn per process would make stored
    hashes unmatchable. Production sets ``QALA_SECRET_KEY`` instead.
    """
    if SECRET_KEY_FILE.is_file():
        return SECRET_KEY_FILE.read_text(encoding="utf-8").strip()
    SECRET_KEY_FILE.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(32)
    SECRET_KEY_FILE.touch(mode=0o600)
    SECRET_KEY_FILE.write_text(key, encoding="utf-8")
    return key


_TILE_HOST = re.compile(r"^(\{s\}\.)?[A-Za-z0-9.-]+(:[0-9]{1,5})?$")


_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_IP_SHAPED = re.compile(r"^\d+\.\d+\.\d+\.\d+$")
_PREFIX = re.compile(r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*/?$")


def bucket_problem(name: str) -> str | None:
    """Why ``name`` breaks S3's bucket naming rules (3-63 lowercase letters, digits, dots and
    hyphens, a letter or digit at each end, no ``..``, not an IP address), or None."""
    if not _BUCKET.match(name):
        return (
            "the bucket name must be 3-63 lowercase letters, digits, dots and hyphens, "
            "starting and ending with a letter or digit"
        )
    if ".." in name or ".-" in name or "-." in name or _IP_SHAPED.match(name):
        return "the bucket name may not hold '..', '.-' or '-.', nor be an IP address"
    if name.startswith(("xn--", "sthree-")) or name.endswith(("-s3alias", "--ol-s3")):
        return "the bucket name uses a prefix or suffix S3 reserves"
    return None


def endpoint_problem(url: str) -> str | None:
    """Why ``url`` cannot be an S3 endpoint (``http(s)://host[:port]``), or None."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError:
        return "the S3 URL is malformed"
    if parts.scheme not in ("http", "https"):
        return "the S3 URL must start with https:// (or http://)"
    if not parts.hostname:
        return "the S3 URL must name a host"
    if "@" in parts.netloc or parts.query or parts.fragment or parts.path not in ("", "/"):
        return "the S3 URL is the endpoint alone (no keys, path or query; the bucket is separate)"
    return None


def tile_origin(url: str) -> str:
    """The origin a tile URL template loads images from, as a CSP source: ``scheme://host[:port]``
    with a ``{s}.`` subdomain placeholder read as ``*.`` (``https://*.tile.openstreetmap.org``).

    Raises ValueError for a template the map cannot use: not http(s), no ``{z}``, ``{x}`` and
    ``{y}``, or a placeholder in the host other than a leading ``{s}.``.
    """
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https"):
        raise ValueError("the tile URL must start with https:// (or http://)")
    if not all(f"{{{name}}}" in url for name in ("z", "x", "y")):
        raise ValueError("the tile URL must contain {z}, {x} and {y}")
    host = parts.netloc.rsplit("@", 1)[-1]
    if not _TILE_HOST.match(host):
        raise ValueError("the tile URL's host may hold only a leading {s}. placeholder")
    return f"{parts.scheme}://{host.replace('{s}.', '*.', 1)}"


class ProxyOptions(TypedDict):
    proxy_headers: bool
    forwarded_allow_ips: list[str] | None


class Settings(BaseSettings):
    """Everything Qala can be configured with. Environment variables: ``QALA_<FIELD>``."""

    # The settings hold secrets (keys, passwords in URLs): errors name the field, never its value.
    model_config = SettingsConfigDict(
        env_prefix="QALA_", env_file=None, extra="ignore", hide_input_in_errors=True
    )

    database_url: str = Field(default_factory=default_database_url)
    """SQLAlchemy URL: SQLite file by default, ``postgresql+psycopg://…`` in production."""

    secret_key: str = Field(default_factory=persistent_secret_key)
    """Signs session cookies and keys the hash of personal identifiers; set it in production
    (without it, one is generated once and kept in ``var/secret_key``)."""

    ledger_key_file: Path = Path("var") / "ledger_key"
    """The Ed25519 private key (PEM) that signs the budgeting ledger's heads, kept outside the
    database so an insider there cannot re-sign a rewritten ledger. Created (mode 0600) on first
    use for development; in production mount it from a secret store and publish its public key."""

    media_dir: Path = Path("var") / "media"
    """Where residents' photos of requests are kept (``QALA_MEDIA_DIR``): re-encoded files
    without EXIF and their thumbnails, under random names. Back it up with the database."""

    media_s3_url: str | None = Field(default=None, max_length=300)
    """An S3-compatible endpoint to keep photos in instead of ``media_dir``
    (``QALA_MEDIA_S3_URL``, e.g. ``https://s3.amazonaws.com`` or a MinIO at
    ``http://127.0.0.1:9000``). Needs ``media_s3_bucket`` and the ``s3`` extra (boto3)."""
    media_s3_bucket: str | None = Field(default=None, max_length=63)
    """The bucket photos go in (``QALA_MEDIA_S3_BUCKET``); keep it private: Qala serves them."""
    media_s3_access_key: str | None = Field(default=None, max_length=256)
    media_s3_secret_key: SecretStr | None = Field(default=None, max_length=256)
    """The storage's keys (``QALA_MEDIA_S3_ACCESS_KEY``, ``QALA_MEDIA_S3_SECRET_KEY``); both or
    neither (then boto3's own chain: ``AWS_*`` variables, an instance role). Never logged."""
    media_s3_region: str = Field(default="us-east-1", pattern=r"^[a-z0-9-]{1,40}$")
    media_s3_prefix: str = Field(default="", max_length=200)
    """Keys start with this (``QALA_MEDIA_S3_PREFIX``, e.g. ``qala/``) when the bucket is shared."""

    @model_validator(mode="after")
    def _media_s3_usable(self) -> Settings:
        url = (self.media_s3_url or "").strip()
        bucket = (self.media_s3_bucket or "").strip()
        if not url:
            if bucket:
                raise ValueError("QALA_MEDIA_S3_BUCKET is set without QALA_MEDIA_S3_URL")
            self.media_s3_url = self.media_s3_bucket = None
            return self
        problem = endpoint_problem(url) or (
            bucket_problem(bucket) if bucket else "QALA_MEDIA_S3_URL needs QALA_MEDIA_S3_BUCKET"
        )
        if problem is None and bool(self.media_s3_access_key) != bool(self.media_s3_secret_key):
            problem = "set both QALA_MEDIA_S3_ACCESS_KEY and QALA_MEDIA_S3_SECRET_KEY, or neither"
        prefix = self.media_s3_prefix.strip()
        if problem is None and prefix and (not _PREFIX.match(prefix) or ".." in prefix):
            problem = "the S3 key prefix may hold letters, digits, '_', '.', '-' and '/' only"
        if problem is not None:
            raise ValueError(problem)
        self.media_s3_url, self.media_s3_bucket = url.rstrip("/"), bucket
        self.media_s3_prefix = prefix.rstrip("/") + "/" if prefix else ""
        return self

    ngsi_context_fetch: bool = False
    """Whether the NGSI-LD API may fetch a remote JSON-LD ``@context`` it does not hold
    (``QALA_NGSI_CONTEXT_FETCH``); off, an unknown context defines no term and names stay as the
    client sent them. On, a context that cannot be retrieved is answered 503."""
    ngsi_context_timeout_s: float = Field(default=5.0, gt=0, le=60)
    """How long fetching one remote ``@context`` may take (``QALA_NGSI_CONTEXT_TIMEOUT_S``)."""
    ngsi_context_files: dict[str, str] = Field(default_factory=dict)
    """Local copies of JSON-LD contexts: URL prefix → file or folder (``QALA_NGSI_CONTEXT_FILES``
    as JSON, e.g. ``{"https://example.org/ctx/": "/srv/contexts"}``), read instead of fetched."""
    ngsi_core_context_file: Path | None = None
    """A copy of the ETSI NGSI-LD core context document (``QALA_NGSI_CORE_CONTEXT_FILE``);
    without it Qala uses its built-in map of the core terms (``operate/jsonld.py``)."""

    shared_data: Path | None = None
    """The shared data folder holding ``kz/…`` (``QALA_SHARED_DATA``, e.g. ``../shared/data``):
    read by the demo and `qala data load-official` for what Qala may not ship (AirData.kz air
    quality, CC BY-NC). Unset, the demo loads only the copies bundled with Qala."""

    default_language: Language = "ru"
    timezone: str = "Asia/Almaty"
    """The IANA zone times are shown in (Kazakhstan has kept one zone, UTC+5, since March 2024)."""
    place_timezones: dict[str, str] = Field(default_factory=dict)
    """Zones of places that differ from ``timezone``, by place id (``QALA_PLACE_TIMEZONES`` as
    JSON, e.g. ``{"aktau": "Asia/Aqtau"}`` for a deployment that keeps the old western zone)."""

    tile_url: str | None = None
    """Map tiles for the tiled (Leaflet) map: a URL template with ``{z}/{x}/{y}`` (and optionally
    ``{s}``), e.g. ``https://tile.openstreetmap.org/{z}/{x}/{y}.png`` or a city's own server. The
    pages' CSP then lets images load from that origin. Unset: the offline SVG maps, and no request
    leaves for any tile host."""
    tile_attribution: str = ""
    """What the tile source asks to be credited with, shown in the map's corner (plain text, e.g.
    ``© OpenStreetMap contributors``)."""

    @field_validator("tile_url")
    @classmethod
    def _tile_url_usable(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        tile_origin(value)
        return value.strip()

    @field_validator("tile_attribution")
    @classmethod
    def _attribution_short(cls, value: str) -> str:
        if len(value) > 300:
            raise ValueError("at most 300 characters")
        return value.strip()

    def zone_of(self, place_id: str | None = None) -> str:
        """The zone a place's times are shown in."""
        return self.place_timezones.get(place_id or "", self.timezone)

    secure_cookies: bool = False
    """Send cookies only over HTTPS; on in production behind TLS."""
    trusted_proxies: str = ""
    """Comma-separated addresses of the reverse proxies whose ``X-Forwarded-For`` and
    ``X-Forwarded-Proto`` are believed (e.g. ``127.0.0.1`` behind a local nginx). Empty: none,
    so no client can choose the address that rate limits count it under."""

    def proxy_options(self) -> ProxyOptions:
        """uvicorn's options for the proxies above."""
        trusted = [a.strip() for a in self.trusted_proxies.split(",") if a.strip()]
        return {"proxy_headers": bool(trusted), "forwarded_allow_ips": trusted or None}

    mqtt_host: str = "127.0.0.1"
    mqtt_port: int = 1883
    mqtt_topic_prefix: str = "qala"
    mqtt_username: str | None = None
    """The ingester's broker login (``deploy/mosquitto/acl`` lets ``qala-ingest`` read)."""
    mqtt_password: str | None = None
    mqtt_receive_maximum: int = Field(default=2000, ge=1, le=65_535)
    """Unacknowledged messages the broker may hand an ingester at once (MQTT 5 Receive Maximum).
    A backlog beyond it waits in the broker's persistent queue (``deploy/mosquitto``'s
    ``max_queued_messages``), not in the ingester's memory; with a broker whose queue is
    Mosquitto's default 1,000, raise it (up to 65,535) or a backlog past both is dropped."""
    operate_provisioning: bool = False
    """Provisioning mode: readings of sensors not registered yet are accepted and register them.
    Off (the default), MQTT readings of unknown sensors go to Operate's dead letters (reason
    ``unknown sensor``) and HTTP batches naming one are refused (422)."""
    operate_retain_days: int | None = Field(default=None, ge=1, le=36_500)
    """Days of raw observations ``qala operate maintain`` keeps (unset: all). Older readings go
    once their hourly and daily roll-ups hold them: whole monthly partitions on PostgreSQL,
    rows in batches on SQLite."""
    operate_temporal_instances: int = Field(default=1000, ge=1, le=100_000)
    """Most instances per attribute an NGSI-LD temporal answer holds; a longer history is cut
    at one time for every attribute and answered 206 with a ``Content-Range`` (clause 6.3.10)."""

    opentelemetry: bool = False
    """Let FastAPI send traces, metrics and logs to the OpenTelemetry providers the process
    configures (``opentelemetry-instrument`` or an SDK set up before start). Off, the app does not
    ask for those providers on every request (a tenth of a cached answer's CPU); Qala's own
    metrics are at ``/metrics`` either way."""

    metrics_token: str | None = None
    """Bearer token a Prometheus scraper sends to read ``/metrics``. Unset, ``/metrics`` answers
    only direct loopback clients (no proxy's forwarding headers); everyone else gets 404."""

    rate_limit_per_minute: int = 120
    """Write requests a client (an address) may make per minute to public endpoints; 0: no limit."""
    trusted_rate_limit_per_minute: int = 3000
    """The same for each trusted application's api_key: one city app posts for many residents."""

    oidc_issuer: str | None = None
    """An OpenID provider residents may verify their IIN with (eGov's or the city's), by its
    issuer URL; its discovery document is read from ``<issuer>/.well-known/openid-configuration``.
    Unset: the ``oidc`` verifier is off."""
    oidc_client_id: str = "qala"
    oidc_client_secret: str | None = None
    oidc_iin_claim: str = "iin"
    """The claim (in the ID token or from the userinfo endpoint) that carries the IIN."""
    oidc_scopes: str = "openid"
    """Scopes asked for besides ``openid``'s claims, space-separated (e.g. ``openid iin``)."""

    signature_roots: Path | None = None
    """Root certificates (a PEM file, or a folder of ``.pem``/``.crt``/``.cer`` files) that a
    resident's signing certificate must chain to: NCA's roots in production."""
    signature_crl: Path | None = None
    """A certificate revocation list (PEM or DER) the city refreshes from the CA; when set, a
    revoked certificate is refused, and so is every signature once the list is out of date."""
    ncalayer_url: str = Field(
        "wss://127.0.0.1:13579/",
        max_length=200,
        pattern=r"^wss?://[A-Za-z0-9.\-]+(:[0-9]{1,5})?/?$",
    )
    """Where the identity page finds NCALayer, the NCA's signing app on the resident's own
    computer (it listens on loopback with its own TLS certificate). The pages' CSP lets scripts
    connect there and nowhere else off the site. Tests point it at a counterpart on ``ws://``."""

    report_builds_per_minute: int = 6
    """Reports (city, rating; HTML or PDF) a client (an address) may have built per minute; a
    report already built for the current data answers from the cache and does not count. A PDF
    costs about a second and a half of a core to build. 0: no limit."""

    max_upload_bytes: int = 50 * 1024 * 1024
    max_request_bytes: int = 1024 * 1024
    """Largest request body of an ordinary route (as Orion's default); routes that take files
    or data sets allow more (``qala.components.accounts.deps``'s body sizes)."""
    public_base_url: str = "http://127.0.0.1:8000"

    smtp_url: str | None = None
    """Where notification e-mail goes: ``smtp://user:password@host:port`` (``?starttls=true`` to
    upgrade the connection) or ``smtps://host:port``. Unset: e-mail waits in the outbox."""
    mail_from: str = "Qala <noreply@qala.local>"
    sms_gateway_url: str | None = None
    """The SMS provider's HTTP endpoint (JSON POST); unset: SMS wait in the outbox."""
    sms_gateway_key: str | None = None
    notify_in_server: bool = True
    """`qala serve` delivers notifications itself; turn off where `qala notify worker` runs."""
    notify_poll_seconds: float = 2.0
    notify_lease_seconds: float = 120.0
    """How long a sender holds a claimed message before another may take it over (longer than
    ``notify_send_timeout``)."""
    notify_send_timeout: float = 30.0
    notify_max_attempts: int = 10
    notify_backoff_seconds: float = 30.0
    """The wait after the first failure; doubled after each further one (at most 6 hours)."""
