"""A test certification authority shaped like Kazakhstan's NCA, made with ``cryptography``.

NCA's chain is a root (КӨК/КУЦ) over the national authority (НУЦ) over residents' certificates,
whose subject carries the surname, the given name, ``C=KZ`` and ``serialNumber=IIN…``; residents
sign CMS/PKCS#7 SignedData with NCALayer. Every key here is RSA, made once per test session.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@cache
def key(label: str) -> rsa.RSAPrivateKey:
    """One RSA key per label for the whole test session (key generation is the slow part)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@dataclass(frozen=True)
class Authority:
    certificate: x509.Certificate
    private_key: rsa.RSAPrivateKey


def _name(common_name: str, **more: str) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    oids = {
        "surname": NameOID.SURNAME,
        "given": NameOID.GIVEN_NAME,
        "serial": NameOID.SERIAL_NUMBER,
    }
    attributes += [x509.NameAttribute(oids[k], v) for k, v in more.items()]
    attributes.append(x509.NameAttribute(NameOID.COUNTRY_NAME, "KZ"))
    return x509.Name(attributes)


def _certificate(
    subject: x509.Name,
    public_key: rsa.RSAPublicKey,
    issuer: Authority | None,
    own_key: rsa.RSAPrivateKey,
    *,
    ca: bool,
    not_before: datetime,
    not_after: datetime,
) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.certificate.subject if issuer else subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
    else:
        builder = builder.add_extension(
            x509.KeyUsage(True, True, False, False, False, False, False, False, False),
            critical=True,
        ).add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
    return builder.sign(issuer.private_key if issuer else own_key, hashes.SHA256())


def root(label: str, now: datetime) -> Authority:
    private = key(label)
    certificate = _certificate(
        _name(f"КОРНЕВОЙ УЦ РК {label}"),
        private.public_key(),
        None,
        private,
        ca=True,
        not_before=now - timedelta(days=3650),
        not_after=now + timedelta(days=3650),
    )
    return Authority(certificate, private)


def intermediate(label: str, parent: Authority, now: datetime) -> Authority:
    private = key(label)
    certificate = _certificate(
        _name(f"НУЦ РК (RSA) {label}"),
        private.public_key(),
        parent,
        private,
        ca=True,
        not_before=now - timedelta(days=1000),
        not_after=now + timedelta(days=1000),
    )
    return Authority(certificate, private)


def resident(
    iin: str,
    issuer: Authority,
    now: datetime,
    *,
    not_before: timedelta = timedelta(days=-30),
    not_after: timedelta = timedelta(days=335),
    label: str = "resident",
) -> Authority:
    """A resident's signing certificate, valid from ``now + not_before`` to ``now + not_after``."""
    private = key(label)
    certificate = _certificate(
        _name("ЖАНБОЛАТОВА АЙГЕРІМ", surname="ЖАНБОЛАТОВА", given="АЙГЕРІМ", serial=f"IIN{iin}"),
        private.public_key(),
        issuer,
        private,
        ca=False,
        not_before=now + not_before,
        not_after=now + not_after,
    )
    return Authority(certificate, private)


def sign(text: str, signer: Authority, *chain: x509.Certificate, detached: bool = False) -> bytes:
    """CMS SignedData over ``text`` in DER, as NCALayer's ``createCMSSignatureFromBase64`` gives."""
    builder = (
        pkcs7.PKCS7SignatureBuilder()
        .set_data(text.encode("utf-8"))
        .add_signer(signer.certificate, signer.private_key, hashes.SHA256())
    )
    for certificate in chain:
        builder = builder.add_certificate(certificate)
    options = [pkcs7.PKCS7Options.DetachedSignature] if detached else []
    return builder.sign(serialization.Encoding.DER, options)


def revocation_list(
    issuer: Authority, revoked: list[x509.Certificate], now: datetime, *, next_update: timedelta
) -> x509.CertificateRevocationList:
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer.certificate.subject)
        .last_update(now - timedelta(days=1))
        .next_update(now + next_update)
    )
    for certificate in revoked:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(certificate.serial_number)
            .revocation_date(now - timedelta(hours=1))
            .build()
        )
    return builder.sign(issuer.private_key, hashes.SHA256())


def pem(*certificates: x509.Certificate) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certificates)
