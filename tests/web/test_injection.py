"""Quotes and angle brackets in every stored text that reaches a page stay text.

Every free-text column of the store (names, titles, descriptions, notes, addresses, reasons,
evidence, sources, translated titles kept as JSON…) gets a payload appended that breaks out of
double- and single-quoted attributes and out of ``textarea``, ``script``, ``title`` and
``style`` elements, then opens an element of its own. A crawl of every page as each role then
parses each answer: the payload's element or attribute in the parsed page means something was
not escaped. The same crawl must show the payload as text on many pages, or the test proves
nothing.

Every text column is either tainted here or listed as a machine value (codes, states, hashes,
times), so a new column needs a decision before this test passes.
"""

from __future__ import annotations

import importlib
import re
import shutil
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import JSON, String, Text, select, update
from tests.web.conftest import load_small_demo
from tests.web.crawl import crawl
from tests.web.test_every_word import ROLES, SEEDS, client_as

from qala.registry import COMPONENTS, prepare
from qala.runtime import Context
from qala.settings import Settings
from qala.store.base import Base

MARK = "qala-injected"
PAYLOAD = f"\"'></textarea></script></title></style><{MARK} data-injected=1>x"

# Columns people or files fill with text; each is shown somewhere (or may be).
TAINTED_TEXT = {
    "accounts_api_token": {"label"},
    "accounts_user": {"display_name"},
    "assessment_readiness_answer": {"evidence"},
    "assessment_readiness_response": {"respondent", "source"},
    "budgeting_comment": {"text", "hidden_reason", "author"},
    "budgeting_consultation": {"venue"},
    "budgeting_milestone": {"title"},
    "budgeting_payment": {"payee", "purpose", "reference"},
    "budgeting_phase_change": {"note"},
    "budgeting_project": {"contractor", "impact_note"},
    "budgeting_proposal": {"review_reason", "author", "district"},
    "budgeting_rating": {"comment"},
    "budgeting_risk": {"risk", "owner", "mitigation"},
    "call_value": {"evidence", "note", "review_reason", "answer"},
    "data_call": {"title"},
    "data_release": {"incomplete_reason"},
    "data_release_value": {"evidence"},
    "import_batch": {"file_name"},
    "indicator": {"name_kk", "name_ru", "name_en"},
    "indicator_value": {"source", "note"},
    "notify_outbox": {"subject", "body", "last_error"},
    "official_series": {"title", "publisher"},
    "operate_dead_letter": {"reason", "payload", "source"},
    "operate_finding": {"explanation"},
    "operate_incident": {"title", "description", "close_note", "assignee"},
    "operate_incident_link": {"note"},
    "operate_sensor": {"name"},
    "place": {"name_kk", "name_ru", "name_en"},
    "place_population": {"source"},
    "rating_run": {"name"},
    "rating_spec": {"description"},
    "requests311_api_client": {"name"},
    "requests311_photo": {"hidden_reason"},
    "requests311_department": {"name_kk", "name_ru", "name_en"},
    "requests311_jurisdiction": {"name_kk", "name_ru", "name_en", "contact"},
    "requests311_note": {"text", "author"},
    "requests311_request": {
        "status_notes",
        "service_notice",
        "description",
        "address_string",
        "first_name",
        "last_name",
        "assignee",
    },
    "requests311_service": {
        "name_kk",
        "name_ru",
        "name_en",
        "description_kk",
        "description_ru",
        "description_en",
    },
    "single_industry_period": {"source", "note"},
}
# JSON columns holding a text, or a text per language ({"kk": …, "ru": …, "en": …}).
TAINTED_JSON = {
    "budgeting_consultation": {"title", "description", "summary"},
    "budgeting_process": {"title", "description"},
    "budgeting_project": {"title", "description"},
    "budgeting_proposal": {"title", "description"},
    "budgeting_question": {"text"},
    "notify_ballot_note": {"title"},
    "notify_subscription": {"label"},
}
# Machine values: codes and keys looked up by the code, states and kinds from fixed lists,
# hashes, times, account names, file formats and references into other tables.
MACHINE = {
    "accounts_auth_attempt": {"key"},
    "accounts_oidc_login": {"nonce", "code_verifier"},
    "accounts_session": {"csrf_token"},
    "accounts_user": {"role", "password_hash", "department", "place"},
    "assessment_readiness_response": {"submitted_by"},
    "budgeting_comment": {"language"},
    "budgeting_consultation": {"place_code", "kind", "created_by"},
    "budgeting_ledger_entry": {"at", "actor", "kind", "subject", "prev_hash"},
    "budgeting_ledger_head": {"entry_hash"},
    "budgeting_ledger_signed_head": {"root_hash", "signed_at", "signature"},
    "budgeting_phase_change": {"from_phase", "to_phase", "actor"},
    "budgeting_process": {
        "place_code",
        "currency",
        "phase",
        "ballot_kind",
        "rule",
        "completion",
        "verifier",
        "key_check",
    },
    "budgeting_project": {"place_code", "origin", "status"},
    "budgeting_proposal": {"code", "category", "status", "reviewed_by"},
    "budgeting_question": {"key", "kind"},
    "budgeting_rating": {"rater_hash"},
    "budgeting_response": {"respondent_hash", "language"},
    "budgeting_result": {"rule", "computed_by"},
    "budgeting_risk": {"status"},
    "budgeting_voter": {"iin_hash"},
    "call_event": {"action", "actor"},
    "call_value": {"status", "submitted_by", "reviewed_by"},
    "data_call": {"created_by"},
    "data_release": {"published_by", "sha256"},
    "data_release_value": {"unit", "submitted_by", "approved_by"},
    "import_batch": {"file_format", "sha256", "imported_by"},
    "indicator": {"framework", "area", "unit", "polarity", "category", "catalogue_version"},
    "notify_ballot_note": {"account", "process"},
    "notify_contact": {"email", "phone", "language"},
    "notify_outbox": {"kind", "channel", "recipient", "language", "status", "lease_owner"},
    "notify_subscription": {"topic", "account", "email", "phone", "language", "link"},
    "official_series": {
        "dataset",
        "table_ref",
        "release",
        "file",
        "sheet",
        "unit_published",
        "conversion",
        "indicator_id",
        "licence",
    },
    "operate_attribute_instance": {"entity_id", "attr", "dataset_id"},
    "operate_csource_registration": {"endpoint", "mode", "tenant"},
    "operate_csource_subscription": {"endpoint", "tenant"},
    "operate_dead_letter": {"channel", "sensor"},
    "operate_notification_outbox": {"entity_id", "subscription_id"},
    "operate_device_credential": {"password_hash"},
    "operate_entity": {"type", "concept", "place_code"},
    "operate_finding": {"rule_id", "kind", "sensor", "quantity", "severity", "unit"},
    "operate_incident": {
        "dedup_key",
        "category",
        "severity",
        "status",
        "service",
        "unit",
        "place_code",
        "sensor",
        "source",
        "opened_by",
        "close_reason",
    },
    "operate_incident_audit": {"actor", "action"},
    "operate_incident_link": {"kind", "ref"},
    "operate_observation": {"sensor", "quantity", "unit", "message_id"},
    "operate_sensor": {"entity_id", "place_code", "group_id", "status"},
    "operate_subscription": {"endpoint", "tenant"},
    "place": {"level", "kind", "significance", "source"},
    "rating_entry": {"region"},
    "rating_run": {"spec_text", "framework", "catalogue_version", "kind", "region"},
    "rating_spec": {"text"},
    "requests311_audit": {"actor", "action"},
    "requests311_department": {"code", "email"},
    "requests311_jurisdiction": {"key_service"},
    "requests311_request": {
        "status",
        "close_reason",
        "address_id",
        "zipcode",
        "district",
        "media_url",
        "email",
        "phone",
        "device_id",
        "account_id",
    },
    "requests311_photo": {"thumb_name", "content_type", "hidden_by"},
    "requests311_routing_rule": {"service_code", "district"},
    "requests311_support": {"supporter_key", "token_key", "account_id", "email"},
    "requests311_service": {"code", "group", "keywords", "service_type"},
}


