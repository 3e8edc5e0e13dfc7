"""Builds the embedding provider an embedding config names."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mirix.embeddings.base import EmbeddingError, EmbeddingProvider

Builder = Callable[..., EmbeddingProvider]


def _local(model: str, dim: int, *, shared: bool = True, **options: Any) -> EmbeddingProvider:
    # Imported here so choosing a remote provider never needs onnxruntime installed.
    from mirix.embeddings.local import LocalMiniLMProvider, get_local_provider

    if shared:
        return get_local_provider(model, dim, **options)
    return LocalMiniLMProvider(model, dim, **options)


def _openai(model: str, dim: int, **options: Any) -> EmbeddingProvider:
    # Provider modules import their SDK only when a provider is built, so the server runs without them.
    from mirix.embeddings.openai_provider import OpenAIEmbeddingProvider

    return OpenAIEmbeddingProvider(model, dim, **options)


def _azure_openai(model: str, dim: int, **options: Any) -> EmbeddingProvider:
    from mirix.embeddings.openai_provider import AzureOpenAIEmbeddingProvider

    return AzureOpenAIEmbeddingProvider(model, dim, **options)


def _google_ai(model: str, dim: int, **options: Any) -> EmbeddingProvider:
    from mirix.embeddings.google_provider import GoogleAIEmbeddingProvider

    return GoogleAIEmbeddingProvider(model, dim, **options)


def _ollama(model: str, dim: int, **options: Any) -> EmbeddingProvider:
    from mirix.embeddings.ollama_provider import OllamaEmbeddingProvider

    return OllamaEmbeddingProvider(model, dim, **options)


# One builder (model, dim, **options) -> EmbeddingProvider per kind.
_BUILDERS: dict[str, Builder] = {
    "local": _local,
    "openai": _openai,
    "azure_openai": _azure_openai,
    "azure": _azure_openai,
    "google_ai": _google_ai,
    "ollama": _ollama,
}


def supported_kinds() -> list[str]:
    return sorted(_BUILDERS)


def create_embedding_provider(kind: str, model: str, dim: int, **options: Any) -> EmbeddingProvider:
    """The provider for ``kind``. For ``"local"`` this is the shared process-wide instance unless
    ``shared=False`` is passed; do not ``aclose`` a shared one (see ``aclose_shared_local_providers``).

    Remote kinds take ``api_key``, ``base_url``, ``timeout``, ``max_retries``, ``retry_base_delay``,
    ``retry_max_delay`` and ``max_batch_size``; Azure also ``azure_endpoint``, ``api_version`` and
    ``azure_deployment``, Google ``api_version``; OpenAI, Azure and Google ``send_dimensions``.
    Options that are ``None`` count as not given.

    Raises :class:`EmbeddingError` for an unknown kind and for invalid or missing settings.
    """
    builder = _BUILDERS.get(kind)
    if builder is None:
        supported = ", ".join(supported_kinds())
        raise EmbeddingError(f"unknown embedding provider {kind!r}; supported: {supported}")
    given = {name: value for name, value in options.items() if value is not None}
    try:
        return builder(model, dim, **given)
    except TypeError as exc:  # an option the provider does not take
        raise EmbeddingError(f"invalid options for embedding provider {kind!r}: {exc}") from exc
