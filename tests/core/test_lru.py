"""The per-process LRU cache behind the verification-key caches."""

from __future__ import annotations

from app.core.lru import LruCache


def test_the_least_recently_used_entry_is_dropped_first() -> None:
    cache: LruCache[str, int] = LruCache(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # "a" is now the most recently used
    cache.put("c", 3)
    assert cache.get("b") is None
    assert (cache.get("a"), cache.get("c")) == (1, 3)


def test_forget_and_replace() -> None:
    cache: LruCache[str, int] = LruCache(2)
    cache.put("a", 1)
    cache.put("a", 10)
    assert cache.get("a") == 10
    cache.forget("a")
    cache.forget("never there")
    assert cache.get("a") is None
