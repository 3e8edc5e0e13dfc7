"""The agent step loop: ask the model, run its tool calls, and stop as soon as there is nothing
left to do — a turn whose writes all succeeded ends the agent without another round trip."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mirix.agents.workspace import ToolFailure
from mirix.llm.base import LLMClient
from mirix.llm.types import Completion, Message, ToolChoice, ToolResultMessage, ToolSpec
from mirix.tools.memory_tools import READ_TOOLS, ToolDef

log = logging.getLogger(__name__)

ToolHandler = Callable[[dict[str, Any]], Awaitable[str]]


@dataclass
class AgentRun:
    completions: list[Completion] = field(default_factory=list)
    calls: list[tuple[str, bool, str]] = field(default_factory=list)  # (tool, ok, result)
    #: Errors of tool calls that still failed when the step cap ended the run.
    unresolved: list[str] = field(default_factory=list)

    @property
    def failures(self) -> list[str]:
        return [result for _, ok, result in self.calls if not ok]


def tool_specs(tools: Sequence[ToolDef]) -> list[ToolSpec]:
    return [ToolSpec(tool.name, tool.description, tool.parameters) for tool in tools]


async def run_agent(
    llm: LLMClient,
    messages: Sequence[Message],
    tools: Sequence[ToolDef],
    handlers: Mapping[str, ToolHandler],
    *,
    max_steps: int = 3,
    first_choice: ToolChoice = "required",
    metadata: Mapping[str, Any] | None = None,
) -> AgentRun:
    """Run one agent until its writes succeed, it stops calling tools, or ``max_steps`` turns pass.

    Another turn is taken only when the model needs one: a tool call failed (it gets the error and
    may correct itself) or it read something (search results to act on).
    """
    run = AgentRun()
    specs = tool_specs(tools)
    conversation = list(messages)
    for step in range(max_steps):
        completion = await llm.complete(
            conversation, tools=specs, tool_choice=first_choice if step == 0 else "auto", metadata=metadata
        )
        run.completions.append(completion)
        if not completion.tool_calls:
            break
        results: list[ToolResultMessage] = []
        failed: list[str] = []
        another_turn = False
        for call in completion.tool_calls:
            ok, text = await _run_call(call, handlers)
            run.calls.append((call.name, ok, text))
            results.append(ToolResultMessage(call.id, text, name=call.name, is_error=not ok))
            if not ok:
                failed.append(f"{call.name}: {text}")
            another_turn = another_turn or not ok or call.name in READ_TOOLS
        run.unresolved = failed
        if not another_turn:
            break
        conversation += [completion.as_message(), *results]
    return run


async def _run_call(call: Any, handlers: Mapping[str, ToolHandler]) -> tuple[bool, str]:
    if not call.ok:
        return False, f"Error: the arguments of {call.name} could not be read ({call.error}). Send valid JSON."
    handler = handlers.get(call.name)
    if handler is None:
        return False, f"Error: there is no tool named {call.name}. Available: {', '.join(handlers)}."
    try:
        return True, await handler(call.arguments or {})
    except ToolFailure as failure:
        return False, f"Error: {failure}"
    except (TypeError, KeyError, ValueError) as exc:
        log.info("tool %s rejected arguments %s: %s", call.name, json.dumps(call.arguments)[:200], exc)
        return False, f"Error: invalid arguments for {call.name}: {exc}"
