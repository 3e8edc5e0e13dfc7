"""The shared cache: plain Redis through one connection pool, behind a small circuit breaker.

Every call is guarded: a Redis error or timeout counts as a miss (the caller reads the database),
opens the breaker for ``retry_seconds`` so requests do not each wait for a timeout while Redis is
away, and the next call after that probes it again (one caller at a time). redis-py reconnects by
itself; its own retries are switched off because the breaker is the retry policy.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from mirix.cache.base import INVALIDATION_GRACE_SECONDS

log = logging.getLogger(__name__)

T = TypeVar("T")
_TOMBSTONE = b""  # JSON documents are never empty
_MAX_PENDING = 100_000


class RedisCache:
    shared = True

    def __init__(self, url: str, *, prefix: str = "mirix:", timeout: float = 1.0, retry_seconds: float = 1.5) -> None:
        self.client = Redis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
            health_check_interval=30,
        )
        self.prefix = prefix
        self.retry_seconds = retry_seconds
        self.failures = 0
        self._down = False
        self._skip_until = 0.0
        # Invalidations that could not reach Redis, sent before anything else once it answers again:
        # a replica that lost only its own connection must not leave stale entries for the others.
        self._pending: dict[str, None] = {}

    @property
    def available(self) -> bool:
        return not self._down

    async def run(self, operation: Callable[[Redis], Awaitable[T]], default: T) -> T:
        """``operation(client)``, or ``default`` when Redis fails or the breaker is open."""
        now = time.monotonic()
        if self._down:
            if now < self._skip_until:
                return default
            self._skip_until = now + self.retry_seconds  # this call probes; the others keep skipping
        try:
            if self._pending:
                await self._flush_pending()
            result = await operation(self.client)
        except (RedisError, OSError) as exc:  # TimeoutError is an OSError
            self.failures += 1
            if not self._down:
                log.warning(
                    "Redis unavailable (%r): serving from the database, retrying every %ss", exc, self.retry_seconds
                )
            self._down, self._skip_until = True, time.monotonic() + self.retry_seconds
            return default
        if self._down:
            log.warning("Redis is reachable again: cache back in use")
            self._down = False
        return result

    async def get(self, key: str) -> Any | None:
        raw = await self.run(lambda r: r.get(self.prefix + key), None)
        if raw is None or raw == _TOMBSTONE:
            return None
        try:
            return json.loads(raw)
        except ValueError:  # not ours (a shared prefix?): a miss, never an error
            return None

    async def add(self, key: str, value: Any, ttl: float) -> None:
        text = json.dumps(value, separators=(",", ":"))
        await self.run(lambda r: r.set(self.prefix + key, text, px=max(1, int(ttl * 1000)), nx=True), None)

    async def invalidate(self, keys: Sequence[str]) -> None:
        if not await self.run(lambda r: self._tombstone(r, keys), False):
            self._pending.update(dict.fromkeys(keys))
            while len(self._pending) > _MAX_PENDING:  # entries expire by their TTL anyway
                self._pending.pop(next(iter(self._pending)))

    async def _tombstone(self, client: Redis, keys: Sequence[str]) -> bool:
        pipe = client.pipeline(transaction=False)
        for key in keys:
            pipe.set(self.prefix + key, _TOMBSTONE, px=int(INVALIDATION_GRACE_SECONDS * 1000))
        await pipe.execute()
        return True

    async def _flush_pending(self) -> None:
        keys = list(self._pending)
        await self._tombstone(self.client, keys)
        for key in keys:
            self._pending.pop(key, None)

    async def ping(self) -> bool:
        return await self.run(lambda r: r.ping(), False)

    async def aclose(self) -> None:
        await self.client.aclose()