def _text_columns() -> dict[str, set[str]]:
    """Every text column that is not a key (primary, foreign or unique)."""
    for component in COMPONENTS:
        importlib.import_module(f"qala.components.{component.name}.models")
    found: dict[str, set[str]] = {}
    for table in Base.metadata.tables.values():
        for column in table.columns:
            if isinstance(column.type, JSON) or not isinstance(column.type, String | Text):
                continue
            if column.primary_key or column.foreign_keys or column.unique:
                continue
            found.setdefault(table.name, set()).add(column.name)
    return found


def test_every_text_column_is_tainted_or_a_machine_value() -> None:
    undecided = {
        f"{table}.{column}"
        for table, columns in _text_columns().items()
        for column in columns - TAINTED_TEXT.get(table, set()) - MACHINE.get(table, set())
    }
    assert not undecided, f"decide whether people's text reaches these: {sorted(undecided)}"


def _tainted(value: Any) -> Any:
    if isinstance(value, str):
        return value + PAYLOAD
    if isinstance(value, dict) and set(value) & {"kk", "ru", "en"}:
        return {key: _tainted(text) for key, text in value.items()}
    return value


def _taint(context: Context) -> None:
    tables = Base.metadata.tables
    with context.database.transaction() as session:
        for name, columns in TAINTED_TEXT.items():
            table = tables[name]
            for column in columns:
                stored = table.c[column]
                session.execute(
                    update(table).where(stored.is_not(None)).values({column: stored + PAYLOAD})
                )
        for name, columns in TAINTED_JSON.items():
            table = tables[name]
            keys = list(table.primary_key.columns)
            for row in session.execute(select(*keys, *(table.c[c] for c in columns))).all():
                values = {c: _tainted(getattr(row, c)) for c in columns}
                where = [key == getattr(row, key.name) for key in keys]
                session.execute(update(table).where(*where).values(values))


