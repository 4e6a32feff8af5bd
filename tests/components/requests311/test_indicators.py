"""Indicators from requests, against hand-computed figures, and written to the catalogue."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from tests.components.requests311.conftest import City

from qala.components.requests311.indicators import compute_indicators, write_indicators
from qala.components.requests311.services import Requests

T = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)
NOW = datetime(2025, 6, 1, 8, 0, tzinfo=UTC)


def _at(city: City, moment: datetime, action: object) -> None:
    with city.context.database.transaction() as session:
        action(Requests(session, city.jurisdiction, actor="op", now=moment))  # type: ignore[operator]


def _scenario(city: City) -> dict[str, int]:
    h = lambda hours: T + timedelta(hours=hours)  # noqa: E731
    ids = {
        name: int(city.submit(code, at=at).service_request_id)
        for name, code, at in [
            ("fast_heating", "heating", T),
            ("late_heating", "heating", T),
            ("pothole", "pothole", T),
            ("reopened_pothole", "pothole", T),
            ("open_heating", "heating", T),
            ("duplicate_heating", "heating", T),
            ("fresh_light", "street_light", NOW - timedelta(hours=10)),
            ("last_year", "pothole", datetime(2024, 12, 31, 23, 0, tzinfo=UTC)),
        ]
    }
    _at(city, h(10), lambda s: s.close(ids["fast_heating"], reason="resolved"))
    _at(city, h(30), lambda s: s.close(ids["late_heating"], reason="resolved"))
    _at(city, h(100), lambda s: s.close(ids["pothole"], reason="resolved"))
    _at(city, h(20), lambda s: s.close(ids["reopened_pothole"], reason="resolved"))
    _at(city, h(25), lambda s: s.reopen(ids["reopened_pothole"], reason="still broken"))
    _at(city, h(200), lambda s: s.close(ids["reopened_pothole"], reason="resolved"))
    _at(city, h(1), lambda s: s.merge_duplicate(ids["duplicate_heating"], into=ids["fast_heating"]))
    _at(
        city,
        datetime(2025, 1, 1, 4, 0, tzinfo=UTC),
        lambda s: s.close(ids["last_year"], reason="resolved"),
    )
    return ids


def test_hand_computed_indicators_per_city_year_and_service(city: City) -> None:
    _scenario(city)
    with city.context.database.session() as session:
        result = compute_indicators(
            session, city.jurisdiction, now=NOW, populations={2024: 1_000_000, 2025: 700_000}
        )
    by_year = result.by_city.set_index("year")
    y2025 = by_year.loc[2025]
    # Closed originals took 10, 30, 100 and 200 hours.
    assert y2025["median_hours_to_close"] == pytest.approx(65.0)
    assert y2025["p90_hours_to_close"] == pytest.approx(170.0)  # 100 + 0.7 × (200 − 100)
    # Known outcomes: on time 10 h (≤ 24) and 100 h (≤ 168); late 30 h, 200 h (deadline counts
    # from filing despite the reopen) and the heating request still open after 3 months.
    assert y2025["share_closed_within_sla"] == pytest.approx(40.0)
    assert y2025["reopen_rate"] == pytest.approx(25.0)
    assert y2025["requests"] == 7 and y2025["closed"] == 4
    assert y2025["per_1000_residents"] == pytest.approx(7 / 700_000 * 1000)
    assert by_year.loc[2024]["median_hours_to_close"] == pytest.approx(5.0)
    assert by_year.loc[2024]["share_closed_within_sla"] == pytest.approx(100.0)

    heating = result.by_service.set_index(["year", "service"]).loc[(2025, "heating")]
    assert heating["median_hours_to_close"] == pytest.approx(20.0)
    assert heating["p90_hours_to_close"] == pytest.approx(28.0)
    assert heating["share_closed_within_sla"] == pytest.approx(100 / 3)
    assert heating["requests"] == 4
    assert result.illustrative is False


def test_indicators_are_written_to_the_catalogue(city: City) -> None:
    from qala.components.catalog.models import IndicatorValue, Place

    _scenario(city)
    with city.context.database.session() as session:
        astana = session.scalar(select(Place).where(Place.code == "astana"))
        assert astana is not None, "the catalogue's bundled places include astana"
        result = compute_indicators(
            session, city.jurisdiction, now=NOW, populations={2024: 1_000_000, 2025: 700_000}
        )
    written = write_indicators(city.context.database, result)
    assert written == 10  # five indicators × two years
    with city.context.database.session() as session:
        rows = session.execute(
            select(IndicatorValue.indicator_id, IndicatorValue.value)
            .join(Place, Place.id == IndicatorValue.place_id)
            .where(Place.code == "astana", IndicatorValue.year == 2025)
        ).all()
    values = dict(rows)
    assert values["kz_sc.requests.median_hours_to_close"] == pytest.approx(65.0)
    assert values["kz_sc.requests.p90_hours_to_close"] == pytest.approx(170.0)
    assert values["kz_sc.requests.share_closed_within_sla"] == pytest.approx(40.0)
    assert values["kz_sc.requests.reopen_rate"] == pytest.approx(25.0)
    assert values["kz_sc.requests.per_1000_residents"] == pytest.approx(0.01)
