"""Web search for the chat agent, behind a small interface. Off unless MIRIX_WEB_SEARCH is set.

``duckduckgo`` uses the ``asyncddgs`` package (the ``web`` extra); tests pass their own
implementation of ``WebSearch``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from mirix.tools.memory_tools import ToolDef

WEB_SEARCH = ToolDef(
    "web_search",
    "Search the web for current information the memories cannot give.",
    {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]},
)


@dataclass(frozen=True)
class WebResult:
    title: str
    url: str
    snippet: str


class WebSearch(Protocol):
    async def search(self, query: str, max_results: int) -> list[WebResult]: ...


class DuckDuckGoSearch:
    """DuckDuckGo's text search through ``asyncddgs`` (an async client; no thread pool)."""

    def __init__(self, timeout: int = 10) -> None:
        try:
            from asyncddgs import aDDGS
        except ImportError as exc:
            raise RuntimeError(
                "MIRIX_WEB_SEARCH=duckduckgo needs the 'web' extra (pip install mirix-server[web])"
            ) from exc
        self._client_class = aDDGS
        self._timeout = timeout

    async def search(self, query: str, max_results: int) -> list[WebResult]:
        if not query.strip():
            return []
        async with self._client_class(timeout=self._timeout) as client:
            rows = await client.text(query, max_results=max_results)
        return [WebResult(row.get("title", ""), row.get("href", ""), row.get("body", "")) for row in rows]


def create_web_search(provider: str | None) -> WebSearch | None:
    if provider is None or provider == "off":
        return None
    if provider == "duckduckgo":
        return DuckDuckGoSearch()
    raise ValueError(f"unknown web search provider {provider!r}; use 'duckduckgo' or leave it unset")
