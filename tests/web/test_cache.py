"""The bounded cache behind the city page and the reports: least recently used out first, by
count and by bytes."""

from __future__ import annotations

from qala.web.cache import LRUCache


def test_least_recently_used_entries_leave_first_by_count() -> None:
    cache: LRUCache[bytes] = LRUCache(max_entries=2, max_bytes=1000, size=len)
    built: list[str] = []

    def build(name: str) -> bytes:
        built.append(name)
        return name.encode()

    cache.get_or_build("a", lambda: build("a"))
    cache.get_or_build("b", lambda: build("b"))
    cache.get_or_build("a", lambda: build("a"))  # a is now the most recently used
    cache.get_or_build("c", lambda: build("c"))  # b leaves
    cache.get_or_build("a", lambda: build("a"))
    cache.get_or_build("b", lambda: build("b"))
    assert built == ["a", "b", "c", "b"]
    assert len(cache) == 2 and (cache.hits, cache.misses) == (2, 4)


def test_the_byte_budget_holds_and_oversized_values_are_not_kept() -> None:
    cache: LRUCache[bytes] = LRUCache(max_entries=100, max_bytes=10, size=len)
    cache.put("a", b"12345")
    cache.put("b", b"12345")
    cache.put("c", b"123")  # 13 bytes: a leaves
    assert cache.bytes == 8 and len(cache) == 2
    cache.put("huge", b"x" * 11)
    assert len(cache) == 2 and cache.get_or_build("huge", lambda: b"") == b""
    cache.put("b", b"1")  # replacing a value counts its new size only
    assert cache.bytes == 4
