"""Dead letters: messages and items refused at ingestion, with the reason, for operators to read.

A message that can never be ingested (not JSON, PM2.5 in degC, a time in 1970, an unknown sensor)
is acknowledged to the broker and recorded here instead, so that one bad device never stops the
stream behind it. Recording is idempotent: a message redelivered after a crash is kept once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from qala.components.operate.models import DeadLetter
from qala.store.statements import insert_ignoring

# A dead letter keeps enough of the payload to diagnose the device, not a flood's worth.
MAX_PAYLOAD_CHARS = 16_384


@dataclass(frozen=True, slots=True)
class Refusal:
    """One refused message or item on its way to the dead-letter table.

    ``key`` tells apart the items of one message (their index) so each is recorded once.
    """

    channel: str
    source: str
    reason: str
    payload: str
    sensor: str | None = None
    key: str = ""

    @property
    def fingerprint(self) -> str:
        digest = hashlib.sha256()
        for part in (self.channel, self.source, self.key, self.payload):
            digest.update(part.encode("utf-8", "replace"))
            digest.update(b"\0")
        return digest.hexdigest()


@dataclass
class DeadLetterView:
    id: int
    received_at: str
    channel: str
    source: str
    sensor: str | None
    reason: str
    payload: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def record_dead_letters(session: Session, refusals: Sequence[Refusal], *, now: datetime) -> int:
    """Insert refusals not recorded before (in the caller's transaction); returns how many."""
    if not refusals:
        return 0
    rows = {
        r.fingerprint: {
            "fingerprint": r.fingerprint,
            "received_at": now,
            "channel": r.channel[:16],
            "source": r.source[:300],
            "sensor": r.sensor[:256] if r.sensor else None,
            "reason": r.reason,
            "payload": r.payload[:MAX_PAYLOAD_CHARS],
        }
        for r in refusals
    }
    result = session.execute(
        insert_ignoring(session, DeadLetter).values(list(rows.values())).returning(DeadLetter.id)
    )
    return len(result.all())


def list_dead_letters(
    session: Session, *, sensor: str | None = None, limit: int = 100, offset: int = 0
) -> list[DeadLetterView]:
    """Dead letters, newest first, optionally of one sensor."""
    query = select(DeadLetter).order_by(DeadLetter.id.desc())
    if sensor:
        query = query.where(DeadLetter.sensor == sensor)
    return [
        DeadLetterView(
            d.id,
            d.received_at.isoformat(),
            d.channel,
            d.source,
            d.sensor,
            d.reason,
            d.payload,
        )
        for d in session.scalars(query.limit(limit).offset(offset))
    ]


def count_dead_letters(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(DeadLetter)) or 0
