"""The request lifecycle as staff drive it: status transitions (acknowledge, start, close,
reopen), assignment, notes and merging duplicates, each recorded in the audit trail, one at a
time or in bulk (:data:`ACTIONS`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from qala.components.requests311.after_commit import (
    forget_events_after,
    pending_event_count,
    publish_after_commit,
)
from qala.components.requests311.duplicates import carry_supporters
from qala.components.requests311.jurisdictions import JurisdictionInfo
from qala.components.requests311.models import AuditEntry, Note, Request
from qala.components.requests311.queries import request_queue
from qala.components.requests311.views import OPEN_STATUSES, StaffRequest, staff_view
from qala.core.clock import as_utc
from qala.core.errors import (
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    Problem,
    ValidationError,
    raise_if_problems,
)
from qala.core.messages import msg
from qala.events import Event, EventBus, publish_in_transaction

CLOSE_REASONS = ("resolved", "duplicate", "not_actionable", "out_of_jurisdiction", "withdrawn")
"""Why a request was closed; ``duplicate`` is set only by :meth:`Requests.merge_duplicate`."""
MAX_NOTE = 4000


class Requests:
    """Staff operations on one city's requests, each recorded in the audit trail.

    Parameters
    ----------
    session
        The unit of work (the caller commits).
    jurisdiction
        The city.
    actor
        Who acts (a username, or ``escalation`` for the timer).
    now
        The clock reading to stamp changes with.
    bus
        Where ``requests311.*`` events go (optional).
    departments
        The department ids the actor works in (None: every department of the city); requests
        of other departments are as if absent, and none can be re-routed to one.
    """

    def __init__(
        self,
        session: Session,
        jurisdiction: JurisdictionInfo,
        *,
        actor: str,
        now: datetime,
        bus: EventBus | None = None,
        departments: frozenset[int] | None = None,
    ) -> None:
        self.session = session
        self.jurisdiction = jurisdiction
        self.actor = actor
        self.now = now
        self.bus = bus
        self.departments = departments

    # -- reading
    def load(self, request_id: int) -> Request:
        request = self.session.get(Request, request_id)
        if (
            request is None
            or request.jurisdiction_id != self.jurisdiction.id
            or (self.departments is not None and request.department_id not in self.departments)
        ):
            raise NotFoundError(
                f"no service request {request_id} in {self.jurisdiction.code}"
            ).with_message(msg("request.refused_missing", id=request_id))
        return request

    def detail(self, request_id: int, *, language: str = "en") -> StaffRequest:
        return staff_view(
            self.load(request_id),
            self.jurisdiction,
            self.now,
            full=True,
            session=self.session,
            language=language,
        )

    def queue(self, **filters: Any) -> list[StaffRequest]:
        """A department's work queue: :func:`~qala.components.requests311.queries.request_queue`
        with ``filters`` (department, statuses, assignee, overdue_only, limit, offset,
        language)."""
        return request_queue(
            self.session,
            self.jurisdiction,
            now=self.now,
            department_ids=self.departments,
            **filters,
        )

    # -- writing
    def _record(self, request: Request, action: str, changes: dict[str, Any]) -> None:
        self.session.add(
            AuditEntry(
                request_id=request.id, at=self.now, actor=self.actor, action=action, changes=changes
            )
        )
        request.updated_at = self.now

    def _set(self, request: Request, action: str, **values: Any) -> None:
        changes = {}
        for name, value in values.items():
            before = getattr(request, name)
            if before != value:
                changes[name] = [_jsonable(before), _jsonable(value)]
                setattr(request, name, value)
        self._record(request, action, changes)

    def _publish(self, name: str, request: Request, **extra: Any) -> None:
        publish_after_commit(
            self.session,
            self.bus,
            Event(
                f"requests311.{name}",
                {"id": request.id, "jurisdiction": self.jurisdiction.code, **extra},
            ),
        )

    def _announce(self, request: Request, note: str | None = None) -> None:
        """Tell in-transaction subscribers (the resident's notifications) of the new status, with
        the public note staff wrote for the resident."""
        publish_in_transaction(
            self.session,
            Event(
                "requests311.status_changed",
                {
                    "id": request.id,
                    "jurisdiction": self.jurisdiction.code,
                    "status": request.status,
                    "reason": request.close_reason,
                    "note": (note or "").strip() or None,
                    "duplicate_of": request.duplicate_of_id,
                    "illustrative": bool(request.illustrative),
                    "at": self.now.isoformat(),
                },
            ),
            self.bus,
        )

    def acknowledge(self, request_id: int, *, note: str | None = None) -> StaffRequest:
        request = self.load(request_id)
        self._require(request, ("open",), "acknowledge")
        self._set(request, "acknowledged", status="acknowledged", acknowledged_at=self.now)
        self._maybe_note(request, note, public=True)
        self._announce(request, note)
        return self._done(request)

    def start(self, request_id: int, *, note: str | None = None) -> StaffRequest:
        request = self.load(request_id)
        self._require(request, ("open", "acknowledged"), "start")
        values: dict[str, Any] = {"status": "in_progress"}
        if request.acknowledged_at is None:
            values["acknowledged_at"] = self.now
        self._set(request, "started", **values)
        self._maybe_note(request, note, public=True)
        self._announce(request, note)
        return self._done(request)

    def close(self, request_id: int, *, reason: str, note: str | None = None) -> StaffRequest:
        if reason not in CLOSE_REASONS or reason == "duplicate":
            allowed = [r for r in CLOSE_REASONS if r != "duplicate"]
            raise ValidationError.single(
                f"expected one of {', '.join(allowed)} (mark duplicates with merge)",
                column="reason",
                value=reason,
                message=msg("request.refused_close_reason"),
            )
        request = self.load(request_id)
        self._require(request, OPEN_STATUSES, "close")
        self._set(request, "closed", status="closed", close_reason=reason, closed_at=self.now)
        self._maybe_note(request, note, public=True)
        self._announce(request, note)
        self._publish("closed", request, reason=reason)
        return self._done(request)

    def reopen(self, request_id: int, *, reason: str) -> StaffRequest:
        if not reason.strip():
            raise ValidationError.single(
                "say why the request is reopened",
                column="reason",
                message=msg("request.refused_reopen_reason"),
            )
        request = self.load(request_id)
        self._require(request, ("closed",), "reopen")
        if request.close_reason == "duplicate":
            raise ConflictError(
                f"request {request.id} is a duplicate of {request.duplicate_of_id}; reopen that one"
            ).with_message(
                msg(
                    "request.refused_reopen_duplicate",
                    id=request.id,
                    original=request.duplicate_of_id,
                )
            )
        self._set(
            request,
            "reopened",
            status="open",
            close_reason=None,
            closed_at=None,
            reopen_count=request.reopen_count + 1,
            escalation_level=0,
            expected_at=self.now + timedelta(hours=self._sla(request)),
        )
        self._maybe_note(request, reason, public=True)
        self._announce(request, reason)
        self._publish("reopened", request)
        return self._done(request)

    def merge_duplicate(self, request_id: int, *, into: int) -> StaffRequest:
        """Close ``request_id`` as a duplicate of ``into`` (followed to its original); its
        reporter and supporters now support the original."""
        request = self.load(request_id)
        original = self.load(into)
        while original.duplicate_of_id is not None:
            original = self.load(original.duplicate_of_id)
        if original.id == request.id:
            raise ConflictError(
                f"request {request.id} cannot be a duplicate of itself"
            ).with_message(msg("request.refused_self_duplicate", id=request.id))
        self._require(request, OPEN_STATUSES, "merge")
        self._set(
            request,
            "merged",
            status="closed",
            close_reason="duplicate",
            closed_at=self.now,
            duplicate_of_id=original.id,
        )
        self._maybe_note(request, f"Merged into request {original.id}.", public=True)
        self._maybe_note(original, f"Request {request.id} was merged into this one.", public=False)
        before = original.supporters
        after = carry_supporters(self.session, request.id, original.id)
        changes: dict[str, Any] = {"duplicate": [None, request.id]}
        if after != before:
            changes["supporters"] = [before, after]
        self._record(original, "absorbed_duplicate", changes)
        self._announce(request)
        self._publish("merged", request, into=original.id)
        return self._done(request)

    def assign(
        self, request_id: int, *, assignee: str | None = None, department: str | None = None
    ) -> StaffRequest:
        request = self.load(request_id)
        values: dict[str, Any] = {}
        if assignee is not None:
            if len(assignee) > 120:
                raise ValidationError.single(
                    "at most 120 characters",
                    column="assignee",
                    message=msg("request.refused_too_long", n=120),
                )
            values["assignee"] = assignee or None
        if department is not None:
            target = self.jurisdiction.department_by_code(department).id
            if self.departments is not None and target not in self.departments:
                raise PermissionDeniedError(
                    f"department `{department}` is outside the departments this account works in"
                )
            values["department_id"] = target
        if not values:
            raise ValidationError.single(
                "give an assignee, a department or both",
                column="assignee",
                code="required",
                message=msg("request.refused_assign_nothing"),
            )
        self._set(request, "assigned", **values)
        return self._done(request)

    def add_note(self, request_id: int, *, text: str, public: bool) -> StaffRequest:
        request = self.load(request_id)
        if not text.strip():
            raise ValidationError.single(
                "is empty",
                column="text",
                code="required",
                message=msg("request.refused_note_empty"),
            )
        self._maybe_note(request, text, public=public)
        self._record(request, "public_update" if public else "internal_note", {})
        return self._done(request)

    def escalate(self, request_id: int, *, level: int) -> StaffRequest:
        request = self.load(request_id)
        self._set(request, "escalated", escalation_level=level, escalated_at=self.now)
        self._publish("escalated", request, level=level)
        return self._done(request)

    def apply(self, action: str, request_id: int, **options: Any) -> StaffRequest:
        """The staff action named ``action`` (a key of :data:`ACTIONS`) on one request, with the
        action's ``options`` (e.g. ``reason`` for close)."""
        return _action(action)(self, request_id, **options)

    def bulk(self, request_ids: Iterable[int], action: str, **options: Any) -> list[StaffRequest]:
        """Apply one action to many requests in one transaction: all succeed, or none is changed and
        the error lists every request that failed and why."""
        act = _action(action)
        done: list[StaffRequest] = []
        problems: list[Problem] = []
        events_before = pending_event_count(self.session)
        everything = self.session.begin_nested()
        for request_id in dict.fromkeys(request_ids):
            events_here = pending_event_count(self.session)
            try:
                with self.session.begin_nested():
                    done.append(act(self, request_id, **options))
            except (ValidationError, ConflictError, NotFoundError) as exc:
                forget_events_after(self.session, events_here)
                problems.append(Problem(str(exc).splitlines()[0], column="ids", value=request_id))
            except TypeError as exc:
                everything.rollback()
                forget_events_after(self.session, events_before)
                raise ValidationError.single(
                    f"wrong options for {action}: {exc}", column="options"
                ) from None
        if problems:
            everything.rollback()
            forget_events_after(self.session, events_before)
            raise_if_problems(problems, f"bulk {action}: nothing was changed")
        everything.commit()
        return done

    # -- helpers
    def _sla(self, request: Request) -> float:
        return self.jurisdiction.sla_hours(request.service_id)

    def _require(self, request: Request, statuses: Sequence[str], verb: str) -> None:
        if request.status not in statuses:
            raise ConflictError(
                f"cannot {verb.replace('start', 'start work on')} request {request.id}: "
                f"it is {request.status}"
            ).with_message(
                msg(
                    "request.refused_state",
                    id=request.id,
                    action=msg(f"request.verb_{verb}"),
                    status=msg(f"status.{request.status}"),
                )
            )

    def _maybe_note(self, request: Request, text: str | None, *, public: bool) -> None:
        if not text or not text.strip():
            return
        if len(text) > MAX_NOTE:
            raise ValidationError.single(
                f"at most {MAX_NOTE} characters",
                column="note",
                message=msg("request.refused_too_long", n=MAX_NOTE),
            )
        self.session.add(
            Note(
                request_id=request.id,
                created_at=self.now,
                author=self.actor,
                public=public,
                text=text.strip(),
            )
        )
        if public:
            request.status_notes = text.strip()

    def _done(self, request: Request) -> StaffRequest:
        self.session.flush()
        return staff_view(request, self.jurisdiction, self.now, full=False)


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return (as_utc(value) or value).isoformat()
    return value


ACTIONS: dict[str, Callable[..., StaffRequest]] = {
    "acknowledge": Requests.acknowledge,
    "start": Requests.start,
    "close": Requests.close,
    "reopen": Requests.reopen,
    "assign": Requests.assign,
    "note": Requests.add_note,
    "merge": Requests.merge_duplicate,
}
"""Staff actions by name: each takes (requests, request id, **options) and returns the changed
request. The operator API's single-request routes and ``bulk`` both go through this table."""


def _action(name: str) -> Callable[..., StaffRequest]:
    found = ACTIONS.get(name)
    if found is None:
        raise ValidationError.single(
            f"expected one of {', '.join(ACTIONS)}", column="action", value=name
        )
    return found


def refuse_self_merge(request_id: int, into: int) -> None:
    """Refuse, as bad input, merging a request into itself (checked before anything is read)."""
    if into == request_id:
        raise ValidationError.single(
            "a request cannot be a duplicate of itself",
            column="into",
            value=into,
            message=msg("request.refused_self_duplicate", id=request_id),
        )
