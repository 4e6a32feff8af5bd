"""Identity by electronic signature, as egov.kz does it.

Qala issues a challenge bound to the account and to a short lifetime; the resident signs it with
the key of their NCA certificate (a CMS/PKCS#7 SignedData, as NCALayer produces) and sends the
signature back. :func:`signed_iin` then checks, refusing with ``PermissionDeniedError`` and a
clear reason at the first failure:

1. the CMS structure: one signer, its certificate included, the content being this challenge;
2. the signature itself (over the signed attributes, whose message digest must match the content);
3. the certificate chain up to one of the configured root certificates, every link's signature,
   every issuer being a CA, and every certificate within its validity dates;
4. revocation, from the configured CRL file when one is given (its issuer in the chain, its
   signature valid, not past its next update);
5. the IIN, from the subject's serialNumber, where NCA puts ``IIN`` followed by 12 digits.

NCA also issues GOST certificates; only RSA and ECDSA signatures are checked here (the
``cryptography`` library has no GOST), and a GOST one is refused as unsupported.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from asn1crypto import cms
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

from qala.core.errors import ConfigurationError, PermissionDeniedError
from qala.core.messages import msg

CHALLENGE_LIFETIME = timedelta(minutes=10)
CHALLENGE = re.compile(r"^qala-identity:(\d+):(\d+):([A-Za-z0-9_-]+):([0-9a-f]{32})$")
NCA_SERIAL = re.compile(r"^IIN(\d{12})$")
MAX_CHAIN = 6
DIGESTS: dict[str, type[hashes.HashAlgorithm]] = {
    "sha1": hashes.SHA1,
    "sha224": hashes.SHA224,
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}


def refused(reason: str, text: str) -> PermissionDeniedError:
    """A refusal saying ``text`` to API clients and ``identity.refused.<reason>`` to readers."""
    return PermissionDeniedError(text).with_message(msg(f"identity.refused.{reason}"))


def _challenge_mac(body: str, secret_key: str) -> str:
    return hmac.new(
        secret_key.encode("utf-8"), b"qala.accounts.challenge:" + body.encode(), hashlib.sha256
    ).hexdigest()[:32]


def issue_challenge(user_id: int, *, secret_key: str, now: datetime) -> str:
    """A text for the account's holder to sign, valid for :data:`CHALLENGE_LIFETIME`.

    It names the account and its expiry and carries a keyed MAC, so Qala keeps no state and a
    challenge issued to one account is useless to another.
    """
    expires = int((now + CHALLENGE_LIFETIME).timestamp())
    body = f"qala-identity:{user_id}:{expires}:{secrets.token_urlsafe(12)}"
    return f"{body}:{_challenge_mac(body, secret_key)}"


def check_challenge(challenge: str, *, user_id: int, secret_key: str, now: datetime) -> None:
    """Refuse a challenge Qala did not issue to this account, or one that has expired."""
    match = CHALLENGE.match(challenge)
    if match is None or not hmac.compare_digest(
        match.group(4), _challenge_mac(challenge.rsplit(":", 1)[0], secret_key)
    ):
        raise refused("challenge", "this is not a challenge Qala issued; ask for a new one")
    if int(match.group(1)) != user_id:
        raise refused("challenge", "this challenge was issued to another account")
    if int(match.group(2)) < now.timestamp():
        raise refused(
            "challenge_expired", "this challenge has expired; ask for a new one and sign it"
        )


@dataclass(frozen=True)
class TrustAnchors:
    """The root certificates a signer's certificate must chain to, and the revocation list."""

    roots: tuple[x509.Certificate, ...]
    crl: x509.CertificateRevocationList | None = None


def _pem_files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.suffix.lower() in (".pem", ".crt", ".cer"))
    return [path]


