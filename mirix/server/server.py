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
from mirix.embeddings.cache import CachedEmbedder, QueryEmbeddingCache
from mirix.embeddings.factory import create_embedding_provider
from mirix.errors import AuthenticationError
from mirix.search.vector_cache import VectorCache
from mirix.services.actor import Actor
from mirix.services.admins import AdminManager
from mirix.services.agents import AgentManager
from mirix.services.blocks import BlockManager
from mirix.services.bootstrap import bootstrap_if_empty, write_secret_file
from mirix.services.clients import ClientManager, actor_for
from mirix.services.memory.manager import MemoryManager
from mirix.services.memory.raw import RawMemoryService
from mirix.services.memory.retrieval import Retriever
from mirix.services.memory.search import MemorySearch
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
        self.blocks = BlockManager(self.sessions, self.engine.dialect.name)
        self.admins = AdminManager(
            self.sessions, secret=_jwt_secret(settings), token_hours=settings.jwt_expiration_hours
        )
        dialect = self.engine.dialect.name
        self.embedder = _embedder(settings)
        self.vector_cache = VectorCache(settings.vector_cache_mb * 1024 * 1024)
        self.memories = MemoryManager(self.sessions, self.embedder)
        self.search = MemorySearch(
            self.sessions,
            dialect,
            self.memories,
            self.vector_cache,
            text_weight=settings.hybrid_text_weight,
            vector_weight=settings.hybrid_vector_weight,
        )
        self.raw_memories = RawMemoryService(self.sessions, self.memories, dialect)
        self.retriever = Retriever(
            self.memories, self.search, self.blocks, max_prompt_sensitivity=settings.prompt_max_sensitivity
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


def _embedder(settings: Settings) -> CachedEmbedder | None:
    """The embedding model all memories and queries use (created lazily: nothing loads here)."""
    if not settings.embeddings_enabled:
        return None
    provider = create_embedding_provider(
        settings.embedding_endpoint_type, settings.embedding_model, settings.embedding_dim
    )
    return CachedEmbedder(provider, QueryEmbeddingCache(settings.query_embedding_cache_size))


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
