"""The default cache: an LRU with per-entry TTL inside this process."""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from mirix.cache.base import INVALIDATION_GRACE_SECONDS


class MemoryCache:
    """Values are kept as JSON text, like in Redis, so callers never share mutable objects with it.

    Not locked: it is used from the event loop only, and no method awaits.
    """

    shared = False

    def __init__(self, max_entries: int = 10_000) -> None:
        self.max_entries = max_entries
        # key -> (expires at, JSON text or None for an invalidation tombstone)
        self._entries: OrderedDict[str, tuple[float, str | None]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    async def get(self, key: str) -> Any | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires, text = entry
        if expires <= time.monotonic():
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return None if text is None else json.loads(text)

    async def add(self, key: str, value: Any, ttl: float) -> None:
        entry = self._entries.get(key)
        now = time.monotonic()
        if entry is None or entry[0] <= now:
            self._put(key, now + ttl, json.dumps(value, separators=(",", ":")))

    async def invalidate(self, keys: Sequence[str]) -> None:
        expires = time.monotonic() + INVALIDATION_GRACE_SECONDS
        for key in keys:
            self._put(key, expires, None)

    def _put(self, key: str, expires: float, text: str | None) -> None:
        self._entries[key] = (expires, text)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    async def ping(self) -> bool:
        return True

    async def aclose(self) -> None:
        self._entries.clear()
