"""Per-process caches for the small, hot rows every API request reads (placements, their
arms, item details): a dictionary lookup instead of a round trip to Redis or the database.
A change made in admin shows within the cache's lifetime, which each user of it states."""

import threading
from collections.abc import Callable, Hashable, Iterable
from typing import Any

from cachetools import TTLCache

_ALL: list["LocalCache"] = []


class LocalCache:
    def __init__(self, *, seconds: float, maxsize: int) -> None:
        self._entries: TTLCache = TTLCache(maxsize=maxsize, ttl=seconds)
        self._lock = threading.Lock()  # the web server's threads share one process
        _ALL.append(self)

    def get(self, key: Hashable, load: Callable[[], Any]) -> Any:
        with self._lock:
            if key in self._entries:
                return self._entries[key]
        value = load()
        with self._lock:
            self._entries[key] = value
        return value

    def get_many(
        self, keys: Iterable[Hashable], load: Callable[[list], dict[Hashable, Any]]
    ) -> dict[Hashable, Any]:
        """The cached values of `keys`; `load(missing)` returns the others (a key it leaves
        out is remembered as None, so an unknown key costs one load per lifetime)."""
        found, missing = {}, []
        with self._lock:
            for key in keys:
                if key in self._entries:
                    found[key] = self._entries[key]
                else:
                    missing.append(key)
        if missing:
            loaded = load(missing)
            with self._lock:
                for key in missing:
                    found[key] = self._entries[key] = loaded.get(key)
        return found

    def discard(self, key: Hashable) -> None:
        with self._lock:
            self._entries.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


def local_caches_clear() -> None:
    """Empty every local cache (tests; a process that must see a change at once)."""
    for local_cache in _ALL:
        local_cache.clear()
