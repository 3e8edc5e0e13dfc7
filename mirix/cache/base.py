"""The cache seen by the managers: namespaces with their TTLs over one ``CacheProvider``.

Values are small JSON documents. Reads fill the cache after a miss (``add``: only if the key is
empty); writes invalidate after their transaction commits. An invalidation leaves a short
tombstone instead of deleting the key, so a request that read the old row just before the commit
cannot put it back into the cache afterwards (its ``add`` finds the tombstone and does nothing).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from sqlalchemy import inspect

from mirix.db.types import UTCDateTime

if TYPE_CHECKING:
    from mirix.cache.redis_cache import RedisCache
    from mirix.settings import Settings

#: How long an invalidated key refuses to be filled again: longer than a read takes from its database
#: query to its cache fill, short enough that a changed value is cached again almost at once.
INVALIDATION_GRACE_SECONDS = 1.0
#: Part of every key: bump it when the shape of a cached value changes, so a rolling upgrade never
#: reads entries written by the previous version.
FORMAT = "v1"
#: Query embeddings never change for a (provider, model, text); the TTL only frees memory.
EMBEDDING_TTL_SECONDS = 24 * 3600.0

# The namespaces: what is cached, and the key (after the namespace) each one uses.
AUTH = "auth"  # sha256 of an API key -> its key id and the client's actor fields
USER = "user"  # org id : user id -> the user row (live users only)
BLOCKS = "blocks"  # org id : user id -> every live block of the user, all scopes
EMBEDDING = "embedding"  # provider : model : sha256 of the text -> the vector (Redis only)

M = TypeVar("M")


class CacheProvider(Protocol):
    """Where cached values live. A failing backend behaves like an empty cache; it never raises."""

    #: Whether other processes see this provider's values and invalidations.
    shared: bool

    async def get(self, key: str) -> Any | None: ...

    async def add(self, key: str, value: Any, ttl: float) -> None:
        """Store ``value`` unless the key holds a value or a recent invalidation."""

    async def invalidate(self, keys: Sequence[str]) -> None:
        """Drop the keys and keep them from being filled for ``INVALIDATION_GRACE_SECONDS``."""

    async def ping(self) -> bool: ...

    async def aclose(self) -> None: ...


class Cache:
    """Namespaced access with per-namespace TTLs; a namespace with TTL 0 is not cached."""

    def __init__(self, provider: CacheProvider, ttls: Mapping[str, float] | None = None) -> None:
        self.provider = provider
        self.ttls = {name: ttl for name, ttl in (ttls or {}).items() if ttl > 0}
        self.hits: Counter[str] = Counter()
        self.misses: Counter[str] = Counter()

    @classmethod
    def off(cls) -> Cache:
        """Caches nothing (invalidations still go through, harmlessly)."""
        from mirix.cache.memory import MemoryCache

        return cls(MemoryCache())

    @property
    def redis(self) -> RedisCache | None:
        from mirix.cache.redis_cache import RedisCache

        return self.provider if isinstance(self.provider, RedisCache) else None

    def enabled(self, namespace: str) -> bool:
        return namespace in self.ttls

    async def get(self, namespace: str, key: str) -> Any | None:
        if namespace not in self.ttls:
            return None
        value = await self.provider.get(f"{FORMAT}:{namespace}:{key}")
        (self.misses if value is None else self.hits)[namespace] += 1
        return value

    async def add(self, namespace: str, key: str, value: Any) -> None:
        if namespace in self.ttls:
            await self.provider.add(f"{FORMAT}:{namespace}:{key}", value, self.ttls[namespace])

    async def invalidate(self, namespace: str, *keys: str) -> None:
        # Also for namespaces this process does not cache: another process may (the CLI revoking a key).
        if keys:
            await self.provider.invalidate([f"{FORMAT}:{namespace}:{key}" for key in dict.fromkeys(keys)])

    def counts(self, namespace: str) -> dict[str, float]:
        """Hits and misses of a namespace (for metrics)."""
        return {"hit": float(self.hits[namespace]), "miss": float(self.misses[namespace])}

    async def ping(self) -> bool:
        return await self.provider.ping()

    async def aclose(self) -> None:
        await self.provider.aclose()


def create_cache(settings: Settings) -> Cache:
    from mirix.cache.memory import MemoryCache

    if settings.redis_url:
        try:
            from mirix.cache.redis_cache import RedisCache
        except ImportError as exc:
            raise RuntimeError("MIRIX_REDIS_URL needs the redis extra: pip install 'mirix-server[redis]'") from exc

        provider = RedisCache(settings.redis_url, prefix=settings.redis_prefix, timeout=settings.redis_timeout_seconds)
        return Cache(
            provider,
            {
                AUTH: settings.cache_auth_ttl_seconds,
                USER: settings.cache_ttl_seconds,
                BLOCKS: settings.cache_ttl_seconds,
                EMBEDDING: EMBEDDING_TTL_SECONDS,
            },
        )
    # No cross-process invalidation here: API keys are not cached unless asked for (a key revoked by
    # `mirix keys revoke` or another replica must stop working at once), the rest briefly. Query
    # embeddings have their own in-process LRU.
    local = settings.cache_local_ttl_seconds
    return Cache(MemoryCache(), {AUTH: settings.cache_local_auth_ttl_seconds, USER: local, BLOCKS: local})


def dump_row(row: Any) -> dict[str, Any]:
    """An ORM row's columns as JSON-ready values."""
    out = {}
    for attribute in inspect(type(row)).column_attrs:
        value = getattr(row, attribute.key)
        out[attribute.key] = value.isoformat() if isinstance(value, datetime) else value
    return out


def load_row(model: type[M], data: Mapping[str, Any]) -> M:
    """A detached (transient) instance of ``model`` from ``dump_row`` output, for reading only."""
    values = {}
    for attribute in inspect(model).column_attrs:
        value = data.get(attribute.key)
        if value is not None and isinstance(attribute.columns[0].type, UTCDateTime):
            value = datetime.fromisoformat(value)
        values[attribute.key] = value
    return model(**values)
