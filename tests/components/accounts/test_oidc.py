"""The OpenID Connect verifier against a real OpenID provider process.

panva's ``oidc-provider`` (npm, a certified OpenID provider) runs under Node on loopback; the test
signs in on its development pages as a resident would, and Qala binds the IIN the provider vouches
for. Refused: a provider naming another issuer, an ID token whose signature does not match, an ID
token presented for another login (its nonce), and the same answer taken twice.
"""

from __future__ import annotations

import hashlib
import html
import json
import re
import shutil
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient
from tests.conftest import need

from qala.api import create_app
from qala.settings import Settings

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = Path(__file__).with_name("oidc_provider.mjs")
CALLBACK = "http://testserver/api/v1/auth/identity/oidc/callback"
ACCOUNTS = {"aigerim": "900101300123", "bolat": "850505400456"}
SECRET = "qala-test-secret"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def issuer() -> Iterator[str]:
    node = shutil.which("node")
    need(node, "Node.js is not installed (apt-get install -y nodejs npm)")
    need(
        (ROOT / "node_modules" / "oidc-provider").is_dir(),
        "npm's oidc-provider is not installed (python scripts/build_assets.py runs npm ci)",
    )
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [str(node), str(SCRIPT), str(port), url, CALLBACK, json.dumps(ACCOUNTS)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    said = [process.stdout.readline() for _ in range(1)]
    while "ready" not in said[-1] and said[-1] and len(said) < 20:  # warnings come first
        said.append(process.stdout.readline())
    assert "ready" in said[-1], f"the OpenID provider did not start: {''.join(said)}"
    yield url
    process.terminate()
    process.wait(10)


@dataclass
class Resident:
    client: TestClient
    app: Any


def _resident(tmp_path: Path, issuer: str, username: str) -> Resident:
    from qala.components.accounts.services import create_user, issue_token

    settings = Settings(
        database_url=f"sqlite:///{tmp_path}/qala.sqlite",
        secret_key="oidc-tests",
        oidc_issuer=issuer,
        oidc_client_secret=SECRET,
        oidc_scopes="openid iin",
        public_base_url="http://testserver",
    )
    app = create_app(settings)
    with app.state.context.database.transaction() as session:
        user = create_user(session, username=username, password="long enough pw", role="citizen")
        token = issue_token(session, user)
    client = TestClient(app, headers={"Authorization": f"Bearer {token}"})
    return Resident(client, app)


@pytest.fixture
def resident(tmp_path: Path, issuer: str) -> Iterator[Resident]:
    found = _resident(tmp_path, issuer, "resident")
    yield found
    found.app.state.context.database.dispose()


def _sign_in(authorization_url: str, login: str) -> str:
    """Sign in at the provider's pages and consent; the URL it sends the browser back to."""
    form = re.compile(r'<form[^>]*action="([^"]+)"[^>]*>(.*?)</form>', re.S)
    tag = re.compile(r"<input[^>]*>")
    name, value = re.compile(r'name="([^"]+)"'), re.compile(r'value="([^"]*)"')
    with httpx.Client(follow_redirects=False, timeout=10) as browser:
        answer = browser.get(authorization_url)
        for _ in range(12):
            if answer.is_redirect:
                target = urljoin(str(answer.url), answer.headers["location"])
                if target.startswith(CALLBACK):
                    return target
                answer = browser.get(target)
                continue
            found = form.search(answer.text)
            assert found, (
                f"no form on the provider's page: {answer.status_code} {answer.text[:300]}"
            )
            values = {}
            for field in tag.findall(found[2]):
                named, valued = name.search(field), value.search(field)
                if named:
                    values[named[1]] = html.unescape(valued[1]) if valued else ""
            values.update({"login": login, "password": "any"} if "login" in values else {})
            answer = browser.post(urljoin(str(answer.url), html.unescape(found[1])), data=values)
    raise AssertionError("the provider never sent the browser back")


def _start(resident: Resident) -> str:
    answer = resident.client.get("/api/v1/auth/identity/oidc/start")
    assert answer.status_code == 200, answer.text
    return str(answer.json()["authorization_url"])


def _back(resident: Resident, callback_url: str) -> httpx.Response:
    parts = urlsplit(callback_url)
    return resident.client.get(f"{parts.path}?{parts.query}")


def test_a_resident_verified_by_the_provider_gets_the_iin_bound(resident: Resident) -> None:
    callback = _sign_in(_start(resident), "aigerim")
    answer = _back(resident, callback)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"bound": True, "methods": ["oidc"]}
    mine = resident.client.get("/api/v1/auth/identity").json()
    assert mine == {"bound": True, "methods": ["oidc"]}


