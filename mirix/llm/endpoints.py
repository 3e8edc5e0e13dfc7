"""From an ``LLMConfig`` (MIRIX field names) to a concrete endpoint: which adapter, URL, key, API version.

API keys fall back to the usual environment variables. Local OpenAI-compatible servers (Ollama,
vLLM, LM Studio) need no key; they get a placeholder because the SDK insists on one.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from mirix.llm.errors import LLMConfigurationError
from mirix.schemas.config import LLMConfig

Kind = Literal["openai", "azure_openai", "anthropic", "google_ai"]

NO_KEY_NEEDED = "no-key-needed"
DEFAULT_AZURE_API_VERSION = "2024-09-01-preview"


@dataclass(frozen=True, slots=True)
class _OpenAICompatible:
    base_url: str
    key_env: tuple[str, ...]
    base_env: tuple[str, ...] = ()
    key_required: bool = True
    # Local servers are addressed by host:port in MIRIX configs; their OpenAI API lives under /v1.
    append_v1: bool = False


_OPENAI_COMPATIBLE: dict[str, _OpenAICompatible] = {
    "openai": _OpenAICompatible("https://api.openai.com/v1", ("OPENAI_API_KEY",), ("OPENAI_API_BASE",)),
    "ollama": _OpenAICompatible(
        "http://localhost:11434", ("OLLAMA_API_KEY",), ("OLLAMA_BASE_URL",), key_required=False, append_v1=True
    ),
    "vllm": _OpenAICompatible(
        "http://localhost:8000", ("VLLM_API_KEY",), ("VLLM_API_BASE",), key_required=False, append_v1=True
    ),
    "lmstudio": _OpenAICompatible(
        "http://localhost:1234", ("LMSTUDIO_API_KEY",), ("LMSTUDIO_BASE_URL",), key_required=False, append_v1=True
    ),
    "deepseek": _OpenAICompatible("https://api.deepseek.com/v1", ("DEEPSEEK_API_KEY",)),
    "xai": _OpenAICompatible("https://api.x.ai/v1", ("XAI_API_KEY",)),
    "together": _OpenAICompatible("https://api.together.xyz/v1", ("TOGETHER_API_KEY",)),
    "groq": _OpenAICompatible("https://api.groq.com/openai/v1", ("GROQ_API_KEY",)),
    "mistral": _OpenAICompatible("https://api.mistral.ai/v1", ("MISTRAL_API_KEY",)),
}
for _variant in ("lmstudio-legacy", "lmstudio-chatcompletions"):
    _OPENAI_COMPATIBLE[_variant] = _OPENAI_COMPATIBLE["lmstudio"]

_KEY_ENV: dict[Kind, tuple[str, ...]] = {
    "azure_openai": ("AZURE_API_KEY", "AZURE_OPENAI_API_KEY"),
    "anthropic": ("ANTHROPIC_API_KEY",),
    "google_ai": ("GEMINI_API_KEY", "GOOGLE_API_KEY"),
}


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Everything needed to build an SDK client. ``model`` is what goes on the wire (Azure: the deployment)."""

    kind: Kind
    provider: str
    model: str
    base_url: str | None
    api_key: str = ""
    api_version: str | None = None

    def __repr__(self) -> str:  # never show the key in logs or tracebacks
        return (
            f"Endpoint(kind={self.kind!r}, provider={self.provider!r}, model={self.model!r}, "
            f"base_url={self.base_url!r}, api_version={self.api_version!r})"
        )


def supported_endpoint_types() -> list[str]:
    return sorted([*_OPENAI_COMPATIBLE, "azure_openai", "anthropic", "google_ai"])


def resolve_endpoint(config: LLMConfig, env: Mapping[str, str] | None = None) -> Endpoint:
    """Raises LLMConfigurationError naming the provider when something required is missing."""
    env = os.environ if env is None else env
    kind_name = config.model_endpoint_type
    if kind_name in _OPENAI_COMPATIBLE:
        return _openai_compatible(config, _OPENAI_COMPATIBLE[kind_name], env)
    if kind_name == "azure_openai":
        return _azure(config, env)
    if kind_name == "anthropic":
        return Endpoint(
            kind="anthropic",
            provider="anthropic",
            model=config.model,
            base_url=_strip_version_suffix(config.model_endpoint, ("/v1",)),
            api_key=_require_key(config, "anthropic", _KEY_ENV["anthropic"], env),
        )
    if kind_name == "google_ai":
        return Endpoint(
            kind="google_ai",
            provider="google_ai",
            model=config.model,
            base_url=_strip_version_suffix(config.model_endpoint, ("/v1beta", "/v1")),
            api_key=_require_key(config, "google_ai", _KEY_ENV["google_ai"], env),
        )
    raise LLMConfigurationError(
        f"model_endpoint_type {kind_name!r} has no LLM client; supported: {', '.join(supported_endpoint_types())}",
        provider=kind_name,
        model=config.model,
    )


def _openai_compatible(config: LLMConfig, spec: _OpenAICompatible, env: Mapping[str, str]) -> Endpoint:
    provider = config.model_endpoint_type
    base = config.model_endpoint or _first_env(env, spec.base_env) or spec.base_url
    if spec.append_v1 and urlsplit(base).path.strip("/") == "":
        base = base.rstrip("/") + "/v1"
    if spec.key_required:
        key = _require_key(config, provider, spec.key_env, env)
    else:
        key = config.api_key or _first_env(env, spec.key_env) or NO_KEY_NEEDED
    return Endpoint(kind="openai", provider=provider, model=config.model, base_url=base, api_key=key)


def _azure(config: LLMConfig, env: Mapping[str, str]) -> Endpoint:
    base = (
        config.azure_endpoint or config.model_endpoint or _first_env(env, ("AZURE_BASE_URL", "AZURE_OPENAI_ENDPOINT"))
    )
    if not base:
        raise LLMConfigurationError(
            "azure_openai needs azure_endpoint (or model_endpoint, AZURE_BASE_URL, AZURE_OPENAI_ENDPOINT)",
            provider="azure_openai",
            model=config.model,
        )
    return Endpoint(
        kind="azure_openai",
        provider="azure_openai",
        model=config.azure_deployment or config.model,
        base_url=base,
        api_key=_require_key(config, "azure_openai", _KEY_ENV["azure_openai"], env),
        api_version=config.api_version
        or _first_env(env, ("AZURE_API_VERSION", "OPENAI_API_VERSION"))
        or DEFAULT_AZURE_API_VERSION,
    )


def _require_key(config: LLMConfig, provider: str, names: tuple[str, ...], env: Mapping[str, str]) -> str:
    key = config.api_key or _first_env(env, names)
    if not key:
        raise LLMConfigurationError(
            f"no API key for {provider}: set api_key in the LLM config or {' / '.join(names)}",
            provider=provider,
            model=config.model,
        )
    return key


def _first_env(env: Mapping[str, str], names: tuple[str, ...]) -> str | None:
    return next((env[n] for n in names if env.get(n)), None)


def _strip_version_suffix(url: str | None, suffixes: tuple[str, ...]) -> str | None:
    # MIRIX configs often carry the versioned URL; these SDKs add the version path themselves.
    if not url:
        return None
    trimmed = url.rstrip("/")
    for suffix in suffixes:
        if trimmed.endswith(suffix):
            return trimmed[: -len(suffix)]
    return trimmed
