"""pabulib `.pb` format: parsing, validation errors located by line and field, round trips."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from qala.core.errors import ValidationError
from qala.engines.pb import BallotKind, parse_pabulib, write_pabulib
from qala.engines.pb.model import Ballot, Instance, Profile, Project

SMALL = """META
key;value
description;"Test; with a semicolon"
budget;100
vote_type;approval
max_length;2
PROJECTS
project_id;cost;name
a;60;"Park; north"
b;40;Bench
c;30;Lamp
VOTES
voter_id;vote;age
1;a,b;30
2;b;41
3;c,a;22
"""


def test_parses_sections_quoted_fields_and_limits() -> None:
    election = parse_pabulib(SMALL)
    instance, profile = election.instance, election.profile
    assert [p.id for p in instance] == ["a", "b", "c"]
    assert instance.project("a").cost == Fraction(60)
    assert instance.project("a").name == "Park; north"
    assert instance.meta["description"] == "Test; with a semicolon"
    assert instance.budget_limit == 100
    assert profile.kind is BallotKind.APPROVAL
    assert profile.max_length == 2
    assert [b.projects for b in profile] == [("a", "b"), ("b",), ("c", "a")]
    assert profile.ballots[2].meta == {"age": "22"}
    assert profile.approval_counts(instance) == {"a": 2, "b": 2, "c": 1}


def test_errors_name_line_and_field() -> None:
    broken = (
        SMALL.replace("b;40;Bench", "b;forty;Bench")
        .replace("2;b;41", "2;b,zz;41")
        .replace("budget;100", "budget;lots")
    )
    with pytest.raises(ValidationError) as caught:
        parse_pabulib(broken, source="broken.pb")
    problems = {(p.row, p.column) for p in caught.value.problems}
    assert (10, "cost") in problems  # line of project b
    assert (15, "vote") in problems  # line of voter 2
    assert (None, "budget") in problems
    assert all(p.file == "broken.pb" for p in caught.value.problems)
    text = str(caught.value)
    assert "broken.pb, row 10, column `cost`" in text and "'forty'" in text


def test_ballot_limits_are_checked_with_their_line() -> None:
    too_long = SMALL.replace("2;b;41", "2;a,b,c;41")
    with pytest.raises(ValidationError) as caught:
        parse_pabulib(too_long)
    (problem,) = caught.value.problems
    assert problem.row == 15 and problem.column == "vote"
    assert "more than max_length=2" in problem.reason and "voter 2" in problem.reason
    # The same file parses when validation is off (to study bad data).
    assert len(parse_pabulib(too_long, validate=False).profile) == 3


def test_missing_sections_and_header_columns() -> None:
    with pytest.raises(ValidationError) as caught:
        parse_pabulib("META\nkey;value\nbudget;5\nvote_type;approval\nPROJECTS\nid;price\n1;2\n")
    reasons = " | ".join(p.reason for p in caught.value.problems)
    assert "VOTES is missing" in reasons
    assert "lacks `project_id`" in reasons and "lacks `cost`" in reasons


def test_cumulative_points_must_match_votes() -> None:
    text = """META
key;value
budget;10
vote_type;cumulative
max_sum_points;5
PROJECTS
project_id;cost
1;4
2;6
VOTES
voter_id;vote;points
v1;1,2;3,2
v2;1,2;3
v3;2;9
"""
    with pytest.raises(ValidationError) as caught:
        parse_pabulib(text)
    located = {(p.row, p.column) for p in caught.value.problems}
    assert (13, "points") in located  # 1 point for 2 projects
    with pytest.raises(ValidationError) as caught:
        parse_pabulib(text.replace("v2;1,2;3\n", ""))
    (problem,) = caught.value.problems
    assert problem.row == 13 and "above max_sum_points=5" in problem.reason


def test_round_trip_keeps_everything() -> None:
    election = parse_pabulib(SMALL)
    again = parse_pabulib(write_pabulib(election.instance, election.profile))
    assert again.instance.projects == election.instance.projects
    assert [dict(p.meta) for p in again.instance] == [dict(p.meta) for p in election.instance]
    assert again.profile.ballots == election.profile.ballots
    assert [dict(b.meta) for b in again.profile] == [dict(b.meta) for b in election.profile]
    assert again.instance.meta["description"] == "Test; with a semicolon"


ids = st.text(alphabet="abcxyz019_-", min_size=1, max_size=4)
texts = st.text(alphabet=st.characters(blacklist_categories=["Cs", "Cc"]), max_size=12)


@st.composite
def elections(draw: st.DrawFn) -> tuple[Instance, Profile]:
    project_ids = draw(st.lists(ids, min_size=1, max_size=6, unique=True))
    projects = [
        Project(
            pid,
            Fraction(draw(st.integers(0, 10**6)), draw(st.sampled_from([1, 2, 4]))),
            {"name": draw(texts).strip()},
        )
        for pid in project_ids
    ]
    kind = draw(st.sampled_from(list(BallotKind)))
    ballots = []
    for v in range(draw(st.integers(0, 6))):
        chosen = tuple(draw(st.lists(st.sampled_from(project_ids), unique=True, max_size=4)))
        points = None
        if kind in (BallotKind.CUMULATIVE, BallotKind.SCORING):
            points = tuple(Fraction(draw(st.integers(1, 20))) for _ in chosen)
        ballots.append(Ballot(f"v{v}", chosen, points, {"sex": draw(st.sampled_from("MFK"))}))
    instance = Instance(
        projects, Fraction(draw(st.integers(0, 10**7))), {"note": draw(texts).strip()}
    )
    return instance, Profile(kind, ballots)


@settings(max_examples=60, deadline=None)
@given(elections())
def test_write_then_parse_is_identity(election: tuple[Instance, Profile]) -> None:
    instance, profile = election
    again = parse_pabulib(write_pabulib(instance, profile))
    assert again.instance.projects == instance.projects
    assert [dict(p.meta) for p in again.instance] == [dict(p.meta) for p in instance]
    assert again.instance.budget_limit == instance.budget_limit
    assert again.instance.meta["note"] == instance.meta["note"]
    assert again.profile.kind is profile.kind
    assert again.profile.ballots == profile.ballots


def test_cli_reports_bad_files_with_line_and_column(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from qala.cli.pb import app

    bad = tmp_path / "bad.pb"
    bad.write_text(SMALL.replace("b;40;Bench", "b;forty;Bench"), encoding="utf-8")
    result = CliRunner().invoke(app, ["solve", str(bad), "--rule", "mes"])
    assert result.exit_code == 2
    assert "bad.pb, row 10, column `cost`: `cost` must be a number (got 'forty')" in result.output
    good = tmp_path / "good.pb"
    good.write_text(SMALL, encoding="utf-8")
    result = CliRunner().invoke(app, ["solve", str(good), "--rule", "greedy", "--json"])
    assert result.exit_code == 0
    assert json.loads(result.stdout) == {"selected": ["a", "b"], "cost": 100}
    result = CliRunner().invoke(app, ["solve", str(good), "--rule", "mes", "--completion", "add9"])
    assert result.exit_code == 2 and "expected one of" in result.output
