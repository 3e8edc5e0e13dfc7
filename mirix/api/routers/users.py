from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from mirix.api.deps import CurrentActor, Server
from mirix.errors import NotFoundError, PermissionDeniedError
from mirix.schemas.common import IdStr
from mirix.schemas.tenancy import User, UserCreateOrGet

router = APIRouter(prefix="/users", tags=["users"])


@router.post("/create_or_get", response_model=User, summary="Get a user of the caller's organization, or create it")
async def create_or_get_user(server: Server, actor: CurrentActor, body: UserCreateOrGet):
    return await server.users.create_or_get(actor, body.user_id, body.name, body.timezone)


@router.get("", response_model=list[User])
async def list_users(
    server: Server,
    actor: CurrentActor,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    organization_id: str | None = None,
):
    if organization_id not in (None, actor.organization_id):
        raise NotFoundError(f"Organization with id {organization_id} not found")
    return await server.users.list(actor, cursor, limit)


@router.get("/{user_id}", response_model=User)
async def get_user(server: Server, actor: CurrentActor, user_id: IdStr):
    return await server.users.get(actor, user_id)


@router.delete("/{user_id}", summary="Soft-delete a user and everything stored for them")
async def delete_user(server: Server, actor: CurrentActor, user_id: IdStr):
    if not actor.is_admin and actor.write_scope is None:
        raise PermissionDeniedError("Read-only clients cannot delete users")
    await server.users.delete(actor, user_id)
    return {"message": f"User {user_id} soft deleted successfully"}


@router.delete("/{user_id}/memories", summary="Erase a user's memories and core blocks (hard delete)")
async def delete_user_memories(server: Server, actor: CurrentActor, user_id: IdStr):
    if not actor.is_admin and actor.write_scope is None:
        raise PermissionDeniedError("Read-only clients cannot delete memories")
    await server.users.delete_memories(actor, user_id)
    return {"message": f"All memories for user {user_id} hard deleted successfully", "preserved": ["user"]}