def load_trust(roots: Path | None, crl: Path | None) -> TrustAnchors:
    """Root certificates from a PEM file or a folder of them, and a CRL file (PEM or DER)."""
    if roots is None or not roots.exists():
        raise ConfigurationError(
            "electronic signatures cannot be checked: set QALA_SIGNATURE_ROOTS to a PEM file or a "
            "folder of the certification authority's root certificates"
        ).with_message(msg("identity.refused.not_configured"))
    anchors: list[x509.Certificate] = []
    for file in _pem_files(roots):
        anchors.extend(x509.load_pem_x509_certificates(file.read_bytes()))
    if not anchors:
        raise ConfigurationError(f"no root certificate in {roots}")
    revoked = None
    if crl is not None:
        data = crl.read_bytes()
        revoked = (
            x509.load_pem_x509_crl(data)
            if data.lstrip().startswith(b"-----")
            else x509.load_der_x509_crl(data)
        )
    return TrustAnchors(tuple(anchors), revoked)


# ---------------------------------------------------------------------------------------------
# The signature


def _signed_data(signature: bytes) -> cms.SignedData:
    try:
        if signature.lstrip().startswith(b"-----"):
            body = b"".join(
                line.strip()
                for line in signature.strip().splitlines()
                if not line.startswith(b"-----")
            )
            import base64

            signature = base64.b64decode(body, validate=True)
        info = cms.ContentInfo.load(signature, strict=True)
        if info["content_type"].native != "signed_data":
            raise ValueError("not SignedData")
        signed: cms.SignedData = info["content"]
        _ = signed.native  # parses the whole structure now, so a damaged one fails here
    except (ValueError, TypeError, KeyError) as exc:
        raise refused(
            "not_cms", "the signature is not a CMS/PKCS#7 SignedData (as NCALayer produces)"
        ) from exc
    return signed


def _signer(
    signed: cms.SignedData,
) -> tuple[cms.SignerInfo, x509.Certificate, list[x509.Certificate]]:
    """The one signer, its certificate, and the other certificates sent along."""
    if len(signed["signer_infos"]) != 1:
        raise refused("not_cms", "the signature must have exactly one signer")
    signer = signed["signer_infos"][0]
    certificates = [
        x509.load_der_x509_certificate(choice.chosen.dump())
        for choice in signed["certificates"] or []
        if choice.name == "certificate"
    ]
    sid = signer["sid"]
    for certificate in certificates:
        if sid.name == "issuer_and_serial_number":
            wanted = sid.chosen
            if (
                certificate.serial_number == wanted["serial_number"].native
                and certificate.issuer.public_bytes() == wanted["issuer"].dump()
            ):
                break
        else:
            try:
                key_id = certificate.extensions.get_extension_for_class(
                    x509.SubjectKeyIdentifier
                ).value.digest
            except x509.ExtensionNotFound:
                continue
            if key_id == sid.chosen.native:
                break
    else:
        raise refused("not_cms", "the signer's certificate is not included in the signature")
    others = [c for c in certificates if c is not certificate]
    return signer, certificate, others


def _check_signature(signer: cms.SignerInfo, certificate: x509.Certificate, content: bytes) -> None:
    digest_name = signer["digest_algorithm"]["algorithm"].native
    if digest_name not in DIGESTS:
        raise refused("unsupported", f"the digest algorithm {digest_name} is not supported")
    algorithm = DIGESTS[digest_name]()
    signed_attrs = signer["signed_attrs"]
    if signed_attrs.native is None or len(signed_attrs) == 0:
        message = content
    else:
        digests = [
            a["values"][0].native for a in signed_attrs if a["type"].native == "message_digest"
        ]
        hasher = hashes.Hash(algorithm)
        hasher.update(content)
        if len(digests) != 1 or not hmac.compare_digest(digests[0], hasher.finalize()):
            raise refused(
                "other_text", "the signature was made over another text than the challenge"
            )
        # RFC 5652 §5.4: the signature covers the attributes' DER as an explicit SET OF.
        message = b"\x31" + signed_attrs.dump()[1:]
    value = signer["signature"].native
    key = certificate.public_key()
    try:
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(value, message, padding.PKCS1v15(), algorithm)
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(value, message, ec.ECDSA(algorithm))
        else:
            raise refused(
                "unsupported",
                "only RSA and ECDSA certificates are supported for electronic signatures",
            )
    except InvalidSignature:
        raise refused(
            "bad_signature", "the signature does not match the signer's certificate"
        ) from None


