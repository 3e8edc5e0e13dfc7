"""Client applications and their API keys."""

from __future__ import annotations

import time
from dataclasses import asdict

from sqlalchemy import bindparam, delete, select, update

from mirix.cache import Cache
from mirix.cache.base import AUTH, BLOCKS
from mirix.db.base import new_id
from mirix.db.models import Agent, ApiKey, Block, Client, Organization, Tool
from mirix.db.types import utcnow
from mirix.errors import AuthenticationError, ConflictError, NotFoundError, PermissionDeniedError
from mirix.schemas.tenancy import ApiKeyCreate, ClientCreateOrGet, ClientUpdate
from mirix.services.actor import Actor
from mirix.services.base import Manager, page
from mirix.services.security import generate_api_key, hash_api_key


def actor_for(client: Client, admin_id: str | None = None) -> Actor:
    return Actor(
        organization_id=client.organization_id,
        client_id=client.id,
        write_scope=client.write_scope,
        read_scopes=tuple(client.read_scopes or ()),
        admin_id=admin_id,
    )


# Built once: this runs on every request without a shared cache, and building the statement cost
# more CPU than executing it. Columns rather than the Client entity: nothing is kept of it but
# the actor.
_KEY_LOOKUP = (
    select(
        ApiKey.id,
        Client.id,
        Client.organization_id,
        Client.write_scope,
        Client.read_scopes,
        Client.status,
        Client.deleted_at,
    )
    .join(Client, Client.id == ApiKey.client_id)
    .where(ApiKey.key_hash == bindparam("key_hash"), ApiKey.status == "active")
)


