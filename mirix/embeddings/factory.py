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


# Registration points: add a builder (model, dim, **options) -> EmbeddingProvider per kind.
_BUILDERS: dict[str, Builder] = {
    "local": _local,
    # "openai": ...        TODO: OpenAI embeddings over httpx, with base.retry on 429/5xx/timeouts
    # "azure_openai": ...  TODO
    # "google_ai": ...     TODO
    # "ollama": ...        TODO
}
_PLANNED = frozenset({"openai", "azure_openai", "google_ai", "ollama"})


def supported_kinds() -> list[str]:
    return sorted(_BUILDERS)


def create_embedding_provider(kind: str, model: str, dim: int, **options: Any) -> EmbeddingProvider:
    """The provider for ``kind``. For ``"local"`` this is the shared process-wide instance unless
    ``shared=False`` is passed; do not ``aclose`` a shared one (see ``aclose_shared_local_providers``).

    Raises :class:`EmbeddingError` for a kind that is not available and for invalid settings.
    """
    builder = _BUILDERS.get(kind)
    if builder is None:
        supported = ", ".join(supported_kinds())
        if kind in _PLANNED:
            raise EmbeddingError(
                f"embedding provider {kind!r} is not available in this server yet; supported: {supported}"
            )
        raise EmbeddingError(f"unknown embedding provider {kind!r}; supported: {supported}")
    try:
        return builder(model, dim, **options)
    except TypeError as exc:  # an option the provider does not take
        raise EmbeddingError(f"invalid options for embedding provider {kind!r}: {exc}") from exc
