"""The yearly data call: places submit values, the rating team reviews them, a release publishes them.

- ``open_call``: the year, the indicator set, the deadline and the places that answer.
- ``submit_values`` / ``submit_file``: a place's submitter (scoped to that place) enters values with
  evidence; the import checks run (unit, range, whole counts), plus plausibility checks that flag
  and never reject (a jump from the place's previous year, a value far outside the other places
  of its level, a count above its parent place's).
- ``review``: the reviewer accepts a value or returns it with a reason; ``answer_return``: the
  submitter answers (and may correct) a returned value, which goes back to the reviewer.
- ``publish``: the accepted values become an immutable, numbered release (a call with missing
  values is published only with a stated reason); a later publication of the same call is a new
  release with a changelog against the previous one. Published values are written to the store
  as ``reported`` values whose source names the release.

Every step is written to ``call_event`` (who, what, when). A release is never changed: the store's
sessions refuse any update or delete of ``data_release`` and ``data_release_value`` rows
(``ConflictError``), and so do database triggers (migration ``catalog_0004_release_guard``).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from qala.components.catalog.frameworks import load_catalogue
from qala.components.catalog.models import (
    CallEvent,
    CallValue,
    DataCall,
    IndicatorValue,
    Place,
    Release,
    ReleaseValue,
)
from qala.components.catalog.services import EXPORT_COLUMNS, value_sources, write_values
from qala.components.catalog.tabular import read_table
from qala.components.catalog.validation import check_long
from qala.core.errors import (
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    Problem,
    ValidationError,
)
from qala.core.messages import msg
from qala.store.base import utcnow

JUMP_THRESHOLD = 0.5
"""A value more than 50 % above or below the place's value of the previous year is flagged."""
SPREAD_FACTOR = 2.0
"""A value more than twice the largest, or under half the smallest, of the other places' values of
the same indicator and year is flagged."""
DECISIONS = ("accept", "return")


def _log(session: Session, call: DataCall, action: str, actor: str, **detail: Any) -> None:
    session.add(CallEvent(call_id=call.id, action=action, actor=actor, detail=detail))


def get_call(session: Session, call_id: int) -> DataCall:
    call = session.get(DataCall, call_id)
    if call is None:
        raise NotFoundError(f"no data call {call_id}").with_message(
            msg("call.refused_missing", id=call_id)
        )
    return call


def open_call(
    session: Session,
    *,
    year: int,
    indicators: list[str],
    places: list[str],
    deadline: date,
    actor: str,
    title: str | None = None,
) -> DataCall:
    """A new data call; unknown indicators or places are refused by name."""
    catalogue = load_catalogue()
    known = set(session.scalars(select(Place.code)))
    problems = [
        Problem(f"unknown indicator {code!r}", column="indicators", value=code)
        for code in indicators
        if code not in catalogue.indicators
    ] + [
        Problem(f"unknown place {code!r}", column="places", value=code)
        for code in places
        if code not in known
    ]
    if not indicators or not places:
        problems.append(Problem("a call needs at least one indicator and one place"))
    if problems:
        raise ValidationError(problems, "the data call is invalid")
    call = DataCall(
        year=year,
        title=title or f"Data call {year}",
        indicators=list(dict.fromkeys(indicators)),
        places=list(dict.fromkeys(places)),
        deadline=deadline,
        created_by=actor,
    )
    session.add(call)
    session.flush()
    _log(session, call, "open", actor, year=year, places=len(call.places))
    return call


@dataclass
class Submission:
    """What a submission wrote: one row per value, with its plausibility flags."""

    written: int
    flags: dict[tuple[str, str], list[dict[str, Any]]]


def submit_file(
    session: Session, call_id: int, path: Path | str, *, actor: str, scope_place: str | None
) -> Submission:
    """Submit a CSV, Excel or Parquet file in the long layout (place, indicator, year, value[,
    evidence, note]); the year must be the call's."""
    table = read_table(Path(path))
    frame = table.frame
    missing = [c for c in ("place", "indicator", "value") if c not in frame.columns]
    if missing:
        raise ValidationError.single(
            f"a submission has the columns place, indicator, year, value (and evidence, note); "
            f"missing: {', '.join(missing)}",
            file=Path(path).name,
            column=missing[0],
            message=msg("call.refused_columns", missing=", ".join(missing)),
        )
    return submit_values(
        session, call_id, frame, actor=actor, scope_place=scope_place, file=Path(path).name
    )


