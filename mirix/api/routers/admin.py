from __future__ import annotations

from fastapi import APIRouter

from mirix.api.deps import CurrentActor, Server
from mirix.schemas.common import Message
from mirix.schemas.tenancy import (
    AdminLogin,
    AdminRegister,
    ChangePassword,
    DashboardClient,
    SetupStatus,
    TokenResponse,
)
from mirix.services.actor import default_user_id

router = APIRouter(prefix="/admin", tags=["admin"])


def dashboard_client(admin, client) -> DashboardClient:
    return DashboardClient(
        id=client.id,
        name=admin.name,
        email=admin.email,
        write_scope=client.write_scope,
        read_scopes=client.read_scopes,
        status=client.status,
        admin_user_id=default_user_id(client.id),
        created_at=admin.created_at,
        last_login=admin.last_login,
    )


def _token(server, admin, client, token: str) -> TokenResponse:
    return TokenResponse(
        access_token=token,
        expires_in=server.admins.token_hours * 3600,
        client=dashboard_client(admin, client),
    )


@router.get("/auth/check-setup", response_model=SetupStatus, summary="Whether the first admin still has to be created")
async def check_setup(server: Server):
    required = await server.admins.count() == 0
    message = (
        "No admin exists yet: POST /admin/auth/register once to create the first one" if required else "Setup complete"
    )
    return SetupStatus(setup_required=required, message=message)


@router.post(
    "/auth/register",
    response_model=TokenResponse,
    summary="One-time setup: create the first admin",
    description="Works only while no admin exists; afterwards 403. Further admins: `mirix admin create`.",
)
async def register(server: Server, body: AdminRegister):
    admin, client = await server.admins.setup_first_admin(body.name, body.email, body.password)
    return _token(server, admin, client, server.admins.issue_token(admin, client))


@router.post("/auth/login", response_model=TokenResponse)
async def login(server: Server, body: AdminLogin):
    admin, client, token = await server.admins.login(body.email, body.password)
    return _token(server, admin, client, token)


@router.get("/auth/me", response_model=DashboardClient)
async def me(server: Server, actor: CurrentActor):
    return dashboard_client(*await server.admins.me(actor))


@router.post("/auth/change-password", response_model=Message)
async def change_password(server: Server, actor: CurrentActor, body: ChangePassword):
    await server.admins.change_password(actor, body.current_password, body.new_password)
    return Message(message="Password changed successfully")


@router.get("/dashboard-clients", response_model=list[DashboardClient])
async def list_dashboard_clients(server: Server, actor: CurrentActor):
    return [dashboard_client(a, c) for a, c in await server.admins.list_dashboard_clients(actor)]
