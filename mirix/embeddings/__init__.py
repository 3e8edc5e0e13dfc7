"""Embedding providers: the interface, the local default, a query cache and the factory.

Importing this package loads no model and needs no optional dependency; the local model loads on
its first ``embed``.
"""

from mirix.embeddings.base import EmbeddingError, EmbeddingProvider, backoff_delay, retry
from mirix.embeddings.cache import CachedEmbedder, QueryEmbeddingCache
from mirix.embeddings.factory import create_embedding_provider, supported_kinds
from mirix.embeddings.local import (
    LocalMiniLMProvider,
    aclose_shared_local_providers,
    get_local_provider,
    model_files,
)

__all__ = [
    "CachedEmbedder",
    "EmbeddingError",
    "EmbeddingProvider",
    "LocalMiniLMProvider",
    "QueryEmbeddingCache",
    "aclose_shared_local_providers",
    "backoff_delay",
    "create_embedding_provider",
    "get_local_provider",
    "model_files",
    "retry",
    "supported_kinds",
]
