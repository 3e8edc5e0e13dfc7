"""``AsyncServer``: the one object API routes talk to.

It owns the database engine and the managers, authenticates callers, and is started and
stopped by the app's lifespan (or by the CLI for operator commands).
"""

from __future__ import annotations

import logging
import secrets

from sqlalchemy import text

from mirix.db.engine import create_engine, create_session_factory
from mirix.db.migrate import upgrade
from mirix.errors import AuthenticationError
from mirix.services.actor import Actor
from mirix.services.admins import AdminManager
from mirix.services.agents import AgentManager
from mirix.services.blocks import BlockManager
from mirix.services.bootstrap import bootstrap_if_empty, write_secret_file
from mirix.services.clients import ClientManager, actor_for
from mirix.services.organizations import OrganizationManager
from mirix.services.security import looks_like_jwt
from mirix.services.tools import ToolManager
from mirix.services.users import UserManager
from mirix.settings import Settings

log = logging.getLogger(__name__)


class AsyncServer:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.engine = create_engine(settings)
        self.sessions = create_session_factory(self.engine)
        self.organizations = OrganizationManager(self.sessions)
        self.clients = ClientManager(self.sessions, touch_interval_seconds=settings.api_key_touch_interval_seconds)
        self.users = UserManager(self.sessions)
        self.tools = ToolManager(self.sessions)
        self.agents = AgentManager(self.sessions, self.tools)
        self.blocks = BlockManager(self.sessions)
        self.admins = AdminManager(
            self.sessions, secret=_jwt_secret(settings), token_hours=settings.jwt_expiration_hours
        )
        #: The API key made by the first start on an empty database, if this start made one.
        self.bootstrap_key: str | None = None

    @classmethod
    async def start(cls, settings: Settings) -> AsyncServer:
        if settings.should_auto_migrate:
            await upgrade(settings.async_database_url)
        server = cls(settings)
        if settings.bootstrap:
            server.bootstrap_key = await bootstrap_if_empty(server.sessions, server.clients, settings.api_key_file)
        return server

    async def close(self) -> None:
        await self.engine.dispose()

    async def authenticate(
        self, *, api_key: str | None, bearer: str | None, client_id: str | None, org_id: str | None
    ) -> Actor:
        """Resolve the caller from its credentials, strongest first."""
        if api_key:
            return await self.clients.authenticate(api_key)
        if bearer:
            if looks_like_jwt(bearer):
                actor = await self.admins.authenticate(bearer)
                if actor is None:
                    raise AuthenticationError("Invalid or expired token")
                return actor
            return await self.clients.authenticate(bearer)
        if client_id and self.settings.trusted_gateway:
            client = await self.clients.get_active(client_id)
            if org_id and org_id != client.organization_id:
                raise AuthenticationError("X-Org-ID does not match the client's organization")
            return actor_for(client)
        if client_id:
            raise AuthenticationError(
                "X-Client-ID without an API key is only accepted in trusted-gateway mode; send X-API-Key"
            )
        raise AuthenticationError("Authentication required: send X-API-Key (or Authorization: Bearer)")

    async def check_database(self) -> bool:
        try:
            async with self.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
            return True
        except Exception:  # noqa: BLE001 - health reports any failure as "down"
            log.exception("database health check failed")
            return False


# Older code imports the synchronous-sounding name; it is the same async server.
SyncServer = AsyncServer


def _jwt_secret(settings: Settings) -> str:
    """The admin-token secret: from the environment, else kept in the data directory (0600)."""
    if settings.jwt_secret_key is not None:
        secret = settings.jwt_secret_key.get_secret_value()
        if len(secret) < 32:
            raise ValueError("MIRIX_JWT_SECRET_KEY must be at least 32 characters")
        return secret
    path = settings.jwt_secret_file
    if path.exists():
        secret = path.read_text().strip()
        if len(secret) >= 32:
            return secret
    secret = secrets.token_hex(32)
    write_secret_file(path, secret)
    return secret
