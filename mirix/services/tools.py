"""Tools agents may call. Stored per organization; their source code is never executed."""

from __future__ import annotations

from sqlalchemy import select

from mirix.db.base import new_id
from mirix.db.models import Tool
from mirix.db.types import utcnow
from mirix.errors import ConflictError, NotFoundError
from mirix.schemas.agents import ToolCreate
from mirix.services.actor import Actor
from mirix.services.base import Manager, page


class ToolManager(Manager):
    async def list(self, actor: Actor, cursor: str | None, limit: int) -> list[Tool]:
        query = select(Tool).where(Tool.organization_id == actor.organization_id, Tool.deleted_at.is_(None))
        async with self._sessions() as session:
            return list(await session.scalars(page(query, Tool.id, cursor, limit)))

    async def get(self, actor: Actor, tool_id: str) -> Tool:
        async with self._sessions() as session:
            tool = await session.get(Tool, tool_id)
        if tool is None or tool.is_deleted or tool.organization_id != actor.organization_id:
            raise NotFoundError(f"Tool {tool_id} not found")
        return tool

    async def get_many(self, actor: Actor, tool_ids: list[str]) -> list[Tool]:
        if not tool_ids:
            return []
        async with self._sessions() as session:
            found = {
                tool.id: tool
                for tool in await session.scalars(
                    select(Tool).where(
                        Tool.id.in_(tool_ids), Tool.organization_id == actor.organization_id, Tool.deleted_at.is_(None)
                    )
                )
            }
        missing = [tool_id for tool_id in tool_ids if tool_id not in found]
        if missing:
            raise NotFoundError(f"Tool {missing[0]} not found")
        return [found[tool_id] for tool_id in dict.fromkeys(tool_ids)]

    async def create(self, actor: Actor, request: ToolCreate) -> Tool:
        async with self._sessions.begin() as session:
            clash = await session.scalar(
                select(Tool.id).where(
                    Tool.organization_id == actor.organization_id, Tool.name == request.name, Tool.deleted_at.is_(None)
                )
            )
            if clash:
                raise ConflictError(f"A tool named {request.name!r} already exists ({clash})")
            if request.id and await session.get(Tool, request.id) is not None:
                raise ConflictError(f"Tool id '{request.id}' is not available")
            tool = Tool(
                id=request.id or new_id("tool"),
                organization_id=actor.organization_id,
                created_by_id=actor.client_id,
                name=request.name,
                tool_type=request.tool_type,
                description=request.description,
                tags=request.tags,
                source_type=request.source_type,
                source_code=request.source_code,
                json_schema=request.json_schema,
                return_char_limit=request.return_char_limit,
            )
            session.add(tool)
        return tool

    async def delete(self, actor: Actor, tool_id: str) -> None:
        async with self._sessions.begin() as session:
            tool = await session.get(Tool, tool_id, with_for_update=True)
            if tool is None or tool.is_deleted or tool.organization_id != actor.organization_id:
                raise NotFoundError(f"Tool {tool_id} not found")
            tool.deleted_at = utcnow()
