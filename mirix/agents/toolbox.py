"""Handlers of the memory tools: argument checks, then changes to the job's workspace."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from mirix.agents.loop import ToolHandler
from mirix.agents.workspace import Shown, ToolFailure, Workspace, parse_time, render
from mirix.services.memory.kinds import EPISODIC, SEARCHABLE
from mirix.tools.memory_tools import (
    CORE_APPEND,
    CORE_REWRITE,
    EPISODIC_MERGE,
    EPISODIC_REPLACE,
    FINISH,
    LIST_WITHIN_TIMERANGE,
    SEARCH_IN_MEMORY,
    insert_tool_kind,
    tools_for,
    update_tool_kind,
)

Search = Callable[..., Awaitable[list]]


def _text(arguments: dict[str, Any], name: str) -> str:
    value = arguments.get(name)
    if not isinstance(value, str) or not value.strip():
        raise ToolFailure(f"'{name}' must be a non-empty string.")
    return value.strip()


def memory_agent_handlers(memory_type: str, workspace: Workspace, search: Search) -> dict[str, ToolHandler]:
    """The handlers for exactly the tools the agent of ``memory_type`` is offered."""
    handlers: dict[str, ToolHandler] = {}
    for tool in tools_for(memory_type):
        if (kind := insert_tool_kind(tool.name)) is not None:
            handlers[tool.name] = _bind(lambda args, kind=kind: workspace.insert(kind, args.get("items")))
        elif (kind := update_tool_kind(tool.name)) is not None:
            handlers[tool.name] = _bind(lambda args, kind=kind: workspace.update(kind, args.get("updates")))
    handlers[EPISODIC_MERGE.name] = _bind(
        lambda args: workspace.merge_episode(args.get("item"), args.get("details"), args.get("summary"))
    )
    handlers[EPISODIC_REPLACE.name] = _bind(
        lambda args: workspace.replace_episodes(args.get("items"), args.get("new_items"))
    )

    def append(args: dict[str, Any]) -> str:
        label, content = args.get("label"), _text(args, "content")
        current = workspace.core_value(label) if isinstance(label, str) else ""
        return workspace.core_write(label, f"{current}\n{content}" if current else content)

    handlers[CORE_APPEND.name] = _bind(append)
    handlers[CORE_REWRITE.name] = _bind(lambda args: workspace.core_write(args.get("label"), _text(args, "content")))
    handlers[FINISH.name] = _bind(lambda _args: "Nothing to store. Done.")

    async def search_in_memory(args: dict[str, Any]) -> str:
        wanted = args.get("memory_type", "all")
        if wanted != "all" and wanted not in {k.name for k in SEARCHABLE}:
            raise ToolFailure(
                "'memory_type' must be one of episodic, semantic, procedural, resource, knowledge_vault or all."
            )
        return _numbered(workspace, await search(wanted, _text(args, "query")))

    async def list_within_timerange(args: dict[str, Any]) -> str:
        start, end = parse_time(args.get("start"), "start"), parse_time(args.get("end"), "end")
        if start >= end:
            raise ToolFailure("'start' must be before 'end'.")
        return _numbered(workspace, await search(EPISODIC.name, "", start, end))

    handlers[SEARCH_IN_MEMORY.name] = search_in_memory
    handlers[LIST_WITHIN_TIMERANGE.name] = list_within_timerange
    offered = {tool.name for tool in tools_for(memory_type)}
    return {name: handler for name, handler in handlers.items() if name in offered}


def _numbered(workspace: Workspace, results: list) -> str:
    if not results:
        return "No memories found."
    lines = []
    for kind, row in results:
        number = workspace.shown.setdefault(kind.name, Shown(kind)).add(row)
        lines.append(f"{kind.name} [{number}] {render(kind, row)}")
    return "\n".join(lines)


def _bind(function: Callable[[dict[str, Any]], str]) -> ToolHandler:
    async def handler(arguments: dict[str, Any]) -> str:
        return function(arguments)

    return handler
