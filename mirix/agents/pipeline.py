"""One memory job, end to end: route the conversation, run the chosen memory agents concurrently,
and apply everything they wrote in one transaction together with the job's completion.

LLM round trips on the critical path: one for routing (skipped when the caller names the memory
types) and one per memory agent, the agents running in parallel.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import update

from mirix.agents.loop import AgentRun, run_agent
from mirix.agents.toolbox import memory_agent_handlers
from mirix.agents.workspace import Shown, Workspace
from mirix.db.models import Block, Job, MemoryHistory
from mirix.db.types import utcnow
from mirix.llm.base import LLMBadResponseError, LLMClient
from mirix.llm.types import ImagePart, SystemMessage, TextPart, UserMessage
from mirix.services.actor import Actor
from mirix.services.jobs import LeaseLostError, held_by, usage_values
from mirix.services.memory.kinds import SEARCHABLE, kind_named
from mirix.services.memory.manager import MemoryManager
from mirix.services.memory.retrieval import conversation_text
from mirix.services.memory.search import MemorySearch, SearchQuery
from mirix.tools.memory_tools import MEMORY_TYPES, TRIGGER, tools_for

log = logging.getLogger(__name__)

SNAPSHOT_ITEMS = 10


class PermanentJobError(Exception):
    """The job cannot succeed by trying again (bad configuration, client gone, ...)."""


@dataclass
class Routing:
    memory_types: list[str]
    instructions: str


def conversation_parts(messages: list[dict[str, Any]]) -> list[TextPart | ImagePart]:
    """The conversation as text lines with speaker markers, keeping images for multimodal models."""
    parts: list[TextPart | ImagePart] = []
    for message in messages:
        role = str(message.get("role", "user")).upper() if "role" in message else None
        content = message.get("content") if role else [message]
        if role:
            parts.append(TextPart(f"[{role}]"))
        for part in [content] if isinstance(content, str) else (content or []):
            if isinstance(part, str):
                parts.append(TextPart(part))
            elif isinstance(part, dict) and isinstance(part.get("text"), str):
                parts.append(TextPart(part["text"]))
            elif isinstance(part, dict) and part.get("type") == "image_url":
                url = part.get("image_url")
                url = url.get("url") if isinstance(url, dict) else url
                if isinstance(url, str) and url.startswith(("data:", "http://", "https://")):
                    parts.append(ImagePart(url))
            elif isinstance(part, dict) and part.get("type") in ("file_uri", "google_cloud_file_uri", "file"):
                # The file itself is not sent to the model; naming it lets the resource agent keep a
                # reference instead of the part vanishing.
                reference = part.get("file_id") or part.get("cloud_file_uri") or part.get("file_uri") or "file"
                parts.append(TextPart(f"(shared a file: {reference})"))
    return parts


class MemoryPipeline:
    def __init__(
        self,
        memories: MemoryManager,
        search: MemorySearch,
        blocks: Any,
        sessions: Any,
        *,
        stage_steps: Callable[[Any, str], Awaitable[None]] | None = None,
        max_steps: int = 3,
    ) -> None:
        self._stage_steps = stage_steps
        self._memories = memories
        self._search = search
        self._blocks = blocks
        self._sessions = sessions
        self._max_steps = max_steps

    async def run(self, job: Job, actor: Actor, llm: LLMClient, prompts: Callable[[str], Awaitable[str]]) -> list[str]:
        """Process the job and commit its writes with its success; returns the ids written."""
        payload = job.payload
        messages = payload["messages"]
        occurred_at = job.occurred_at or job.created_at
        metadata = {"job_id": job.id, "organization_id": job.organization_id, "agent": "meta_memory_agent"}
        parts = conversation_parts(messages)

        requested = payload.get("memory_types")
        snapshot_query = conversation_text(messages)[-4000:]
        # Routing needs only the conversation, so the LLM call runs while the core blocks are read
        # and the snapshot's query is embedded (the searches after routing then find it cached).
        routing, blocks, _ = await asyncio.gather(
            self._routing(requested, llm, parts, occurred_at, prompts, metadata),
            self._blocks_of(job, actor),
            self._search.embed_query(snapshot_query),
        )
        workspace = await self._workspace(job, snapshot_query, occurred_at, routing.memory_types, blocks)
        runs = await asyncio.gather(
            *(
                self._run_memory_agent(memory_type, llm, parts, workspace, routing, prompts, job)
                for memory_type in routing.memory_types
            )
        )
        unresolved = [
            f"{t}_memory_agent: {r.unresolved[0]}"
            for t, r in zip(routing.memory_types, runs, strict=True)
            if r.unresolved
        ]
        if unresolved:
            # Nothing is committed: the job is tried again (models are not deterministic), and ends
            # failed with this error if the calls keep failing.
            raise LLMBadResponseError("tool calls kept failing: " + " | ".join(unresolved)[:1000], transient=True)
        return await self._commit(job, actor, workspace)

    async def _routing(
        self,
        requested: list[str] | None,
        llm: LLMClient,
        parts: list,
        occurred_at: datetime,
        prompts: Callable[[str], Awaitable[str]],
        metadata: dict[str, Any],
    ) -> Routing:
        if requested:
            return Routing(list(requested), "")
        return await self._route(llm, parts, occurred_at, await prompts("meta_memory_agent"), metadata)

    async def _route(
        self, llm: LLMClient, parts: list, occurred_at: datetime, system: str, metadata: dict[str, Any]
    ) -> Routing:
        header = TextPart(f"Conversation (it happened at {occurred_at.isoformat()}):")
        run = await run_agent(
            llm,
            [SystemMessage(system), UserMessage([header, *parts])],
            [TRIGGER],
            {TRIGGER.name: _noop},
            max_steps=1,
            first_choice={"name": TRIGGER.name},
            metadata=metadata,
        )
        for call in run.completions[-1].tool_calls if run.completions else ():
            if call.name == TRIGGER.name and call.ok:
                chosen = [t for t in dict.fromkeys(call.arguments.get("memory_types") or []) if t in MEMORY_TYPES]
                return Routing(chosen, str(call.arguments.get("instructions") or ""))
        return Routing([], "")

    async def _run_memory_agent(
        self,
        memory_type: str,
        llm: LLMClient,
        parts: list,
        workspace: Workspace,
        routing: Routing,
        prompts: Callable[[str], Awaitable[str]],
        job: Job,
    ) -> AgentRun:
        agent_name = f"{memory_type}_memory_agent"
        system = await prompts(agent_name)
        context = [
            TextPart(f"Conversation time: {workspace.occurred_at.isoformat()}"),
            TextPart("Core memory of the user:\n" + _core_text(workspace)),
        ]
        if memory_type != "core":
            context.append(TextPart(f"Existing {memory_type} memories:\n" + workspace.describe(memory_type)))
        if routing.instructions:
            context.append(TextPart(f"Instructions from the router: {routing.instructions}"))
        context.append(TextPart("The conversation:"))
        handlers = memory_agent_handlers(memory_type, workspace, self._search_tool(job, workspace))
        return await run_agent(
            llm,
            [SystemMessage(system), UserMessage([*context, *parts])],
            tools_for(memory_type),
            handlers,
            max_steps=self._max_steps,
            metadata={"job_id": job.id, "organization_id": job.organization_id, "agent": agent_name},
        )

    def _search_tool(self, job: Job, workspace: Workspace) -> Callable[..., Awaitable[list]]:
        actor = workspace_actor(job)

        async def search(memory_type: str, query: str, start: datetime | None = None, end: datetime | None = None):
            kinds = SEARCHABLE if memory_type == "all" else (kind_named(memory_type),)
            hits = await self._search.search(
                actor,
                SearchQuery(
                    query=query,
                    kinds=kinds,
                    method="hybrid",
                    limit=SNAPSHOT_ITEMS,
                    user_id=job.user_id,
                    scope=actor.write_scope,
                    start=start,
                    end=end,
                ),
            )
            return [(hit.kind, hit.row) for hit in hits]

        return search

    async def _blocks_of(self, job: Job, actor: Actor) -> list:
        """The user's core blocks (copied from the scope's templates the first time), with the
        job's ``block_filter_tags`` applied."""
        payload = job.payload
        blocks = await self._blocks.ensure_from_templates(actor, job.user_id, payload.get("block_filter_tags"))
        if payload.get("block_filter_tags"):
            await self._blocks.apply_filter_tags(
                actor, job.user_id, payload["block_filter_tags"], payload.get("block_filter_tags_update_mode", "merge")
            )
        return blocks

    async def _workspace(
        self, job: Job, text: str, occurred_at: datetime, memory_types: list[str], blocks: list
    ) -> Workspace:
        """The snapshot the agents see, retrieved once per job: relevant items of each type an agent
        will work on (only those: the others would be searched for nobody) and the core blocks."""
        snapshot_actor = workspace_actor(job)
        kinds = [kind for kind in SEARCHABLE if kind.name in memory_types]
        searches = [
            self._search.search(
                snapshot_actor,
                SearchQuery(
                    query=text,
                    kinds=(kind,),
                    method="hybrid",
                    limit=SNAPSHOT_ITEMS,
                    user_id=job.user_id,
                    scope=job.scope,
                ),
            )
            for kind in kinds
        ]
        results = await asyncio.gather(*searches)
        shown = {kind.name: Shown(kind) for kind in SEARCHABLE}
        for kind, hits in zip(kinds, results, strict=True):
            for hit in hits:
                shown[kind.name].add(hit.row)
        return Workspace(job.user_id, occurred_at, shown, {block.label: block for block in blocks})

    async def _commit(self, job: Job, actor: Actor, workspace: Workspace) -> list[str]:
        """Apply every write and mark the job succeeded, atomically."""
        insert_requests = [
            (kind_named(name), items, kind_named(name).embedded_fields) for name, items in workspace.inserts.items()
        ]
        update_list = list(workspace.updates.values())
        vectors = await self._memories.vectors_many(
            [
                *insert_requests,
                *(
                    (
                        u.kind,
                        [{**{f: getattr(u.row, f) for f in u.kind.fields}, **u.changes}],
                        [f for f in u.kind.embedded_fields if f in u.changes],
                    )
                    for u in update_list
                ),
            ]
        )
        tags = job.payload.get("filter_tags") or {}
        written: list[str] = []
        async with self._sessions.begin() as session:
            if job.attempts > 1:
                # An earlier attempt cannot have committed (its writes and its success are one
                # transaction), but a retry removes rows carrying this job id first all the same.
                await MemoryManager.purge(session, SEARCHABLE, lambda model: [model.job_id == job.id])
            for (kind, items, _), item_vectors in zip(insert_requests, vectors, strict=False):
                rows = await self._memories.stage_inserts(
                    session, actor, kind, job.user_id, items, item_vectors, job.id, tags
                )
                written += [row.id for row in rows]
            for change, change_vectors in zip(update_list, vectors[len(insert_requests) :], strict=True):
                row = await self._memories.stage_update(
                    session,
                    actor,
                    change.kind,
                    change.row.id,
                    change.changes,
                    change_vectors[0],
                    job_id=job.id,
                    operation=change.operation,
                )
                written.append(row.id)
            for retired in workspace.retired.values():
                await self._memories.stage_delete(
                    session, actor, retired.kind, retired.row.id, job_id=job.id, operation="replace"
                )
                written.append(retired.row.id)
            for label, value in workspace.block_values.items():
                block = await session.get(Block, workspace.blocks[label].id, with_for_update=True)
                session.add(
                    MemoryHistory(
                        memory_id=block.id,
                        kind="core",
                        organization_id=block.organization_id,
                        user_id=job.user_id,
                        operation="update",
                        before={"label": label, "value": block.value},
                        after={"label": label, "value": value},
                        job_id=job.id,
                        client_id=actor.client_id,
                    )
                )
                block.value, block.last_updated_by_id = value, actor.client_id
                written.append(block.id)
            if self._stage_steps is not None:
                await self._stage_steps(session, job.id)
            # Only while this replica still holds the job: one that lost its lease (stalled past it
            # while another replica took the job over) rolls all of the above back instead.
            finished = await session.execute(
                update(Job)
                .where(*held_by(job.id, job.locked_by))
                .values(
                    status="succeeded",
                    written_ids=written,
                    finished_at=utcnow(),
                    updated_at=utcnow(),
                    locked_until=None,
                    error=None,
                    **usage_values(job.id),
                )
            )
            if finished.rowcount != 1:
                raise LeaseLostError(f"job {job.id} was taken over by another replica; nothing committed")
        if workspace.block_values:
            await self._blocks.forget(job.organization_id, job.user_id)
        return written


def workspace_actor(job: Job) -> Actor:
    """The job's view of memory: its user's items in the scope the job writes to."""
    return Actor(job.organization_id, job.client_id, job.scope, (job.scope,) if job.scope else ())


def _core_text(workspace: Workspace) -> str:
    if not workspace.blocks:
        return "(no core memory blocks)"
    return "\n".join(
        f"<{label} limit={block.limit}>\n{workspace.block_values.get(label, block.value)}\n</{label}>"
        for label, block in sorted(workspace.blocks.items())
    )


async def _noop(_arguments: dict[str, Any]) -> str:
    return "Handed over."
