"""PLS-SEM over HTTP on the ECSI mobile-phone data (../shared/data/mobi.csv)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from tests.conftest import shared_file

from qala.api import create_app
from qala.settings import Settings

MOBI_MODEL = """
Image =~ IMAG1 + IMAG2 + IMAG3 + IMAG4 + IMAG5
Expectation =~ CUEX1 + CUEX2 + CUEX3
Quality =~ PERQ1 + PERQ2 + PERQ3 + PERQ4 + PERQ5 + PERQ6 + PERQ7
Value =~ PERV1 + PERV2
Satisfaction =~ CUSA1 + CUSA2 + CUSA3
Complaints =~ CUSCO
Loyalty =~ CUSL1 + CUSL2 + CUSL3
Expectation ~ Image
Quality ~ Expectation
Value ~ Expectation + Quality
Satisfaction ~ Image + Expectation + Quality + Value
Complaints ~ Satisfaction
Loyalty ~ Image + Satisfaction + Complaints
"""


@pytest.fixture
def analyst_client(sqlite_url: str) -> TestClient:
    from qala.components.accounts.services import create_user, issue_token

    app = create_app(Settings(database_url=sqlite_url, secret_key="t"))
    with app.state.context.database.transaction() as session:
        token = issue_token(
            session,
            create_user(session, username="researcher", password="researcher-pass", role="analyst"),
        )
    client = TestClient(app)
    client.headers["Authorization"] = f"Bearer {token}"
    return client


@pytest.mark.shared
def test_fit_over_http_matches_the_engine_and_bootstraps(analyst_client: TestClient) -> None:
    from qala.engines.plssem import PLSSEM

    path = shared_file("mobi.csv")
    import pandas as pd

    expected = PLSSEM(MOBI_MODEL).fit(pd.read_csv(path)).to_dict()
    answer = analyst_client.post(
        "/api/v1/sem/fit",
        data={"model": MOBI_MODEL, "bootstrap": "200", "seed": "7", "diagram": "true"},
        files={"data": ("mobi.csv", path.read_bytes(), "text/csv")},
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["paths"] == pytest.approx(expected["paths"])
    assert body["paths"]["Image -> Expectation"] == pytest.approx(0.5045, abs=5e-4)
    boot = body["bootstrap"]["Satisfaction -> Loyalty"]
    assert boot["ci_low"] < body["paths"]["Satisfaction -> Loyalty"] < boot["ci_high"]
    assert body["diagram_png_base64"].startswith("iVBORw0KGgo")  # a PNG


def test_bad_models_and_anonymous_callers_get_clear_errors(
    analyst_client: TestClient, sqlite_url: str
) -> None:
    csv = b"a1,a2,b1\n1,2,3\n2,3,4\n3,3,5\n4,5,4\n"
    answer = analyst_client.post(
        "/api/v1/sem/fit",
        data={"model": "A =~ a1 + a2 + zz\nB =~ b1\nB ~ A"},
        files={"data": ("d.csv", csv, "text/csv")},
    )
    assert answer.status_code == 422 and "zz" in answer.text
    anonymous = TestClient(create_app(Settings(database_url=sqlite_url, secret_key="t")))
    assert (
        anonymous.post(
            "/api/v1/sem/fit", data={"model": "x"}, files={"data": ("d.csv", csv)}
        ).status_code
        == 401
    )
