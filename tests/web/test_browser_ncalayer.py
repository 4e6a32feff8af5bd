"""The identity page in Debian's Chromium, against a counterpart of NCALayer on loopback.

NCALayer (the NCA's signing app) listens on ``wss://127.0.0.1:13579/`` and speaks JSON: it greets
with ``{"result": {"version": …}}``; ``{"module": "kz.gov.pki.knca.commonUtils", "method":
"createCAdESFromBase64", "args": [storage, keyType, base64 data, attach]}`` is answered with
``{"code": "200", "responseObject": base64 CMS}``. The counterpart here is a ``websockets`` server
that signs with the NCA-shaped test certificates of ``tests/components/accounts/nca.py`` through
``cryptography``'s PKCS#7 builder; the site runs with ``QALA_NCALAYER_URL`` pointing at it
(``ws://`` on loopback: NCALayer's own TLS certificate is not part of what is tested).

One resident walks, in Kazakh: the process page's link → sign → verified (the IIN masked); an
expired certificate → the translated refusal; another account signing the same IIN → refused as
bound elsewhere; NCALayer not running → the translated explanation with the install link; and the
fallback of a signature file made elsewhere.
"""

from __future__ import annotations

import base64
import json
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from tests.components.accounts import nca
from tests.conftest import require_module
from tests.web.conftest import _free_port, shot
from tests.web.crawl import latin_words
from tests.web.test_every_word import ALLOWED

from qala.core.i18n import Translator
from qala.runtime import Context
from qala.settings import Settings

pytestmark = [pytest.mark.browser, pytest.mark.slow]

IIN = "900517401231"
OTHER_IIN = "900517401431"
PASSWORD = "a long password 2026"
KK = Translator("kk")


@dataclass
class Ncalayer:
    """A loopback server speaking NCALayer's protocol; ``signer`` is the key its user picks."""

    port: int
    signer: nca.Authority
    chain: tuple[Any, ...]
    requests: list[dict[str, Any]] = field(default_factory=list)
    server: Any = None
    thread: threading.Thread | None = None

    def handle(self, connection: Any) -> None:
        connection.send(json.dumps({"result": {"version": "1.4"}}))
        for message in connection:
            request = json.loads(message)
            self.requests.append(request)
            storage, key_type, data, attach = request["args"]
            if (
                request.get("module") != "kz.gov.pki.knca.commonUtils"
                or request.get("method") != "createCAdESFromBase64"
                or storage != "PKCS12"
                or key_type != "SIGNATURE"
            ):
                connection.send(json.dumps({"code": "500", "message": "unknown request"}))
                continue
            signed = nca.sign(
                base64.b64decode(data).decode("utf-8"),
                self.signer,
                *self.chain,
                detached=not attach,
            )
            answer = {"code": "200", "responseObject": base64.b64encode(signed).decode()}
            connection.send(json.dumps(answer))

    def start(self) -> None:
        from websockets.sync.server import serve

        self.server = serve(self.handle, "127.0.0.1", self.port)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        assert self.thread is not None
        self.thread.join(timeout=10)


@dataclass
class Site:
    url: str
    context: Context
    process: str
    ncalayer: Ncalayer
    good: nca.Authority
    expired: nca.Authority
    national: nca.Authority


