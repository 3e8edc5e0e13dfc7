"""``POST /agents/{id}/messages``: talk to a chat agent (optionally streamed as Server-Sent Events),
or, sent to a meta memory agent as in MIRIX, queue the message for memory extraction."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from mirix.api.deps import CurrentActor, Server
from mirix.db.base import new_id
from mirix.llm.errors import LLMError
from mirix.schemas.agents import SendMessageRequest
from mirix.schemas.common import IdStr
from mirix.schemas.jobs import AddMemoryRequest
from mirix.services.meta_agents import META

router = APIRouter(prefix="/agents", tags=["agents"])
logger = logging.getLogger(__name__)

ZERO_USAGE = {
    "message_type": "usage_statistics",
    "completion_tokens": 0,
    "prompt_tokens": 0,
    "total_tokens": 0,
    "step_count": 0,
}


@router.post(
    "/{agent_id}/messages",
    summary="Send a message to an agent",
    description="To a chat agent: an answer informed by the user's memories; with `stream` (or "
    "`stream_tokens`) the answer arrives as Server-Sent Events (`data: {json}` lines, then `data: [DONE]`). "
    "To a meta memory agent: the message is queued for memory extraction, as MIRIX does.",
)
async def send_message(server: Server, actor: CurrentActor, agent_id: IdStr, body: SendMessageRequest):
    view = await server.agents.get(actor, agent_id)
    user_id = body.user_id or actor.default_user_id
    if view.agent.agent_type == META:
        job = await server.add_memory(
            actor,
            AddMemoryRequest(
                user_id=user_id,
                meta_agent_id=agent_id,
                messages=[{"role": body.role, "content": body.message}],
                filter_tags=body.filter_tags,
                block_filter_tags=body.block_filter_tags,
                block_filter_tags_update_mode=body.block_filter_tags_update_mode,
            ),
        )
        return {"messages": [], "usage": ZERO_USAGE, "job_id": job.id}

    llm, system = await server.chat_setup(actor, view.agent)
    timezone = await server.users.timezone_of(actor, user_id)
    events = server.chat.converse(actor, agent_id, user_id, timezone, body.message, llm, system, body.role)

    if body.stream or body.stream_tokens or body.stream_steps:

        async def sse() -> AsyncIterator[str]:
            try:
                async for event in events:
                    yield f"data: {event.as_json()}\n\n"
            except LLMError as exc:  # the status line is gone already: report the failure in the stream
                yield f"data: {json.dumps({'message_type': 'error', 'detail': f'LLM provider error: {exc}'})}\n\n"
            except Exception:  # a bug: logged with its traceback, and the client still gets a closed stream
                logger.exception("chat stream of agent %s failed", agent_id)
                yield f"data: {json.dumps({'message_type': 'error', 'detail': 'Internal server error'})}\n\n"
            yield "data: [DONE]\n\n"

        return StreamingResponse(
            sse(), media_type="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        )

    answer: list[str] = []
    messages: list[dict] = []
    usage = dict(ZERO_USAGE)
    async for event in events:
        if event.message_type == "assistant_message":
            answer.append(event.data["content"])
        elif event.message_type == "usage_statistics":
            usage.update(event.data)
        else:
            messages.append({"id": new_id("message"), "message_type": event.message_type, **event.data})
    messages.append(
        {
            "id": new_id("message"),
            "message_type": "assistant_message",
            "content": "".join(answer),
            "date": datetime.now(UTC).isoformat(),
        }
    )
    return {"messages": messages, "usage": usage}
