"""PostgreSQL notifications (``LISTEN``) on a thread of their own, for caches that must forget
what another process changed.

A :class:`ChangeListener` holds one connection outside the pool, listens on a channel and hands
each payload to a callback. While it is not connected it cannot tell what changed, so its owner
must not trust anything cached: ``connected`` says whether it may, and ``on_reset`` is called
whenever the connection is (re)made or lost, so the owner empties its cache.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable
from typing import Any

from sqlalchemy.engine import make_url

log = logging.getLogger(__name__)

RETRY_MAX_S = 30.0
POLL_S = 1.0


def psycopg_conninfo(url: str) -> str:
    """A SQLAlchemy PostgreSQL URL as a libpq URI for psycopg."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


class ChangeListener:
    """Calls ``on_change(payload)`` for every ``NOTIFY channel`` and ``on_reset()`` whenever
    notifications may have been missed (connecting, reconnecting, losing the connection).

    The thread holds its owner only weakly: it ends within a second of the owner being collected
    (or of :meth:`stop`).
    """

    def __init__(
        self,
        url: str,
        channel: str,
        owner: object,
        on_change: Callable[[Any, str], None],
        on_reset: Callable[[Any], None],
    ) -> None:
        if not channel.replace("_", "").isalnum():
            raise ValueError(f"unsafe channel name {channel!r}")
        self.conninfo = psycopg_conninfo(url)
        self.channel = channel
        self._owner = weakref.ref(owner)
        self._on_change = on_change
        self._on_reset = on_reset
        self._stop = threading.Event()
        self.connected = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"listen-{channel}", daemon=True)

    def start(self) -> ChangeListener:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _alive_owner(self) -> Any:
        return None if self._stop.is_set() else self._owner()

    def _run(self) -> None:
        import psycopg

        wait = 0.5
        while self._alive_owner() is not None:
            try:
                with psycopg.connect(self.conninfo, autocommit=True, connect_timeout=5) as conn:
                    conn.execute(f"LISTEN {self.channel}")
                    owner = self._alive_owner()
                    if owner is None:
                        return
                    # Listening from now on: anything cached before may be stale.
                    self._on_reset(owner)
                    self.connected.set()
                    del owner
                    wait = 0.5
                    while True:
                        for note in conn.notifies(timeout=POLL_S):
                            owner = self._alive_owner()
                            if owner is None:
                                return
                            self._on_change(owner, note.payload)
                            del owner
                        if self._alive_owner() is None:
                            return
            except Exception as exc:  # the database went away: forget, wait, listen again
                log.warning("listening on %s failed (%s); retrying", self.channel, exc)
            finally:
                self.connected.clear()
                owner = self._owner()
                if owner is not None:
                    self._on_reset(owner)
                del owner
            self._stop.wait(wait)
            wait = min(RETRY_MAX_S, wait * 2)
