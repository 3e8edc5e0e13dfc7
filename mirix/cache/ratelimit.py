"""Per-client token buckets: shared through Redis when it is there, else (or while it is down) per process."""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mirix.cache.redis_cache import RedisCache

# Refill and take in one round trip, atomically. Redis's clock, so replicas with skewed clocks agree.
# Returns the seconds to wait (as a string: Lua numbers become integers in replies), "0" when taken.
_TAKE = """
local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or burst
local at = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = (1 - tokens) / rate end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return tostring(wait)
"""


class RateLimiter:
    def __init__(self, rate: float, burst: int = 0, redis: RedisCache | None = None) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.burst = burst or max(1, math.ceil(rate))
        self._redis = redis
        self._script = redis.client.register_script(_TAKE) if redis is not None else None
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, monotonic time)

    async def take(self, key: str) -> float:
        """Take a token for ``key``: 0 when allowed, else the seconds until one is available."""
        if self._redis is not None:
            wait = await self._redis.run(
                lambda _: self._script(keys=[f"{self._redis.prefix}rate:{key}"], args=[self.rate, self.burst]), None
            )
            if wait is not None:
                return float(wait)
        return self._take_local(key)

    def _take_local(self, key: str) -> float:
        now = time.monotonic()
        tokens, at = self._buckets.get(key, (float(self.burst), now))
        tokens = min(self.burst, tokens + (now - at) * self.rate)
        if tokens >= 1:
            self._buckets[key] = (tokens - 1, now)
            return 0.0
        self._buckets[key] = (tokens, now)
        return (1 - tokens) / self.rate