def submit_values(
    session: Session,
    call_id: int,
    frame: pd.DataFrame,
    *,
    actor: str,
    scope_place: str | None,
    file: str = "submission",
    official: bool = False,
) -> Submission:
    """Submit values to a call; all or nothing.

    ``scope_place`` is the one place the submitter answers for (None: a reviewer entering values
    on a place's behalf). A row for another place is refused (``PermissionDeniedError``), as is a
    place or indicator the call does not ask for, or a value already accepted. ``official``: the
    values are official statistics as their publisher printed them (the official import); a
    place's submitter cannot submit official values."""
    call = get_call(session, call_id)
    if official and scope_place is not None:
        raise PermissionDeniedError(
            f"{actor} answers for {scope_place}: a place reports values, it cannot submit "
            "official statistics"
        )
    frame = frame.reset_index(drop=True)  # rows are numbered from the frame's order
    frame.columns = [str(c).strip().lower() for c in frame.columns]
    frame["place"] = frame["place"].astype(str).str.strip().str.lower()
    rows = pd.Series(range(2, len(frame) + 2))
    if scope_place is not None:
        other = sorted(set(frame["place"]) - {scope_place})
        if other:
            raise PermissionDeniedError(
                f"{actor} submits for {scope_place} only; the file has rows for {', '.join(other)}"
            ).with_message(msg("call.refused_other_place", place=scope_place, other=other))
    problems = [
        Problem(
            f"place {place!r} is not asked by call {call.id}",
            file=file,
            row=int(row),
            column="place",
            value=place,
            message=msg("call.refused_place_not_asked", place=place, id=call.id),
        )
        for row, place in zip(rows, frame["place"], strict=True)
        if place not in call.places
    ] + [
        Problem(
            f"indicator {code!r} is not asked by call {call.id}",
            file=file,
            row=int(row),
            column="indicator",
            value=code,
            message=msg("call.refused_indicator_not_asked", indicator=code, id=call.id),
        )
        for row, code in zip(rows, frame["indicator"], strict=True)
        if code not in call.indicators
    ]
    if "year" in frame.columns:
        problems += [
            Problem(
                f"the call is for {call.year}",
                file=file,
                row=int(row),
                column="year",
                value=year,
                message=msg("call.refused_year", year=call.year),
            )
            for row, year in zip(rows, frame["year"], strict=True)
            if str(year).strip() != str(call.year)
        ]
    if problems:
        raise ValidationError(problems, f"{file}: rows outside the call")
    frame["year"] = call.year
    place_ids = {code: id_ for id_, code in session.execute(select(Place.id, Place.code))}
    result = check_long(frame, rows, file=file, catalogue=load_catalogue(), place_ids=place_ids)
    if result.problems:
        raise ValidationError(result.problems, f"{file}: values fail the import checks")
    evidence = dict(zip(rows, frame.get("evidence", pd.Series([None] * len(frame))), strict=True))
    flags: dict[tuple[str, str], list[dict[str, Any]]] = {}
    written = 0
    existing = {
        (row.place_id, row.indicator_id): row
        for row in session.scalars(select(CallValue).where(CallValue.call_id == call.id))
    }
    neighbours = _Neighbours(session, list(result.values["indicator_id"]), call.year)
    for record in result.values.itertuples(index=False):
        place = str(frame.loc[int(record.source_row) - 2, "place"])
        stored = existing.get((int(record.place_id), str(record.indicator_id)))
        if stored is not None and stored.status == "accepted":
            raise ConflictError(
                f"{place} {record.indicator_id}: the value is accepted already; ask the reviewer "
                "to return it before changing it"
            ).with_message(msg("call.refused_accepted", place=place, indicator=record.indicator_id))
        found = plausibility_flags(
            session,
            int(record.place_id),
            str(record.indicator_id),
            call.year,
            float(record.value),
            neighbours=neighbours,
        )
        row = stored or CallValue(
            call_id=call.id, place_id=int(record.place_id), indicator_id=str(record.indicator_id)
        )
        existing[(int(record.place_id), str(record.indicator_id))] = row
        neighbours.submitted[(int(record.place_id), str(record.indicator_id))] = float(record.value)
        row.value = float(record.value)
        given = evidence.get(int(record.source_row))
        row.evidence = None if given is None or pd.isna(given) else str(given)
        row.note = None if record.note is None or pd.isna(record.note) else str(record.note)
        row.flags = found
        row.status = "submitted"
        row.official = official
        row.submitted_by = actor
        row.submitted_at = utcnow()
        session.add(row)
        flags[(place, str(record.indicator_id))] = found
        written += 1
        _log(
            session,
            call,
            "submit",
            actor,
            place=place,
            indicator=str(record.indicator_id),
            value=float(record.value),
            flags=[f["text"] for f in found],
        )
    session.flush()
    return Submission(written, flags)


ADDITIVE_UNITS = frozenset({"count", "persons"})
"""Units whose values add up over places: a town's count is a part of its region's."""


def _flag(code: str, text: str, **params: float | str) -> dict[str, Any]:
    """A plausibility flag: ``code`` and ``params`` for the pages' catalogues, ``text`` for the
    command line and the API."""
    return {"code": code, "text": text, **params}


