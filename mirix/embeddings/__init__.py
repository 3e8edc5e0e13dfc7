"""Embedding providers: the interface, the local default, remote providers, a query cache and the factory.

Importing this package loads no model and needs no optional dependency; the local model loads on
its first ``embed``, and a remote provider imports its SDK when it is built.
"""

from mirix.embeddings.base import EmbeddingError, EmbeddingProvider, backoff_delay, retry
from mirix.embeddings.cache import CachedEmbedder, QueryEmbeddingCache
from mirix.embeddings.factory import create_embedding_provider, supported_kinds
from mirix.embeddings.google_provider import GoogleAIEmbeddingProvider
from mirix.embeddings.local import (
    LocalMiniLMProvider,
    aclose_shared_local_providers,
    get_local_provider,
    model_files,
)
from mirix.embeddings.ollama_provider import OllamaEmbeddingProvider
from mirix.embeddings.openai_provider import AzureOpenAIEmbeddingProvider, OpenAIEmbeddingProvider
from mirix.embeddings.remote import RemoteEmbeddingProvider

__all__ = [
    "AzureOpenAIEmbeddingProvider",
    "CachedEmbedder",
    "EmbeddingError",
    "EmbeddingProvider",
    "GoogleAIEmbeddingProvider",
    "LocalMiniLMProvider",
    "OllamaEmbeddingProvider",
    "OpenAIEmbeddingProvider",
    "QueryEmbeddingCache",
    "RemoteEmbeddingProvider",
    "aclose_shared_local_providers",
    "backoff_delay",
    "create_embedding_provider",
    "get_local_provider",
    "model_files",
    "retry",
    "supported_kinds",
]
