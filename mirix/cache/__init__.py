"""Caches of what every request reads (API-key lookups, users, core blocks, query embeddings) and
per-client rate limits: in-process by default, shared through Redis when ``MIRIX_REDIS_URL`` is set."""

from mirix.cache.base import INVALIDATION_GRACE_SECONDS, Cache, CacheProvider, create_cache
from mirix.cache.memory import MemoryCache
from mirix.cache.ratelimit import RateLimiter

__all__ = ["INVALIDATION_GRACE_SECONDS", "Cache", "CacheProvider", "MemoryCache", "RateLimiter", "create_cache"]
