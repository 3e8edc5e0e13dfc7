"""System prompts: shipped defaults (text files in ``prompts/``), overridable per agent."""

from __future__ import annotations

from functools import cache
from importlib import resources

MEMORY_AGENT_TYPES = ("core", "episodic", "semantic", "procedural", "resource", "knowledge_vault")


@cache
def _read(name: str) -> str:
    return (resources.files("mirix.agents") / "prompts" / f"{name}.txt").read_text(encoding="utf-8").strip()


def default_prompt(agent_name: str) -> str:
    """The shipped prompt of an agent (``meta_memory_agent``, ``episodic_memory_agent``, ``chat_agent``)."""
    if agent_name.removesuffix("_memory_agent") in MEMORY_AGENT_TYPES:
        return memory_agent_prompt(_read(agent_name))
    return _read(agent_name)


def memory_agent_prompt(specific: str) -> str:
    """A memory agent's prompt: the rules all memory agents share, then its own."""
    return f"{_read('memory_agent_common')}\n\n{specific.strip()}"
