"""Pages and reports kept until the data they were built from change.

The key of everything cached here starts with the store and its ``page_data_version``: the
catalogue's ``data_version`` (values, places, populations, single-industry periods) plus the
stored rating runs, so importing a value or building a rating makes every older entry unreachable;
the least recently used entries then fall out of the bounded cache.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, Generic, TypeVar

from sqlalchemy.orm import Session

from qala.components.catalog.services import data_version, get_place
from qala.runtime import Context
from qala.web.data import CityProfile, city_profile, installed
from qala.web.i18n import Translator

T = TypeVar("T")


def page_data_version(session: Session) -> tuple[Any, ...]:
    """What the dashboard's pages and reports are computed from, as a fingerprint that changes
    when any of it does (see ``qala.components.catalog.services.data_version``)."""
    runs: tuple[Any, ...] = ()
    if installed("rating"):
        from qala.components.rating import services as rating

        stored = rating.list_runs(session)
        runs = (len(stored), stored[0].id if stored else 0)
    return (*data_version(session), *runs)


def store_key(session: Session) -> tuple[Any, ...]:
    """The store (its URL, password hidden) and its data version: the start of every key."""
    url = session.connection().engine.url.render_as_string(hide_password=True)
    return (url, *page_data_version(session))


class LRUCache(Generic[T]):
    """At most ``max_entries`` values and ``max_bytes`` of them (as ``size`` measures), least
    recently used first out. Safe to share between the server's threads; two threads missing the
    same key both build it, and the later one's value is kept."""

    def __init__(
        self, *, max_entries: int, max_bytes: int, size: Callable[[T], int] = lambda _: 0
    ) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.size = size
        self._entries: OrderedDict[Hashable, tuple[T, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get_or_build(self, key: Hashable, build: Callable[[], T]) -> T:
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
                self.hits += 1
                return found[0]
            self.misses += 1
        value = build()
        self.put(key, value)
        return value

    def put(self, key: Hashable, value: T) -> None:
        size = self.size(value)
        if size > self.max_bytes:
            return  # bigger than the whole cache: not kept
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= old[1]
            self._entries[key] = (value, size)
            self._bytes += size
            while len(self._entries) > self.max_entries or self._bytes > self.max_bytes:
                _, (_, dropped) = self._entries.popitem(last=False)
                self._bytes -= dropped

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def bytes(self) -> int:
        return self._bytes

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0


# ---------------------------------------------------------------------------------------------
# What the dashboard caches

CITY_PROFILES: LRUCache[CityProfile] = LRUCache(max_entries=512, max_bytes=1 << 62)
"""City page view models per store, data version, city, language and year (a few kB each)."""

REPORTS: LRUCache[bytes] = LRUCache(max_entries=64, max_bytes=64 << 20, size=len)
"""Rendered reports (PDF or HTML) per store, data version, report, language and year: building
the city report's PDF takes about a second, answering it from here a few milliseconds."""


def cached_city_profile(context: Context, code: str, t: Translator) -> CityProfile:
    """``city_profile`` of the place ``code`` (``NotFoundError`` when there is none), built once
    per data version."""
    with context.database.session() as session:
        place = get_place(session, code)
        key = (*store_key(session), "city", place.code, t.language, context.clock().year)
        return CITY_PROFILES.get_or_build(key, lambda: city_profile(session, context, place, t))


def cached_report(
    context: Context, what: tuple[Hashable, ...], language: str, render: Callable[[], bytes]
) -> bytes:
    """The rendered report ``what`` (kind, arguments and format) in ``language``; ``render``
    builds it when the data changed since it was last built."""
    with context.database.session() as session:
        key = (*store_key(session), *what, language, context.clock().year)
    return REPORTS.get_or_build(key, render)


WHATIF_MODELS: LRUCache[Any] = LRUCache(max_entries=4, max_bytes=1 << 62)
"""What-if models of the national rating per store, data version and year: the stored values
read and the official data steps run once, so a slider move only re-aggregates."""

WHATIF_RESULTS: LRUCache[Any] = LRUCache(max_entries=512, max_bytes=1 << 62)
"""What-if results per model and settings (a shared link opened by many costs one evaluation)."""


WHATIF_KEY_SECONDS = 5.0
"""How long the what-if trusts the data fingerprint it read last: a slider drag sends several
requests a second and the fingerprint (counts and maxima over the stored values) costs more than
the re-aggregation itself; a value imported meanwhile is seen at most this much later."""

_whatif_keys: dict[tuple[str, int | None], tuple[float, tuple[Any, ...]]] = {}
_whatif_keys_lock = threading.Lock()


def _whatif_key(context: Context, year: int | None) -> tuple[Any, ...]:
    url = context.database.engine.url.render_as_string(hide_password=True)
    now = time.monotonic()
    with _whatif_keys_lock:
        known = _whatif_keys.get((url, year))
    if known is not None and known[0] > now:
        return known[1]
    with context.database.session() as session:
        # the what-if reads stored values and places only, not the rating runs
        key = (url, *data_version(session), "whatif", year)
    with _whatif_keys_lock:
        _whatif_keys[(url, year)] = (now + WHATIF_KEY_SECONDS, key)
    return key


def cached_whatif(context: Context, year: int | None = None) -> tuple[Hashable, Any]:
    """The key and the what-if model of the national rating on the stored values of ``year``."""
    from qala.components.rating.whatif import rating_whatif

    key = _whatif_key(context, year)
    return key, WHATIF_MODELS.get_or_build(key, lambda: rating_whatif(context.database, year=year))


def cached_whatif_result(key: Hashable, whatif: Any, settings: Any) -> Any:
    """The result of the what-if model ``whatif`` (cached under ``key``) under ``settings``,
    checked first so that equal settings written differently share one entry."""
    checked = whatif.model.check(settings)
    what = (
        key,
        tuple(sorted(checked.weights.items())),
        checked.normalisation,
        checked.aggregation,
        checked.imputation,
    )
    return WHATIF_RESULTS.get_or_build(what, lambda: whatif.evaluate(checked))
