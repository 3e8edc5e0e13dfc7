"""Agents. Each belongs to the client that created it; other clients get 404 for its id."""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from mirix.db.base import new_id
from mirix.db.models import Agent, Tool, agent_tools
from mirix.db.types import utcnow
from mirix.errors import NotFoundError
from mirix.schemas.agents import AgentCreate, AgentUpdate
from mirix.services.actor import Actor
from mirix.services.base import Manager, page
from mirix.services.tools import ToolManager


def _short_name(name: str) -> str:
    """MIRIX lets callers name sub-agents briefly: ``meta_memory_agent_episodic_memory_agent`` → ``episodic``."""
    name = name.removeprefix("meta_memory_agent_")
    for suffix in ("_memory_agent", "_agent"):
        if name.endswith(suffix):
            return name.removesuffix(suffix)
    return name


class AgentView:
    """An agent with the pieces a response needs (tools, children), loaded in a fixed number of queries."""

    def __init__(self, agent: Agent, tools: list[Tool], children: list[AgentView] | None) -> None:
        self.agent, self.tools, self.children = agent, tools, children


class AgentManager(Manager):
    def __init__(self, sessions, tools: ToolManager) -> None:
        super().__init__(sessions)
        self._tools = tools

    def _owned(self, actor: Actor):
        return select(Agent).where(
            Agent.organization_id == actor.organization_id,
            Agent.client_id == actor.client_id,
            Agent.deleted_at.is_(None),
        )

    async def _get_row(self, session: AsyncSession, actor: Actor, agent_id: str) -> Agent:
        agent = await session.scalar(self._owned(actor).where(Agent.id == agent_id))
        if agent is None:
            raise NotFoundError(f"Agent {agent_id} not found or not accessible")
        return agent

    async def _views(self, session: AsyncSession, agents: list[Agent], with_children: bool) -> list[AgentView]:
        ids = [agent.id for agent in agents]
        children: dict[str, list[Agent]] = defaultdict(list)
        if with_children and ids:
            for child in await session.scalars(
                select(Agent).where(Agent.parent_id.in_(ids), Agent.deleted_at.is_(None)).order_by(Agent.name)
            ):
                children[child.parent_id].append(child)
        every_id = ids + [child.id for group in children.values() for child in group]
        tools: dict[str, list[Tool]] = defaultdict(list)
        if every_id:
            rows = await session.execute(
                select(agent_tools.c.agent_id, Tool)
                .join(Tool, Tool.id == agent_tools.c.tool_id)
                .where(agent_tools.c.agent_id.in_(every_id), Tool.deleted_at.is_(None))
                .order_by(Tool.name)
            )
            for agent_id, tool in rows:
                tools[agent_id].append(tool)
        return [
            AgentView(
                agent,
                tools[agent.id],
                [AgentView(child, tools[child.id], []) for child in children[agent.id]] if with_children else None,
            )
            for agent in agents
        ]

    async def list(
        self, actor: Actor, *, query_text: str | None, parent_id: str | None, cursor: str | None, limit: int
    ) -> list[AgentView]:
        query = self._owned(actor)
        query = query.where(Agent.parent_id == parent_id) if parent_id else query.where(Agent.parent_id.is_(None))
        if query_text:
            # A literal substring match: the text is a bound parameter, never SQL.
            query = query.where(Agent.name.icontains(query_text, autoescape=True))
        async with self._sessions() as session:
            agents = list(await session.scalars(page(query, Agent.id, cursor, limit)))
            return await self._views(session, agents, with_children=True)

    async def get(self, actor: Actor, agent_id: str) -> AgentView:
        async with self._sessions() as session:
            agent = await self._get_row(session, actor, agent_id)
            return (await self._views(session, [agent], with_children=True))[0]

    async def create(self, actor: Actor, request: AgentCreate) -> AgentView:
        tools = await self._tools.get_many(actor, request.tool_ids or [])
        async with self._sessions.begin() as session:
            if request.parent_id:
                await self._get_row(session, actor, request.parent_id)
            agent = Agent(
                id=new_id("agent"),
                organization_id=actor.organization_id,
                client_id=actor.client_id,
                parent_id=request.parent_id,
                name=request.name or request.agent_type,
                agent_type=request.agent_type,
                system=request.system or "",
                description=request.description,
                llm_config=request.llm_config.model_dump() if request.llm_config else None,
                embedding_config=request.embedding_config.model_dump() if request.embedding_config else None,
                tool_rules=request.tool_rules,
                metadata_=request.metadata,
                tags=request.tags or [],
            )
            session.add(agent)
            await session.flush()
            await self._set_tools(session, agent.id, [tool.id for tool in tools])
        return await self.get(actor, agent.id)

    async def update(self, actor: Actor, agent_id: str, request: AgentUpdate) -> AgentView:
        changes = request.model_dump(exclude_unset=True, exclude={"tool_ids", "memory", "message_ids"})
        tools = await self._tools.get_many(actor, request.tool_ids) if request.tool_ids is not None else None
        async with self._sessions.begin() as session:
            agent = await self._get_row(session, actor, agent_id)
            for field, value in changes.items():
                if value is None and field not in ("description", "metadata"):
                    continue
                setattr(agent, "metadata_" if field == "metadata" else field, value)
            agent.updated_at = utcnow()
            if tools is not None:
                await self._set_tools(session, agent.id, [tool.id for tool in tools])
        return await self.get(actor, agent_id)

    async def update_system(self, actor: Actor, agent_id: str, system: str) -> AgentView:
        return await self.update(actor, agent_id, AgentUpdate(system=system))

    async def find_by_name(self, actor: Actor, name: str) -> Agent:
        """Exact name first, then MIRIX's short names (``episodic`` for the episodic memory agent)."""
        async with self._sessions() as session:
            candidates = list(await session.scalars(self._owned(actor).order_by(Agent.created_at)))
        for agent in candidates:
            if agent.name == name:
                return agent
        for agent in candidates:
            if _short_name(agent.name) == name:
                return agent
        if not candidates:
            raise NotFoundError("No agents found for this client. Please initialize agents first.")
        shown = ", ".join(f"'{_short_name(a.name)}' (full: {a.name})" for a in candidates[:5])
        more = f" ...and {len(candidates) - 5} more" if len(candidates) > 5 else ""
        raise NotFoundError(f"Agent '{name}' not found. Available agents: {shown}{more}")

    async def delete(self, actor: Actor, agent_id: str) -> None:
        """Soft-delete the agent and its sub-agents."""
        now = utcnow()
        async with self._sessions.begin() as session:
            agent = await self._get_row(session, actor, agent_id)
            await session.execute(
                update(Agent)
                .where((Agent.id == agent.id) | (Agent.parent_id == agent.id), Agent.deleted_at.is_(None))
                .values(deleted_at=now)
            )

    @staticmethod
    async def _set_tools(session: AsyncSession, agent_id: str, tool_ids: list[str]) -> None:
        await session.execute(delete(agent_tools).where(agent_tools.c.agent_id == agent_id))
        if tool_ids:
            await session.execute(insert(agent_tools), [{"agent_id": agent_id, "tool_id": t} for t in tool_ids])
