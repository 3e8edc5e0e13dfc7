from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from mirix.api.deps import CurrentActor, Server
from mirix.schemas.agents import (
    AgentCreate,
    AgentState,
    AgentUpdate,
    MetaInitRequest,
    StatusMessage,
    SystemPromptUpdate,
    Tool,
)
from mirix.schemas.common import IdStr
from mirix.services.agents import AgentView

router = APIRouter(prefix="/agents", tags=["agents"])


def agent_out(view: AgentView) -> AgentState:
    agent = view.agent
    return AgentState(
        id=agent.id,
        name=agent.name,
        agent_type=agent.agent_type,
        system=agent.system,
        description=agent.description,
        parent_id=agent.parent_id,
        organization_id=agent.organization_id,
        llm_config=agent.llm_config,
        embedding_config=agent.embedding_config,
        tool_rules=agent.tool_rules,
        tags=agent.tags or [],
        metadata_=agent.metadata_,
        tools=[Tool.model_validate(tool) for tool in view.tools],
        children=[agent_out(child) for child in view.children] if view.children is not None else None,
        created_by_id=agent.client_id,
        last_updated_by_id=agent.client_id,
        created_at=agent.created_at,
        updated_at=agent.updated_at,
    )


@router.get("", response_model=list[AgentState], summary="The caller's top-level agents, or children of parent_id")
async def list_agents(
    server: Server,
    actor: CurrentActor,
    query_text: Annotated[str | None, Query(max_length=255)] = None,
    tags: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: str | None = None,
    parent_id: str | None = None,
):
    views = await server.agents.list(actor, query_text=query_text, parent_id=parent_id, cursor=cursor, limit=limit)
    wanted = {tag.strip() for tag in tags.split(",") if tag.strip()} if tags else set()
    return [agent_out(v) for v in views if not wanted or wanted.issubset(v.agent.tags or [])]


@router.post("", response_model=AgentState)
async def create_agent(server: Server, actor: CurrentActor, body: AgentCreate):
    return agent_out(await server.agents.create(actor, body))


@router.post(
    "/meta/initialize",
    response_model=AgentState | None,
    summary="Create (or return) the client's meta memory agent and its memory agents from a MIRIX config",
)
async def initialize_meta_agent(server: Server, actor: CurrentActor, body: MetaInitRequest):
    view = await server.meta_agents.initialize(actor, body.config, body.update_agents)
    return agent_out(view) if view is not None else None


@router.get("/{agent_id}", response_model=AgentState)
async def get_agent(server: Server, actor: CurrentActor, agent_id: IdStr):
    return agent_out(await server.agents.get(actor, agent_id))


@router.patch("/{agent_id}", response_model=AgentState)
async def update_agent(server: Server, actor: CurrentActor, agent_id: IdStr, body: AgentUpdate):
    return agent_out(await server.agents.update(actor, agent_id, body))


@router.delete("/{agent_id}", response_model=StatusMessage, summary="Delete an agent and its sub-agents")
async def delete_agent(server: Server, actor: CurrentActor, agent_id: IdStr):
    await server.agents.delete(actor, agent_id)
    return StatusMessage(message=f"Agent {agent_id} deleted")


@router.patch("/by-name/{agent_name}/system", response_model=AgentState)
async def update_system_prompt_by_name(server: Server, actor: CurrentActor, agent_name: str, body: SystemPromptUpdate):
    agent = await server.agents.find_by_name(actor, agent_name)
    return agent_out(await server.agents.update_system(actor, agent.id, body.system_prompt))


@router.patch("/{agent_id}/system", response_model=AgentState)
async def update_system_prompt(server: Server, actor: CurrentActor, agent_id: IdStr, body: SystemPromptUpdate):
    return agent_out(await server.agents.update_system(actor, agent_id, body.system_prompt))
