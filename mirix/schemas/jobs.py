"""Memory writes (``/memory/add``) and their jobs on the wire."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from mirix.schemas.common import IdStr, RequestModel, ResponseModel, UtcDatetime

MemoryTypeName = Literal["core", "episodic", "semantic", "procedural", "resource", "knowledge_vault"]


class AddMemoryRequest(RequestModel):
    user_id: IdStr | None = None
    meta_agent_id: IdStr | None = None
    messages: list[dict[str, Any]] = Field(min_length=1, max_length=500)
    chaining: bool = True  # accepted for MIRIX clients; the pipeline decides its own steps
    verbose: bool = False
    filter_tags: dict[str, Any] | None = None
    block_filter_tags: dict[str, Any] | None = None
    block_filter_tags_update_mode: Literal["merge", "replace"] = "merge"
    use_cache: bool = True
    occurred_at: UtcDatetime | None = None
    memory_types: list[MemoryTypeName] | None = Field(
        default=None, description="Skip routing: hand the conversation to these memory agents directly."
    )


class AddMemoryResponse(ResponseModel):
    success: bool = True
    message: str
    status: str
    agent_id: str | None
    message_count: int
    job_id: str


class JobInfo(ResponseModel):
    id: str
    status: str
    user_id: str
    agent_id: str | None
    attempts: int
    error: str | None
    llm_calls: int
    prompt_tokens: int
    completion_tokens: int
    written_ids: list[str]
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    duration_ms: int | None
