"""The readiness questionnaire page: analysts and operators answer it, the result is recomputed."""

from __future__ import annotations

import re

from tests.web.test_pages import client_for, csrf, signed_in, site  # noqa: F401  (fixture)

from qala.runtime import Context


def test_citizens_cannot_open_the_questionnaire(site: tuple[Context, object]) -> None:  # noqa: F811
    assert client_for(site).get("/readiness").status_code == 303  # to the sign-in page
    assert signed_in(site, "citizen").get("/readiness").status_code == 403


def test_answers_are_stored_and_scored_and_bad_answers_listed(site: tuple[Context, object]) -> None:  # noqa: F811
    client = signed_in(site, "analyst")
    page = client.get("/readiness?place=temirtau&year=2025")
    assert page.status_code == 200
    items = re.findall(r'name="score:([^"]+)" value="1"', page.text)
    assert len(items) >= 8 * 3, "every cluster's statements are on the form"
    token = csrf(page.text)

    bad = client.post(
        "/readiness",
        data={"csrf_token": token, "place": "temirtau", "year": "2025", f"score:{items[0]}": "9"},
    )
    assert bad.status_code == 422 and items[0] in bad.text and "expected 1–5" in bad.text

    answers = {f"score:{item}": "5" for item in items}  # every statement fully true
    saved = client.post(
        "/readiness", data={"csrf_token": token, "place": "temirtau", "year": "2025", **answers}
    )
    assert saved.status_code == 303
    result = client.get(saved.headers["location"])
    assert "100 / 100" in result.text and "web form" in result.text

    from qala.components.assessment.services import readiness_for

    context = site[0]
    with context.database.session() as session:
        readiness = readiness_for(session, "temirtau", 2025)
    assert readiness.overall == 100.0
    assert all(c.score == 100.0 for c in readiness.clusters)