class _Neighbours:
    """What the plausibility checks compare a value with, read once per submission: the stored
    values of the submitted indicators in the call's year and the year before, and the places'
    levels and parents."""

    def __init__(self, session: Session, indicators: list[str], year: int) -> None:
        self.year = year
        self.places = {
            id_: (level, parent)
            for id_, level, parent in session.execute(
                select(Place.id, Place.level, Place.parent_id)
            )
        }
        self.values: dict[tuple[int, str, int], float] = {}
        self.peers: dict[tuple[str, str], list[tuple[int, float]]] = {}
        for place_id, indicator, value_year, value in session.execute(
            select(
                IndicatorValue.place_id,
                IndicatorValue.indicator_id,
                IndicatorValue.year,
                IndicatorValue.value,
            ).where(
                IndicatorValue.indicator_id.in_(sorted(set(indicators))),
                IndicatorValue.year.in_([year, year - 1]),
            )
        ):
            self.values[(place_id, indicator, value_year)] = value
            level = self.places[place_id][0]
            self.peers.setdefault((indicator, level), []).append((place_id, value))
        self.submitted: dict[tuple[int, str], float] = {}
        """The newest value submitted to a call of the year (not returned), per place and
        indicator: a parent's value the store does not hold yet."""
        for place_id, indicator, value in session.execute(
            select(CallValue.place_id, CallValue.indicator_id, CallValue.value)
            .join(DataCall, DataCall.id == CallValue.call_id)
            .where(
                CallValue.indicator_id.in_(sorted(set(indicators))),
                DataCall.year == year,
                CallValue.status != "returned",
            )
            .order_by(CallValue.submitted_at)
        ):
            self.submitted[(place_id, indicator)] = value


def plausibility_flags(
    session: Session,
    place_id: int,
    indicator: str,
    year: int,
    value: float,
    *,
    neighbours: _Neighbours | None = None,
) -> list[dict[str, Any]]:
    """Warnings a reviewer should look at (never a refusal): a jump from the place's previous
    year, a value far outside the other places of the same level, a part above its whole."""
    if neighbours is None or neighbours.year != year:
        neighbours = _Neighbours(session, [indicator], year)
    if place_id not in neighbours.places:
        raise NotFoundError(f"no place {place_id}")
    level, parent_id = neighbours.places[place_id]
    found = []
    previous = neighbours.values.get((place_id, indicator, year - 1))
    if previous:
        change = (value - previous) / abs(previous)
        if abs(change) > JUMP_THRESHOLD:
            found.append(
                _flag(
                    "jump",
                    f"year-on-year change {change:+.0%} (previous year {previous:g})",
                    change=round(change * 100),
                    previous=previous,
                )
            )
    others = [v for p, v in neighbours.peers.get((indicator, level), []) if p != place_id]
    if len(others) >= 3:
        low, high = min(others), max(others)
        if value > SPREAD_FACTOR * high or (low > 0 and value < low / SPREAD_FACTOR):
            found.append(
                _flag(
                    "spread",
                    f"outside the range of the other places ({low:g}–{high:g})",
                    low=low,
                    high=high,
                )
            )
    unit = load_catalogue().indicators[indicator].unit
    if parent_id is not None and unit in ADDITIVE_UNITS:
        whole = neighbours.values.get((parent_id, indicator, year))
        if whole is None:
            whole = neighbours.submitted.get((parent_id, indicator))
        if whole and value > whole:
            parent = session.get(Place, parent_id)
            code = parent.code if parent else str(parent_id)
            found.append(
                _flag(
                    "share",
                    f"{value / whole:.0%} of the value of {code} ({whole:g}), the place it is "
                    "part of",
                    share=round(value / whole * 100),
                    parent=code,
                    whole=whole,
                )
            )
    return found


def review(
    session: Session,
    call_id: int,
    place: str,
    indicator: str,
    decision: str,
    *,
    actor: str,
    reason: str | None = None,
) -> CallValue:
    """Accept a submitted value, or return it with a reason."""
    return review_many(
        session, call_id, [(place, indicator)], decision, actor=actor, reason=reason
    )[0]


