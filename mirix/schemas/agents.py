"""Agents, tools and core-memory blocks on the wire (MIRIX-compatible shapes)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from mirix.schemas.common import IdStr, Name, RequestModel, ResponseModel
from mirix.schemas.config import EmbeddingConfig, LLMConfig, PublicEmbeddingConfig, PublicLLMConfig

AgentType = Literal[
    "coder_agent",
    "chat_agent",
    "reflexion_agent",
    "background_agent",
    "episodic_memory_agent",
    "procedural_memory_agent",
    "resource_memory_agent",
    "knowledge_vault_memory_agent",
    "meta_memory_agent",
    "semantic_memory_agent",
    "core_memory_agent",
]


class Tool(ResponseModel):
    id: str
    tool_type: str
    description: str | None
    source_type: str | None
    organization_id: str
    name: str
    tags: list[str]
    source_code: str | None
    json_schema: dict[str, Any] | None
    return_char_limit: int
    created_by_id: str | None
    last_updated_by_id: str | None = None
    created_at: datetime
    updated_at: datetime


class ToolCreate(RequestModel):
    """MIRIX posts a whole Tool object; server-owned fields it may carry are accepted and ignored."""

    id: IdStr | None = None
    name: Name
    tool_type: str = Field(default="custom", max_length=64)
    description: str | None = Field(default=None, max_length=10_000)
    tags: list[str] = Field(default_factory=list, max_length=50)
    source_type: str | None = Field(default=None, max_length=64)
    source_code: str | None = Field(default=None, max_length=200_000)
    json_schema: dict[str, Any] | None = None
    return_char_limit: int = Field(default=6000, ge=1, le=1_000_000)
    organization_id: str | None = None
    created_by_id: str | None = None
    last_updated_by_id: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    metadata_: dict[str, Any] | None = None


class Block(ResponseModel):
    id: str
    label: str
    value: str
    limit: int
    user_id: str | None
    organization_id: str
    filter_tags: dict[str, Any]
    created_by_id: str | None
    last_updated_by_id: str | None
    created_at: datetime
    updated_at: datetime


class BlockIn(RequestModel):
    id: IdStr | None = None
    label: Name
    value: str = Field(default="", max_length=100_000)
    limit: int = Field(default=5000, ge=1, le=100_000)
    user_id: IdStr | None = None
    # Server-owned fields MIRIX clients may echo back; ignored.
    organization_id: str | None = None
    filter_tags: dict[str, Any] | None = None
    created_by_id: str | None = None
    last_updated_by_id: str | None = None
    template_name: str | None = None
    is_template: bool | None = None
    description: str | None = None
    metadata_: dict[str, Any] | None = None
    name: str | None = None


class BlockUserRef(RequestModel):
    id: IdStr
    name: str | None = None
    organization_id: str | None = None
    status: str | None = None
    timezone: str | None = None
    is_admin: bool | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    is_deleted: bool | None = None


class BlockCreateRequest(RequestModel):
    """MIRIX's route declares two body models, so its wire shape is ``{"block": ..., "user": ...}``."""

    block: BlockIn
    user: BlockUserRef | None = None


class AgentState(ResponseModel):
    id: str
    name: str
    agent_type: str
    system: str
    description: str | None
    parent_id: str | None
    organization_id: str
    llm_config: PublicLLMConfig | None
    embedding_config: PublicEmbeddingConfig | None
    tool_rules: list[dict[str, Any]] | None
    tags: list[str]
    metadata_: dict[str, Any] | None = None
    message_ids: list[str] = Field(default_factory=list)
    tools: list[Tool] = Field(default_factory=list)
    mcp_tools: list[str] = Field(default_factory=list)
    children: list[AgentState] | None = None
    created_by_id: str | None = None
    last_updated_by_id: str | None = None
    created_at: datetime
    updated_at: datetime


class MemoryBlocks(RequestModel):
    blocks: list[BlockIn] = Field(default_factory=list, max_length=50)
    prompt_template: str | None = None


class AgentCreate(RequestModel):
    name: str | None = Field(default=None, max_length=50, pattern=r"^[A-Za-z0-9 _-]+$")
    agent_type: AgentType = "chat_agent"
    llm_config: LLMConfig | None = None
    embedding_config: EmbeddingConfig | None = None
    memory: MemoryBlocks | None = None
    block_ids: list[IdStr] | None = None
    system: str | None = Field(default=None, max_length=100_000)
    tool_ids: list[IdStr] | None = Field(default=None, max_length=200)
    tool_rules: list[dict[str, Any]] | None = None
    include_base_tools: bool = True
    include_meta_memory_tools: bool = False
    metadata: dict[str, Any] | None = None
    description: str | None = Field(default=None, max_length=10_000)
    initial_message_sequence: list[dict[str, Any]] | None = None
    tags: list[str] | None = Field(default=None, max_length=50)
    parent_id: IdStr | None = None


class AgentUpdate(RequestModel):
    name: str | None = Field(default=None, max_length=50, pattern=r"^[A-Za-z0-9 _-]+$")
    description: str | None = Field(default=None, max_length=10_000)
    system: str | None = Field(default=None, max_length=100_000)
    tool_ids: list[IdStr] | None = Field(default=None, max_length=200)
    metadata: dict[str, Any] | None = None
    llm_config: LLMConfig | None = None
    embedding_config: EmbeddingConfig | None = None
    message_ids: list[str] | None = None
    memory: MemoryBlocks | None = None
    tags: list[str] | None = Field(default=None, max_length=50)


class SystemPromptUpdate(RequestModel):
    system_prompt: str = Field(min_length=1, max_length=100_000)


class StatusMessage(ResponseModel):
    status: Literal["success"] = "success"
    message: str


class TemplateBlock(RequestModel):
    label: Name
    value: str = Field(default="", max_length=100_000)
    limit: int = Field(default=5000, ge=1, le=100_000)


class MetaAgentConfig(RequestModel):
    model_config = {**RequestModel.model_config, "extra": "ignore"}
    agents: list[str | dict[str, dict[str, list[TemplateBlock]] | None]] | None = None
    system_prompts: dict[str, str] = Field(default_factory=dict)


class MetaInitConfig(RequestModel):
    model_config = {**RequestModel.model_config, "extra": "ignore"}
    llm_config: LLMConfig
    embedding_config: EmbeddingConfig | None = None
    meta_agent_config: MetaAgentConfig = Field(default_factory=MetaAgentConfig)
    system_prompts: dict[str, str] = Field(default_factory=dict)


class MetaInitRequest(RequestModel):
    config: MetaInitConfig
    project: str | None = None
    update_agents: bool = False


class SendMessageRequest(RequestModel):
    message: str = Field(min_length=1, max_length=100_000)
    role: Literal["user", "system"] = "user"
    user_id: IdStr | None = None
    name: str | None = Field(default=None, max_length=255)
    stream: bool = False
    stream_steps: bool = False
    stream_tokens: bool = False
    filter_tags: dict[str, Any] | None = None
    block_filter_tags: dict[str, Any] | None = None
    block_filter_tags_update_mode: Literal["merge", "replace"] = "merge"
    use_cache: bool = True