def test_the_same_answer_is_taken_once(resident: Resident) -> None:
    callback = _sign_in(_start(resident), "aigerim")
    assert _back(resident, callback).status_code == 200
    again = _back(resident, callback)
    assert again.status_code == 403 and "used already" in again.json()["detail"]


def _another_account(resident: Resident, username: str) -> Resident:
    """A second citizen account on the same site."""
    from qala.components.accounts.services import create_user, issue_token

    with resident.app.state.context.database.transaction() as session:
        user = create_user(session, username=username, password="long enough pw", role="citizen")
        token = issue_token(session, user)
    headers = {"Authorization": f"Bearer {token}"}
    return Resident(TestClient(resident.app, headers=headers), resident.app)


def test_an_answer_for_another_account_is_refused(resident: Resident) -> None:
    callback = _sign_in(_start(resident), "aigerim")
    refused = _back(_another_account(resident, "other"), callback)
    assert (
        refused.status_code == 403 and "not started from your account" in refused.json()["detail"]
    )


def test_an_iin_bound_to_another_account_is_refused(resident: Resident) -> None:
    assert _back(resident, _sign_in(_start(resident), "aigerim")).status_code == 200
    second = _another_account(resident, "second")
    refused = _back(second, _sign_in(_start(second), "aigerim"))
    assert refused.status_code == 409 and "another account" in refused.json()["detail"]


def test_a_provider_naming_another_issuer_is_refused(tmp_path: Path, issuer: str) -> None:
    elsewhere = issuer.replace("127.0.0.1", "localhost")  # the same server, another issuer name
    found = _resident(tmp_path, elsewhere, "resident")
    refused = found.client.get("/api/v1/auth/identity/oidc/start")
    assert refused.status_code == 403 and "names the issuer" in refused.json()["detail"]
    found.app.state.context.database.dispose()


def _id_token(resident: Resident) -> tuple[str, str]:
    """A real ID token from the provider, and the nonce of the login it was issued for."""
    from qala.components.accounts.models import OidcLogin

    callback = _sign_in(_start(resident), "bolat")
    query = parse_qs(urlsplit(callback).query)
    digest = hashlib.sha256(query["state"][0].encode()).hexdigest()
    with resident.app.state.context.database.session() as session:
        login = session.get(OidcLogin, digest)
        assert login is not None
        nonce, verifier = login.nonce, login.code_verifier
    document = httpx.get(
        f"{resident.app.state.context.settings.oidc_issuer}/.well-known/openid-configuration"
    ).json()
    tokens = httpx.post(
        document["token_endpoint"],
        data={
            "grant_type": "authorization_code",
            "code": query["code"][0],
            "redirect_uri": CALLBACK,
            "code_verifier": verifier,
        },
        auth=("qala", SECRET),
    ).json()
    return str(tokens["id_token"]), nonce


def _claims(resident: Resident, token: str, nonce: str) -> dict[str, Any]:
    from qala.components.accounts.oidc import id_token_claims, provider_document

    context = resident.app.state.context
    return id_token_claims(
        token,
        document=provider_document(context.settings),
        settings=context.settings,
        nonce=nonce,
        now=context.clock(),
    )


def test_an_id_token_with_a_bad_signature_or_another_logins_nonce_is_refused(
    resident: Resident,
) -> None:
    from qala.core.errors import PermissionDeniedError

    token, nonce = _id_token(resident)
    assert _claims(resident, token, nonce)["sub"] == "bolat"  # the real token passes
    header, payload, signature = token.split(".")
    flipped = signature[:-4] + ("AAAA" if signature[-4:] != "AAAA" else "BBBB")
    with pytest.raises(PermissionDeniedError, match="refused"):
        _claims(resident, f"{header}.{payload}.{flipped}", nonce)
    with pytest.raises(PermissionDeniedError, match="nonce"):
        _claims(resident, token, "the-nonce-of-another-login")
