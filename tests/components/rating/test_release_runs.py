"""A rating run built on a published release reads that release only and names it; a later change
to the live store does not move it. Unpublished values only give a labelled preview that is
never stored. On SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest
from sqlalchemy import select

from qala.components.catalog.calls import open_call, publish, review, submit_values
from qala.components.catalog.services import import_frame
from qala.components.rating.models import RatingRun
from qala.components.rating.services import (
    REGIONAL_SPEC,
    build_rating,
    list_runs,
    read_spec_text,
)
from qala.core.errors import NotFoundError, ValidationError

UNEMPLOYMENT = "iso37120.5.1"
LIFE = "iso37120.11.1"
CITIES = ["astana", "almaty", "shymkent"]
RELEASED = {"astana": (4.4, 74.0), "almaty": (4.6, 75.0), "shymkent": (5.2, 72.0)}


def _spec() -> object:
    """The regional spec on any values (not only official), for 2024, two indicators enough."""
    text = REGIONAL_SPEC.read_text(encoding="utf-8")
    text = text.replace("official_only: true", "official_only: false")
    text = text.replace("min_coverage: 0.75", "min_coverage: 0.25")
    return read_spec_text(text.replace("period: 2022", "period: 2024"))


def _submitted_call(session) -> int:
    """A 2024 call to CITIES for unemployment and life expectancy, answered with RELEASED."""
    call = open_call(
        session,
        year=2024,
        indicators=[UNEMPLOYMENT, LIFE],
        places=CITIES,
        deadline=date(2025, 3, 1),
        actor="team",
    )
    for place, (jobless, life) in RELEASED.items():
        frame = pd.DataFrame(
            {"place": place, "indicator": [UNEMPLOYMENT, LIFE], "value": [jobless, life]}
        )
        submit_values(session, call.id, frame, actor=f"{place}-akimat", scope_place=place)
    return call.id


def _release(context) -> int:
    with context.database.transaction() as session:
        call_id = _submitted_call(session)
        for place in RELEASED:
            for indicator in (UNEMPLOYMENT, LIFE):
                review(session, call_id, place, indicator, "accept", actor="reviewer")
        return publish(session, call_id, actor="publisher").number


def test_a_run_reads_the_release_it_names_not_the_live_store(context) -> None:
    number = _release(context)
    spec = _spec()
    on_release = build_rating(context.database, spec, year=2024, replications=0, release=number)
    assert on_release.release == number and on_release.run_id is not None
    # The live store changes after publication: Shymkent's unemployment halves.
    later = pd.DataFrame(
        {"place": ["shymkent"], "indicator": [UNEMPLOYMENT], "year": [2024], "value": [2.0]}
    )
    import_frame(context.database, later, file="later.csv")
    again = build_rating(context.database, spec, year=2024, replications=0, release=number)
    live = build_rating(context.database, spec, year=2024, replications=0, save=False)
    scores = on_release.ranking()["score"]
    assert again.ranking()["score"].equals(scores)
    assert live.ranking().loc["shymkent", "score"] != scores["shymkent"]
    with context.database.session() as session:
        stored = session.scalars(select(RatingRun).order_by(RatingRun.id)).all()
        assert [r.release for r in stored] == [number, number]
        assert [r.release for r in list_runs(session)] == [number, number]
    assert on_release.to_json_dict()["release"] == number
    with pytest.raises(NotFoundError, match="no release 99"):
        build_rating(context.database, spec, year=2024, replications=0, release=99)


def test_unpublished_values_give_a_labelled_preview_never_stored(context) -> None:
    with context.database.transaction() as session:
        call_id = _submitted_call(session)
    preview = build_rating(context.database, _spec(), year=2024, replications=0, draft_call=call_id)
    assert preview.run_id is None and preview.preview == call_id and preview.release is None
    assert preview.warnings[0].startswith(f"PREVIEW: draft values of data call {call_id}")
    assert preview.to_json_dict()["preview"] == call_id
    with context.database.session() as session:
        assert session.scalars(select(RatingRun)).all() == []
    with pytest.raises(ValidationError, match="not both"):
        build_rating(context.database, _spec(), year=2024, release=1, draft_call=call_id)


def test_the_command_names_the_release(sqlite_url: str, tmp_path, monkeypatch) -> None:
    import json

    from typer.testing import CliRunner

    from qala.cli.main import app
    from qala.runtime import Context
    from qala.settings import Settings

    context = Context.from_settings(Settings(database_url=sqlite_url, secret_key="x"))
    number = _release(context)
    context.database.dispose()
    spec = tmp_path / "spec.yaml"
    spec.write_text(_spec().text, encoding="utf-8")  # type: ignore[attr-defined]
    monkeypatch.setenv("QALA_DATABASE_URL", sqlite_url)
    runner = CliRunner()
    args = ["rating", "build", str(spec), "--year", "2024", "-n", "0"]
    built = runner.invoke(app, [*args, "--release", str(number), "--json"])
    assert built.exit_code == 0, built.output
    assert json.loads(built.output)["release"] == number
    shown = runner.invoke(app, [*args, "--draft-call", "1"], env={"COLUMNS": "250"})
    assert shown.exit_code == 0, shown.output
    assert "PREVIEW (unpublished values of data call 1)" in shown.output
    assert "stored as run" not in shown.output


def test_the_regional_rating_skips_a_newer_release_of_reported_values(context) -> None:
    """A release of values the places reported covers every kz_regional indicator for the year,
    but the regional rating reads official values only: that release is not one it builds on."""
    from qala.components.catalog.calls import publish_import, release_covering
    from qala.components.catalog.frameworks import load_catalogue

    indicators = load_catalogue().framework("kz_regional").indicator_ids()
    frame = pd.DataFrame(
        {
            "place": [p for p in CITIES for _ in indicators],
            "indicator": indicators * len(CITIES),
            "value": 1.0,
            "evidence": "akimat report",
        }
    )
    with context.database.transaction() as session:
        reported = publish_import(session, frame, year=2024, title="cities 2024", actor="team")
        assert reported is not None
        assert release_covering(session, indicators, 2024) == reported
        assert release_covering(session, indicators, 2024, official=True) is None
