from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from mirix.api.deps import CurrentActor, Server
from mirix.schemas.common import IdStr
from mirix.schemas.tenancy import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyDeleted,
    ApiKeyInfo,
    Client,
    ClientCreateOrGet,
    ClientUpdate,
)

router = APIRouter(prefix="/clients", tags=["clients"])


@router.post(
    "/create_or_get",
    response_model=Client,
    status_code=status.HTTP_201_CREATED,
    summary="Create a client in the caller's organization (admin), or get an existing one",
    responses={200: {"model": Client, "description": "The client already existed"}},
)
async def create_or_get_client(
    server: Server,
    actor: CurrentActor,
    body: ClientCreateOrGet,
    response: Response,
    fail_if_exists: bool = False,
):
    client, created = await server.clients.create_or_get(actor, body, fail_if_exists)
    if not created:
        response.status_code = status.HTTP_200_OK
    return client


@router.get("", response_model=list[Client], summary="Clients of the organization (admin), else the caller")
async def list_clients(
    server: Server,
    actor: CurrentActor,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
):
    return await server.clients.list(actor, cursor, limit)


@router.get("/{client_id}", response_model=Client)
async def get_client(server: Server, actor: CurrentActor, client_id: IdStr):
    return await server.clients.get(actor, client_id)


@router.patch("/{client_id}", response_model=Client, summary="Change a client's name, status or scopes (admin)")
async def update_client(server: Server, actor: CurrentActor, client_id: IdStr, body: ClientUpdate):
    return await server.clients.update(actor, client_id, body)


@router.delete("/{client_id}", summary="Soft-delete a client and revoke its keys (admin)")
async def delete_client(server: Server, actor: CurrentActor, client_id: IdStr):
    await server.clients.delete(actor, client_id)
    return {"message": f"Client {client_id} soft deleted successfully"}


@router.post("/{client_id}/api-keys", response_model=ApiKeyCreated, summary="Create an API key (admin)")
async def create_api_key(server: Server, actor: CurrentActor, client_id: IdStr, body: ApiKeyCreate):
    row, raw = await server.clients.create_api_key(actor, client_id, body)
    return ApiKeyCreated(
        id=row.id,
        client_id=row.client_id,
        name=row.name,
        api_key=raw,
        status=row.status,
        permission=row.permission,
        created_at=row.created_at,
    )


@router.get("/{client_id}/api-keys", response_model=list[ApiKeyInfo], summary="A client's API keys (admin)")
async def list_api_keys(server: Server, actor: CurrentActor, client_id: IdStr):
    return await server.clients.list_api_keys(actor, client_id)


@router.delete(
    "/{client_id}/api-keys/{api_key_id}",
    response_model=ApiKeyDeleted,
    summary="Revoke an API key at once (admin)",
)
async def delete_api_key(server: Server, actor: CurrentActor, client_id: IdStr, api_key_id: IdStr):
    await server.clients.revoke_api_key(actor, client_id, api_key_id)
    return ApiKeyDeleted(message=f"API key {api_key_id} deleted successfully", id=api_key_id)


@router.delete("/{client_id}/memories", summary="Erase every memory a client wrote (hard delete)")
async def delete_client_memories(server: Server, actor: CurrentActor, client_id: IdStr):
    await server.clients.delete_memories(actor, client_id)
    return {
        "message": f"All memories for client {client_id} hard deleted successfully",
        "preserved": ["client", "agents", "tools"],
    }
