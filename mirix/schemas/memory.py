"""Memory items, search, retrieval and raw memory on the wire (MIRIX-compatible shapes)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field, field_validator

from mirix.schemas.common import IdStr, RequestModel, ResponseModel, UtcDatetime

Sensitivity = Literal["low", "medium", "high"]


class _Timed(RequestModel):
    occurred_at: UtcDatetime | None = None


# --- item bodies per type: what a caller (or the import endpoint) may write --------------------


class EpisodicFields(_Timed):
    event_type: str = Field(default="", max_length=255)
    actor: str = Field(default="", max_length=255)
    summary: str = Field(default="", max_length=10_000)
    details: str = Field(default="", max_length=100_000)


class SemanticFields(_Timed):
    name: str = Field(default="", max_length=1_000)
    summary: str = Field(default="", max_length=10_000)
    details: str = Field(default="", max_length=100_000)
    source: str = Field(default="", max_length=10_000)


class ProceduralFields(_Timed):
    entry_type: str = Field(default="", max_length=255)
    summary: str = Field(default="", max_length=10_000)
    steps: list[str] = Field(default_factory=list, max_length=200)


class ResourceFields(_Timed):
    title: str = Field(default="", max_length=1_000)
    summary: str = Field(default="", max_length=10_000)
    resource_type: str = Field(default="", max_length=255)
    content: str = Field(default="", max_length=1_000_000)


class KnowledgeVaultFields(_Timed):
    entry_type: str = Field(default="", max_length=255)
    source: str = Field(default="", max_length=10_000)
    sensitivity: Sensitivity = "medium"
    secret_value: str = Field(default="", max_length=100_000)
    caption: str = Field(default="", max_length=10_000)


FIELDS_MODEL: dict[str, type[_Timed]] = {
    "episodic": EpisodicFields,
    "semantic": SemanticFields,
    "procedural": ProceduralFields,
    "resource": ResourceFields,
    "knowledge_vault": KnowledgeVaultFields,
}


def _optional(model: type[_Timed], name: str) -> type[RequestModel]:
    """The PATCH body of a type: every field optional, nothing else allowed."""
    from pydantic import create_model

    fields = {key: (info.annotation | None, None) for key, info in model.model_fields.items()}
    return create_model(name, __base__=RequestModel, **fields)


PATCH_MODEL: dict[str, type[RequestModel]] = {
    kind: _optional(model, f"{model.__name__.removesuffix('Fields')}Update") for kind, model in FIELDS_MODEL.items()
}


class ImportItem(RequestModel):
    memory_type: Literal["episodic", "semantic", "procedural", "resource", "knowledge_vault"]
    user_id: IdStr
    filter_tags: dict[str, Any] | None = None
    occurred_at: UtcDatetime | None = None
    # The type's own fields (validated against the type's model).
    model_config = {**RequestModel.model_config, "extra": "allow"}


class ImportRequest(RequestModel):
    items: list[ImportItem] = Field(min_length=1, max_length=5_000)


class ImportResponse(ResponseModel):
    success: bool = True
    ids: list[str]
    count: int


class HistoryEntry(ResponseModel):
    id: int
    memory_id: str
    operation: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    job_id: str | None
    client_id: str | None
    created_at: datetime


# --- retrieval -------------------------------------------------------------------------------------


class RetrieveConversationRequest(RequestModel):
    user_id: IdStr | None = None
    messages: list[dict[str, Any]] = Field(max_length=500)
    limit: int = Field(default=10, ge=1, le=100)
    local_model_for_retrieval: str | None = None
    filter_tags: dict[str, Any] | None = None
    use_cache: bool = True
    start_date: str | None = None
    end_date: str | None = None


# --- raw memory ------------------------------------------------------------------------------------


class RawMemoryCreate(RequestModel):
    context: str = Field(min_length=1, max_length=1_000_000)
    filter_tags: dict[str, Any] | None = None
    occurred_at: UtcDatetime | None = None
    id: IdStr | None = None

    @field_validator("context")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("context must not be blank")
        return value


class RawMemoryUpdate(RequestModel):
    context: str | None = Field(default=None, max_length=1_000_000)
    filter_tags: dict[str, Any] | None = None
    context_update_type: Literal["append", "replace"] = "replace"
    tags_update_type: Literal["merge", "replace"] = "replace"


class TimeRange(RequestModel):
    created_at_gte: UtcDatetime | None = None
    created_at_lte: UtcDatetime | None = None
    occurred_at_gte: UtcDatetime | None = None
    occurred_at_lte: UtcDatetime | None = None
    updated_at_gte: UtcDatetime | None = None
    updated_at_lte: UtcDatetime | None = None


class SearchRawRequest(RequestModel):
    filter_tags: dict[str, Any] | None = None
    sort: Literal["updated_at", "-updated_at", "created_at", "-created_at", "occurred_at", "-occurred_at"] = (
        "-updated_at"
    )
    cursor: str | None = Field(default=None, max_length=2_000)
    time_range: TimeRange | None = None
    limit: int = Field(default=10, ge=1, le=100)


class RawMemoryItem(ResponseModel):
    id: str
    context: str
    filter_tags: dict[str, Any]
    user_id: str
    organization_id: str
    occurred_at: datetime
    created_at: datetime
    updated_at: datetime
    last_modify: dict[str, Any]


class SearchRawResponse(ResponseModel):
    items: list[RawMemoryItem]
    cursor: str | None
    count: int
