"""Identity by electronic signature against a test NCA made in the tests: a good signature gives
the certificate's IIN; an expired, revoked or wrongly chained certificate, a signature of another
text, a stale or foreign challenge, a tampered signature and an out-of-date CRL are each refused."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from tests.components.accounts import nca

from qala.components.accounts.signature import (
    TrustAnchors,
    check_challenge,
    issue_challenge,
    load_trust,
    signed_iin,
)
from qala.core.errors import ConfigurationError, PermissionDeniedError

NOW = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
IIN = "900517401231"
KEY = "test-secret"


@dataclass
class Pki:
    root: nca.Authority
    national: nca.Authority
    aigerim: nca.Authority

    def trust(self, crl: nca.x509.CertificateRevocationList | None = None) -> TrustAnchors:
        return TrustAnchors((self.root.certificate,), crl)


@pytest.fixture(scope="module")
def pki() -> Pki:
    root = nca.root("root", NOW)
    national = nca.intermediate("national", root, NOW)
    return Pki(root, national, nca.resident(IIN, national, NOW))


def test_a_good_signature_gives_the_certificates_iin(pki: Pki) -> None:
    challenge = issue_challenge(7, secret_key=KEY, now=NOW)
    check_challenge(challenge, user_id=7, secret_key=KEY, now=NOW + timedelta(minutes=5))
    signature = nca.sign(challenge, pki.aigerim, pki.national.certificate)
    assert signed_iin(signature, challenge=challenge, trust=pki.trust(), now=NOW) == IIN
    detached = nca.sign(challenge, pki.aigerim, pki.national.certificate, detached=True)
    assert signed_iin(detached, challenge=challenge, trust=pki.trust(), now=NOW) == IIN


def test_an_expired_certificate_is_refused(pki: Pki) -> None:
    old = nca.resident(
        IIN, pki.national, NOW, not_before=timedelta(days=-400), not_after=timedelta(days=-35)
    )
    signature = nca.sign("c", old, pki.national.certificate)
    with pytest.raises(PermissionDeniedError, match="not now") as refused:
        signed_iin(signature, challenge="c", trust=pki.trust(), now=NOW)
    assert refused.value.message is not None
    assert refused.value.message.key == "identity.refused.expired"


def test_a_revoked_certificate_is_refused_and_a_stale_list_refuses_all(pki: Pki) -> None:
    signature = nca.sign("c", pki.aigerim, pki.national.certificate)
    fresh = nca.revocation_list(pki.national, [], NOW, next_update=timedelta(days=1))
    assert signed_iin(signature, challenge="c", trust=pki.trust(fresh), now=NOW) == IIN
    revoked = nca.revocation_list(
        pki.national, [pki.aigerim.certificate], NOW, next_update=timedelta(days=1)
    )
    with pytest.raises(PermissionDeniedError, match="revoked"):
        signed_iin(signature, challenge="c", trust=pki.trust(revoked), now=NOW)
    stale = nca.revocation_list(pki.national, [], NOW, next_update=timedelta(days=-1))
    with pytest.raises(PermissionDeniedError, match="out of date"):
        signed_iin(signature, challenge="c", trust=pki.trust(stale), now=NOW)
    forged = nca.revocation_list(
        nca.intermediate("forger", nca.root("other", NOW), NOW), [], NOW, next_update=timedelta(1)
    )
    with pytest.raises(PermissionDeniedError, match="revocation list"):
        signed_iin(signature, challenge="c", trust=pki.trust(forged), now=NOW)


def test_a_wrongly_chained_certificate_is_refused(pki: Pki) -> None:
    # An authority with the national centre's very name, under a root nobody configured.
    impostor = nca.Authority(
        nca._certificate(
            pki.national.certificate.subject,
            nca.key("impostor").public_key(),
            nca.root("rogue", NOW),
            nca.key("impostor"),
            ca=True,
            not_before=NOW - timedelta(days=1),
            not_after=NOW + timedelta(days=100),
        ),
        nca.key("impostor"),
    )
    fake = nca.resident(IIN, impostor, NOW, label="fake")
    for chain in ([impostor.certificate], []):
        with pytest.raises(PermissionDeniedError, match="trusted certification authority"):
            signed_iin(nca.sign("c", fake, *chain), challenge="c", trust=pki.trust(), now=NOW)
    # The resident's certificate itself cannot pose as an authority.
    under_resident = nca.resident(IIN, pki.aigerim, NOW, label="under")
    signature = nca.sign("c", under_resident, pki.aigerim.certificate, pki.national.certificate)
    with pytest.raises(PermissionDeniedError, match="trusted certification authority"):
        signed_iin(signature, challenge="c", trust=pki.trust(), now=NOW)


def test_a_certificate_not_meant_for_signing_is_refused(pki: Pki) -> None:
    # A CA certificate's key usage is certificate and CRL signing only.
    signature = nca.sign("c", pki.national, pki.national.certificate)
    with pytest.raises(PermissionDeniedError, match="key usage"):
        signed_iin(signature, challenge="c", trust=pki.trust(), now=NOW)


def test_a_signature_of_another_text_is_refused(pki: Pki) -> None:
    mine = issue_challenge(7, secret_key=KEY, now=NOW)
    other = issue_challenge(7, secret_key=KEY, now=NOW)
    for detached in (False, True):
        signature = nca.sign(other, pki.aigerim, pki.national.certificate, detached=detached)
        with pytest.raises(PermissionDeniedError, match=r"challenge|another text"):
            signed_iin(signature, challenge=mine, trust=pki.trust(), now=NOW)


def test_a_tampered_signature_is_refused(pki: Pki) -> None:
    signature = bytearray(nca.sign("c", pki.aigerim, pki.national.certificate))
    signature[-10] ^= 0xFF  # inside the signature value, the DER's last 256 bytes
    with pytest.raises(PermissionDeniedError, match="does not match"):
        signed_iin(bytes(signature), challenge="c", trust=pki.trust(), now=NOW)
    with pytest.raises(PermissionDeniedError, match="CMS"):
        signed_iin(b"not a signature", challenge="c", trust=pki.trust(), now=NOW)


def test_challenges_are_the_accounts_own_and_short_lived() -> None:
    challenge = issue_challenge(7, secret_key=KEY, now=NOW)
    with pytest.raises(PermissionDeniedError, match="another account"):
        check_challenge(challenge, user_id=8, secret_key=KEY, now=NOW)
    with pytest.raises(PermissionDeniedError, match="expired"):
        check_challenge(challenge, user_id=7, secret_key=KEY, now=NOW + timedelta(minutes=11))
    forged = challenge.replace("qala-identity:7:", "qala-identity:8:")
    with pytest.raises(PermissionDeniedError, match="not a challenge Qala issued"):
        check_challenge(forged, user_id=8, secret_key=KEY, now=NOW)


def test_roots_and_the_crl_load_from_files(pki: Pki, tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="QALA_SIGNATURE_ROOTS"):
        load_trust(None, None)
    folder = tmp_path / "roots"
    folder.mkdir()
    (folder / "root.pem").write_bytes(nca.pem(pki.root.certificate))
    crl = nca.revocation_list(pki.national, [], NOW, next_update=timedelta(days=1))
    (tmp_path / "nca.crl").write_bytes(crl.public_bytes(serialization.Encoding.DER))
    trust = load_trust(folder, tmp_path / "nca.crl")
    assert trust.roots == (pki.root.certificate,) and trust.crl == crl
