"""One manager for every memory type: writes with history and embeddings, reads by id.

Which fields a type has, which are embedded and which are searchable comes from its
``MemoryKind`` declaration; nothing here is written per type.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from mirix.db.base import new_id
from mirix.db.models.memory import MemoryEmbedding, MemoryHistory, MemoryMixin
from mirix.db.types import utcnow
from mirix.errors import NotFoundError
from mirix.services.actor import Actor
from mirix.services.base import Manager
from mirix.services.memory.kinds import MemoryKind
from mirix.services.users import UserManager


def snapshot(kind: MemoryKind, row: MemoryMixin) -> dict[str, Any]:
    """The caller-visible state of a row, as stored in the history table."""
    state = {field: getattr(row, field) for field in kind.fields}
    state.update(scope=row.scope, filter_tags=dict(row.filter_tags or {}), occurred_at=row.occurred_at.isoformat())
    return state


def normalise(vector: Sequence[float]) -> list[float]:
    """Unit length, so cosine similarity is a dot product (some providers return other lengths)."""
    import numpy as np

    values = np.asarray(vector, dtype=np.float64)
    norm = math.sqrt(float(values @ values)) or 1.0
    return (values / norm).tolist()


class MemoryManager(Manager):
    def __init__(self, sessions, embedder: Any | None) -> None:
        super().__init__(sessions)
        #: Anything with ``model``, ``dim`` and ``async embed(texts)``; None stores no vectors.
        self.embedder = embedder

    # --- embeddings ----------------------------------------------------------------------------

    async def vectors(self, kind: MemoryKind, items: Sequence[Any], fields: Sequence[str]) -> list[dict[str, list]]:
        """Vectors for ``fields`` of every item, computed in one batched call."""
        return (await self.vectors_many([(kind, items, fields)]))[0]

    async def vectors_many(
        self, requests: Sequence[tuple[MemoryKind, Sequence[Any], Sequence[str]]]
    ) -> list[list[dict[str, list]]]:
        """Like ``vectors`` for several types at once — still one request to the embedding model."""
        results: list[list[dict[str, list]]] = [[{} for _ in items] for _, items, _ in requests]
        if self.embedder is None:
            return results
        wanted = [
            (r, i, field, text)
            for r, (kind, items, fields) in enumerate(requests)
            for i, item in enumerate(items)
            for field in fields
            if kind.text_of(item, field).strip() and (text := kind.embedding_text(item, field))
        ]
        if not wanted:
            return results
        # Identical texts (a summary that equals its details, say) are embedded once.
        unique = list(dict.fromkeys(text for *_, text in wanted))
        by_text = dict(zip(unique, await self.embedder.embed(unique), strict=True))
        for r, i, field, text in wanted:
            results[r][i][field] = normalise(by_text[text])
        return results

    def _embedding_rows(self, kind: MemoryKind, row: MemoryMixin, vectors: dict[str, list]) -> list[MemoryEmbedding]:
        return [
            MemoryEmbedding(
                memory_id=row.id,
                kind=kind.name,
                field=field,
                organization_id=row.organization_id,
                user_id=row.user_id,
                model=self.embedder.model,
                dim=len(vector),
                vector=vector,
            )
            for field, vector in vectors.items()
        ]

    # --- writes --------------------------------------------------------------------------------

    async def insert_many(
        self,
        actor: Actor,
        kind: MemoryKind,
        user_id: str,
        items: Sequence[dict[str, Any]],
        *,
        job_id: str | None = None,
        filter_tags: dict[str, Any] | None = None,
    ) -> list[MemoryMixin]:
        """Insert items (field dicts, optionally with ``occurred_at``, ``filter_tags`` and ``id``)
        for one user in the caller's write scope."""
        actor.require_write_scope()
        vectors = await self.vectors(kind, items, kind.embedded_fields)
        async with self._sessions.begin() as session:
            await UserManager.ensure(session, actor.organization_id, user_id)
            return await self.stage_inserts(session, actor, kind, user_id, items, vectors, job_id, filter_tags)

    async def stage_inserts(
        self,
        session: AsyncSession,
        actor: Actor,
        kind: MemoryKind,
        user_id: str,
        items: Sequence[dict[str, Any]],
        vectors: Sequence[dict[str, list]],
        job_id: str | None = None,
        filter_tags: dict[str, Any] | None = None,
    ) -> list[MemoryMixin]:
        """Add rows, their vectors and history to ``session`` (the caller commits)."""
        scope = actor.require_write_scope()
        rows: list[MemoryMixin] = []
        for item in items:
            tags = {**(filter_tags or {}), **(item.get("filter_tags") or {})}
            tags.pop("scope", None)
            row = kind.model(
                id=item.get("id") or new_id(kind.id_prefix),
                organization_id=actor.organization_id,
                user_id=user_id,
                client_id=actor.client_id,
                scope=scope,
                filter_tags=tags,
                occurred_at=item.get("occurred_at") or utcnow(),
                job_id=job_id,
                **{field: item[field] for field in kind.fields if field in item},
            )
            session.add(row)
            rows.append(row)
        await session.flush()
        for row, item_vectors in zip(rows, vectors, strict=True):
            session.add_all(self._embedding_rows(kind, row, item_vectors))
            session.add(self._history(kind, row, "insert", None, snapshot(kind, row), job_id, actor))
        return rows

    async def update(
        self,
        actor: Actor,
        kind: MemoryKind,
        memory_id: str,
        changes: dict[str, Any],
        *,
        user_id: str | None = None,
        job_id: str | None = None,
        operation: str = "update",
    ) -> MemoryMixin:
        """Change fields of an item the caller may write; the old state goes to the history."""
        async with self._sessions() as session:
            current = await self._writable(session, actor, kind, memory_id, user_id)
        vectors = await self.update_vectors(kind, current, changes)
        async with self._sessions.begin() as session:
            return await self.stage_update(
                session, actor, kind, memory_id, changes, vectors, user_id=user_id, job_id=job_id, operation=operation
            )

    async def update_vectors(self, kind: MemoryKind, current: Any, changes: dict[str, Any]) -> dict[str, list]:
        """Vectors for the embedded fields an update changes (none when the text stays the same)."""
        merged = {
            field: changes.get(field) if changes.get(field) is not None else getattr(current, field)
            for field in kind.fields
        }
        context = kind.embedding_context_field
        context_changed = context is not None and changes.get(context) not in (None, getattr(current, context))
        changed = [
            f
            for f in kind.embedded_fields
            if context_changed or (changes.get(f) is not None and changes[f] != getattr(current, f))
        ]
        return (await self.vectors(kind, [merged], changed))[0]

    async def stage_update(
        self,
        session: AsyncSession,
        actor: Actor,
        kind: MemoryKind,
        memory_id: str,
        changes: dict[str, Any],
        vectors: dict[str, list],
        *,
        user_id: str | None = None,
        job_id: str | None = None,
        operation: str = "update",
    ) -> MemoryMixin:
        changes = {field: value for field, value in changes.items() if value is not None}
        row = await self._writable(session, actor, kind, memory_id, user_id, lock=True)
        before = snapshot(kind, row)
        for field, value in changes.items():
            if field in kind.fields or field in ("occurred_at", "filter_tags"):
                setattr(row, field, value)
        row.updated_at = utcnow()
        if vectors:
            await session.execute(
                delete(MemoryEmbedding).where(MemoryEmbedding.memory_id == row.id, MemoryEmbedding.field.in_(vectors))
            )
            session.add_all(self._embedding_rows(kind, row, vectors))
        session.add(self._history(kind, row, operation, before, snapshot(kind, row), job_id, actor))
        return row

    async def delete(
        self,
        actor: Actor,
        kind: MemoryKind,
        memory_id: str,
        *,
        user_id: str | None = None,
        job_id: str | None = None,
    ) -> None:
        """Soft-delete an item the caller may write (and, with ``user_id``, only if it is that user's)."""
        async with self._sessions.begin() as session:
            await self.stage_delete(session, actor, kind, memory_id, user_id=user_id, job_id=job_id)

    async def stage_delete(
        self,
        session: AsyncSession,
        actor: Actor,
        kind: MemoryKind,
        memory_id: str,
        *,
        user_id: str | None = None,
        job_id: str | None = None,
        operation: str = "delete",
    ) -> None:
        """Soft-delete: the row leaves every read but stays, with its history, for recovery."""
        row = await self._writable(session, actor, kind, memory_id, user_id, lock=True)
        row.deleted_at = utcnow()
        session.add(self._history(kind, row, operation, snapshot(kind, row), None, job_id, actor))

    @staticmethod
    async def purge(
        session: AsyncSession, kinds: Iterable[MemoryKind], where: Callable[[type[MemoryMixin]], list[Any]]
    ) -> int:
        """Hard-delete the rows ``where(model)`` selects in every kind's table, with their vectors
        and history (a purge is for data that must be gone, e.g. a user's right to erasure)."""
        removed = 0
        for kind in kinds:
            ids = select(kind.model.id).where(*where(kind.model))
            await session.execute(delete(MemoryEmbedding).where(MemoryEmbedding.memory_id.in_(ids)))
            await session.execute(delete(MemoryHistory).where(MemoryHistory.memory_id.in_(ids)))
            result = await session.execute(delete(kind.model).where(kind.model.id.in_(ids)))
            removed += result.rowcount or 0
        return removed

    # --- reads ---------------------------------------------------------------------------------

    async def get(self, actor: Actor, kind: MemoryKind, memory_id: str, user_id: str | None = None) -> MemoryMixin:
        async with self._sessions() as session:
            row = await session.get(kind.model, memory_id)
        if not self._readable(actor, row, user_id):
            raise NotFoundError(f"{kind.name.replace('_', ' ').capitalize()} memory {memory_id} not found")
        return row

    async def history(
        self, actor: Actor, kind: MemoryKind, memory_id: str, user_id: str | None = None
    ) -> list[MemoryHistory]:
        await self.get(actor, kind, memory_id, user_id)
        async with self._sessions() as session:
            rows = await session.scalars(
                select(MemoryHistory).where(MemoryHistory.memory_id == memory_id).order_by(MemoryHistory.id)
            )
            return list(rows)

    async def recent(
        self,
        actor: Actor,
        kind: MemoryKind,
        user_id: str,
        limit: int,
        *,
        scoped: bool = True,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> list[MemoryMixin]:
        model = kind.model
        query = select(model).where(*self.owner_conditions(actor, kind, user_id, scoped=scoped))
        if start is not None:
            query = query.where(model.occurred_at >= start)
        if end is not None:
            query = query.where(model.occurred_at < end)
        async with self._sessions() as session:
            return list(await session.scalars(query.order_by(model.occurred_at.desc(), model.id).limit(limit)))

    async def count(self, actor: Actor, kind: MemoryKind, user_id: str, *, scoped: bool = True) -> int:
        query = (
            select(func.count())
            .select_from(kind.model)
            .where(*self.owner_conditions(actor, kind, user_id, scoped=scoped))
        )
        async with self._sessions() as session:
            return int(await session.scalar(query) or 0)

    # --- confinement ---------------------------------------------------------------------------

    @staticmethod
    def owner_conditions(actor: Actor, kind: MemoryKind, user_id: str | None, *, scoped: bool = True) -> list:
        model = kind.model
        conditions = [model.organization_id == actor.organization_id, model.deleted_at.is_(None)]
        if user_id is not None:
            conditions.append(model.user_id == user_id)
        if scoped:
            conditions.append(model.scope.in_(actor.read_scopes))
        return conditions

    @staticmethod
    def _readable(actor: Actor, row: MemoryMixin | None, user_id: str | None) -> bool:
        return (
            row is not None
            and row.deleted_at is None
            and row.organization_id == actor.organization_id
            and actor.can_read(row.scope)
            and (user_id is None or row.user_id == user_id)
        )

    async def _writable(
        self,
        session: AsyncSession,
        actor: Actor,
        kind: MemoryKind,
        memory_id: str,
        user_id: str | None,
        lock: bool = False,
    ) -> MemoryMixin:
        row = await session.get(kind.model, memory_id, with_for_update=lock)
        label = kind.name.replace("_", " ").capitalize()
        if not self._readable(actor, row, user_id):
            raise NotFoundError(f"{label} memory {memory_id} not found")
        if row.scope != actor.write_scope:
            # Visible through a read scope but not the caller's to change.
            raise NotFoundError(f"{label} memory {memory_id} not found in the caller's write scope")
        return row

    @staticmethod
    def _history(
        kind: MemoryKind,
        row: MemoryMixin,
        operation: str,
        before: dict | None,
        after: dict | None,
        job_id: str | None,
        actor: Actor,
    ) -> MemoryHistory:
        return MemoryHistory(
            memory_id=row.id,
            kind=kind.name,
            organization_id=row.organization_id,
            user_id=row.user_id,
            operation=operation,
            before=before,
            after=after,
            job_id=job_id,
            client_id=actor.client_id,
        )
