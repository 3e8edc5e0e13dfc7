"""The memory tools agents call, as JSON schemas — derived from the memory type declarations.

Names are MIRIX's, so prompts and traces stay familiar. Existing items are referred to by the
small numbers they were shown under in the prompt, never by database ids.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mirix.services.memory.kinds import (
    EPISODIC,
    KNOWLEDGE_VAULT,
    PROCEDURAL,
    RESOURCE,
    SEARCHABLE,
    SEMANTIC,
    MemoryKind,
)

MEMORY_TYPES = ["core", "episodic", "semantic", "procedural", "resource", "knowledge_vault"]


@dataclass(frozen=True)
class ToolDef:
    name: str
    description: str
    parameters: dict[str, Any]


FIELD_HELP: dict[str, str] = {
    "summary": "One short sentence.",
    "details": "Everything useful, in full sentences.",
    "occurred_at": "When it happened, ISO 8601 (omit to use the conversation time).",
    "steps": "Ordered, actionable steps.",
    "sensitivity": "low, medium or high.",
    "secret_value": "The exact value, verbatim.",
    "caption": "Describes the value without repeating it.",
}


def _item_schema(kind: MemoryKind, *, required: bool) -> dict[str, Any]:
    properties: dict[str, Any] = {}
    for field in kind.fields:
        if field in kind.list_fields:
            spec: dict[str, Any] = {"type": "array", "items": {"type": "string"}}
        elif field == "sensitivity":
            spec = {"type": "string", "enum": ["low", "medium", "high"]}
        else:
            spec = {"type": "string"}
        if field in FIELD_HELP:
            spec["description"] = FIELD_HELP[field]
        properties[field] = spec
    if kind is EPISODIC:
        properties["occurred_at"] = {"type": "string", "description": FIELD_HELP["occurred_at"]}
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = [f for f in kind.fields if f not in ("sensitivity", "source")]
    return schema


def _insert_name(kind: MemoryKind) -> str:
    return "knowledge_vault_insert" if kind is KNOWLEDGE_VAULT else f"{kind.name}_memory_insert"


def _update_name(kind: MemoryKind) -> str:
    return "knowledge_vault_update" if kind is KNOWLEDGE_VAULT else f"{kind.name}_memory_update"


def insert_tool(kind: MemoryKind) -> ToolDef:
    return ToolDef(
        _insert_name(kind),
        f"Store new {kind.name.replace('_', ' ')} memories. Put every new item of this conversation in one call.",
        {
            "type": "object",
            "properties": {"items": {"type": "array", "items": _item_schema(kind, required=True), "minItems": 1}},
            "required": ["items"],
        },
    )


def update_tool(kind: MemoryKind) -> ToolDef:
    item = _item_schema(kind, required=False)
    item["properties"] = {
        "item": {"type": "integer", "description": "Number of the existing memory"},
        **item["properties"],
    }
    item["required"] = ["item"]
    return ToolDef(
        _update_name(kind),
        f"Change existing {kind.name.replace('_', ' ')} memories by their numbers; only the given fields change.",
        {
            "type": "object",
            "properties": {"updates": {"type": "array", "items": item, "minItems": 1}},
            "required": ["updates"],
        },
    )


EPISODIC_MERGE = ToolDef(
    "episodic_memory_merge",
    "Add new information to an existing event: the text is appended to its details (and the summary replaced "
    "if given).",
    {
        "type": "object",
        "properties": {
            "item": {"type": "integer", "description": "Number of the existing event"},
            "summary": {"type": "string", "description": "A new summary, if the old one no longer fits."},
            "details": {"type": "string", "description": "New details to append."},
        },
        "required": ["item", "details"],
    },
)
EPISODIC_REPLACE = ToolDef(
    "episodic_memory_replace",
    "Replace existing events (wrong, or better combined) by new ones. The old ones are retired, not lost.",
    {
        "type": "object",
        "properties": {
            "items": {
                "type": "array",
                "items": {"type": "integer"},
                "minItems": 1,
                "description": "Numbers of the events to replace",
            },
            "new_items": {"type": "array", "items": _item_schema(EPISODIC, required=True)},
        },
        "required": ["items", "new_items"],
    },
)
CORE_APPEND = ToolDef(
    "core_memory_append",
    "Append a line to a core memory block (e.g. 'human' or 'persona').",
    {
        "type": "object",
        "properties": {"label": {"type": "string"}, "content": {"type": "string"}},
        "required": ["label", "content"],
    },
)
CORE_REWRITE = ToolDef(
    "core_memory_rewrite",
    "Replace the whole content of a core memory block; keep every fact that is still true.",
    {
        "type": "object",
        "properties": {"label": {"type": "string"}, "content": {"type": "string"}},
        "required": ["label", "content"],
    },
)
SEARCH_IN_MEMORY = ToolDef(
    "search_in_memory",
    "Search the user's memories. Results are numbered so they can be updated.",
    {
        "type": "object",
        "properties": {
            "memory_type": {"type": "string", "enum": [k.name for k in SEARCHABLE] + ["all"]},
            "query": {"type": "string"},
        },
        "required": ["memory_type", "query"],
    },
)
LIST_WITHIN_TIMERANGE = ToolDef(
    "list_memory_within_timerange",
    "List the user's events between two times (ISO 8601).",
    {
        "type": "object",
        "properties": {"start": {"type": "string"}, "end": {"type": "string"}},
        "required": ["start", "end"],
    },
)
FINISH = ToolDef(
    "finish_memory_update",
    "Call only when this conversation needs no memory change.",
    {"type": "object", "properties": {}},
)
TRIGGER = ToolDef(
    "trigger_memory_update",
    "Hand the conversation to the memory agents of the chosen types.",
    {
        "type": "object",
        "properties": {
            "memory_types": {"type": "array", "items": {"type": "string", "enum": MEMORY_TYPES}},
            "instructions": {"type": "string", "description": "What the chosen agents should focus on."},
        },
        "required": ["memory_types"],
    },
)

#: Read-only tools: after these, the agent gets another turn to act on what it found.
READ_TOOLS = frozenset({SEARCH_IN_MEMORY.name, LIST_WITHIN_TIMERANGE.name})


def tools_for(memory_type: str) -> list[ToolDef]:
    """The tools of one memory agent."""
    if memory_type == "core":
        return [CORE_APPEND, CORE_REWRITE, SEARCH_IN_MEMORY, FINISH]
    kind = {k.name: k for k in SEARCHABLE}[memory_type]
    tools = [insert_tool(kind)]
    if kind is EPISODIC:
        tools += [EPISODIC_MERGE, EPISODIC_REPLACE, LIST_WITHIN_TIMERANGE]
    if kind in (SEMANTIC, PROCEDURAL, RESOURCE, KNOWLEDGE_VAULT):
        tools.append(update_tool(kind))
    return [*tools, SEARCH_IN_MEMORY, FINISH]


def insert_tool_kind(name: str) -> MemoryKind | None:
    return next((k for k in SEARCHABLE if _insert_name(k) == name), None)


def update_tool_kind(name: str) -> MemoryKind | None:
    return next((k for k in SEARCHABLE if _update_name(k) == name), None)