class Breakout(HTMLParser):
    """Elements and attributes the payload would create if it were not escaped."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.escaped: list[str] = []
        self.shown = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == MARK or any(name == "data-injected" for name, _ in attrs):
            self.escaped.append(f"<{tag} {dict(attrs)}>")
        if any(value and MARK in value for _, value in attrs):
            self.shown += 1

    def handle_data(self, data: str) -> None:
        if f"<{MARK}" in data:
            self.shown += 1


@pytest.fixture(scope="module")
def tainted_site(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from qala.api.app import create_app

    folder = tmp_path_factory.mktemp("injection")
    shutil.copy(sqlite_template, folder / "qala.sqlite")
    settings = Settings(database_url=f"sqlite:///{folder / 'qala.sqlite'}", secret_key="inject")
    context = Context.from_settings(settings)
    prepare(context)
    load_small_demo(context, replications=5, budgeting=True, years=1)
    _taint(context)
    context.database.dispose()
    fresh = Context.from_settings(settings)  # nothing cached from before the payload
    yield create_app(settings, context=fresh)
    fresh.database.dispose()


@pytest.mark.slow
@pytest.mark.parametrize("role", ROLES)
def test_no_stored_text_breaks_out_of_a_page(tainted_site: Any, role: str) -> None:
    client = client_as(tainted_site, role)
    showing: set[str] = set()
    broken: list[str] = []
    pages = 0
    for seed in SEEDS:
        for page in crawl(client, seed, language="ru", per_shape=2, limit=60, raw=True):
            pages += 1
            parser = Breakout()
            parser.feed(page.text)
            broken += [f"{page.path}: {found}" for found in parser.escaped]
            if parser.shown:
                showing.add(page.path)
    assert not broken, "\n".join(broken[:40])
    assert pages >= 8, f"the crawl reached only {pages} pages"
    # the payload must reach pages as text, or nothing above was tested
    assert len(showing) >= 5, f"the payload showed on {sorted(showing)} only"


def test_the_breakout_check_sees_an_unescaped_payload() -> None:
    unescaped = f'<p title="{PAYLOAD}">{PAYLOAD}</p><textarea>{PAYLOAD}</textarea>'
    parser = Breakout()
    parser.feed(unescaped)
    assert parser.escaped
    escaped = re.sub("[<>\"']", lambda m: f"&#{ord(m.group())};", PAYLOAD)
    parser = Breakout()
    parser.feed(f'<p title="{escaped}">{escaped}</p><textarea>{escaped}</textarea>')
    assert not parser.escaped
    assert parser.shown == 3
