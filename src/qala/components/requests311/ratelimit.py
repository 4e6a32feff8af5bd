"""Per-client rate limiting of public writes, in two layers.

``RateLimiter`` counts in process memory (an exact sliding window): a flood is refused before it
costs a database transaction. Each process counts apart, though, so with ``N`` uvicorn workers it
alone would let a client post ``N`` times the limit. ``SharedRateLimit`` therefore also counts in
the store, inside the write's own transaction, so every process sees the same total; a refused
write rolls back with its count.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import lru_cache
from typing import Any, cast

from sqlalchemy import Table, bindparam, case, delete
from sqlalchemy.orm import Session

from qala.components.requests311.models import RateWindow
from qala.core.ratelimit import RateLimiter
from qala.store.statements import dialect_insert

__all__ = ["RateLimiter", "SharedRateLimit", "count_statement"]

_WINDOWS = cast(Table, RateWindow.__table__)


class SharedRateLimit:
    """At most ``limit`` writes per ``window`` seconds for each client key, counted in the store
    so that all server processes share one count.

    The window slides approximately, as common proxy limiters do: a client's count in the previous
    fixed window is weighted by how much of it the sliding window still covers, so nobody doubles
    the allowance by posting on both sides of a window boundary. One row per active client; rows
    that no longer count are deleted now and then.

    Parameters
    ----------
    limit
        Writes allowed per window; zero or less disables the check (and touches no table).
    window
        Seconds.
    clock
        Unix seconds (shared by processes, unlike a monotonic clock); tests pass a fake one.
    cleanup_every
        Hits in this process between deletions of stale rows.
    """

    def __init__(
        self,
        limit: int,
        *,
        window: int = 60,
        clock: Callable[[], float] = time.time,
        cleanup_every: int = 1000,
    ) -> None:
        self.limit = limit
        self.window = window
        self.clock = clock
        self.cleanup_every = cleanup_every
        self._hits = 0

    def hit(self, session: Session, key: str) -> float:
        """Count one write for ``key`` in ``session``'s transaction; 0 when allowed, else the
        seconds until it would be. The caller rolls back a refused write (and so its count)."""
        if self.limit <= 0:
            return 0.0
        connection = session.connection()
        parameters, elapsed = self.counting(session, key)
        count, previous = connection.execute(
            count_statement(connection.dialect.name, self.window), parameters
        ).one()
        return self.wait(int(count), int(previous), elapsed)

    def counting(self, session: Session, key: str) -> tuple[dict[str, Any], float]:
        """The parameters of :func:`count_statement` for one write of ``key`` now, and the seconds
        elapsed in the current window (for :meth:`wait`). For a caller that sends the count in a
        statement of its own (a report's insert on PostgreSQL); deletes stale rows now and then
        in ``session``'s transaction."""
        now = self.clock()
        start = int(now // self.window) * self.window
        self._hits += 1
        if self._hits % self.cleanup_every == 0:
            session.connection().execute(
                delete(RateWindow).where(_WINDOWS.c.window_start < start - self.window)
            )
        parameters = {"client_key": key[:80], "window_start": start, "count": 1, "previous": 0}
        return parameters, now - start

    def wait(self, count: int, previous: int, elapsed: float) -> float:
        """Seconds until a write would be allowed, given this window's ``count`` (this write
        included), the ``previous`` window's and the seconds ``elapsed`` in this one; 0 if now."""
        window, limit = float(self.window), self.limit
        if previous * (1 - elapsed / window) + count <= limit:
            return 0.0
        if count <= limit and previous > 0:
            # Later in this window the previous one weighs less.
            later = window * (1 - (limit - count) / previous) - elapsed
            if elapsed + later < window:
                return max(0.001, later)
        # In the next window this one's writes (without the refused one) are the previous.
        earlier_writes = count - 1
        into_next = window * (1 - (limit - 1) / earlier_writes) if earlier_writes >= limit else 0.0
        return max(0.001, window - elapsed + max(0.0, into_next))


@lru_cache(maxsize=4)
def count_statement(dialect_name: str, window: int) -> Any:
    """``INSERT … ON CONFLICT (client_key) DO UPDATE`` that rolls the windows over and returns the
    new counts (SET expressions see the row as it was, on both stores). Its values are named bind
    parameters (see :meth:`SharedRateLimit.counting`), so it also works as a ``WITH`` clause of a
    larger statement on PostgreSQL."""
    insert = dialect_insert(dialect_name, _WINDOWS).values(
        {name: bindparam(name, type_=_WINDOWS.c[name].type) for name in _COUNTED_COLUMNS}
    )
    incoming = insert.excluded.window_start
    same = _WINDOWS.c.window_start == incoming
    follows = _WINDOWS.c.window_start == incoming - window
    return insert.on_conflict_do_update(
        index_elements=[_WINDOWS.c.client_key],
        set_={
            "previous": case((same, _WINDOWS.c.previous), (follows, _WINDOWS.c.count), else_=0),
            "count": case((same, _WINDOWS.c.count + 1), else_=1),
            "window_start": incoming,
        },
    ).returning(_WINDOWS.c.count, _WINDOWS.c.previous)


_COUNTED_COLUMNS = ("client_key", "window_start", "count", "previous")
