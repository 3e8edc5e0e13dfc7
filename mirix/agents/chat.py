"""The memory-aware chat agent: answers with the user's memories in its prompt, may search memory
(and, when enabled, the web) before answering, and streams its reply as it is written."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from mirix.db.base import new_id
from mirix.db.models import Message
from mirix.llm.base import LLMClient
from mirix.llm.types import (
    AssistantMessage,
    Completion,
    SystemMessage,
    TextDelta,
    ToolResultMessage,
    UserMessage,
)
from mirix.llm.types import Message as LLMMessage
from mirix.services.actor import Actor
from mirix.services.memory.kinds import SEARCHABLE, kind_named
from mirix.services.memory.retrieval import Retrieval, Retriever
from mirix.services.memory.search import MemorySearch, SearchQuery
from mirix.services.users import UserManager
from mirix.tools.memory_tools import SEARCH_IN_MEMORY, ToolDef
from mirix.tools.web_search import WEB_SEARCH, WebSearch

HISTORY_MESSAGES = 20
MAX_TOOL_TURNS = 3


@dataclass
class ChatEvent:
    """What the chat endpoint sends: deltas of the answer, tool activity, and finally usage."""

    message_type: str
    data: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> str:
        return json.dumps({"message_type": self.message_type, **self.data})


def memory_context(retrieval: Retrieval) -> str:
    """The user's memories as prompt text."""
    memories = retrieval.memories
    lines: list[str] = []
    for scope, section in memories.get("core", {}).get("scopes", {}).items():
        for block in section["items"]:
            lines.append(f"<core {block['label']} scope={scope}>\n{block['value']}\n</core>")
    episodic = memories.get("episodic", {})
    for item in episodic.get("relevant", []) + episodic.get("recent", []):
        lines.append(f"- event {item['timestamp'][:16]}: {item['summary']} {item.get('details', '')}".rstrip())
    for kind in ("semantic", "procedural", "resource", "knowledge_vault"):
        for item in memories.get(kind, {}).get("items", []):
            text = " — ".join(str(v) for k, v in item.items() if k != "id" and v)
            lines.append(f"- {kind}: {text}")
    return "\n".join(dict.fromkeys(lines)) or "(nothing remembered yet)"


