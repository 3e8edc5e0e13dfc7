"""Prompt-ready retrieval: the memories worth showing an LLM for a conversation or a topic."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from mirix.errors import UnprocessableError
from mirix.search.temporal import DateRange, find_temporal_expression, parse_temporal_expression
from mirix.search.text import search_terms
from mirix.services.actor import Actor
from mirix.services.blocks import BlockManager
from mirix.services.memory.kinds import EPISODIC, KNOWLEDGE_VAULT, SEARCHABLE, MemoryKind
from mirix.services.memory.manager import MemoryManager
from mirix.services.memory.search import MemorySearch, SearchQuery
from mirix.services.memory.views import retrieval_item
from mirix.timezones import parse_iso

SENSITIVITY_ORDER = {"low": 0, "medium": 1, "high": 2}
#: How much of a conversation (from its end) becomes the search query.
QUERY_CHARS = 2000


def conversation_text(messages: list[dict[str, Any]]) -> str:
    """The text of a conversation, whether messages carry strings or content parts.

    Accepts OpenAI-style ``{"role", "content"}`` messages and bare content parts
    (``{"type": "text", "text": ...}``), which MIRIX clients also send.
    """
    texts: list[str] = []
    for message in messages:
        content = message.get("content", message) if "role" in message else message
        if isinstance(content, str):
            texts.append(content)
        elif isinstance(content, dict):
            if isinstance(content.get("text"), str):
                texts.append(content["text"])
        elif isinstance(content, list):
            texts.extend(
                part["text"] for part in content if isinstance(part, dict) and isinstance(part.get("text"), str)
            )
    return "\n".join(text for text in texts if text.strip())


def parse_date(value: str | None, name: str) -> datetime | None:
    if value is None or not value.strip():
        return None
    try:
        return parse_iso(value)
    except ValueError:
        raise UnprocessableError(f"{name} must be an ISO 8601 date or datetime, not {value!r}") from None


@dataclass
class Retrieval:
    topics: str | None
    temporal_expression: str | None
    date_range: tuple[datetime | None, datetime | None] | None
    memories: dict[str, Any]


class Retriever:
    def __init__(
        self,
        memories: MemoryManager,
        search: MemorySearch,
        blocks: BlockManager,
        *,
        max_prompt_sensitivity: str = "medium",
    ) -> None:
        self._memories = memories
        self._search = search
        self._blocks = blocks
        self._max_sensitivity = SENSITIVITY_ORDER[max_prompt_sensitivity]

    async def for_conversation(
        self,
        actor: Actor,
        user_id: str,
        timezone: str,
        messages: list[dict[str, Any]],
        limit: int,
        filter_tags: dict | None,
        start: datetime | None,
        end: datetime | None,
        now: datetime | None = None,
        topics: str = "",
        temporal_text: str = "",
    ) -> Retrieval:
        """Search with ``topics`` (from an LLM, when one ran) or else the conversation's own words; the
        time range comes from explicit dates, else the LLM's temporal expression, else the text."""
        text = conversation_text(messages)[-QUERY_CHARS:]
        expression: DateRange | None = None
        if start is None and end is None and (temporal_text or text):
            now = now or datetime.now(UTC)
            if temporal_text:
                expression = parse_temporal_expression(temporal_text, now=now, tz=timezone)
            if expression is None and text:
                expression = find_temporal_expression(text, now=now, tz=timezone)
            if expression is not None:
                start, end = expression.start, expression.end
        keywords = topics.replace(";", " ") if topics else (" ".join(search_terms(text)) if text else "")
        retrieval = await self.for_keywords(actor, user_id, keywords, limit, filter_tags, start, end)
        retrieval.temporal_expression = expression.expression if expression else (temporal_text or None)
        if topics:
            retrieval.topics = topics
        return retrieval

    async def for_keywords(
        self,
        actor: Actor,
        user_id: str,
        keywords: str,
        limit: int,
        filter_tags: dict | None,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> Retrieval:
        """Relevant items of every type (recent ones when there are no keywords), the latest
        episodes in the date range, and the user's core blocks."""

        async def relevant(kind: MemoryKind) -> list:
            dates = {"start": start, "end": end} if kind is EPISODIC else {}
            if not keywords.strip() and kind is EPISODIC:
                return []
            hits = await self._search.search(
                actor,
                SearchQuery(
                    query=keywords,
                    kinds=(kind,),
                    method="hybrid",
                    limit=limit,
                    user_id=user_id,
                    filter_tags=filter_tags,
                    **dates,
                ),
            )
            rows = [hit.row for hit in hits]
            if kind is KNOWLEDGE_VAULT:
                rows = [row for row in rows if SENSITIVITY_ORDER.get(row.sensitivity, 2) <= self._max_sensitivity]
            return rows

        recent = self._search.search(
            actor,
            SearchQuery(
                query="",
                kinds=(EPISODIC,),
                limit=limit,
                user_id=user_id,
                filter_tags=filter_tags,
                start=start,
                end=end,
            ),
        )
        found, counts, recent_hits = await asyncio.gather(
            asyncio.gather(*(relevant(kind) for kind in SEARCHABLE)),
            asyncio.gather(*(self._memories.count(actor, kind, user_id) for kind in SEARCHABLE)),
            recent,
        )
        memories: dict[str, Any] = {}
        for kind, rows, total in zip(SEARCHABLE, found, counts, strict=True):
            items = [retrieval_item(kind, row) for row in rows]
            if kind is EPISODIC:
                recent_items = [retrieval_item(kind, hit.row) for hit in recent_hits]
                memories[kind.name] = {"total_count": total, "recent": recent_items, "relevant": items}
            else:
                memories[kind.name] = {"total_count": total, "items": items}
        memories["core"] = core_section(await self._blocks.for_user(actor, user_id))
        topics = ";".join(search_terms(keywords)[:8]) if keywords.strip() else None
        date_range = (start, end) if start is not None or end is not None else None
        return Retrieval(topics, None, date_range, memories)


def core_section(blocks: list) -> dict[str, Any]:
    scopes: dict[str, dict[str, list]] = {}
    for block in blocks:
        scopes.setdefault(block.scope or "default", {"items": []})["items"].append(
            {"id": block.id, "label": block.label, "value": block.value}
        )
    return {"total_count": len(blocks), "scopes": scopes}
