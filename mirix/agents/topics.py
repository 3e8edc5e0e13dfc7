"""Topic and time extraction for retrieval: one forced tool call turns a conversation into search
keywords and an optional temporal expression (which the temporal parser then resolves)."""

from __future__ import annotations

import logging
from typing import Any

from mirix.agents.pipeline import conversation_parts
from mirix.llm.base import LLMClient, LLMError
from mirix.llm.types import SystemMessage, ToolSpec, UserMessage

log = logging.getLogger(__name__)

TOPIC_TOOL = ToolSpec(
    "update_topic_and_time",
    "Report what the latest part of the conversation is about, for a memory search.",
    {
        "type": "object",
        "properties": {
            "topic": {"type": "string", "description": "Search keywords, several topics separated by ';'."},
            "temporal_expression": {
                "type": "string",
                "description": "The time the user refers to, in their words (e.g. 'last week'), if any.",
            },
        },
        "required": ["topic"],
    },
)
SYSTEM = (
    "You help a memory system find what is relevant to a conversation. Read it, focus on the last "
    "messages, and call update_topic_and_time with the topics to search for and the time the user "
    "refers to, if they refer to one."
)


async def extract_topics(llm: LLMClient, messages: list[dict[str, Any]], metadata: dict[str, Any]) -> tuple[str, str]:
    """(topics, temporal expression); empty strings when the model gives nothing usable."""
    parts = conversation_parts(messages)
    if not parts:
        return "", ""
    try:
        completion = await llm.complete(
            [SystemMessage(SYSTEM), UserMessage(parts)],
            tools=[TOPIC_TOOL],
            tool_choice={"name": TOPIC_TOOL.name},
            metadata=metadata,
        )
    except LLMError as exc:
        log.warning("topic extraction failed, searching with the conversation text: %s", exc)
        return "", ""
    for call in completion.tool_calls:
        if call.ok and call.name == TOPIC_TOOL.name:
            arguments = call.arguments or {}
            return str(arguments.get("topic") or "").strip(), str(arguments.get("temporal_expression") or "").strip()
    return "", ""
