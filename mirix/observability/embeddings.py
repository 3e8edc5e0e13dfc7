"""An embedding provider wrapper that times every call to the real provider."""

from __future__ import annotations

import time
from collections.abc import Sequence

from mirix.embeddings.base import EmbeddingProvider
from mirix.observability.metrics import Metrics


class MeasuredEmbeddingProvider:
    """Sits under the query cache, so it counts what reaches the model (cache hits do not)."""

    def __init__(self, provider: EmbeddingProvider, metrics: Metrics) -> None:
        self.inner = provider
        self._metrics = metrics
        self.provider = provider.provider
        self.model = provider.model
        self.dim = provider.dim

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        started = time.perf_counter()
        ok = False
        try:
            vectors = await self.inner.embed(texts)
            ok = True
            return vectors
        finally:
            self._metrics.observe_embedding(self.provider, self.model, len(texts), time.perf_counter() - started, ok)

    async def aclose(self) -> None:
        await self.inner.aclose()

    def __getattr__(self, name: str):
        # Provider-specific extras (warm-up, batch size) stay reachable through the wrapper.
        return getattr(self.inner, name)