class ChatAgent:
    def __init__(self, sessions: Any, retriever: Retriever, search: MemorySearch, web: WebSearch | None) -> None:
        self._sessions = sessions
        self._retriever = retriever
        self._search = search
        self._web = web

    def tools(self) -> list[ToolDef]:
        return [SEARCH_IN_MEMORY, *([WEB_SEARCH] if self._web is not None else [])]

    async def converse(
        self,
        actor: Actor,
        agent_id: str,
        user_id: str,
        timezone: str,
        text: str,
        llm: LLMClient,
        system: str,
        role: str = "user",
    ) -> AsyncIterator[ChatEvent]:
        """Answer ``text``, yielding deltas as the model writes; the exchange is saved afterwards."""
        retrieval = await self._retriever.for_conversation(
            actor, user_id, timezone, [{"role": "user", "content": text}], 5, None, None, None
        )
        prompt = (
            f"{system}\n\nWhat you remember about the user:\n{memory_context(retrieval)}\n\n"
            f"Current time: {datetime.now(UTC).isoformat(timespec='minutes')}"
        )
        history = await self._history(actor, agent_id, user_id)
        conversation: list[LLMMessage] = [
            SystemMessage(prompt),
            *history,
            (SystemMessage(text) if role == "system" else UserMessage(text)),
        ]
        handlers = self._handlers(actor, user_id)
        metadata = {"organization_id": actor.organization_id, "agent": "chat_agent"}
        completions: list[Completion] = []
        for _turn in range(MAX_TOOL_TURNS + 1):
            completion = None
            async for event in llm.stream(conversation, tools=self._specs(), metadata=metadata):
                if isinstance(event, TextDelta) and event.text:
                    yield ChatEvent("assistant_message", {"content": event.text})
                elif isinstance(event, Completion):
                    completion = event
            assert completion is not None
            completions.append(completion)
            if not completion.tool_calls:
                break
            results = []
            for call in completion.tool_calls:
                yield ChatEvent("tool_call_message", {"tool_call": {"name": call.name, "arguments": call.arguments}})
                output = (
                    await handlers[call.name](call.arguments or {})
                    if call.ok and call.name in handlers
                    else f"Error: could not run {call.name}"
                )
                yield ChatEvent("tool_return_message", {"name": call.name, "tool_return": output[:2000]})
                results.append(ToolResultMessage(call.id, output, name=call.name))
            conversation += [completion.as_message(), *results]
        answer = "".join(c.text for c in completions if c.text)
        await self._save(actor, agent_id, user_id, role, text, answer)
        yield ChatEvent(
            "usage_statistics",
            {
                "completion_tokens": sum(c.usage.completion_tokens for c in completions),
                "prompt_tokens": sum(c.usage.prompt_tokens for c in completions),
                "total_tokens": sum(c.usage.total_tokens for c in completions),
                "step_count": len(completions),
            },
        )

    def _specs(self) -> list:
        from mirix.agents.loop import tool_specs

        return tool_specs(self.tools())

    def _handlers(self, actor: Actor, user_id: str) -> dict[str, Callable[[dict[str, Any]], Awaitable[str]]]:
        async def search_memory(args: dict[str, Any]) -> str:
            wanted = str(args.get("memory_type") or "all")
            kinds = SEARCHABLE if wanted == "all" else (kind_named(wanted),)
            hits = await self._search.search(
                actor,
                SearchQuery(query=str(args.get("query") or ""), kinds=kinds, method="hybrid", limit=5, user_id=user_id),
            )
            return (
                "\n".join(
                    f"{h.kind.name}: {' — '.join(h.kind.text_of(h.row, f) for f in h.kind.text_fields)}"
                    for h in hits
                    if h.kind.name != "knowledge_vault"
                )
                or "No memories found."
            )

        handlers = {SEARCH_IN_MEMORY.name: search_memory}
        if self._web is not None:
            web = self._web

            async def web_search(args: dict[str, Any]) -> str:
                results = await web.search(str(args.get("query") or ""), 5)
                return "\n".join(f"{r.title} ({r.url}): {r.snippet}" for r in results) or "No results."

            handlers[WEB_SEARCH.name] = web_search
        return handlers

    async def _history(self, actor: Actor, agent_id: str, user_id: str) -> list[LLMMessage]:
        async with self._sessions() as session:
            rows = list(
                await session.scalars(
                    select(Message)
                    .where(
                        Message.organization_id == actor.organization_id,
                        Message.agent_id == agent_id,
                        Message.user_id == user_id,
                        Message.deleted_at.is_(None),
                    )
                    .order_by(Message.created_at.desc(), Message.id.desc())
                    .limit(HISTORY_MESSAGES)
                )
            )
        history: list[LLMMessage] = []
        for row in reversed(rows):
            text = "".join(part.get("text", "") for part in row.content or [])
            history.append(AssistantMessage(text) if row.role == "assistant" else UserMessage(text))
        return history

    async def _save(self, actor: Actor, agent_id: str, user_id: str, role: str, text: str, answer: str) -> None:
        async with self._sessions.begin() as session:
            # Users come into being with their first write; a chat may be the first thing they do.
            await UserManager.ensure(session, actor.organization_id, user_id)
            for message_role, content in ((role, text), ("assistant", answer)):
                session.add(
                    Message(
                        id=new_id("message"),
                        organization_id=actor.organization_id,
                        user_id=user_id,
                        client_id=actor.client_id,
                        agent_id=agent_id,
                        role=message_role,
                        content=[{"type": "text", "text": content}],
                    )
                )