# ---------------------------------------------------------------------------------------------
# The certificate chain and revocation


def _within_dates(certificate: x509.Certificate, now: datetime) -> None:
    if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
        subject = certificate.subject.rfc4514_string()
        raise refused(
            "expired",
            f"the certificate {subject} is valid from {certificate.not_valid_before_utc:%Y-%m-%d} "
            f"to {certificate.not_valid_after_utc:%Y-%m-%d}, not now",
        )


def _issued_by(child: x509.Certificate, parent: x509.Certificate) -> bool:
    if child.issuer != parent.subject:
        return False
    try:
        child.verify_directly_issued_by(parent)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    try:
        constraints = parent.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        return False
    return constraints.ca


def _chain(
    leaf: x509.Certificate, others: list[x509.Certificate], trust: TrustAnchors, now: datetime
) -> list[x509.Certificate]:
    """The path from the signer's certificate up to a configured root, every link checked."""
    path = [leaf]
    while len(path) <= MAX_CHAIN:
        current = path[-1]
        _within_dates(current, now)
        root = next((r for r in trust.roots if _issued_by(current, r)), None)
        if root is not None:
            _within_dates(root, now)
            return [*path, root]
        parent = next((c for c in others if c not in path and _issued_by(current, c)), None)
        if parent is None:
            break
        path.append(parent)
    raise refused(
        "untrusted",
        "the certificate is not issued by a trusted certification authority (it does not chain "
        "to a configured root certificate)",
    )


def _check_revocation(chain: list[x509.Certificate], trust: TrustAnchors, now: datetime) -> None:
    crl = trust.crl
    if crl is None:
        return
    issuer = next((c for c in chain if c.subject == crl.issuer), None)
    if issuer is None or not crl.is_signature_valid(issuer.public_key()):  # type: ignore[arg-type]
        raise refused(
            "revocation_list",
            "the configured revocation list is not signed by an authority of this certificate",
        )
    if crl.next_update_utc is not None and crl.next_update_utc < now:
        raise refused(
            "revocation_list",
            "the configured revocation list is out of date; the city must refresh it",
        )
    for certificate in chain:
        if (
            certificate.issuer == crl.issuer
            and crl.get_revoked_certificate_by_serial_number(certificate.serial_number) is not None
        ):
            raise refused("revoked", "the certificate has been revoked")


def _check_key_usage(certificate: x509.Certificate) -> None:
    """A certificate whose key usage leaves out signing (an encryption-only one) signs nothing."""
    try:
        usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return
    if not (usage.digital_signature or usage.content_commitment):
        raise refused("key_usage", "the certificate is not meant for signatures (key usage)")


def iin_of(certificate: x509.Certificate) -> str:
    """The IIN in the subject's serialNumber (NCA writes ``IIN`` and 12 digits)."""
    for attribute in certificate.subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER):
        match = NCA_SERIAL.match(str(attribute.value).strip())
        if match:
            return match.group(1)
    raise refused("no_iin", "the certificate names no IIN (its subject has no serialNumber IIN…)")


def signed_iin(signature: bytes, *, challenge: str, trust: TrustAnchors, now: datetime) -> str:
    """The IIN of the person whose valid certificate signed ``challenge`` (see the module)."""
    now = now.astimezone(UTC)
    signed = _signed_data(signature)
    signer, certificate, others = _signer(signed)
    content = signed["encap_content_info"]["content"].native
    if content is not None and content != challenge.encode("utf-8"):
        raise refused("other_text", "the signed text is not the challenge Qala issued")
    _check_signature(signer, certificate, challenge.encode("utf-8"))
    _check_key_usage(certificate)
    chain = _chain(certificate, others, trust, now)
    _check_revocation(chain, trust, now)
    return iin_of(certificate)