class ClientManager(Manager):
    def __init__(self, *args, touch_interval_seconds: int = 60, cache: Cache | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._cache = cache or Cache.off()
        self._touch_interval = touch_interval_seconds
        self._last_touch: dict[str, float] = {}

    # --- clients -------------------------------------------------------------------------------

    async def get(self, actor: Actor, client_id: str) -> Client:
        if not actor.is_admin and client_id != actor.client_id:
            raise NotFoundError(f"Client {client_id} not found")
        async with self._sessions() as session:
            client = await session.get(Client, client_id)
        if client is None or client.is_deleted or client.organization_id != actor.organization_id:
            raise NotFoundError(f"Client {client_id} not found")
        return client

    async def list(self, actor: Actor, cursor: str | None, limit: int) -> list[Client]:
        query = select(Client).where(Client.organization_id == actor.organization_id, Client.deleted_at.is_(None))
        if not actor.is_admin:
            query = query.where(Client.id == actor.client_id)
        async with self._sessions() as session:
            return list(await session.scalars(page(query, Client.id, cursor, limit)))

    async def create_or_get(
        self, actor: Actor, request: ClientCreateOrGet, fail_if_exists: bool = False
    ) -> tuple[Client, bool]:
        """Return ``(client, created)``. A client key may only fetch itself; admins create clients."""
        if request.org_id not in (None, actor.organization_id):
            raise PermissionDeniedError("Clients can only be created in the caller's organization")
        if not actor.is_admin:
            if request.client_id in (None, actor.client_id) and not fail_if_exists:
                return await self.get(actor, actor.client_id), False
            raise PermissionDeniedError("Creating clients needs an admin token")
        client_id = request.client_id or new_id("client")
        async with self._sessions.begin() as session:
            existing = await session.get(Client, client_id)
            if existing is not None:
                if existing.organization_id != actor.organization_id or existing.is_deleted:
                    raise ConflictError(f"Client id '{client_id}' is not available")
                if fail_if_exists:
                    raise ConflictError(f"Client with id '{client_id}' already exists")
                return existing, False
            client = Client(
                id=client_id,
                organization_id=actor.organization_id,
                name=request.name or client_id,
                status=request.status,
                write_scope=request.write_scope,
                read_scopes=list(request.read_scopes),
            )
            session.add(client)
        return client, True

    async def create(self, org_id: str, name: str, write_scope: str | None, read_scopes: list[str]) -> Client:
        """Operator path (CLI, bootstrap): reuse a client of that name in the org or create it."""
        async with self._sessions.begin() as session:
            client = await session.scalar(
                select(Client).where(Client.organization_id == org_id, Client.name == name, Client.deleted_at.is_(None))
            )
            if client is None:
                client = Client(
                    id=new_id("client"),
                    organization_id=org_id,
                    name=name,
                    write_scope=write_scope,
                    read_scopes=read_scopes,
                )
                session.add(client)
        return client

    async def update(self, actor: Actor, client_id: str, request: ClientUpdate) -> Client:
        await self.get(actor, client_id)  # 404 for ids the caller cannot see, before the 403 below
        actor.require_admin()
        if request.id not in (None, client_id):
            raise PermissionDeniedError("The id in the body does not match the path")
        if request.organization_id not in (None, actor.organization_id):
            raise PermissionDeniedError("A client cannot be moved to another organization")
        changes = request.model_dump(exclude_unset=True, exclude={"id", "organization_id"})
        async with self._sessions.begin() as session:
            client = await self._get_for_update(session, actor, client_id)
            for field, value in changes.items():
                if value is not None or field == "write_scope":
                    setattr(client, field, value)
        await self._forget_keys_of(client_id)  # status and scopes live in cached key lookups
        return client

    async def delete(self, actor: Actor, client_id: str) -> None:
        """Soft-delete the client, revoke its keys and retire what it owns."""
        await self.get(actor, client_id)
        actor.require_admin()
        now = utcnow()
        async with self._sessions.begin() as session:
            client = await self._get_for_update(session, actor, client_id)
            client.deleted_at = now
            await session.execute(
                update(ApiKey)
                .where(ApiKey.client_id == client_id, ApiKey.status == "active")
                .values(status="revoked", revoked_at=now)
            )
            for model, owner in ((Agent, Agent.client_id), (Tool, Tool.created_by_id)):
                await session.execute(
                    update(model).where(owner == client_id, model.deleted_at.is_(None)).values(deleted_at=now)
                )
            retired = await session.scalars(
                update(Block)
                .where(Block.created_by_id == client_id, Block.deleted_at.is_(None))
                .values(deleted_at=now)
                .returning(Block.user_id)
            )
            users = {user for user in retired if user is not None}
        await self._forget_keys_of(client_id)
        await self._cache.invalidate(BLOCKS, *(f"{actor.organization_id}:{user}" for user in users))

    async def delete_memories(self, actor: Actor, client_id: str) -> int:
        """Hard-delete what the client wrote: its memories and the core blocks it created."""
        from mirix.services.memory.kinds import ALL_KINDS
        from mirix.services.memory.manager import MemoryManager

        await self.get(actor, client_id)  # the client itself, or an admin of its organization
        async with self._sessions.begin() as session:
            removed = await MemoryManager.purge(
                session,
                ALL_KINDS.values(),
                lambda model: [model.organization_id == actor.organization_id, model.client_id == client_id],
            )
            deleted = await session.scalars(
                delete(Block)
                .where(Block.organization_id == actor.organization_id, Block.created_by_id == client_id)
                .returning(Block.user_id)
            )
            users = {user for user in deleted if user is not None}
        await self._cache.invalidate(BLOCKS, *(f"{actor.organization_id}:{user}" for user in users))
        return removed

    async def _get_for_update(self, session, actor: Actor, client_id: str) -> Client:
        client = await session.get(Client, client_id, with_for_update=True)
        if client is None or client.is_deleted or client.organization_id != actor.organization_id:
            raise NotFoundError(f"Client {client_id} not found")
        return client

    # --- API keys ------------------------------------------------------------------------------

    async def create_api_key(self, actor: Actor, client_id: str, request: ApiKeyCreate) -> tuple[ApiKey, str]:
        await self.get(actor, client_id)
        actor.require_admin()
        return await self.issue_api_key(actor.organization_id, client_id, request)

    async def issue_api_key(
        self, org_id: str, client_id: str, request: ApiKeyCreate | None = None
    ) -> tuple[ApiKey, str]:
        """Create a key for a client (no permission check: operator path). Returns ``(row, key)``."""
        request = request or ApiKeyCreate()
        raw = generate_api_key()
        row = ApiKey(
            id=new_id("apikey"),
            client_id=client_id,
            organization_id=org_id,
            name=request.name,
            key_hash=hash_api_key(raw),
            key_prefix=raw[:12],
            permission=request.permission,
            user_id=request.user_id,
        )
        async with self._sessions.begin() as session:
            session.add(row)
        return row, raw

    async def list_api_keys(self, actor: Actor, client_id: str) -> list[ApiKey]:
        await self.get(actor, client_id)
        actor.require_admin()
        async with self._sessions() as session:
            rows = await session.scalars(
                select(ApiKey).where(ApiKey.client_id == client_id).order_by(ApiKey.created_at)
            )
            return list(rows)

    async def revoke_api_key(self, actor: Actor, client_id: str, key_id: str) -> None:
        await self.get(actor, client_id)
        actor.require_admin()
        if not await self._revoke(key_id, client_id=client_id):
            raise NotFoundError(f"API key {key_id} not found")

    async def revoke_api_key_by_id(self, key_id: str) -> bool:
        """Operator path (CLI)."""
        return await self._revoke(key_id)

    async def _revoke(self, key_id: str, client_id: str | None = None) -> bool:
        query = update(ApiKey).where(ApiKey.id == key_id, ApiKey.status == "active")
        if client_id is not None:
            query = query.where(ApiKey.client_id == client_id)
        async with self._sessions.begin() as session:
            hashes = list(
                await session.scalars(query.values(status="revoked", revoked_at=utcnow()).returning(ApiKey.key_hash))
            )
        await self._cache.invalidate(AUTH, *hashes)
        return bool(hashes)

    async def _forget_keys_of(self, client_id: str) -> None:
        async with self._sessions() as session:
            hashes = list(await session.scalars(select(ApiKey.key_hash).where(ApiKey.client_id == client_id)))
        await self._cache.invalidate(AUTH, *hashes)

    async def list_all_api_keys(self) -> list[tuple[ApiKey, Client, Organization]]:
        """Operator path (CLI): every key with its client and organization."""
        query = (
            select(ApiKey, Client, Organization)
            .join(Client, Client.id == ApiKey.client_id)
            .join(Organization, Organization.id == ApiKey.organization_id)
            .order_by(Organization.name, Client.name, ApiKey.created_at)
        )
        async with self._sessions() as session:
            return [tuple(row) for row in await session.execute(query)]

    async def authenticate(self, raw_key: str) -> Actor:
        """Resolve an API key to its client: from the cache, else in one indexed query.

        Only keys of active clients are cached, and revoking a key or changing its client
        invalidates the entry, so revoked keys fail at once."""
        key_hash = hash_api_key(raw_key)
        cached = await self._cache.get(AUTH, key_hash)
        if cached is not None:
            await self._touch(cached["key_id"])
            return Actor(**{**cached["actor"], "read_scopes": tuple(cached["actor"]["read_scopes"])})
        # A plain connection: under load a session around this one lookup cost ~0.25 ms per request.
        async with self._sessions.connect() as connection:
            row = (await connection.execute(_KEY_LOOKUP, {"key_hash": key_hash})).first()
        if row is None:
            raise AuthenticationError("Invalid API key")
        key_id, client_id, organization_id, write_scope, read_scopes, status, deleted_at = row
        if deleted_at is not None or status != "active":
            raise PermissionDeniedError("Client is inactive or deleted")
        await self._touch(key_id)
        actor = Actor(
            organization_id=organization_id,
            client_id=client_id,
            write_scope=write_scope,
            read_scopes=tuple(read_scopes or ()),  # as actor_for makes it from a Client
        )
        if self._cache.enabled(AUTH):
            await self._cache.add(AUTH, key_hash, {"key_id": key_id, "actor": asdict(actor)})
        return actor

    async def _touch(self, key_id: str) -> None:
        # Writing last_used_at on every request would turn each read into a write; once per
        # interval per key and process is precise enough for "when was this key last used".
        now = time.monotonic()
        last = self._last_touch.get(key_id)
        if last is not None and now - last < self._touch_interval:
            return
        self._last_touch[key_id] = now
        async with self._sessions.begin() as session:
            await session.execute(update(ApiKey).where(ApiKey.id == key_id).values(last_used_at=utcnow()))

    async def get_active(self, client_id: str) -> Client:
        """Load an active client by id (trusted-gateway and admin-token paths)."""
        async with self._sessions() as session:
            client = await session.get(Client, client_id)
        if client is None or client.is_deleted or client.status != "active":
            raise AuthenticationError("Unknown or inactive client")
        return client
