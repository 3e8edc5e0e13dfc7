from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from mirix.api.deps import CurrentActor, Server
from mirix.errors import PermissionDeniedError
from mirix.schemas.common import IdStr
from mirix.schemas.tenancy import Organization, OrganizationCreateOrGet

router = APIRouter(prefix="/organizations", tags=["organizations"])


@router.get("", response_model=list[Organization], summary="The caller's organization")
async def list_organizations(
    server: Server,
    actor: CurrentActor,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
):
    orgs = await server.organizations.list(actor)
    return [org for org in orgs if cursor is None or org.id > cursor][:limit]


@router.post("", response_model=Organization, summary="Create an organization (operators use the CLI)")
async def create_organization(server: Server, actor: CurrentActor, name: str | None = None):
    raise PermissionDeniedError(
        "Organizations are created by an operator: `mirix keys create --org NAME --client NAME`"
    )


@router.get("/{org_id}", response_model=Organization)
async def get_organization(server: Server, actor: CurrentActor, org_id: IdStr):
    return await server.organizations.get(actor, org_id)


@router.post("/create_or_get", response_model=Organization)
async def create_or_get_organization(server: Server, actor: CurrentActor, body: OrganizationCreateOrGet):
    return await server.organizations.create_or_get(actor, body.org_id)
