"""Core-memory blocks, confined to the caller's organization and scopes.

A block with a user belongs to that user in one scope; a block without a user is a template
that is copied to users the first time they need it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, or_, select

from mirix.cache import Cache
from mirix.cache.base import BLOCKS, dump_row, load_row
from mirix.db.base import new_id
from mirix.db.models import Block, User
from mirix.db.types import utcnow
from mirix.errors import NotFoundError, UnprocessableError
from mirix.schemas.agents import BlockIn
from mirix.services.actor import Actor
from mirix.services.base import Manager
from mirix.services.users import UserManager

MAX_BLOCKS = 200


def block_tags(block: Block) -> dict:
    """filter_tags as MIRIX shows them: the scope lives inside the tags."""
    return {**(block.filter_tags or {}), "scope": block.scope}


# Built once: every memory job runs it, and building a statement costs more CPU than running it.
_MINE_OR_TEMPLATES = (
    select(Block)
    .where(
        Block.organization_id == bindparam("org"),
        Block.scope == bindparam("scope"),
        Block.deleted_at.is_(None),
        or_(Block.user_id == bindparam("user"), Block.user_id.is_(None)),
    )
    .order_by(Block.label, Block.id)
)


class BlockManager(Manager):
    def __init__(self, sessions, dialect: str, cache: Cache | None = None) -> None:
        super().__init__(sessions)
        self._dialect = dialect
        self._cache = cache or Cache.off()

    async def forget(self, org_id: str, user_id: str | None) -> None:
        """Invalidate the cached blocks of a user; call after the transaction that changed them."""
        if user_id is not None:
            await self._cache.invalidate(BLOCKS, f"{org_id}:{user_id}")

    async def list(self, actor: Actor, user_id: str | None, label: str | None) -> list[Block]:
        query = select(Block).where(
            Block.organization_id == actor.organization_id,
            Block.user_id == (user_id or actor.default_user_id),
            Block.scope.in_(actor.read_scopes),
            Block.deleted_at.is_(None),
        )
        if label is not None:
            query = query.where(Block.label == label)
        async with self._sessions() as session:
            return list(await session.scalars(query.order_by(Block.scope, Block.label).limit(MAX_BLOCKS)))

    async def get(self, actor: Actor, block_id: str) -> Block:
        async with self._sessions() as session:
            block = await session.get(Block, block_id)
        if (
            block is None
            or block.is_deleted
            or block.organization_id != actor.organization_id
            or not actor.can_read(block.scope)
        ):
            raise NotFoundError(f"Block {block_id} not found")
        return block

    async def upsert(self, actor: Actor, data: BlockIn, user_id: str | None) -> Block:
        """Create a block in the caller's write scope, or update one the caller may write."""
        scope = actor.require_write_scope()
        if len(data.value) > data.limit:
            raise UnprocessableError(f"Block value is {len(data.value)} characters, above its limit of {data.limit}")
        user_id = user_id or data.user_id
        async with self._sessions.begin() as session:
            if user_id is not None:
                user = await session.get(User, (actor.organization_id, user_id))
                if user is None or user.is_deleted:
                    raise NotFoundError(f"User {user_id} not found")
            block = await session.get(Block, data.id, with_for_update=True) if data.id else None
            if block is not None:
                if block.is_deleted or block.organization_id != actor.organization_id or block.scope != scope:
                    raise NotFoundError(f"Block {data.id} not found")
                block.label, block.value, block.limit = data.label, data.value, data.limit
                block.last_updated_by_id = actor.client_id
            else:
                tags = {k: v for k, v in (data.filter_tags or {}).items() if k != "scope"}
                block = Block(
                    id=data.id or new_id("block"),
                    organization_id=actor.organization_id,
                    user_id=user_id,
                    scope=scope,
                    label=data.label,
                    value=data.value,
                    limit=data.limit,
                    filter_tags=tags,
                    created_by_id=actor.client_id,
                    last_updated_by_id=actor.client_id,
                )
                session.add(block)
        await self.forget(block.organization_id, block.user_id)
        return block

    async def delete(self, actor: Actor, block_id: str) -> None:
        async with self._sessions.begin() as session:
            block = await session.get(Block, block_id, with_for_update=True)
            if (
                block is None
                or block.is_deleted
                or block.organization_id != actor.organization_id
                or block.scope != actor.write_scope
            ):
                raise NotFoundError(f"Block {block_id} not found")
            block.deleted_at = utcnow()
        await self.forget(block.organization_id, block.user_id)

    # --- per-user core memory --------------------------------------------------------------------

    async def for_user(
        self, actor: Actor, user_id: str | None, *, limit: int = MAX_BLOCKS, tags: Any = None
    ) -> list[Block]:
        """Blocks of one user (or, with ``user_id=None``, every user of the organization) in the
        caller's read scopes, optionally narrowed by a filter on their tags."""
        from mirix.search.filters import compile_filter_tags

        if user_id is not None and not tags:
            # Read on every retrieval: one cache entry per user holds the blocks of all scopes.
            blocks = await self._user_blocks(actor.organization_id, user_id)
            if blocks is not None:
                return [b for b in blocks if b.scope in actor.read_scopes][:limit]
        query = select(Block).where(
            Block.organization_id == actor.organization_id,
            Block.scope.in_(actor.read_scopes),
            Block.deleted_at.is_(None),
        )
        query = (
            query.where(Block.user_id == user_id) if user_id is not None else query.where(Block.user_id.is_not(None))
        )
        condition = compile_filter_tags(Block.filter_tags, tags, self._dialect) if tags else None
        if condition is not None:
            query = query.where(condition)
        async with self._sessions() as session:
            return list(await session.scalars(query.order_by(Block.scope, Block.label, Block.id).limit(limit)))

    async def _user_blocks(self, org_id: str, user_id: str) -> list[Block] | None:
        """Every live block of the user in (scope, label, id) order, or None if there are too many to cache."""
        if not self._cache.enabled(BLOCKS):
            return None
        key = f"{org_id}:{user_id}"
        cached = await self._cache.get(BLOCKS, key)
        if cached is not None:
            return [load_row(Block, row) for row in cached]
        query = select(Block).where(
            Block.organization_id == org_id, Block.user_id == user_id, Block.deleted_at.is_(None)
        )
        async with self._sessions() as session:
            blocks = list(
                await session.scalars(query.order_by(Block.scope, Block.label, Block.id).limit(MAX_BLOCKS + 1))
            )
        if len(blocks) > MAX_BLOCKS:
            return None
        await self._cache.add(BLOCKS, key, [dump_row(b) for b in blocks])
        return blocks

    async def ensure_from_templates(
        self, actor: Actor, user_id: str, block_filter_tags: dict | None = None
    ) -> list[Block]:
        """Give the user copies of the write scope's template blocks, the first time only."""
        scope = actor.require_write_scope()
        extra = {k: v for k, v in (block_filter_tags or {}).items() if k != "scope"}
        # Read first, the user's blocks and the templates in one query: after the first time (or when
        # the scope has no templates) this is all there is to do, and a read needs no write
        # transaction (on SQLite, one writer at a time). Checked again under the write transaction,
        # in case a concurrent job copied the templates meanwhile.
        params = {"org": actor.organization_id, "scope": scope, "user": user_id}
        async with self._sessions() as session:
            found = list(await session.scalars(_MINE_OR_TEMPLATES, params))
        owned = [block for block in found if block.user_id is not None]
        if owned or not found:
            return owned
        async with self._sessions.begin() as session:
            await UserManager.ensure(session, actor.organization_id, user_id)
            templates = list(await session.scalars(_MINE_OR_TEMPLATES, params))
            owned = [block for block in templates if block.user_id is not None]
            if owned:
                return owned
            copies = [
                Block(
                    id=new_id("block"),
                    organization_id=actor.organization_id,
                    user_id=user_id,
                    scope=scope,
                    label=t.label,
                    value=t.value,
                    limit=t.limit,
                    filter_tags={**(t.filter_tags or {}), **extra},
                    created_by_id=actor.client_id,
                    last_updated_by_id=actor.client_id,
                )
                for t in templates
            ]
            session.add_all(copies)
        if copies:
            await self.forget(actor.organization_id, user_id)
        return copies

    async def apply_filter_tags(self, actor: Actor, user_id: str, tags: dict, mode: str) -> int:
        """Apply ``block_filter_tags`` to the user's blocks in the write scope; returns how many changed.

        ``merge`` adds and overwrites keys; ``replace`` swaps the whole set. The scope is never a
        tag here, so it cannot be changed this way."""
        if mode not in ("merge", "replace"):
            raise UnprocessableError("block_filter_tags_update_mode must be 'merge' or 'replace'")
        scope = actor.require_write_scope()
        tags = {k: v for k, v in tags.items() if k != "scope"}
        changed = 0
        async with self._sessions.begin() as session:
            blocks = await session.scalars(
                select(Block).where(
                    Block.organization_id == actor.organization_id,
                    Block.user_id == user_id,
                    Block.scope == scope,
                    Block.deleted_at.is_(None),
                )
            )
            for block in blocks:
                new = {**(block.filter_tags or {}), **tags} if mode == "merge" else dict(tags)
                if new != (block.filter_tags or {}):
                    block.filter_tags = new
                    block.last_updated_by_id = actor.client_id
                    changed += 1
        if changed:
            await self.forget(actor.organization_id, user_id)
        return changed
