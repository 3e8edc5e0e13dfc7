"""Raw memory: verbatim task context, stored without an LLM, searchable by tags and time."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from mirix.api.deps import CurrentActor, Server
from mirix.errors import BadRequestError
from mirix.schemas.common import IdStr
from mirix.schemas.memory import (
    RawMemoryCreate,
    RawMemoryItem,
    RawMemoryUpdate,
    SearchRawRequest,
    SearchRawResponse,
)
from mirix.schemas.tags import check_stored_tags
from mirix.search.filters import validate_filter_tags
from mirix.services.memory.views import tags

router = APIRouter(prefix="/memory", tags=["raw memory"])


def raw_item(row) -> RawMemoryItem:
    return RawMemoryItem(
        id=row.id,
        context=row.context,
        filter_tags=tags(row),
        user_id=row.user_id,
        organization_id=row.organization_id,
        occurred_at=row.occurred_at,
        created_at=row.created_at,
        updated_at=row.updated_at,
        last_modify={"timestamp": row.updated_at.isoformat(), "operation": "updated"},
    )


@router.post("/raw", summary="Store raw task context for a user (no LLM)")
async def create_raw(server: Server, actor: CurrentActor, user_id: IdStr, body: RawMemoryCreate):
    body.filter_tags = check_stored_tags(body.filter_tags)
    row = await server.raw_memories.create(actor, user_id, body)
    return {
        "success": True,
        "message": f"Raw memory {row.id} created",
        "memory": {
            "id": row.id,
            "context": row.context,
            "filter_tags": tags(row),
            "user_id": row.user_id,
            "created_at": row.created_at.isoformat(),
        },
    }


@router.post("/search_raw", response_model=SearchRawResponse, summary="Filter, sort and page through raw memories")
async def search_raw(server: Server, actor: CurrentActor, body: SearchRawRequest, user_id: IdStr | None = None):
    if body.filter_tags:
        body.filter_tags = validate_filter_tags(body.filter_tags)
    rows, cursor = await server.raw_memories.search(actor, user_id, body)
    return SearchRawResponse(items=[raw_item(row) for row in rows], cursor=cursor, count=len(rows))


@router.post("/raw/cleanup", summary="Delete the organization's raw memories not updated for N days")
async def cleanup_raw(server: Server, actor: CurrentActor, days_threshold: Annotated[int, Query(ge=1, le=365)] = 14):
    actor.require_write_scope()
    deleted, cutoff = await server.raw_memories.cleanup(actor, days_threshold)
    return {
        "success": True,
        "deleted_count": deleted,
        "error_count": 0,
        "cutoff_date": cutoff.isoformat(),
        "days_threshold": days_threshold,
        "message": f"Deleted {deleted} raw memories older than {days_threshold} days",
    }


@router.get("/raw/{memory_id}")
async def get_raw(server: Server, actor: CurrentActor, memory_id: IdStr, user_id: IdStr | None = None):
    return {"success": True, "memory": raw_item(await server.raw_memories.get(actor, memory_id, user_id))}


@router.patch("/raw/{memory_id}")
async def update_raw(
    server: Server, actor: CurrentActor, memory_id: IdStr, body: RawMemoryUpdate, user_id: IdStr | None = None
):
    if body.filter_tags is not None:
        if "scope" in body.filter_tags:
            raise BadRequestError("filter_tags.scope cannot be changed")
        body.filter_tags = check_stored_tags(body.filter_tags)
    row = await server.raw_memories.update(actor, memory_id, user_id, body)
    return {
        "success": True,
        "message": f"Raw memory {memory_id} updated",
        "memory": {
            "id": row.id,
            "context": row.context,
            "filter_tags": tags(row),
            "updated_at": row.updated_at.isoformat(),
        },
    }


@router.delete("/raw/{memory_id}")
async def delete_raw(server: Server, actor: CurrentActor, memory_id: IdStr):
    await server.raw_memories.delete(actor, memory_id)
    return {"success": True, "message": f"Raw memory {memory_id} deleted"}