def review_many(
    session: Session,
    call_id: int,
    values: list[tuple[str, str]],
    decision: str,
    *,
    actor: str,
    reason: str | None = None,
) -> list[CallValue]:
    """The same decision (and reason) on several (place, indicator) values of a call, each one
    audited as its own review; all or nothing."""
    if decision not in DECISIONS:
        raise ValidationError.single(
            f"decision must be one of {', '.join(DECISIONS)}",
            column="decision",
            value=decision,
            message=msg("call.refused_decision"),
        )
    if decision == "return" and not (reason and reason.strip()):
        raise ValidationError.single(
            "a returned value needs a reason",
            column="reason",
            message=msg("call.refused_return_reason"),
        )
    call = get_call(session, call_id)
    stored = (
        {
            (code, row.indicator_id): row
            for row, code in session.execute(
                select(CallValue, Place.code)
                .join(Place, Place.id == CallValue.place_id)
                .where(CallValue.call_id == call.id)
            )
        }
        if len(values) > 1
        else {}
    )
    rows = []
    for place, indicator in values:
        row = stored.get((place, indicator)) or _call_value(session, call, place, indicator)
        row.status = "accepted" if decision == "accept" else "returned"
        row.review_reason = reason
        if decision == "return":
            row.answer = None
        row.reviewed_by = actor
        row.reviewed_at = utcnow()
        _log(session, call, decision, actor, place=place, indicator=indicator, reason=reason)
        rows.append(row)
    session.flush()
    return rows


def answer_return(
    session: Session,
    call_id: int,
    place: str,
    indicator: str,
    *,
    actor: str,
    scope_place: str | None,
    answer: str,
    value: float | None = None,
    evidence: str | None = None,
) -> CallValue:
    """The submitter answers a returned value: an explanation, and a corrected value (with its
    evidence) when there is one. The value goes back to the reviewer as submitted; a corrected
    value runs the import and plausibility checks as any submission."""
    if not answer.strip():
        raise ValidationError.single(
            "an answer needs a text", column="answer", message=msg("call.refused_answer_empty")
        )
    if scope_place is not None and place != scope_place:
        raise PermissionDeniedError(
            f"{actor} answers for {scope_place} only, not for {place}"
        ).with_message(msg("call.refused_other_place", place=scope_place, other=[place]))
    call = get_call(session, call_id)
    row = _call_value(session, call, place, indicator)
    if row.status != "returned":
        raise ConflictError(
            f"{place} {indicator}: the value is {row.status}, not returned; only a returned "
            "value is answered"
        ).with_message(msg("call.refused_not_returned", place=place, indicator=indicator))
    if value is not None:
        frame = pd.DataFrame(
            {
                "place": [place],
                "indicator": [indicator],
                "value": [value],
                "evidence": [evidence if evidence is not None else row.evidence],
                "note": [row.note],
            }
        )
        submit_values(session, call.id, frame, actor=actor, scope_place=scope_place)
    row.status = "submitted"
    row.answer = answer.strip()
    _log(session, call, "answer", actor, place=place, indicator=indicator, answer=row.answer)
    session.flush()
    return row


def _call_value(session: Session, call: DataCall, place: str, indicator: str) -> CallValue:
    row = session.scalar(
        select(CallValue)
        .join(Place, Place.id == CallValue.place_id)
        .where(
            CallValue.call_id == call.id,
            Place.code == place,
            CallValue.indicator_id == indicator,
        )
    )
    if row is None:
        raise NotFoundError(
            f"call {call.id}: no value of {indicator} submitted for {place}"
        ).with_message(msg("call.refused_no_value", place=place, indicator=indicator))
    return row


def list_calls(
    session: Session, *, place: str | None = None, today: date | None = None
) -> list[dict[str, Any]]:
    """Every call, newest first (``place``: only those that ask it), with its latest release
    (``official``: answered with official statistics, by the official import)."""
    today = today or date.today()
    latest = {
        call_id: number
        for call_id, number in session.execute(
            select(Release.call_id, func.max(Release.number)).group_by(Release.call_id)
        )
    }
    official = set(
        session.scalars(select(CallValue.call_id).where(CallValue.official.is_(True)).distinct())
    )
    calls = session.scalars(select(DataCall).order_by(DataCall.year.desc(), DataCall.id.desc()))
    return [
        {
            "id": call.id,
            "year": call.year,
            "title": call.title,
            "deadline": call.deadline.isoformat(),
            "overdue": today > call.deadline,
            "places": list(call.places),
            "indicators": list(call.indicators),
            "release": latest.get(call.id),
            "official": call.id in official,
        }
        for call in calls
        if place is None or place in call.places
    ]


def _value_view(row: CallValue | None, place: str, indicator: str) -> dict[str, Any]:
    if row is None:
        return {"place": place, "indicator": indicator, "status": "missing"}
    return {
        "place": place,
        "indicator": indicator,
        "status": row.status,
        "value": row.value,
        "evidence": row.evidence,
        "note": row.note,
        "flags": [f if isinstance(f, dict) else {"code": "", "text": f} for f in row.flags or []],
        "submitted_by": row.submitted_by,
        "submitted_at": row.submitted_at.isoformat(),
        "review_reason": row.review_reason,
        "reviewed_by": row.reviewed_by,
        "answer": row.answer,
    }


