"""Duplicate hints over HTTP: the form's JSON lookup (bounded, rate-limited), the server-rendered
step that shows hints before filing without scripts, support from the form and from a request's
page (once per browser), and the count on the page, in Open311 and for operators."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient
from tests.components.requests311.conftest import YESIL, City

from qala.components.accounts.services import create_user, issue_token

LAT, LON = YESIL
NEAR = (LAT + 20 / 111_195.0, LON)  # 20 m north


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found
    return found.group(1)


def _site(app_factory: Callable[..., tuple[object, City]], **settings: Any) -> tuple[City, Any]:
    app, city = app_factory(**settings)
    client = TestClient(app, headers={"accept": "text/html"}, follow_redirects=False)  # type: ignore[arg-type]
    return city, client


def _existing(city: City) -> int:
    submitted = city.submit(
        "pothole", lat=LAT, lon=LON, description="Глубокая яма на проезжей части"
    )
    return int(submitted.service_request_id)


def _form(lat: float, lon: float, token: str, **extra: str) -> dict[str, str]:
    return {
        "csrf_token": token,
        "city": "astana",
        "service_code": "pothole",
        "attr.pothole.size": "large",
        "description": "Яма на проезжей части",
        "lat": f"{lat:.6f}",
        "long": f"{lon:.6f}",
        **extra,
    }


def test_the_form_asks_for_hints_as_json(app_factory: Callable[..., Any]) -> None:
    city, client = _site(app_factory)
    existing = _existing(city)
    city.submit("street_light", lat=LAT, lon=LON)  # another service at the same spot
    answer = client.get(
        "/requests/nearby",
        params={"city": "astana", "service": "pothole", "lat": NEAR[0], "long": NEAR[1]},
        headers={"accept": "application/json", "accept-language": "ru"},
    )
    assert answer.status_code == 200, answer.text
    document = answer.json()
    assert document["radius_m"] == 50
    (hint,) = document["requests"]
    assert hint["id"] == str(existing) and hint["distance_m"] == 20
    assert hint["distance_text"] == "20 м отсюда"
    assert hint["supporters_text"] == "0 жителей поддержали"
    assert hint["url"] == f"/requests/{existing}?city=astana"
    assert set(hint) >= {"service_name", "description", "status", "label"}
    assert not {"email", "phone", "token", "account_id"} & set(hint)
    far = client.get(
        "/requests/nearby",
        params={"city": "astana", "service": "pothole", "lat": LAT + 0.001, "long": LON},
    )
    assert far.json()["requests"] == []


def test_hint_lookups_are_bounded_and_rate_limited(app_factory: Callable[..., Any]) -> None:
    _city, client = _site(app_factory, rate_limit_per_minute=3)
    params = {"city": "astana", "service": "pothole", "long": LON}
    accept = {"accept": "application/json"}
    bad = client.get("/requests/nearby", params={**params, "lat": 95}, headers=accept)
    assert bad.status_code == 422 and "lat" in bad.text
    long_text = client.get(
        "/requests/nearby", params={**params, "lat": LAT, "text": "я" * 4001}, headers=accept
    )
    assert long_text.status_code == 422 and "text" in long_text.text
    for _ in range(3):
        ok = client.get("/requests/nearby", params={**params, "lat": LAT}, headers=accept)
        assert ok.status_code == 200
    refused = client.get("/requests/nearby", params={**params, "lat": LAT}, headers=accept)
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1


def test_without_scripts_the_hints_come_before_filing(app_factory: Callable[..., Any]) -> None:
    city, client = _site(app_factory)
    existing = _existing(city)
    token = _csrf(client.get("/requests/new?lang=kk").text)
    shown = client.post("/requests/new", data=_form(*NEAR, token))
    assert shown.status_code == 200
    page = shown.text
    assert 'id="nearby-banner"' in page and "Жақын маңдағы ұқсас ашық өтініштер" in page
    assert f'formaction="/requests/{existing}/support"' in page
    seen = re.search(r'name="nearby_seen" id="nearby_seen" value="([^"]*)"', page)
    assert seen and seen.group(1) == f"pothole|{NEAR[0]:.6f}|{NEAR[1]:.6f}"
    # The default button (Enter) is still "send": it comes before every support button.
    assert page.index('id="submit-request"') < page.index("support-button")
    # Sending again after seeing them files the report.
    filed = client.post("/requests/new", data=_form(*NEAR, token, nearby_seen=seen.group(1)))
    assert filed.status_code == 303 and "new=1" in filed.headers["location"]
    # Far enough away, nothing stops the report.
    far = client.post("/requests/new", data=_form(LAT + 0.001, LON, token))
    assert far.status_code == 303


def test_support_from_the_form_counts_once_and_shows_everywhere(
    app_factory: Callable[..., Any],
) -> None:
    city, client = _site(app_factory)
    existing = _existing(city)
    token = _csrf(client.get("/requests/new?lang=ru").text)
    form = _form(*NEAR, token)
    supported = client.post(f"/requests/{existing}/support", data=form)
    assert supported.status_code == 303
    assert supported.headers["location"].startswith(f"/requests/{existing}?city=astana")
    assert "qala_supporter" in supported.headers["set-cookie"]
    page = client.get(supported.headers["location"]).text
    assert f"Спасибо: вы поддержали обращение № {existing}." in page
    assert re.search(r'id="request-supporters" data-count="1">1 житель поддержал<', page)
    # The same browser again (from the request's own page): still one.
    again = client.post(
        f"/requests/{existing}/support", data={"csrf_token": token, "city": "astana"}
    )
    page = client.get(again.headers["location"]).text
    assert "Вы уже поддержали это обращение." in page and 'data-count="1"' in page
    # Another browser with an e-mail: two.
    other = TestClient(client.app, headers={"accept": "text/html"}, follow_redirects=False)
    other_token = _csrf(other.get(f"/requests/{existing}?lang=ru").text)
    other.post(
        f"/requests/{existing}/support",
        data={"csrf_token": other_token, "city": "astana", "email": "dana@example.kz"},
    )
    assert 'data-count="2">2 жителя поддержали<' in other.get(f"/requests/{existing}").text
    # Open311 carries the count as an extension; operators see it too.
    document = client.get(f"/open311/v2/requests/{existing}.json").json()
    assert document[0]["supporters"] == 2
    assert "dana@example.kz" not in client.get(f"/open311/v2/requests/{existing}.json").text
    with city.context.database.transaction() as session:
        user = create_user(session, username="roads.op", password="long enough pw", role="operator")
        bearer = {"Authorization": f"Bearer {issue_token(session, user)}"}
    staff = client.get(f"/api/v1/requests/{existing}", headers=bearer)
    assert staff.status_code == 200 and staff.json()["supporters"] == 2
    # On the operator's board, once signed in.
    login = client.get("/login").text
    client.post(
        "/login",
        data={
            "username": "roads.op",
            "password": "long enough pw",
            "csrf_token": _csrf(login),
            "next": "/",
        },
    )
    board = client.get("/operator?city=astana&lang=ru").text
    assert re.search(rf'id="request-{existing}-supporters">2 жителя поддержали<', board)


def test_support_without_the_form_token_or_for_a_closed_request_is_refused(
    app_factory: Callable[..., Any],
) -> None:
    city, client = _site(app_factory)
    existing = _existing(city)
    assert client.post(f"/requests/{existing}/support", data={"city": "astana"}).status_code == 403
    token = _csrf(client.get("/requests/new?lang=en").text)
    missing = client.post("/requests/99999/support", data={"csrf_token": token, "city": "astana"})
    assert missing.status_code == 404
    bad_email = client.post(
        f"/requests/{existing}/support",
        data={"csrf_token": token, "city": "astana", "email": "no address"},
    )
    page = client.get(bad_email.headers["location"]).text
    assert 'class="flash error"' in page and 'data-count="0"' in page
    with city.context.database.transaction() as session:
        from qala.components.requests311.services import Requests

        Requests(session, city.jurisdiction, actor="op", now=city.clock()).close(
            existing, reason="resolved"
        )
    closed = client.post(
        f"/requests/{existing}/support", data={"csrf_token": token, "city": "astana"}
    )
    page = client.get(closed.headers["location"]).text
    assert "This request is closed; only open requests can be supported." in page
    assert 'id="support-form"' not in page
