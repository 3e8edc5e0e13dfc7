"""Ollama embeddings: ``POST {base_url}/api/embed`` over a plain ``httpx.AsyncClient``."""

from __future__ import annotations

from typing import Any

import httpx

from mirix.embeddings.base import EmbeddingError
from mirix.embeddings.remote import (
    Failure,
    HTTPStatusFailure,
    RemoteEmbeddingProvider,
    checked_url,
    resolve_api_key,
    retry_after_seconds,
)

OLLAMA_BASE_URL = "http://localhost:11434"


class OllamaEmbeddingProvider(RemoteEmbeddingProvider):
    """A local or remote Ollama server. ``api_key`` is optional: it is sent as a bearer token, for
    Ollama behind an authenticating proxy."""

    provider = "ollama"
    default_max_batch_size = 512  # no API limit; keeps a single request's latency bounded

    def __init__(
        self,
        model: str,
        dim: int,
        *,
        base_url: str | None = None,
        api_key: Any = None,
        **common: Any,
    ) -> None:
        super().__init__(model, dim, **common)
        self.endpoint = checked_url(base_url or OLLAMA_BASE_URL, self.provider)
        key = resolve_api_key(api_key, ())
        self._secret = key
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.client = httpx.AsyncClient(base_url=self.endpoint, headers=headers, timeout=self.timeout)

    async def _request(self, texts: list[str]) -> list[Any]:
        response = await self.client.post("/api/embed", json={"model": self.model, "input": texts})
        if response.status_code >= 400:
            raise HTTPStatusFailure(response.status_code, _error_text(response), retry_after_seconds(response.headers))
        try:
            body = response.json()
        except ValueError as exc:
            raise EmbeddingError(f"{self._where()}: the response is not JSON; is base_url an Ollama server?") from exc
        embeddings = body.get("embeddings") if isinstance(body, dict) else None
        if not isinstance(embeddings, list):
            raise EmbeddingError(f"{self._where()}: the response has no 'embeddings' list; is base_url Ollama?")
        return embeddings

    def _classify(self, exc: BaseException) -> Failure | None:
        if isinstance(exc, HTTPStatusFailure):
            return Failure("status", status=exc.status, message=exc.message, retry_after=exc.retry_after)
        return super()._classify(exc)

    def _not_found_hint(self) -> str:
        return f"pull the model on the Ollama host (ollama pull {self.model}) and check that base_url points at Ollama"

    async def _close_client(self) -> None:
        await self.client.aclose()


def _error_text(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text.strip() or response.reason_phrase
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return body["error"]
    return response.text.strip()
