"""OpenAI embeddings, any OpenAI-compatible server (vLLM, LM Studio, llama.cpp, ...) and Azure OpenAI.

The ``openai`` SDK is imported when a provider is built, never at module import.
"""

from __future__ import annotations

import os
from typing import Any

from mirix.embeddings.base import EmbeddingError
from mirix.embeddings.remote import Failure, RemoteEmbeddingProvider, checked_url, import_sdk, resolve_api_key
from mirix.embeddings.remote import retry_after_seconds as _retry_after

OPENAI_BASE_URL = "https://api.openai.com/v1"
AZURE_DEFAULT_API_VERSION = "2024-10-21"
# Sent to keyless OpenAI-compatible servers: the SDK insists on some key.
_NO_KEY = "unused"

# model -> (native dim, accepts ``dimensions``). Other models get ``dimensions`` only on request,
# since many OpenAI-compatible servers reject the parameter.
OPENAI_MODELS: dict[str, tuple[int, bool]] = {
    "text-embedding-3-small": (1536, True),
    "text-embedding-3-large": (3072, True),
    "text-embedding-ada-002": (1536, False),
}


def _dimensions_wanted(model: str, dim: int, send_dimensions: bool | None, provider: str) -> bool:
    known = OPENAI_MODELS.get(model)
    if known is not None and not known[1] and dim != known[0]:
        raise EmbeddingError(f"{model} produces {known[0]}-dimensional vectors only, not {dim} ({provider})")
    if send_dimensions is not None:
        return bool(send_dimensions)
    return known is not None and known[1] and dim != known[0]


class _OpenAIBase(RemoteEmbeddingProvider):
    default_max_batch_size = 2048  # the API's limit on inputs per request

    def __init__(self, model: str, dim: int, *, send_dimensions: bool | None, **common: Any) -> None:
        super().__init__(model, dim, **common)
        self._sdk = import_sdk("openai", "openai", "openai", self.provider)
        self.send_dimensions = _dimensions_wanted(self.model, self.dim, send_dimensions, self.provider)
        self.client: Any = None

    async def _request(self, texts: list[str]) -> list[Any]:
        extra = {"dimensions": self.dim} if self.send_dimensions else {}
        response = await self.client.embeddings.create(model=self.model, input=texts, encoding_format="float", **extra)
        data = sorted(response.data, key=lambda item: item.index)
        return [item.embedding for item in data]

    def _classify(self, exc: BaseException) -> Failure | None:
        sdk = self._sdk
        if isinstance(exc, sdk.APITimeoutError):
            return Failure("timeout", message="request timed out")
        if isinstance(exc, sdk.APIConnectionError):
            # The SDK's own message is a bare "Connection error."; the cause says what happened.
            return Failure("connect", message=str(exc.__cause__ or exc))
        if isinstance(exc, sdk.APIStatusError):
            body = exc.body
            message = body.get("message") if isinstance(body, dict) else None
            return Failure(
                "status",
                status=exc.status_code,
                message=str(message or exc.message),
                retry_after=_retry_after(exc.response.headers),
            )
        return super()._classify(exc)

    def _dim_hint(self) -> str:
        if self.send_dimensions:
            return super()._dim_hint()
        return (
            f"set the embedding dim to what the model produces, or send_dimensions=True if it can shorten to {self.dim}"
        )

    async def _close_client(self) -> None:
        await self.client.close()


class OpenAIEmbeddingProvider(_OpenAIBase):
    """``POST {base_url}/embeddings`` through ``openai.AsyncOpenAI``.

    Without ``base_url`` this is api.openai.com and an API key is required; with a ``base_url``
    (an OpenAI-compatible server) the key is optional.
    """

    provider = "openai"
    key_env = ("OPENAI_API_KEY",)

    def __init__(
        self,
        model: str,
        dim: int,
        *,
        api_key: Any = None,
        base_url: str | None = None,
        send_dimensions: bool | None = None,
        **common: Any,
    ) -> None:
        super().__init__(model, dim, send_dimensions=send_dimensions, **common)
        self.endpoint = checked_url(base_url, self.provider) if base_url else OPENAI_BASE_URL
        key = resolve_api_key(api_key, self.key_env)
        if key is None and not base_url:
            raise EmbeddingError(
                "the openai embedding provider needs an API key: pass api_key or set OPENAI_API_KEY "
                "(or set base_url to an OpenAI-compatible server that needs none)"
            )
        self._secret = key
        self.client = self._sdk.AsyncOpenAI(
            api_key=key or _NO_KEY, base_url=self.endpoint, timeout=self.timeout, max_retries=0
        )


class AzureOpenAIEmbeddingProvider(_OpenAIBase):
    """Azure OpenAI through ``openai.AsyncAzureOpenAI``: ``{azure_endpoint}/openai/deployments/{d}/embeddings``.

    The deployment defaults to the model name, which is how most deployments are named.
    """

    provider = "azure_openai"
    key_env = ("AZURE_API_KEY", "AZURE_OPENAI_API_KEY")

    def __init__(
        self,
        model: str,
        dim: int,
        *,
        api_key: Any = None,
        azure_endpoint: str | None = None,
        base_url: str | None = None,
        api_version: str | None = None,
        azure_deployment: str | None = None,
        send_dimensions: bool | None = None,
        **common: Any,
    ) -> None:
        super().__init__(model, dim, send_dimensions=send_dimensions, **common)
        if azure_endpoint and base_url and azure_endpoint.rstrip("/") != base_url.rstrip("/"):
            raise EmbeddingError(
                "the azure_openai embedding provider takes the resource URL as azure_endpoint or base_url, not both"
            )
        endpoint = azure_endpoint or base_url or os.environ.get("AZURE_OPENAI_ENDPOINT", "").strip()
        if not endpoint:
            raise EmbeddingError(
                "the azure_openai embedding provider needs the resource URL "
                "(https://<resource>.openai.azure.com): pass azure_endpoint or set AZURE_OPENAI_ENDPOINT"
            )
        self.endpoint = checked_url(endpoint, self.provider, "azure_endpoint")
        key = resolve_api_key(api_key, self.key_env)
        if key is None:
            raise EmbeddingError(
                "the azure_openai embedding provider needs an API key: pass api_key or set AZURE_API_KEY "
                "or AZURE_OPENAI_API_KEY"
            )
        self._secret = key
        self.api_version = api_version or os.environ.get("OPENAI_API_VERSION") or AZURE_DEFAULT_API_VERSION
        self.azure_deployment = azure_deployment or self.model
        self.client = self._sdk.AsyncAzureOpenAI(
            api_key=key,
            azure_endpoint=self.endpoint,
            api_version=self.api_version,
            azure_deployment=self.azure_deployment,
            timeout=self.timeout,
            max_retries=0,
        )

    def _where(self) -> str:
        return f"{self.provider} embeddings (deployment {self.azure_deployment!r} at {self.endpoint})"

    def _not_found_hint(self) -> str:
        return (
            f"check that deployment {self.azure_deployment!r} exists on {self.endpoint} "
            f"(set azure_deployment) and that api_version {self.api_version!r} is valid"
        )
