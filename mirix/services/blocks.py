"""Core-memory blocks, confined to the caller's organization and scopes.

A block with a user belongs to that user in one scope; a block without a user is a template
that is copied to users the first time they need it.
"""

from __future__ import annotations

from sqlalchemy import select

from mirix.db.base import new_id
from mirix.db.models import Block, User
from mirix.db.types import utcnow
from mirix.errors import NotFoundError, UnprocessableError
from mirix.schemas.agents import BlockIn
from mirix.services.actor import Actor
from mirix.services.base import Manager

MAX_BLOCKS = 200


def block_tags(block: Block) -> dict:
    """filter_tags as MIRIX shows them: the scope lives inside the tags."""
    return {**(block.filter_tags or {}), "scope": block.scope}


class BlockManager(Manager):
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
                return block
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
