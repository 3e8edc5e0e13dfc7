"""The meta memory agent and its memory agents: one tree per client, set up from a MIRIX config."""

from __future__ import annotations

from sqlalchemy import and_, bindparam, or_, select

from mirix.agents.prompting import MEMORY_AGENT_TYPES, default_prompt
from mirix.db.base import new_id
from mirix.db.models import Agent, Block
from mirix.db.types import utcnow
from mirix.schemas.agents import MetaInitConfig, TemplateBlock
from mirix.services.actor import Actor
from mirix.services.agents import AgentManager, AgentView
from mirix.services.base import Manager

META = "meta_memory_agent"
#: Agent names MIRIX configs list; only the memory agents and the chat agent do anything here.
KNOWN_AGENTS = {f"{t}_memory_agent" for t in MEMORY_AGENT_TYPES} | {
    "chat_agent",
    "reflexion_agent",
    "background_agent",
    META,
}
DEFAULT_AGENTS = [f"{t}_memory_agent" for t in MEMORY_AGENT_TYPES]


def child_name(agent: str) -> str:
    return f"{META}_{agent}"


def _agent_list(config: MetaInitConfig) -> tuple[list[str], dict[str, list[TemplateBlock]]]:
    listed = config.meta_agent_config.agents if config.meta_agent_config.agents is not None else DEFAULT_AGENTS
    names: list[str] = []
    blocks: dict[str, list[TemplateBlock]] = {}
    for entry in listed:
        if isinstance(entry, str):
            name = entry
        elif len(entry) == 1:
            name, options = next(iter(entry.items()))
            blocks[name] = list((options or {}).get("blocks") or [])
        else:
            continue
        if name in KNOWN_AGENTS and name != META and name not in names:
            names.append(name)
    return names, blocks


# Built once: both run for every memory add or job, and building a statement costs more CPU than
# running it.
_CLIENT_META = (
    select(Agent)
    .where(
        Agent.organization_id == bindparam("org"),
        Agent.client_id == bindparam("client"),
        Agent.parent_id.is_(None),
        Agent.agent_type == META,
        Agent.deleted_at.is_(None),
    )
    .order_by(Agent.created_at)
)
_TREE = select(Agent).where(
    or_(
        Agent.id == bindparam("agent_id"),
        and_(Agent.parent_id == bindparam("agent_id"), Agent.deleted_at.is_(None)),
    )
)


class MetaAgentManager(Manager):
    def __init__(self, sessions, agents: AgentManager) -> None:
        super().__init__(sessions)
        self._agents = agents

    async def find(self, actor: Actor) -> Agent | None:
        async with self._sessions() as session:
            return await session.scalar(_CLIENT_META, {"org": actor.organization_id, "client": actor.client_id})

    async def initialize(self, actor: Actor, config: MetaInitConfig, update_agents: bool) -> AgentView | None:
        """Create the client's agent tree, or return it (updated when ``update_agents``).
        Read-only clients write no memories and get no agents (``None``), as in MIRIX."""
        if actor.write_scope is None:
            return None
        names, template_blocks = _agent_list(config)
        prompts = {**config.meta_agent_config.system_prompts, **config.system_prompts}
        llm = config.llm_config.model_dump()
        embedding = config.embedding_config.model_dump() if config.embedding_config else None
        existing = await self.find(actor)
        if existing is not None and not update_agents:
            return await self._agents.get(actor, existing.id)
        now = utcnow()
        async with self._sessions.begin() as session:
            if existing is None:
                parent = Agent(
                    id=new_id("agent"),
                    organization_id=actor.organization_id,
                    client_id=actor.client_id,
                    name=META,
                    agent_type=META,
                    system=prompts.get(META, default_prompt(META)),
                    llm_config=llm,
                    embedding_config=embedding,
                    tags=[],
                )
                session.add(parent)
                await session.flush()
                children: dict[str, Agent] = {}
            else:
                parent = await session.get(Agent, existing.id)
                parent.llm_config, parent.embedding_config, parent.updated_at = llm, embedding, now
                if META in prompts:
                    parent.system = prompts[META]
                children = {
                    c.name.removeprefix(f"{META}_"): c
                    for c in await session.scalars(
                        select(Agent).where(Agent.parent_id == parent.id, Agent.deleted_at.is_(None))
                    )
                }
            for name, child in children.items():
                if name not in names:
                    child.deleted_at = now
                else:
                    child.llm_config, child.embedding_config, child.updated_at = llm, embedding, now
                    if name in prompts:
                        child.system = prompts[name]
            for name in names:
                if name not in children:
                    session.add(
                        Agent(
                            id=new_id("agent"),
                            organization_id=actor.organization_id,
                            client_id=actor.client_id,
                            parent_id=parent.id,
                            name=child_name(name),
                            agent_type=name,
                            system=prompts.get(name, ""),
                            llm_config=llm,
                            embedding_config=embedding,
                            tags=[],
                        )
                    )
            await self._seed_templates(session, actor, template_blocks.get("core_memory_agent", []))
        return await self._agents.get(actor, parent.id)

    async def _seed_templates(self, session, actor: Actor, blocks: list[TemplateBlock]) -> None:
        """Template core blocks for the client's write scope, once per label."""
        existing = set(
            await session.scalars(
                select(Block.label).where(
                    Block.organization_id == actor.organization_id,
                    Block.user_id.is_(None),
                    Block.scope == actor.write_scope,
                    Block.deleted_at.is_(None),
                )
            )
        )
        for block in blocks:
            if block.label not in existing:
                session.add(
                    Block(
                        id=new_id("block"),
                        organization_id=actor.organization_id,
                        user_id=None,
                        scope=actor.write_scope,
                        label=block.label,
                        value=block.value,
                        limit=block.limit,
                        filter_tags={},
                        created_by_id=actor.client_id,
                        last_updated_by_id=actor.client_id,
                    )
                )
                existing.add(block.label)

    async def with_prompts(self, agent_id: str) -> tuple[Agent | None, dict[str, str]]:
        """A meta agent and the prompt overrides stored on its tree (empty text means "use the
        shipped default"), in one query: every memory job needs both."""
        async with self._sessions() as session:
            agents = list(await session.scalars(_TREE, {"agent_id": agent_id}))
        meta = next((agent for agent in agents if agent.id == agent_id), None)
        if meta is None:
            return None, {}
        prompts = {c.name.removeprefix(f"{META}_"): c.system for c in agents if c is not meta and c.system}
        if meta.system and meta.system != default_prompt(META):
            prompts[META] = meta.system
        return meta, prompts
