"""An in-process LRU for query embeddings: the same search text is embedded once, not per request."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

from mirix.embeddings.base import EmbeddingError, EmbeddingProvider

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

    def __init__(self, provider: EmbeddingProvider, cache: QueryEmbeddingCache | None = None) -> None:
        self.provider = provider
        self.cache = cache if cache is not None else QueryEmbeddingCache()

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
        vectors = await self.provider.embed([text])
        if len(vectors) != 1:
            raise EmbeddingError(f"{self.provider.provider} returned {len(vectors)} vectors for one text")
        self.cache.put(key, vectors[0])
        return vectors[0]

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        return await self.provider.embed(texts)

    async def aclose(self) -> None:
        await self.provider.aclose()
