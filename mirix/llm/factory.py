"""LLMConfig → client. A registry builds each client once and reuses it; SDK clients (and so their
connection pools) are shared between configurations that differ only in model or sampling."""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
import os
from collections.abc import Mapping
from typing import Any

from mirix.llm.base import LLMClient, Recorder
from mirix.llm.client import DEFAULT_TIMEOUT, BaseChatClient, ClientOptions
from mirix.llm.endpoints import Endpoint, resolve_endpoint
from mirix.llm.retry import RetryPolicy
from mirix.schemas.config import LLMConfig

log = logging.getLogger(__name__)


def _build_openai(endpoint: Endpoint, timeout: float) -> tuple[Any, type[BaseChatClient]]:
    from mirix.llm import openai_client

    return openai_client.create_sdk_client(endpoint, timeout), openai_client.OpenAIChatClient


def _build_anthropic(endpoint: Endpoint, timeout: float) -> tuple[Any, type[BaseChatClient]]:
    from mirix.llm import anthropic_client

    return anthropic_client.create_sdk_client(endpoint, timeout), anthropic_client.AnthropicChatClient


def _build_google(endpoint: Endpoint, timeout: float) -> tuple[Any, type[BaseChatClient]]:
    from mirix.llm import google_client

    return google_client.create_sdk_client(endpoint, timeout), google_client.GoogleChatClient


# Each SDK is imported only when a configuration needs it.
_BUILDERS = {
    "openai": _build_openai,
    "azure_openai": _build_openai,
    "anthropic": _build_anthropic,
    "google_ai": _build_google,
}


_SDK_MODULES = {
    "openai": "mirix.llm.openai_client",
    "azure_openai": "mirix.llm.openai_client",
    "anthropic": "mirix.llm.anthropic_client",
    "google_ai": "mirix.llm.google_client",
}


def import_sdk(endpoint_type: str) -> None:
    """Import the client module (and so the SDK) an endpoint type needs, ahead of the first call:
    importing an SDK takes a good part of a second, all of it holding the GIL."""
    module = _SDK_MODULES.get(endpoint_type)
    if module is not None:
        importlib.import_module(module)


def _key_hash(api_key: str) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()


def _timeout_of(config: LLMConfig, default: float) -> float:
    # LLMConfig has no timeout field today; honour one if the schema grows it.
    value = getattr(config, "timeout", None)
    return float(value) if value else default


def _client(
    config: LLMConfig,
    endpoint: Endpoint,
    built: tuple[Any, type[BaseChatClient]],
    *,
    timeout: float,
    retry: RetryPolicy,
    recorder: Recorder | None,
    owns_sdk: bool,
) -> BaseChatClient:
    sdk, client_class = built
    options = ClientOptions(
        timeout=timeout,
        retry=retry,
        recorder=recorder,
        temperature=config.temperature,
        max_tokens=config.max_tokens,
    )
    extra: dict[str, Any] = {}
    if endpoint.kind in ("openai", "azure_openai"):
        extra["reasoning_effort"] = config.reasoning_effort
    return client_class(
        sdk, model=endpoint.model, provider=endpoint.provider, options=options, owns_sdk=owns_sdk, **extra
    )


class LLMRegistry:
    """Owns every LLM client of a process (one per distinct configuration) and their SDK clients.

    ``recorder`` is awaited after every call, successful or not, with a ``CallRecord``. ``env``
    (default ``os.environ``, read at ``get`` time) supplies API keys a configuration leaves out.
    """

    def __init__(
        self,
        *,
        recorder: Recorder | None = None,
        retry: RetryPolicy | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.recorder = recorder
        self.retry = retry or RetryPolicy()
        self.timeout = timeout
        self._env = env
        self._clients: dict[tuple[Any, ...], BaseChatClient] = {}
        self._sdks: dict[tuple[Any, ...], tuple[Any, type[BaseChatClient]]] = {}
        self._closed = False

    def get(self, config: LLMConfig | Mapping[str, Any]) -> LLMClient:
        """The client for ``config``, built on first use. Raises LLMConfigurationError for an unusable config."""
        if self._closed:
            raise RuntimeError("LLMRegistry is closed")
        if not isinstance(config, LLMConfig):
            config = LLMConfig.model_validate(config)
        endpoint = resolve_endpoint(config, os.environ if self._env is None else self._env)
        timeout = _timeout_of(config, self.timeout)
        key_hash = _key_hash(endpoint.api_key)
        # Keyed by the resolved key's hash: a key from the environment counts too, and no key is kept.
        fields = json.dumps(config.model_dump(mode="json", exclude={"api_key"}), sort_keys=True)
        client_key = (fields, key_hash, timeout)
        client = self._clients.get(client_key)
        if client is None:
            sdk_key = (endpoint.kind, endpoint.base_url, endpoint.api_version, key_hash, timeout)
            if sdk_key not in self._sdks:
                self._sdks[sdk_key] = _BUILDERS[endpoint.kind](endpoint, timeout)
            client = _client(
                config,
                endpoint,
                self._sdks[sdk_key],
                timeout=timeout,
                retry=self.retry,
                recorder=self.recorder,
                owns_sdk=False,
            )
            self._clients[client_key] = client
        return client

    def __len__(self) -> int:
        return len(self._clients)

    @property
    def sdk_client_count(self) -> int:
        return len(self._sdks)

    async def aclose_all(self) -> None:
        """Close every SDK client (at shutdown); the registry cannot be used afterwards."""
        self._closed = True
        sdks = list(self._sdks.values())
        self._sdks.clear()
        self._clients.clear()
        for sdk, client_class in sdks:
            try:
                await client_class.close_sdk(sdk)
            except Exception:
                log.warning("closing an LLM SDK client failed", exc_info=True)


def create_llm_client(
    config: LLMConfig | Mapping[str, Any],
    *,
    recorder: Recorder | None = None,
    retry: RetryPolicy | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    env: Mapping[str, str] | None = None,
) -> LLMClient:
    """A standalone client that owns its SDK client (``await client.aclose()`` when done).

    Prefer ``LLMRegistry.get`` in the server: it reuses clients and connection pools.
    """
    if not isinstance(config, LLMConfig):
        config = LLMConfig.model_validate(config)
    endpoint = resolve_endpoint(config, os.environ if env is None else env)
    timeout = _timeout_of(config, timeout)
    built = _BUILDERS[endpoint.kind](endpoint, timeout)
    return _client(
        config, endpoint, built, timeout=timeout, retry=retry or RetryPolicy(), recorder=recorder, owns_sdk=True
    )
