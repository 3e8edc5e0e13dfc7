"""Dependencies shared by the routers: the server and the authenticated caller."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from mirix.server.server import AsyncServer
from mirix.services.actor import Actor

_api_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="A client API key")
_bearer = HTTPBearer(auto_error=False, description="An admin token from /admin/auth/login, or an API key")


async def get_server(request: Request) -> AsyncServer:
    # async def on purpose: FastAPI would run a plain def dependency in a worker thread.
    return request.app.state.server


Server = Annotated[AsyncServer, Depends(get_server)]


async def get_actor(
    request: Request,
    server: Server,
    api_key: Annotated[str | None, Security(_api_key)] = None,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)] = None,
) -> Actor:
    # X-Client-Id / X-Org-Id (trusted gateway, admin tokens) are read directly: they are not in
    # the schema, and as declared parameters they cost a validation each on every request.
    headers = request.headers
    actor = await server.authenticate(
        api_key=api_key,
        bearer=bearer.credentials if bearer else None,
        client_id=headers.get("x-client-id"),
        org_id=headers.get("x-org-id"),
    )
    await server.check_rate_limit(actor)  # every authenticated request; /health and /metrics take no actor
    return actor


CurrentActor = Annotated[Actor, Depends(get_actor)]