def place_sheet(session: Session, call_id: int, place: str) -> list[dict[str, Any]]:
    """What a place owes a call: every asked indicator with its value, status, evidence, flags,
    the reviewer's reason and the place's answer (``missing`` when nothing was submitted)."""
    call = get_call(session, call_id)
    if place not in call.places:
        raise NotFoundError(f"call {call.id} does not ask {place}").with_message(
            msg("call.refused_place_not_asked", place=place, id=call.id)
        )
    rows = {
        row.indicator_id: row
        for row in session.scalars(
            select(CallValue)
            .join(Place, Place.id == CallValue.place_id)
            .where(CallValue.call_id == call.id, Place.code == place)
        )
    }
    return [_value_view(rows.get(code), place, code) for code in call.indicators]


def review_queue(session: Session, call_id: int) -> list[dict[str, Any]]:
    """The values waiting for the reviewer (submitted or answered), flagged ones first."""
    call = get_call(session, call_id)
    rows = session.execute(
        select(CallValue, Place.code)
        .join(Place, Place.id == CallValue.place_id)
        .where(CallValue.call_id == call.id, CallValue.status == "submitted")
        .order_by(Place.code, CallValue.indicator_id)
    ).all()
    views = [_value_view(row, code, row.indicator_id) for row, code in rows]
    return sorted(views, key=lambda v: not v["flags"])


def call_events(session: Session, call_id: int) -> list[dict[str, Any]]:
    """The call's audit trail, oldest first."""
    call = get_call(session, call_id)
    return [
        {"action": e.action, "actor": e.actor, "at": e.at.isoformat(), **e.detail}
        for e in session.scalars(
            select(CallEvent).where(CallEvent.call_id == call.id).order_by(CallEvent.id)
        )
    ]


def status_board(
    session: Session, call_id: int, *, today: date | None = None
) -> list[dict[str, Any]]:
    """Per place: values submitted, accepted, returned and missing, and whether it is overdue."""
    call = get_call(session, call_id)
    today = today or date.today()
    counts: dict[str, dict[str, int]] = {p: {} for p in call.places}
    for code, status, n in session.execute(
        select(Place.code, CallValue.status, func.count())
        .join(Place, Place.id == CallValue.place_id)
        .where(CallValue.call_id == call.id)
        .group_by(Place.code, CallValue.status)
    ):
        counts.setdefault(code, {})[status] = int(n)
    board = []
    for place in call.places:
        got = counts.get(place, {})
        answered = sum(got.values())
        missing = len(call.indicators) - answered
        board.append(
            {
                "place": place,
                "submitted": got.get("submitted", 0),
                "accepted": got.get("accepted", 0),
                "returned": got.get("returned", 0),
                "missing": missing,
                "overdue": missing > 0 and today > call.deadline,
            }
        )
    return board


def publish(
    session: Session, call_id: int, *, actor: str, incomplete_reason: str | None = None
) -> Release:
    """Publish the call's accepted values as a new numbered release.

    A call where any asked value is not accepted is published only with ``incomplete_reason``
    (else ``ConflictError``); nothing is written when refused."""
    call = get_call(session, call_id)
    accepted = session.execute(
        select(CallValue, Place.code)
        .join(Place, Place.id == CallValue.place_id)
        .where(CallValue.call_id == call.id, CallValue.status == "accepted")
        .order_by(Place.code, CallValue.indicator_id)
    ).all()
    asked = len(call.places) * len(call.indicators)
    if len(accepted) < asked and not (incomplete_reason and incomplete_reason.strip()):
        raise ConflictError(
            f"call {call.id}: {asked - len(accepted)} of {asked} asked values are not accepted; "
            "publish with a reason for the missing ones, or wait"
        ).with_message(msg("call.refused_incomplete", count=asked - len(accepted), asked=asked))
    if not accepted:
        raise ConflictError(f"call {call.id}: no accepted value to publish").with_message(
            msg("call.refused_nothing_accepted")
        )
    catalogue = load_catalogue()
    values = [
        _value_record(call, row, code, catalogue)
        | {"submitted_by": row.submitted_by, "approved_by": row.reviewed_by or actor}
        for row, code in accepted
    ]
    previous = session.scalar(
        select(Release).where(Release.call_id == call.id).order_by(Release.number.desc())
    )
    number = (session.scalar(select(func.max(Release.number))) or 0) + 1
    changelog = _changelog(
        release_values(session, previous.id) if previous else [], values, previous
    )
    if previous is not None and not any(changelog[k] for k in ("added", "changed", "removed")):
        raise ConflictError(
            f"call {call.id}: nothing changed since release {previous.number}; no new release"
        ).with_message(msg("call.refused_unchanged", number=previous.number))
    release = Release(
        number=number,
        call_id=call.id,
        year=call.year,
        published_by=actor,
        incomplete_reason=incomplete_reason,
        changelog=changelog,
        sha256=values_digest(values),
    )
    session.add(release)
    session.flush()
    session.add_all(ReleaseValue(release_id=release.id, **v) for v in values)
    _log(
        session,
        call,
        "publish",
        actor,
        release=number,
        values=len(values),
        incomplete_reason=incomplete_reason,
    )
    # Official values are in the store already, as their import wrote them (with their series);
    # the values the places reported land there as reported values naming the release.
    _write_to_store(session, release, [v for v in values if not v["official"]])
    session.flush()
    return release


