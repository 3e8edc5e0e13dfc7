from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from mirix.api.deps import CurrentActor, Server
from mirix.schemas.agents import StatusMessage, Tool, ToolCreate
from mirix.schemas.common import IdStr

router = APIRouter(prefix="/tools", tags=["tools"])


@router.get("", response_model=list[Tool])
async def list_tools(
    server: Server,
    actor: CurrentActor,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
):
    return await server.tools.list(actor, cursor, limit)


@router.get("/{tool_id}", response_model=Tool)
async def get_tool(server: Server, actor: CurrentActor, tool_id: IdStr):
    return await server.tools.get(actor, tool_id)


@router.post("", response_model=Tool, summary="Register a tool (its source is stored, never executed)")
async def create_tool(server: Server, actor: CurrentActor, body: ToolCreate):
    return await server.tools.create(actor, body)


@router.delete("/{tool_id}", response_model=StatusMessage)
async def delete_tool(server: Server, actor: CurrentActor, tool_id: IdStr):
    await server.tools.delete(actor, tool_id)
    return StatusMessage(message=f"Tool {tool_id} deleted")
