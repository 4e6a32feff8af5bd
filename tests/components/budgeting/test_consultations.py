"""Consultations: a trilingual survey with every kind of question, answers checked and revisable,
results computed by hand; comments and their moderation; a hearing's outcome."""

from __future__ import annotations

from datetime import timedelta

import pytest
from tests.components.budgeting.conftest import KEY, NOW, Town

from qala.components.budgeting.consultations import (
    NewConsultation,
    NewQuestion,
    add_comment,
    consultation_results,
    create_consultation,
    get_consultation,
    hide_comment,
    record_outcome,
    respond,
)
from qala.core.errors import ConflictError, ValidationError

QUESTIONS = [
    NewQuestion(
        "priority",
        "single",
        {"kk": "Басымдық", "ru": "Приоритет", "en": "Priority"},
        options=[
            {"key": "parks", "label": {"en": "Parks", "kk": "Саябақтар"}},
            {"key": "roads", "label": {"en": "Roads", "ru": "Дороги"}},
        ],
    ),
    NewQuestion(
        "uses",
        "multiple",
        {"en": "Uses"},
        options=[
            {"key": "walk", "label": {"en": "Walk"}},
            {"key": "sport", "label": {"en": "Sport"}},
            {"key": "kids", "label": {"en": "Kids"}},
        ],
    ),
    NewQuestion("score", "scale", {"en": "Satisfaction"}, scale_min=1, scale_max=5),
    NewQuestion("idea", "text", {"en": "Idea"}, required=False),
]


def survey(town: Town) -> None:
    with town.context.database.transaction() as session:
        create_consultation(
            session,
            NewConsultation(
                code="green-2026",
                place_code="astana",
                title={"kk": "Жасыл", "ru": "Зелень", "en": "Green"},
                opens_at=NOW - timedelta(days=1),
                closes_at=NOW + timedelta(days=7),
                questions=QUESTIONS,
            ),
            actor="akimat",
            now=NOW,
        )


def answer(town: Town, who: str, answers: dict[str, object], language: str = "ru") -> None:
    with town.context.database.transaction() as session:
        respond(
            session,
            "green-2026",
            respondent=who,
            answers=answers,
            language=language,
            secret_key=KEY,
            now=town.clock(),
        )


def test_a_survey_collects_checked_answers_and_computes_results(town: Town) -> None:
    survey(town)
    with pytest.raises(ValidationError) as caught:
        answer(town, "x", {"priority": "sea", "uses": ["walk", "walk"], "score": 9, "extra": 1})
    assert {p.column for p in caught.value.problems} == {
        "answers.priority",
        "answers.uses",
        "answers.score",
        "answers.extra",
    }
    with pytest.raises(ValidationError, match="needs an answer"):
        answer(town, "x", {"priority": "parks"})
    answer(town, "a", {"priority": "roads", "uses": ["walk"], "score": 1})
    answer(
        town,
        "a",
        {"priority": "parks", "uses": ["walk", "kids"], "score": 4, "idea": " trees "},
        "kk",
    )  # replaces a's first answers
    answer(town, "b", {"priority": "parks", "uses": ["sport"], "score": 5}, "en")
    answer(town, "c", {"priority": "roads", "uses": ["walk"], "score": 2})
    with town.context.database.session() as session:
        results = consultation_results(session, "green-2026", now=town.clock())
    assert results.responses == 3 and results.by_language == {"kk": 1, "en": 1, "ru": 1}
    by_key = {q.key: q for q in results.questions}
    assert by_key["priority"].counts == {"parks": 2, "roads": 1}
    assert by_key["priority"].shares["parks"] == pytest.approx(2 / 3)
    assert by_key["uses"].counts == {"walk": 2, "sport": 1, "kids": 1}
    assert by_key["score"].counts == {"1": 0, "2": 1, "3": 0, "4": 1, "5": 1}
    assert by_key["score"].mean == pytest.approx(11 / 3) and by_key["score"].median == 4
    assert by_key["idea"].texts == ["trees"] and by_key["idea"].answered == 1
    with town.context.database.session() as session:
        public = consultation_results(session, "green-2026", now=town.clock(), with_texts=False)
    public_idea = next(q for q in public.questions if q.key == "idea")
    assert public_idea.texts == [] and public_idea.answered == 1
    assert [q.counts for q in public.questions] == [q.counts for q in results.questions]
    town.clock.set(NOW + timedelta(days=7))
    with pytest.raises(ConflictError, match="takes answers from"):
        answer(town, "d", {"priority": "parks", "uses": ["walk"], "score": 3})


def test_comments_moderation_and_a_hearing(town: Town) -> None:
    survey(town)
    with town.context.database.transaction() as session:
        kept = add_comment(session, "green-2026", author="a", text="More trees", now=NOW)
        rude = add_comment(
            session, "green-2026", author="b", text="rude words", language="kk", now=NOW
        )
        with pytest.raises(ValidationError, match="say publicly why"):
            hide_comment(session, "green-2026", rude.id, reason=" ", actor="moderator")
        hide_comment(session, "green-2026", rude.id, reason="insults", actor="moderator")
        info = get_consultation(session, "green-2026", now=NOW)
    assert info.comments == 1
    shown = {c.id: c for c in info.comment_list}
    assert shown[kept.id].text == "More trees"
    assert shown[rude.id].text is None and shown[rude.id].hidden_reason == "insults (moderator)"
    assert [q.key for q in info.questions] == ["priority", "uses", "score", "idea"]
    with town.context.database.transaction() as session:
        with pytest.raises(ValidationError, match="hearing needs its date"):
            create_consultation(
                session,
                NewConsultation(
                    code="hearing-1",
                    place_code="astana",
                    kind="hearing",
                    title="Слушания",
                    opens_at=NOW,
                    closes_at=NOW + timedelta(days=3),
                ),
                actor="a",
                now=NOW,
            )
        create_consultation(
            session,
            NewConsultation(
                code="hearing-1",
                place_code="astana-yesil-district",
                kind="hearing",
                title="Слушания",
                opens_at=NOW,
                closes_at=NOW + timedelta(days=3),
                hearing_at=NOW + timedelta(days=2),
                venue="Akimat hall",
            ),
            actor="a",
            now=NOW,
        )
        with pytest.raises(ValidationError, match="has not taken place"):
            record_outcome(session, "hearing-1", summary={"en": "..."}, participants=40, now=NOW)
        done = record_outcome(
            session,
            "hearing-1",
            summary={"en": "Lighting first"},
            participants=40,
            now=NOW + timedelta(days=2, hours=3),
        )
    assert (done.hearing_participants, done.summary) == (40, {"en": "Lighting first"})


def test_bad_consultations_are_explained(sqlite_town: Town) -> None:
    with (
        sqlite_town.context.database.transaction() as session,
        pytest.raises(ValidationError) as caught,
    ):
        create_consultation(
            session,
            NewConsultation(
                code="x",
                place_code="nowhere",
                title={},
                opens_at=NOW,
                closes_at=NOW,
                questions=[
                    NewQuestion(
                        "q", "single", {"en": "?"}, options=[{"key": "a", "label": {"en": "A"}}]
                    ),
                    NewQuestion("q", "scale", {"en": "?"}, scale_min=5, scale_max=1),
                ],
            ),
            actor="a",
            now=NOW,
        )
    columns = {p.column for p in caught.value.problems}
    assert {
        "code",
        "place_code",
        "title",
        "closes_at",
        "questions[0].options",
        "questions[1].scale_max",
        "questions",
    } <= columns