def _write_to_store(session: Session, release: Release, values: list[dict[str, Any]]) -> None:
    if not values:
        return
    place_ids = {code: id_ for id_, code in session.execute(select(Place.id, Place.code))}
    frame = pd.DataFrame(
        {
            "place": [v["place_code"] for v in values],
            "indicator": [v["indicator_id"] for v in values],
            "year": [v["year"] for v in values],
            "value": [v["value"] for v in values],
            "source": f"Qala release {release.number} (data call {release.call_id})",
            "note": [v["evidence"] for v in values],
        }
    )
    checked = check_long(
        frame,
        pd.Series(range(1, len(frame) + 1)),
        file=f"release {release.number}",
        catalogue=load_catalogue(),
        place_ids=place_ids,
    )
    write_values(session, checked.values, batch_id=None)


def values_digest(values: list[dict[str, Any]]) -> str:
    canonical = sorted(
        (v["place_code"], v["indicator_id"], int(v["year"]), float(v["value"])) for v in values
    )
    return hashlib.sha256(json.dumps(canonical).encode()).hexdigest()


def _changelog(
    before: list[dict[str, Any]], after: list[dict[str, Any]], previous: Release | None
) -> dict[str, Any]:
    old = {(v["place_code"], v["indicator_id"]): v for v in before}
    new = {(v["place_code"], v["indicator_id"]): v for v in after}
    return {
        "previous": previous.number if previous else None,
        "added": [
            {
                "place": p,
                "indicator": i,
                "value": new[(p, i)]["value"],
                "approved_by": new[(p, i)]["approved_by"],
            }
            for p, i in sorted(new.keys() - old.keys())
        ],
        "changed": [
            {
                "place": p,
                "indicator": i,
                "old": old[(p, i)]["value"],
                "new": new[(p, i)]["value"],
                "approved_by": new[(p, i)]["approved_by"],
            }
            for p, i in sorted(new.keys() & old.keys())
            if old[(p, i)]["value"] != new[(p, i)]["value"]
        ],
        "removed": [
            {"place": p, "indicator": i, "value": old[(p, i)]["value"]}
            for p, i in sorted(old.keys() - new.keys())
        ],
    }


def get_release(session: Session, number: int) -> Release:
    release = session.scalar(select(Release).where(Release.number == number))
    if release is None:
        raise NotFoundError(f"no release {number}; see `qala releases list`")
    return release


def list_releases(session: Session) -> list[dict[str, Any]]:
    rows = session.execute(
        select(Release, func.count(ReleaseValue.place_code))
        .join(ReleaseValue, ReleaseValue.release_id == Release.id)
        .group_by(Release.id)
        .order_by(Release.number)
    ).all()
    return [
        {
            "id": release.number,
            "status": "published",
            "year": release.year,
            "call": release.call_id,
            "values": int(n),
            "published_at": release.published_at.isoformat(),
            "published_by": release.published_by,
            "incomplete_reason": release.incomplete_reason,
            "sha256": release.sha256,
        }
        for release, n in rows
    ]


def release_values(session: Session, release_id: int) -> list[dict[str, Any]]:
    rows = session.scalars(
        select(ReleaseValue)
        .where(ReleaseValue.release_id == release_id)
        .order_by(ReleaseValue.place_code, ReleaseValue.indicator_id)
    )
    return [
        {
            "place_code": r.place_code,
            "indicator_id": r.indicator_id,
            "year": r.year,
            "value": r.value,
            "unit": r.unit,
            "evidence": r.evidence,
            "submitted_by": r.submitted_by,
            "approved_by": r.approved_by,
            "official": r.official,
        }
        for r in rows
    ]


def release_diff(session: Session, first: int, second: int) -> dict[str, Any]:
    """What changed between two releases (by number)."""
    a, b = get_release(session, first), get_release(session, second)
    return _changelog(release_values(session, a.id), release_values(session, b.id), a)


def release_covering(
    session: Session, indicators: list[str], year: int, *, official: bool = False
) -> Release | None:
    """The newest published release of ``year`` that holds values of every one of
    ``indicators`` (``official``: official values of every one) — what a rating of those
    indicators builds on; None when no release does."""
    wanted = set(indicators)
    releases = session.scalars(
        select(Release).where(Release.year == year).order_by(Release.number.desc())
    )
    for release in releases:
        query = select(ReleaseValue.indicator_id).where(ReleaseValue.release_id == release.id)
        if official:
            query = query.where(ReleaseValue.official.is_(True))
        held = set(session.scalars(query.distinct()))
        if wanted <= held:
            return release
    return None


