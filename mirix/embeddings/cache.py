"""An in-process LRU for query embeddings: the same search text is embedded once, not per request."""

from __future__ import annotations

import asyncio
import base64
import hashlib
from array import array
from collections import OrderedDict
from collections.abc import Sequence
from typing import TYPE_CHECKING

from mirix.embeddings.base import EmbeddingError, EmbeddingProvider

if TYPE_CHECKING:
    from mirix.cache import Cache

CacheKey = tuple[str, str, str]


class QueryEmbeddingCache:
    """LRU keyed by (provider, model, text), so vectors of different models never mix.

    Not locked: it is used from the event loop only, and no method awaits.
    """

    def __init__(self, max_entries: int = 1024) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.max_entries = max_entries
        self.hits = 0
        self.misses = 0
        # Tuples, so a caller that mutates the list it got back cannot corrupt the cache.
        self._entries: OrderedDict[CacheKey, tuple[float, ...]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: CacheKey) -> list[float] | None:
        vector = self._entries.get(key)
        if vector is None:
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return list(vector)

    def put(self, key: CacheKey, vector: Sequence[float]) -> None:
        self._entries[key] = tuple(vector)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()
        self.hits = 0
        self.misses = 0


class CachedEmbedder:
    """A provider plus a query cache. Documents bypass the cache: each is embedded once when
    stored, so caching them would only evict the queries that do repeat."""

    def __init__(
        self, provider: EmbeddingProvider, cache: QueryEmbeddingCache | None = None, shared: Cache | None = None
    ) -> None:
        self.provider = provider
        self.cache = cache if cache is not None else QueryEmbeddingCache()
        #: A second level that replicas share (Redis), consulted after this process's LRU misses.
        self.shared = shared
        # Queries being embedded right now: a job searching several memory types at once asks for
        # the same text concurrently, and should pay for one embedding.
        self._in_flight: dict[CacheKey, asyncio.Future[list[float]]] = {}

    @property
    def model(self) -> str:
        return self.provider.model

    @property
    def dim(self) -> int:
        return self.provider.dim

    async def embed_query(self, text: str) -> list[float]:
        key = (self.provider.provider, self.provider.model, text)
        cached = self.cache.get(key)
        if cached is not None:
            return cached
        pending = self._in_flight.get(key)
        if pending is not None:
            return list(await asyncio.shield(pending))
        future: asyncio.Future[list[float]] = asyncio.get_running_loop().create_future()
        self._in_flight[key] = future
        try:
            vector = await self._embed_uncached(key, text)
        except BaseException as exc:
            future.set_exception(exc if isinstance(exc, Exception) else EmbeddingError("query embedding cancelled"))
            future.exception()  # retrieved here, so an unawaited failure is not reported as lost
            raise
        else:
            future.set_result(vector)
            return vector
        finally:
            del self._in_flight[key]

    async def _embed_uncached(self, key: CacheKey, text: str) -> list[float]:
        shared_key = None
        if self.shared is not None and self.shared.enabled("embedding"):
            shared_key = f"{key[0]}:{key[1]}:{hashlib.sha256(text.encode()).hexdigest()}"
            packed = await self.shared.get("embedding", shared_key)
            if packed is not None:
                vector = array("d", base64.b64decode(packed)).tolist()  # float64: exactly what was stored
                self.cache.put(key, vector)
                return vector
        vectors = await self.provider.embed([text])
        if len(vectors) != 1:
            raise EmbeddingError(f"{self.provider.provider} returned {len(vectors)} vectors for one text")
        self.cache.put(key, vectors[0])
        if shared_key is not None:
            await self.shared.add("embedding", shared_key, base64.b64encode(array("d", vectors[0]).tobytes()).decode())
        return vectors[0]

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        return await self.provider.embed(texts)

    async def aclose(self) -> None:
        await self.provider.aclose()
