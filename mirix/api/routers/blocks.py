from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body

from mirix.api.deps import CurrentActor, Server
from mirix.errors import UnprocessableError
from mirix.schemas.agents import Block, BlockCreateRequest, BlockIn, StatusMessage
from mirix.schemas.common import IdStr
from mirix.services.blocks import block_tags

router = APIRouter(prefix="/blocks", tags=["blocks"])


def block_out(block) -> Block:
    return Block.model_validate(
        {
            "id": block.id,
            "label": block.label,
            "value": block.value,
            "limit": block.limit,
            "user_id": block.user_id,
            "organization_id": block.organization_id,
            "filter_tags": block_tags(block),
            "created_by_id": block.created_by_id,
            "last_updated_by_id": block.last_updated_by_id,
            "created_at": block.created_at,
            "updated_at": block.updated_at,
        }
    )


@router.get("", response_model=list[Block], summary="Core-memory blocks of a user in the caller's read scopes")
async def list_blocks(server: Server, actor: CurrentActor, user_id: IdStr | None = None, label: str | None = None):
    return [block_out(b) for b in await server.blocks.list(actor, user_id, label)]


@router.get("/{block_id}", response_model=Block)
async def get_block(server: Server, actor: CurrentActor, block_id: IdStr):
    return block_out(await server.blocks.get(actor, block_id))


@router.post(
    "",
    response_model=Block,
    summary="Create or update a block in the caller's write scope",
    description='Body: `{"block": {...}, "user": {"id": ...} | null}` as MIRIX sends it; a bare block '
    "object is accepted too. Without a user the block is a template for the scope.",
)
async def upsert_block(server: Server, actor: CurrentActor, body: dict[str, Any] = Body(...)):
    try:
        request = (
            BlockCreateRequest.model_validate(body)
            if "block" in body
            else BlockCreateRequest(block=BlockIn.model_validate(body))
        )
    except ValueError as exc:
        raise UnprocessableError(_first_error(exc)) from None
    user_id = request.user.id if request.user else None
    return block_out(await server.blocks.upsert(actor, request.block, user_id))


@router.delete("/{block_id}", response_model=StatusMessage)
async def delete_block(server: Server, actor: CurrentActor, block_id: IdStr):
    await server.blocks.delete(actor, block_id)
    return StatusMessage(message=f"Block {block_id} deleted")


def _first_error(exc: ValueError) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        first = errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        return f"{where}: {first['msg']}" if where else first["msg"]
    return str(exc)
