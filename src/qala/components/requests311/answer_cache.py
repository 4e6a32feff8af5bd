"""The public answers of ``GET /open311/v2/requests/{id}.{format}`` kept in each server process,
dropped the moment the request changes anywhere.

Apps poll single requests far more often than requests change, and on PostgreSQL each answer
costs a thread hop and a query. A trigger (migration ``requests311_0007``) sends
``NOTIFY requests311_changed, '<id>'`` when a request row is updated or deleted, delivered at
commit; a :class:`~qala.store.notifications.ChangeListener` then drops that request's answers in
every process. Nothing is cached while the listener is not connected, and (re)connecting empties
the cache, so a missed notification can never leave a stale answer behind. New requests need no
notification: an id nobody could read yet was never cached (only found requests are kept).

What an answer shows also comes from the catalogue (service names, in each language): an entry
remembers the catalogue it was made from and counts only while that catalogue is current.

SQLite (one process, no notifications) keeps no cache.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

from qala.store.notifications import ChangeListener

CHANNEL = "requests311_changed"
MAX_REQUESTS = 10_000
"""Requests whose answers are kept, the oldest cached dropped first."""


@dataclass(frozen=True)
class CachedAnswer:
    jurisdiction_id: int
    catalogue: object
    """The catalogue (``CatalogueCache.get()``'s value) the answer was rendered with."""
    body: bytes
    media_type: str
    headers: tuple[tuple[bytes, bytes], ...] = ()
    """The HTTP headers the answer was sent with (length and type), to send it again as is."""


class PublicAnswerCache:
    """Rendered answers by (request id, format, language), for one process.

    A caller notes :meth:`generation` before reading the store and passes it to :meth:`put`: an
    answer read while a change to any request arrived is not kept (it may predate the change).
    """

    def __init__(self, url: str | None, *, max_entries: int = MAX_REQUESTS) -> None:
        self.max_entries = max_entries
        # By request id, then (format, language): a change drops one request's answers at once.
        self._entries: OrderedDict[int, dict[tuple[str, str], CachedAnswer]] = OrderedDict()
        self._lock = threading.Lock()
        self._generation = 0
        self._listener: ChangeListener | None = None
        self._url = url

    @property
    def enabled(self) -> bool:
        """Whether answers are kept: on PostgreSQL, once the listener is connected."""
        if self._url is None:
            return False
        if self._listener is None:
            with self._lock:
                if self._listener is None:
                    self._listener = ChangeListener(
                        self._url,
                        CHANNEL,
                        self,
                        PublicAnswerCache._changed,
                        PublicAnswerCache._reset,
                    ).start()
        return self._listener.connected.is_set()

    def generation(self) -> int:
        return self._generation

    def get(self, request_id: int, fmt: str, language: str) -> CachedAnswer | None:
        if not self.enabled:
            return None
        answers = self._entries.get(request_id)
        return None if answers is None else answers.get((fmt, language))

    def put(
        self, request_id: int, fmt: str, language: str, answer: CachedAnswer, generation: int
    ) -> None:
        if not self.enabled:
            return
        with self._lock:
            if generation != self._generation:
                return
            self._entries.setdefault(request_id, {})[fmt, language] = answer
            if len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def forget(self, request_id: int) -> None:
        """Drop every answer about ``request_id`` (all formats and languages)."""
        with self._lock:
            self._generation += 1
            self._entries.pop(request_id, None)

    def clear(self) -> None:
        with self._lock:
            self._generation += 1
            self._entries.clear()

    def stop(self) -> None:
        if self._listener is not None:
            self._listener.stop()

    @staticmethod
    def _changed(cache: PublicAnswerCache, payload: str) -> None:
        try:
            request_id = int(payload)
        except ValueError:
            cache.clear()
            return
        cache.forget(request_id)

    @staticmethod
    def _reset(cache: PublicAnswerCache) -> None:
        cache.clear()
