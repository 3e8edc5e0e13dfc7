"""End users. They belong to an organization and are shared by its clients."""

from __future__ import annotations

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from mirix.cache import Cache
from mirix.cache.base import BLOCKS, USER, dump_row, load_row
from mirix.db.base import new_id
from mirix.db.models import Block, User
from mirix.db.types import utcnow
from mirix.db.upsert import insert_if_absent
from mirix.errors import NotFoundError
from mirix.services.actor import Actor
from mirix.services.base import Manager, page
from mirix.services.memory.kinds import ALL_KINDS


class UserManager(Manager):
    def __init__(self, sessions, cache: Cache | None = None) -> None:
        super().__init__(sessions)
        self._cache = cache or Cache.off()

    async def get(self, actor: Actor, user_id: str) -> User:
        user = await self._find(actor.organization_id, user_id)
        if user is None:
            raise NotFoundError(f"User {user_id} not found")
        return user

    async def timezone_of(self, actor: Actor, user_id: str) -> str:
        """The user's time zone, or UTC for a user not created yet."""
        user = await self._find(actor.organization_id, user_id)
        return user.timezone if user is not None else "UTC"

    async def _find(self, org_id: str, user_id: str) -> User | None:
        """A live user, through the cache. Only users that exist are cached, so creating one (which
        happens inside other managers' transactions) needs no invalidation; deleting one does."""
        key = f"{org_id}:{user_id}"
        cached = await self._cache.get(USER, key)
        if cached is not None:
            return load_row(User, cached)
        async with self._sessions() as session:
            user = await session.get(User, (org_id, user_id))
        if user is None or user.is_deleted:
            return None
        await self._cache.add(USER, key, dump_row(user))
        return user

    async def list(self, actor: Actor, cursor: str | None, limit: int) -> list[User]:
        query = select(User).where(User.organization_id == actor.organization_id, User.deleted_at.is_(None))
        async with self._sessions() as session:
            return list(await session.scalars(page(query, User.id, cursor, limit)))

    async def create_or_get(
        self, actor: Actor, user_id: str | None, name: str | None, timezone: str | None = None
    ) -> User:
        user_id = user_id or new_id("user")
        async with self._sessions.begin() as session:
            return await self.ensure(session, actor.organization_id, user_id, name, timezone)

    @staticmethod
    async def ensure(
        session: AsyncSession,
        org_id: str,
        user_id: str,
        name: str | None = None,
        timezone: str | None = None,
    ) -> User:
        """Return the user, creating it (or bringing a deleted one back) inside ``session``."""
        user = await session.get(User, (org_id, user_id), with_for_update=True)
        if user is None:
            # Two first requests for a new user may race; the loser's insert is a no-op.
            now = utcnow()
            await insert_if_absent(
                session,
                User,
                {
                    "organization_id": org_id,
                    "id": user_id,
                    "name": name or user_id,
                    "timezone": timezone or "UTC",
                    "status": "active",
                    "is_admin": False,
                    "created_at": now,
                    "updated_at": now,
                },
            )
            user = await session.get(User, (org_id, user_id), with_for_update=True, populate_existing=True)
        elif user.is_deleted:
            user.deleted_at = None
            user.name = name or user.name
        return user

    async def delete_memories(self, actor: Actor, user_id: str) -> int:
        """Hard-delete a user's memories and core blocks; admins erase every scope, clients their own."""
        from mirix.services.memory.manager import MemoryManager

        await self.get(actor, user_id)
        scoped = not actor.is_admin

        def where(model) -> list:
            conditions = [model.organization_id == actor.organization_id, model.user_id == user_id]
            return conditions + ([model.scope == actor.write_scope] if scoped else [])

        async with self._sessions.begin() as session:
            removed = await MemoryManager.purge(session, ALL_KINDS.values(), where)
            await session.execute(delete(Block).where(*where(Block)))
        await self._cache.invalidate(BLOCKS, f"{actor.organization_id}:{user_id}")
        return removed

    async def delete(self, actor: Actor, user_id: str) -> None:
        """Soft-delete the user and everything stored for them."""
        async with self._sessions.begin() as session:
            user = await session.get(User, (actor.organization_id, user_id), with_for_update=True)
            if user is None or user.is_deleted:
                raise NotFoundError(f"User {user_id} not found or already deleted")
            now = utcnow()
            user.deleted_at = now
            await session.execute(
                update(Block)
                .where(
                    Block.organization_id == actor.organization_id, Block.user_id == user_id, Block.deleted_at.is_(None)
                )
                .values(deleted_at=now)
            )
            for kind in ALL_KINDS.values():
                model = kind.model
                await session.execute(
                    update(model)
                    .where(
                        model.organization_id == actor.organization_id,
                        model.user_id == user_id,
                        model.deleted_at.is_(None),
                    )
                    .values(deleted_at=now)
                )
        key = f"{actor.organization_id}:{user_id}"
        await self._cache.invalidate(USER, key)
        await self._cache.invalidate(BLOCKS, key)