def release_frame(session: Session, number: int) -> pd.DataFrame:
    """A published release's values in the store's long layout (``values_frame``'s columns):
    what a rating run reads when it is built on a release."""
    release = get_release(session, number)
    rows = release_values(session, release.id)
    return _long(rows, source=f"Qala release {release.number} (data call {release.call_id})")


def draft_frame(session: Session, call_id: int) -> pd.DataFrame:
    """A call's values not yet published (submitted or accepted, never returned), in the same
    layout: for previews only, never for a stored rating."""
    call = get_call(session, call_id)
    catalogue = load_catalogue()
    rows = [
        _value_record(call, row, code, catalogue)
        for row, code in session.execute(
            select(CallValue, Place.code)
            .join(Place, Place.id == CallValue.place_id)
            .where(CallValue.call_id == call.id, CallValue.status != "returned")
        )
    ]
    return _long(rows, source=f"DRAFT: data call {call.id}, not published")


def publish_import(
    session: Session,
    frame: pd.DataFrame,
    *,
    year: int,
    title: str,
    actor: str,
    official: bool = False,
    file: str = "import",
) -> Release | None:
    """Publish the values an import brings for ``year`` through a data call of their own.

    ``frame`` has the columns place, indicator, value and evidence (the table the value is
    printed in). The call titled ``title`` for the year is opened on the first import (asking the
    places and indicators the import brings; later imports add theirs); the import answers it as
    a national submitter (``official``: as official statistics) and ``actor`` accepts what it
    submitted. Only what changed goes through the cycle again: a new or changed value is
    submitted and accepted (a changed one returned first, with the reason), a value the import no
    longer brings is returned. Then the accepted values are published, with the count of asked
    pairs the source has no value for as the reason of an incomplete release, and the release's
    changelog tells what changed.

    Returns the new release, or None when nothing changed since the call's last release (an
    import of the same values publishes nothing and leaves that release as it was)."""
    frame = frame.copy()
    frame["place"] = frame["place"].astype(str)
    call = session.scalar(select(DataCall).where(DataCall.title == title, DataCall.year == year))
    places = list(dict.fromkeys(frame["place"]))
    indicators = list(dict.fromkeys(frame["indicator"]))
    if call is None:
        call = open_call(
            session,
            year=year,
            indicators=indicators,
            places=places,
            deadline=date(year + 1, 12, 31),
            actor=actor,
            title=title,
        )
    else:
        more_places = [p for p in places if p not in call.places]
        more_indicators = [i for i in indicators if i not in call.indicators]
        if more_places or more_indicators:
            call.places = [*call.places, *more_places]
            call.indicators = [*call.indicators, *more_indicators]
            _log(
                session,
                call,
                "extend",
                actor,
                places=more_places,
                indicators=more_indicators,
            )
    stored = {
        (code, row.indicator_id): row
        for row, code in session.execute(
            select(CallValue, Place.code)
            .join(Place, Place.id == CallValue.place_id)
            .where(CallValue.call_id == call.id)
        )
    }
    brought = {
        (str(p), str(i)): float(v)
        for p, i, v in zip(frame["place"], frame["indicator"], frame["value"], strict=True)
    }
    fresh = [
        key
        for key, value in brought.items()
        if key not in stored
        or stored[key].status != "accepted"
        or stored[key].value != value
        or stored[key].official != official
    ]
    gone = [key for key, row in stored.items() if key not in brought and row.status != "returned"]
    for place, indicator in [k for k in fresh if k in stored and stored[k].status == "accepted"]:
        review(
            session,
            call.id,
            place,
            indicator,
            "return",
            actor=actor,
            reason=f"{file}: the source now prints {brought[(place, indicator)]:g}",
        )
    if gone:
        review_many(
            session,
            call.id,
            gone,
            "return",
            actor=actor,
            reason=f"{file}: the source no longer prints this value",
        )
    if fresh:
        wanted = set(fresh)
        keys = zip(frame["place"], frame["indicator"], strict=True)
        rows = frame[[key in wanted for key in keys]]
        submit_values(
            session,
            call.id,
            rows[["place", "indicator", "value", "evidence"]],
            actor=actor,
            scope_place=None,
            file=file,
            official=official,
        )
        review_many(session, call.id, fresh, "accept", actor=actor)
    released = session.scalar(select(Release.id).where(Release.call_id == call.id).limit(1))
    if released is not None and not fresh and not gone:
        return None
    asked = len(call.places) * len(call.indicators)
    missing = asked - (len(brought))
    reason = (
        f"{file}: the source prints no value for {missing} of the {asked} place and indicator "
        "pairs the call asks"
        if missing
        else None
    )
    return publish(session, call.id, actor=actor, incomplete_reason=reason)