@pytest.fixture(scope="module")
def site(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    require_module("websockets", "the `dev` extra (websockets) is not installed")
    import uvicorn

    from qala.api.app import create_app
    from qala.components.accounts.services import create_user
    from qala.registry import COMPONENTS

    now = datetime.now(UTC)
    root = nca.root("page-root", now)
    national = nca.intermediate("page-national", root, now)
    good = nca.resident(IIN, national, now, label="page-good")
    expired = nca.resident(
        IIN, national, now, not_before=timedelta(days=-400), not_after=timedelta(days=-20)
    )
    folder = tmp_path_factory.mktemp("ncalayer")
    (folder / "roots.pem").write_bytes(nca.pem(root.certificate))
    shutil.copy(sqlite_template, folder / "qala.sqlite")
    ncalayer = Ncalayer(_free_port(), good, (national.certificate,))
    settings = Settings(
        database_url=f"sqlite:///{folder / 'qala.sqlite'}",
        secret_key="ncalayer-tests",
        signature_roots=folder / "roots.pem",
        ncalayer_url=f"ws://127.0.0.1:{ncalayer.port}/",
    )
    context = Context.from_settings(settings)
    app = create_app(settings, context=context)
    budgeting = next(c for c in COMPONENTS if c.name == "budgeting")
    assert budgeting.demo_loader is not None
    budgeting.demo_loader(context)
    with context.database.transaction() as session:
        for name in ("aigerim", "nurlan", "dana"):
            create_user(session, username=name, password=PASSWORD)
        code = session.scalar(text("SELECT code FROM budgeting_process WHERE phase = 'voting'"))
        session.execute(
            text("UPDATE budgeting_process SET verifier = 'signature' WHERE code = :code"),
            {"code": code},
        )
    ncalayer.start()
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield Site(f"http://127.0.0.1:{port}", context, str(code), ncalayer, good, expired, national)
    server.should_exit = True
    thread.join(timeout=10)
    ncalayer.stop()
    context.database.dispose()


@pytest.fixture
def phone(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="kk-KZ")
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


def sign_in(page: Any, site: Site, username: str) -> None:
    page.goto(f"{site.url}/login?lang=kk")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("form[action='/login'] button[type=submit]")
    page.wait_for_load_state()
    assert page.locator(".who").count() == 1


def open_verify_page(page: Any, site: Site) -> str:
    """From the process page's link to the identity page; the challenge it shows."""
    page.goto(f"{site.url}/budgeting/{site.process}?lang=kk")
    page.click("#verify-link")
    page.wait_for_url(f"**/budgeting/{site.process}/verify")
    page.wait_for_function(
        "() => document.getElementById('challenge').textContent.startsWith('qala-')"
    )
    return str(page.locator("#challenge").inner_text()).strip()


def fits_the_phone(page: Any) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page is {width} px wide on a 390 px phone"


def bound_methods(site: Site, username: str) -> set[str]:
    from qala.components.accounts.identity import verified_methods
    from qala.components.accounts.models import User

    with site.context.database.session() as session:
        user = session.query(User).filter_by(username=username).one()
        return verified_methods(session, user.id)


def test_a_resident_signs_through_ncalayer_and_is_verified(phone: Any, site: Site) -> None:
    sign_in(phone, site, "aigerim")
    challenge = open_verify_page(phone, site)
    assert phone.locator("h1").inner_text() == KK("verify.title")
    words = latin_words(phone.locator("main").inner_text()) - ALLOWED
    assert not words, f"English on the Kazakh page: {sorted(words)}"

    # An expired certificate: NCALayer signs, Qala refuses, in Kazakh; nothing is bound.
    site.ncalayer.signer = site.expired
    phone.click("#sign-ncalayer")
    phone.locator("#verify-refused").wait_for(state="visible")
    assert KK("identity.refused.expired") in phone.locator("#verify-refused").inner_text()
    assert bound_methods(site, "aigerim") == set()

    site.ncalayer.signer = site.good
    phone.click("#sign-ncalayer")
    phone.locator("#verify-ok").wait_for(state="visible")
    assert phone.locator("#verify-iin").inner_text() == "••••••••" + IIN[-4:]
    assert KK("verify.ok") in phone.locator("#verify-ok").inner_text()
    assert phone.locator("#verify-refused").is_hidden()
    request = site.ncalayer.requests[-1]
    assert request["module"] == "kz.gov.pki.knca.commonUtils"
    assert request["method"] == "createCAdESFromBase64"
    assert request["args"][:2] == ["PKCS12", "SIGNATURE"]
    assert base64.b64decode(request["args"][2]).decode() == challenge
    assert bound_methods(site, "aigerim") == {"signature"}
    fits_the_phone(phone)
    shot(phone, "identity-verified-kk")


def test_an_iin_bound_to_another_account_is_refused_in_kazakh(phone: Any, site: Site) -> None:
    site.ncalayer.signer = site.good
    sign_in(phone, site, "aigerim")  # Aigerim's account holds the IIN (or takes it now)
    open_verify_page(phone, site)
    phone.click("#sign-ncalayer")
    phone.locator("#verify-ok").wait_for(state="visible")
    phone.context.clear_cookies()
    sign_in(phone, site, "nurlan")
    open_verify_page(phone, site)
    phone.click("#sign-ncalayer")
    phone.locator("#verify-refused").wait_for(state="visible")
    assert KK("identity.refused.iin_taken") in phone.locator("#verify-refused").inner_text()
    assert bound_methods(site, "nurlan") == set()


def test_without_ncalayer_the_page_says_so_and_a_signed_file_verifies(
    phone: Any, site: Site, tmp_path: Path
) -> None:
    sign_in(phone, site, "dana")
    challenge = open_verify_page(phone, site)
    site.ncalayer.stop()  # nothing listens on its port now: the connection is refused
    try:
        phone.click("#sign-ncalayer")
        missing = phone.locator("#ncalayer-missing")
        missing.wait_for(state="visible")
        assert KK("verify.missing") in missing.inner_text()
        assert missing.locator("a[href='https://ncl.pki.gov.kz/']").count() == 1
        assert phone.locator("#upload-fallback").get_attribute("open") is not None
        fits_the_phone(phone)
        shot(phone, "identity-no-ncalayer-kk")

        # Signed elsewhere: a detached CMS in DER of the text shown, uploaded as a .p7s file.
        other = nca.resident(OTHER_IIN, site.national, datetime.now(UTC), label="page-other")
        signature = tmp_path / "challenge.txt.p7s"
        signature.write_bytes(nca.sign(challenge, other, site.national.certificate, detached=True))
        phone.set_input_files("#signature-file", str(signature))
        phone.click("#upload-send")
        phone.locator("#verify-ok").wait_for(state="visible")
        assert phone.locator("#verify-iin").inner_text() == "••••••••" + OTHER_IIN[-4:]
        assert bound_methods(site, "dana") == {"signature"}

        # A file that is no signature is refused with the translated reason.
        junk = tmp_path / "junk.p7s"
        junk.write_bytes(b"\x30\x03\x02\x01\x00")
        phone.set_input_files("#signature-file", str(junk))
        phone.click("#upload-send")
        phone.locator("#verify-refused").wait_for(state="visible")
        assert KK("identity.refused.not_cms") in phone.locator("#verify-refused").inner_text()
    finally:
        site.ncalayer.start()


def test_the_page_in_russian_has_no_english_and_fits_the_phone(phone: Any, site: Site) -> None:
    sign_in(phone, site, "nurlan")
    phone.goto(f"{site.url}/budgeting/{site.process}/verify?lang=ru")
    phone.wait_for_function(
        "() => document.getElementById('challenge').textContent.startsWith('qala-')"
    )
    assert phone.locator("h1").inner_text() == Translator("ru")("verify.title")
    phone.locator("#upload-fallback summary").click()
    words = latin_words(phone.locator("main").inner_text()) - ALLOWED
    assert not words, f"English on the Russian page: {sorted(words)}"
    fits_the_phone(phone)
