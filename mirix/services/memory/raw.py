"""Raw memory: verbatim task context written by the API without an LLM, kept for a while."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select

from mirix.db.models.memory import RawMemory
from mirix.db.types import utcnow
from mirix.errors import BadRequestError, UnprocessableError
from mirix.schemas.memory import RawMemoryCreate, RawMemoryUpdate, SearchRawRequest
from mirix.search.filters import compile_filter_tags
from mirix.services.actor import Actor
from mirix.services.memory.kinds import RAW
from mirix.services.memory.manager import MemoryManager


def encode_cursor(sort_field: str, row: RawMemory) -> str:
    payload = {sort_field: getattr(row, sort_field).isoformat(), "id": row.id}
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode()


def decode_cursor(cursor: str, sort_field: str) -> tuple[datetime, str]:
    try:
        payload = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        return datetime.fromisoformat(payload[sort_field]), str(payload["id"])
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise BadRequestError("Invalid cursor") from None


class RawMemoryService:
    def __init__(self, sessions, memories: MemoryManager, dialect_name: str) -> None:
        self._sessions = sessions
        self._memories = memories
        self._dialect = dialect_name

    async def create(self, actor: Actor, user_id: str, request: RawMemoryCreate) -> RawMemory:
        item: dict[str, Any] = {"context": request.context, "filter_tags": request.filter_tags or {}}
        if request.occurred_at is not None:
            item["occurred_at"] = request.occurred_at
        if request.id is not None:
            item["id"] = request.id
        (row,) = await self._memories.insert_many(actor, RAW, user_id, [item])
        return row

    async def get(self, actor: Actor, memory_id: str, user_id: str | None) -> RawMemory:
        return await self._memories.get(actor, RAW, memory_id, user_id)

    async def update(self, actor: Actor, memory_id: str, user_id: str | None, request: RawMemoryUpdate) -> RawMemory:
        if request.filter_tags and "scope" in request.filter_tags:
            raise BadRequestError("filter_tags.scope cannot be changed")
        current = await self._memories.get(actor, RAW, memory_id, user_id)
        changes: dict[str, Any] = {}
        if request.context is not None:
            changes["context"] = (
                f"{current.context}\n\n{request.context}"
                if request.context_update_type == "append"
                else request.context
            )
        if request.filter_tags is not None:
            changes["filter_tags"] = (
                {**current.filter_tags, **request.filter_tags}
                if request.tags_update_type == "merge"
                else dict(request.filter_tags)
            )
        return await self._memories.update(actor, RAW, memory_id, changes, user_id=user_id)

    async def delete(self, actor: Actor, memory_id: str) -> None:
        await self._memories.delete(actor, RAW, memory_id)

    async def search(
        self, actor: Actor, user_id: str | None, request: SearchRawRequest
    ) -> tuple[list[RawMemory], str | None]:
        descending = request.sort.startswith("-")
        sort_field = request.sort.lstrip("-")
        column = getattr(RawMemory, sort_field)
        conditions = MemoryManager.owner_conditions(actor, RAW, user_id)
        tags = compile_filter_tags(RawMemory.filter_tags, request.filter_tags, self._dialect)
        if tags is not None:
            conditions.append(tags)
        if request.time_range is not None:
            for name, value in request.time_range.model_dump(exclude_none=True).items():
                field, op = name.rsplit("_", 1)
                target = getattr(RawMemory, field)
                conditions.append(target >= value if op == "gte" else target <= value)
            for field in ("created_at", "occurred_at", "updated_at"):
                low = getattr(request.time_range, f"{field}_gte")
                high = getattr(request.time_range, f"{field}_lte")
                if low is not None and high is not None and low > high:
                    raise UnprocessableError(f"time_range.{field}_gte is after {field}_lte")
        if request.cursor:
            value, last_id = decode_cursor(request.cursor, sort_field)
            if descending:
                conditions.append(or_(column < value, and_(column == value, RawMemory.id < last_id)))
            else:
                conditions.append(or_(column > value, and_(column == value, RawMemory.id > last_id)))
        order = (column.desc(), RawMemory.id.desc()) if descending else (column.asc(), RawMemory.id.asc())
        async with self._sessions() as session:
            rows = list(
                await session.scalars(select(RawMemory).where(*conditions).order_by(*order).limit(request.limit + 1))
            )
        more = len(rows) > request.limit
        rows = rows[: request.limit]
        return rows, encode_cursor(sort_field, rows[-1]) if more and rows else None

    async def cleanup(self, actor: Actor, days: int) -> tuple[int, datetime]:
        """Hard-delete the caller's organization's raw memories not updated for ``days`` days."""
        cutoff = utcnow() - timedelta(days=days)
        async with self._sessions.begin() as session:
            removed = await MemoryManager.purge(
                session,
                [RAW],
                lambda model: [model.organization_id == actor.organization_id, model.updated_at < cutoff],
            )
        return removed, cutoff
