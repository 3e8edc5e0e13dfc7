"""LLM and embedding model configurations, with MIRIX's field names."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

LLMEndpointType = Literal[
    "openai",
    "anthropic",
    "cohere",
    "google_ai",
    "google_vertex",
    "azure_openai",
    "groq",
    "ollama",
    "webui",
    "webui-legacy",
    "lmstudio",
    "lmstudio-legacy",
    "lmstudio-chatcompletions",
    "llamacpp",
    "koboldcpp",
    "vllm",
    "hugging-face",
    "mistral",
    "together",
    "bedrock",
    "deepseek",
    "xai",
]
EmbeddingEndpointType = Literal[
    "openai",
    "anthropic",
    "bedrock",
    "cohere",
    "google_ai",
    "azure",
    "azure_openai",
    "groq",
    "ollama",
    "webui",
    "webui-legacy",
    "lmstudio",
    "lmstudio-legacy",
    "llamacpp",
    "koboldcpp",
    "vllm",
    "hugging-face",
    "mistral",
    "together",
    "local",
]


class _Config(BaseModel):
    # Unknown keys from newer MIRIX configs are tolerated rather than rejected.
    model_config = ConfigDict(extra="ignore", protected_namespaces=())


class LLMConfig(_Config):
    model: str = Field(min_length=1, max_length=255)
    model_endpoint_type: LLMEndpointType
    model_endpoint: str | None = None
    model_wrapper: str | None = None
    context_window: int = Field(default=128000, ge=1)
    handle: str | None = None
    temperature: float = Field(default=0.7, ge=0, le=2)
    max_tokens: int | None = Field(default=4096, ge=1)
    enable_reasoner: bool = False
    reasoning_effort: Literal["low", "medium", "high"] | None = None
    max_reasoning_tokens: int = 0
    put_inner_thoughts_in_kwargs: bool | None = None
    api_key: str | None = Field(default=None, description="Write-only: never returned by the API.")
    auth_provider: str | None = None
    api_version: str | None = None
    azure_endpoint: str | None = None
    azure_deployment: str | None = None


class EmbeddingConfig(_Config):
    embedding_endpoint_type: EmbeddingEndpointType
    embedding_endpoint: str | None = None
    embedding_model: str = Field(min_length=1, max_length=255)
    embedding_dim: int = Field(ge=1, le=16000)
    embedding_chunk_size: int | None = 300
    handle: str | None = None
    api_key: str | None = Field(default=None, description="Write-only: never returned by the API.")
    auth_provider: str | None = None
    azure_endpoint: str | None = None
    azure_version: str | None = None
    azure_deployment: str | None = None


class PublicLLMConfig(LLMConfig):
    """An LLM config as shown to callers: the API key is accepted on input but never returned."""

    api_key: str | None = Field(default=None, exclude=True)


class PublicEmbeddingConfig(EmbeddingConfig):
    api_key: str | None = Field(default=None, exclude=True)
