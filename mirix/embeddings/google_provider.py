"""Gemini embeddings (Google AI / Generative Language API, API-key mode) through ``google-genai``.

The SDK is imported when a provider is built, never at module import.
"""

from __future__ import annotations

from typing import Any

from mirix.embeddings.base import EmbeddingError
from mirix.embeddings.remote import Failure, RemoteEmbeddingProvider, checked_url, import_sdk, resolve_api_key
from mirix.embeddings.remote import retry_after_seconds as _retry_after

GOOGLE_AI_BASE_URL = "https://generativelanguage.googleapis.com"


class GoogleAIEmbeddingProvider(RemoteEmbeddingProvider):
    """``models.embed_content`` (one ``batchEmbedContents`` request per batch) on ``genai.Client(...).aio``.

    ``output_dimensionality`` is sent by default: Gemini embedding models are trained to be shortened.
    """

    provider = "google_ai"
    default_max_batch_size = 100  # batchEmbedContents' limit on requests per call
    key_env = ("GEMINI_API_KEY", "GOOGLE_API_KEY")

    def __init__(
        self,
        model: str,
        dim: int,
        *,
        api_key: Any = None,
        base_url: str | None = None,
        api_version: str | None = None,
        send_dimensions: bool = True,
        **common: Any,
    ) -> None:
        super().__init__(model, dim, **common)
        genai = import_sdk("google.genai", "google-genai", "google", self.provider)
        self._types = import_sdk("google.genai.types", "google-genai", "google", self.provider)
        self._errors = import_sdk("google.genai.errors", "google-genai", "google", self.provider)
        self.endpoint = checked_url(base_url, self.provider) if base_url else GOOGLE_AI_BASE_URL
        key = resolve_api_key(api_key, self.key_env)
        if key is None:
            raise EmbeddingError(
                "the google_ai embedding provider needs an API key: pass api_key or set GEMINI_API_KEY "
                "or GOOGLE_API_KEY"
            )
        self._secret = key
        self.send_dimensions = bool(send_dimensions)
        http_options = self._types.HttpOptions(
            base_url=base_url and self.endpoint,
            api_version=api_version,
            timeout=max(1, round(self.timeout * 1000)),  # milliseconds
            # One attempt: an explicit policy also stops the SDK's hidden retry of aiohttp connection errors.
            retry_options=self._types.HttpRetryOptions(attempts=1),
        )
        # vertexai=False: GOOGLE_GENAI_USE_VERTEXAI in the environment must not reroute an API-key client.
        self._sync_client = genai.Client(api_key=key, vertexai=False, http_options=http_options)
        self.client: Any = self._sync_client.aio

    async def _request(self, texts: list[str]) -> list[Any]:
        config = self._types.EmbedContentConfig(output_dimensionality=self.dim) if self.send_dimensions else None
        response = await self.client.models.embed_content(model=self.model, contents=texts, config=config)
        return [embedding.values for embedding in response.embeddings or []]

    def _classify(self, exc: BaseException) -> Failure | None:
        if isinstance(exc, self._errors.APIError):
            status = int(exc.code) if isinstance(exc.code, int) else None
            message = str(exc.message or exc.status or exc)
            # Gemini answers a bad key with 400 INVALID_ARGUMENT (reason API_KEY_INVALID), not 401.
            if status == 400 and ("API_KEY_INVALID" in str(exc.details) or "API key not valid" in message):
                status = 401
            headers = getattr(getattr(exc, "response", None), "headers", None)
            return Failure("status", status=status, message=message, retry_after=_retry_after(headers))
        return super()._classify(exc)

    def _dim_hint(self) -> str:
        if self.send_dimensions:
            return super()._dim_hint()
        return f"set the embedding dim to what the model produces, or send_dimensions=True to request {self.dim}"

    async def _close_client(self) -> None:
        await self.client.aclose()
        self._sync_client.close()  # genai.Client also opened a synchronous pool
