"""The keys and signed heads of the budgeting ledger, apart from the ledger itself so that a
process can get ready to sign (at start-up) without loading the ledger's tables; ``cryptography``
is imported only when a key is first used.

A head is signed with Ed25519 over :func:`head_message`; the private key lives in a file named by
``QALA_LEDGER_KEY_FILE`` (never in the database), the public key is published
(``GET /api/v1/budgeting/ledger/public-key``) and given to verifiers (``QALA_LEDGER_PUBLIC_KEY``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qala.core.errors import ConfigurationError, ValidationError
from qala.runtime import Context
from qala.store.database import Database

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )

log = logging.getLogger(__name__)


def canonical_json(value: Any) -> str:
    """The one text form that is hashed: sorted keys, no spaces, UTF-8, no floats."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


HEAD_PREFIX = b"qala-ledger-tree-head-v1\n"
"""Starts every signed message, so a ledger signature can never be taken for another one."""
SIGNER = "budgeting.ledger_signer"
"""Where the signer sits: in ``Session.info`` of the database's sessions and in ``Context.extras``."""


def head_message(size: int, root_hash: str, timestamp: str) -> bytes:
    """The bytes an Ed25519 head signature covers: the prefix, then canonical JSON of
    ``{"root_hash": hex, "size": n, "timestamp": ISO text}``."""
    body = {"root_hash": root_hash, "size": size, "timestamp": timestamp}
    return HEAD_PREFIX + canonical_json(body).encode("utf-8")


@dataclass(frozen=True)
class SignedHead:
    """A published tree head: entries 1…``size`` hash to ``root_hash`` (hex); ``signature`` is
    base64 Ed25519 over :func:`head_message`. One JSON line of a witness file."""

    size: int
    root_hash: str
    timestamp: str
    signature: str

    def message(self) -> bytes:
        return head_message(self.size, self.root_hash, self.timestamp)

    def as_dict(self) -> dict[str, Any]:
        return {
            "size": self.size,
            "root_hash": self.root_hash,
            "timestamp": self.timestamp,
            "signature": self.signature,
        }

    @classmethod
    def from_dict(cls, data: Any) -> SignedHead:
        """A head read back from JSON (a witness file); refuses anything not shaped like one."""
        fields = {"size": int, "root_hash": str, "timestamp": str, "signature": str}
        if (
            not isinstance(data, dict)
            or any(type(data.get(name)) is not kind for name, kind in fields.items())
            or data["size"] < 1
            or len(data["root_hash"]) != 64
            or set(data["root_hash"]) - set("0123456789abcdef")
        ):
            raise ValidationError.single(
                "a signed head is an object with size (a positive integer), root_hash (64 hex "
                "digits), timestamp and signature (text)"
            )
        return cls(data["size"], data["root_hash"], data["timestamp"], data["signature"])