def _value_record(call: DataCall, row: CallValue, code: str, catalogue: Any) -> dict[str, Any]:
    """A call's value as a release (or draft) holds it, in the catalogue's unit."""
    return {
        "place_code": code,
        "indicator_id": row.indicator_id,
        "year": call.year,
        "value": row.value,
        "unit": catalogue.indicators[row.indicator_id].unit,
        "evidence": row.evidence,
        "official": bool(row.official),
    }


def _long(rows: list[dict[str, Any]], *, source: str) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "place": [r["place_code"] for r in rows],
            "indicator": [r["indicator_id"] for r in rows],
            "year": [int(r["year"]) for r in rows],
            "value": [float(r["value"]) for r in rows],
            "unit": [r["unit"] for r in rows],
            "source": source,
            "note": [r["evidence"] for r in rows],
            # A release holds no generated value: the official import's values stay official,
            # the places' reported values are neither.
            "illustrative": False,
            "official": [bool(r.get("official", False)) for r in rows],
        },
        columns=EXPORT_COLUMNS,
    )
    return frame.astype(
        {"year": "int64", "value": "float64", "illustrative": bool, "official": bool}
    )


DEMO_CALL_TITLE = "Demo data call 2022 (values as published by BNS)"
DEMO_OPEN_CALL_TITLE = "Demo data call for last year (open)"
DEMO_OPEN_CALL_PLACES = ["astana", "almaty", "shymkent", "karaganda", "aktobe"]
DEMO_OPEN_CALL_INDICATORS = [
    "iso37122.10.2",
    "kz_sc.education.schools_broadband_share",
    "kz_sc.transport.vehicles_gps_share",
    "kz_sc.city_management.open_datasets",
]


def load_demo_open_call(database: Any, today: date) -> int:
    """The demo's open call: last year's values of four digital-service indicators of the
    national rating, asked of five cities, due on 31 March. Nothing is submitted: the demo
    ``submitter`` (Astana) answers it, the ``reviewer`` and ``publisher`` take it from there;
    values the demo would make up would only be more generated numbers. Loading again adds
    nothing. Returns the call's id."""
    with database.transaction() as session:
        existing = session.scalar(select(DataCall.id).where(DataCall.title == DEMO_OPEN_CALL_TITLE))
        if existing is not None:
            return int(existing)
        call = open_call(
            session,
            year=today.year - 1,
            indicators=DEMO_OPEN_CALL_INDICATORS,
            places=DEMO_OPEN_CALL_PLACES,
            deadline=date(today.year + (today.month > 3), 3, 31),
            actor="demo: rating team",
            title=DEMO_OPEN_CALL_TITLE,
        )
        return call.id


def load_demo_release(database: Any) -> int | None:
    """The demo's one published release: a 2022 call to Astana, Almaty and Shymkent for
    unemployment and life expectancy, answered with the official BNS values already in the store
    (the evidence names the BNS table), accepted and published. Loading again adds nothing.
    Returns the release number (None when the official values are not loaded)."""
    indicators = ["iso37120.5.1", "iso37120.11.1"]
    places = ["astana", "almaty", "shymkent"]
    with database.transaction() as session:
        existing = session.scalar(select(DataCall).where(DataCall.title == DEMO_CALL_TITLE))
        if existing is not None:
            done = session.scalar(select(Release.number).where(Release.call_id == existing.id))
            if done is not None:
                return int(done)
        sources = value_sources(session, places=places, indicators=indicators)
        rows = [
            (place, indicator, sources[(place, indicator, 2022)])
            for place in places
            for indicator in indicators
            if (place, indicator, 2022) in sources
        ]
        if len(rows) < len(places) * len(indicators):
            return None
        call = existing or open_call(
            session,
            year=2022,
            indicators=indicators,
            places=places,
            deadline=date(2023, 6, 30),
            actor="demo: rating team",
            title=DEMO_CALL_TITLE,
        )
        stored = {
            (code, indicator): value
            for code, indicator, value in session.execute(
                select(Place.code, IndicatorValue.indicator_id, IndicatorValue.value)
                .join(Place, Place.id == IndicatorValue.place_id)
                .where(IndicatorValue.year == 2022, IndicatorValue.official.is_(True))
            )
        }
        for place in places:
            frame = pd.DataFrame(
                {
                    "place": place,
                    "indicator": indicators,
                    "value": [stored[(place, i)] for i in indicators],
                    "evidence": [f"{sources[(place, i, 2022)]['table']}" for i in indicators],
                }
            )
            submit_values(
                session, call.id, frame, actor=f"demo: akimat of {place}", scope_place=place
            )
            for indicator in indicators:
                review(session, call.id, place, indicator, "accept", actor="demo: rating team")
        return publish(session, call.id, actor="demo: rating team").number
