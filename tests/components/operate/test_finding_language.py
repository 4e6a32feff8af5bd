"""Incidents a detector rule opened read in the reader's language: the operator board and the API
render the opening finding's message id with locale-formatted values in kk and ru, with no English;
the machine fields stay as they were."""

from __future__ import annotations

import re
from typing import Any

from tests.components.operate.conftest import OperateApp
from tests.web.crawl import latin_words
from tests.web.test_every_word import ALLOWED

from qala.components.operate.finding_text import finding_message
from qala.components.operate.ingest import ingest, register_sensors
from qala.components.operate.readings import Reading
from qala.core.i18n import Translator

T0 = 1_764_547_200_000_000  # 2025-12-01T00:00Z
HOUR = 3_600_000_000


def _rule_incidents(operate: OperateApp) -> None:
    with operate.context.database.transaction() as session:
        register_sensors(session, [{"id": "aq-7", "place_code": "astana"}])
    readings = [
        Reading("aq-7", "pm25", T0 + i * HOUR, v, "ug/m3")
        for i, v in enumerate([20.0, 410.5, 432.25, 1000.0, 1000.0, 1000.0])
    ]
    ingest(operate.context, readings)


def _english(text: str) -> set[str]:
    return latin_words(text) - ALLOWED


def test_rule_incidents_read_in_kazakh_and_russian_in_the_api(operate_app: OperateApp) -> None:
    _rule_incidents(operate_app)
    answers = {
        language: operate_app.client.get(
            "/api/v1/operate/incidents",
            headers={**operate_app.auth, "Accept-Language": f"{language},en;q=0.5"},
        ).json()
        for language in ("kk", "ru", "en")
    }
    rule = {lang: [i for i in found if i["source"] == "rule"] for lang, found in answers.items()}
    assert {i["category"] for i in rule["en"]} >= {"air_quality", "sensor_fault"}
    for language in ("kk", "ru"):
        assert [i["id"] for i in rule[language]] == [i["id"] for i in rule["en"]]
        for incident, english in zip(rule[language], rule["en"], strict=True):
            assert incident["language"] == language
            assert not _english(incident["title"] + " " + incident["description"]), incident
            assert incident["description"] != english["description"]
            # The machine fields are the same in every language.
            assert incident["description_message"] == english["description_message"]
            for key in ("category", "severity", "status", "service", "unit", "sensor"):
                assert incident[key] == english[key]
    by_category = {i["category"]: i for i in rule["ru"]}
    air = by_category["air_quality"]["description"]
    # Values in the Russian locale (decimal comma), the unit and the limit's wording in Russian.
    assert "мкг/м³" in air and "предельного значения" in air and "410,5" in air, air
    fault = {i["category"]: i for i in rule["kk"]}["sensor_fault"]["description"]
    assert "ақау" in fault and "1 000 мкг/м³" in fault.replace("\u00a0", " "), fault
    message = by_category["air_quality"]["description_message"]
    assert message["key"] == "finding.exceedance" and message["params"]["value"] == 410.5
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT.*", message["params"]["since"])
    # Findings too: the explanation in the reader's language, the message beside it.
    findings = operate_app.client.get(
        "/api/v1/operate/findings", headers={**operate_app.auth, "Accept-Language": "kk"}
    ).json()
    assert findings and all(not _english(f["explanation"]) for f in findings), findings
    assert all(f["message"]["key"].startswith("finding.") for f in findings)


def test_rule_incidents_read_in_kazakh_and_russian_on_the_operator_board(
    operate_app: OperateApp,
) -> None:
    _rule_incidents(operate_app)
    client = operate_app.client
    page = client.get("/login").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token
    signed = client.post(
        "/login",
        data={
            "username": "duty.operator",
            "password": "correct-horse-battery",
            "csrf_token": token.group(1),
            "next": "/",
        },
        headers={"accept": "text/html"},
    )
    assert signed.status_code in (200, 303), signed.text[:300]
    for language, words in (("kk", "шекті мәнінен"), ("ru", "предельного значения")):
        html = client.get(f"/operator?lang={language}", headers={"accept": "text/html"}).text
        articles = re.findall(
            r'<article class="queue-item[^"]*" id="incident-\d+".*?</article>', html, re.S
        )
        assert len(articles) >= 2, html[:2000]
        texts = [re.sub(r"<[^>]+>", " ", a) for a in articles]
        assert any(words in t for t in texts), texts
        for text in texts:
            assert not _english(text), (language, text)


def test_every_kind_of_finding_has_its_text_in_every_language() -> None:
    samples: list[dict[str, Any]] = [
        {"rule_id": "norm.kz.pm25.day", "kind": "exceedance", "details": {"averaging": "day"}},
        {
            "rule_id": "heating.schedule",
            "kind": "exceedance",
            "quantity": "supply_temperature",
            "unit": "degC",
            "details": {"expected": 80.0, "outdoor": -20.0, "tolerance": 4.0},
        },
        {"rule_id": "fault.saturated", "kind": "fault"},
        {"rule_id": "fault.out_of_range", "kind": "fault"},
        {"rule_id": "fault.stuck", "kind": "fault", "details": {"repeats": 22}},
        {"rule_id": "fault.quarantine", "kind": "fault", "value": 3.0},
        {"rule_id": "fault.quarantine:end", "kind": "fault", "details": {"phase": "end"}},
        {"rule_id": "silence.pm25", "kind": "silence", "unit": "h"},
        {"rule_id": "silence.pm25", "kind": "silence", "details": {"phase": "end"}},
        {"rule_id": "episode.pm25", "kind": "episode", "details": {"phase": "start", "hours": 6}},
        {
            "rule_id": "episode.network.pm25",
            "kind": "episode",
            "details": {"sensors": ["a1", "a2"], "reporting": 5},
        },
        {"rule_id": "episode.pm25:end", "kind": "episode", "details": {"phase": "end"}},
        {"rule_id": "anomaly.mad.pm25", "kind": "anomaly", "unit": "ug/m3/h"},
        {"rule_id": "norm.kz.summation.no2+so2", "kind": "exceedance_sum"},
    ]
    table = Translator("en")
    for sample in samples:
        message = finding_message(
            rule_id=sample["rule_id"],
            kind=sample["kind"],
            sensor="st-4",
            quantity=sample.get("quantity", "pm25"),
            start_us=T0,
            end_us=T0 + 6 * HOUR,
            value=sample.get("value", 83.0),
            threshold=60.0,
            unit=sample.get("unit", "ug/m3"),
            details=sample.get("details"),
        )
        assert table(message.key) != message.key, f"{message.key} is not in the catalogues"
        for language in ("kk", "ru"):
            text = Translator(language).message(message)
            assert not _english(text), (language, message.key, text)
            assert "{" not in text and "None" not in text, text