class LedgerPublicKey:
    """The key anyone checks head signatures with (Ed25519; published as base64 of its 32 raw
    bytes, or PEM)."""

    def __init__(self, key: Ed25519PublicKey) -> None:
        self.key = key

    @classmethod
    def parse(cls, text: str) -> LedgerPublicKey:
        """From base64 of the raw key, a PEM block, or the path of a file holding either."""
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
        from cryptography.hazmat.primitives.serialization import load_pem_public_key

        text = text.strip()
        if "-----BEGIN" not in text and not _looks_like_base64_key(text):
            path = Path(text).expanduser()
            if not path.is_file():
                raise ConfigurationError(
                    f"the ledger public key {text!r} is neither a key (base64, PEM) nor a file"
                )
            text = path.read_text(encoding="utf-8").strip()
        try:
            if "-----BEGIN" in text:
                key = load_pem_public_key(text.encode("ascii"))
                if not isinstance(key, Ed25519PublicKey):
                    raise ConfigurationError("the ledger public key is not an Ed25519 key")
                return cls(key)
            return cls(Ed25519PublicKey.from_public_bytes(base64.b64decode(text, validate=True)))
        except (ValueError, UnicodeEncodeError) as exc:
            raise ConfigurationError(f"the ledger public key is malformed ({exc})") from exc

    @property
    def text(self) -> str:
        """Base64 of the 32 raw bytes (what ``QALA_LEDGER_PUBLIC_KEY`` holds)."""
        from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

        return base64.b64encode(self.key.public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()

    def verifies(self, head: SignedHead) -> bool:
        """Is ``head`` signed by this key?"""
        from cryptography.exceptions import InvalidSignature

        try:
            self.key.verify(base64.b64decode(head.signature, validate=True), head.message())
        except (InvalidSignature, ValueError):
            return False
        return True

    def as_dict(self) -> dict[str, str]:
        from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

        pem = self.key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
        return {
            "algorithm": "Ed25519",
            "public_key": self.text,
            "pem": pem.decode("ascii"),
            "key_id": hashlib.sha256(base64.b64decode(self.text)).hexdigest(),
        }


def _looks_like_base64_key(text: str) -> bool:
    try:
        return len(base64.b64decode(text, validate=True)) == 32
    except ValueError:
        return False


class LedgerSigner:
    """The ledger's private key, read from its file on first use (and created there, mode 0600,
    when there is none: development and ``make demo``; production mounts it from a secret store).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._private: Ed25519PrivateKey | None = None

    def _key(self) -> Ed25519PrivateKey:
        if self._private is None:
            self._private = _load_or_create_key(self.path)
        return self._private

    def sign(self, size: int, root_hash: str, timestamp: str) -> SignedHead:
        signature = self._key().sign(head_message(size, root_hash, timestamp))
        return SignedHead(size, root_hash, timestamp, base64.b64encode(signature).decode())

    def public_key(self) -> LedgerPublicKey:
        return LedgerPublicKey(self._key().public_key())


def _load_or_create_key(path: Path) -> Ed25519PrivateKey:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import (
        Encoding,
        NoEncryption,
        PrivateFormat,
        load_pem_private_key,
    )

    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        created = Ed25519PrivateKey.generate()
        pem = created.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
        try:  # O_EXCL: of two processes starting at once, one writes and both read its key
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(descriptor, "wb") as file:
                file.write(pem)
            log.warning("created a new ledger signing key in %s (keep it secret, back it up)", path)
    try:
        key = load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise ConfigurationError(f"cannot read the ledger signing key {path}: {exc}") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigurationError(f"the ledger signing key {path} is not an Ed25519 key")
    return key


def use_signer(database: Database, signer: LedgerSigner) -> None:
    """Let every session of ``database`` sign the heads it appends with ``signer``."""
    info = dict(database.sessions.kw.get("info") or {})
    info[SIGNER] = signer
    database.sessions.configure(info=info)


def ledger_signer(context: Context) -> LedgerSigner:
    """The signer of ``context.settings.ledger_key_file``, attached to the context's database
    (the budgeting component does this at start-up; appends without it are refused)."""
    signer = context.extras.get(SIGNER)
    if not isinstance(signer, LedgerSigner) or signer.path != context.settings.ledger_key_file:
        signer = LedgerSigner(context.settings.ledger_key_file)
        context.extras[SIGNER] = signer
        use_signer(context.database, signer)
    return signer


def configured_public_key(context: Context, text: str | None) -> LedgerPublicKey | None:
    """The key to verify with: ``text`` when given (``QALA_LEDGER_PUBLIC_KEY``: base64, PEM or a
    file), else the public half of the configured key file if this machine holds it; never a key
    read from the database."""
    if text:
        return LedgerPublicKey.parse(text)
    if context.settings.ledger_key_file.is_file():
        return ledger_signer(context).public_key()
    return None


def read_witness(path: Path) -> list[SignedHead]:
    """The heads saved in a witness file (JSON lines, as ``qala budget ledger head --save``
    writes them); a line that is not a signed head is refused with its number."""
    heads = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ConfigurationError(f"cannot read the witness file {path}: {exc}") from exc
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            heads.append(SignedHead.from_dict(json.loads(line)))
        except (ValueError, ValidationError) as exc:
            raise ValidationError.single(
                f"not a signed head ({exc})", file=str(path), row=number
            ) from None
    return heads


def save_witness(path: Path, head: SignedHead) -> None:
    """Append ``head`` to a witness file (one JSON line)."""
    with path.open("a", encoding="utf-8") as file:
        file.write(json.dumps(head.as_dict(), sort_keys=True) + "\n")
