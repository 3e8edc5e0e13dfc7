"""Nearest-neighbour search for SQLite: the vectors of one user and field, held in memory.

SQLite has no vector index here (the sqlite-vec extension cannot be loaded into every Python
build), and scanning blobs through a Python function costs ~40 ms per 10k rows. Instead the
vectors of a (user, type, field, model) are loaded once into a float32 matrix and a query is one
matrix product. Before each use a cheap indexed query (the highest row id of those embeddings)
tells whether vectors were added since — also by another process; vectors removed since only
yield candidates that the caller's SQL filter then drops, so results are never stale. Entries
are evicted least-recently-used by size.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import LargeBinary, func, select, type_coerce
from sqlalchemy.ext.asyncio import AsyncSession

from mirix.db.models.memory import MemoryEmbedding

if TYPE_CHECKING:
    import numpy as np

#: Above this many rows the matrix product moves off the event loop.
INLINE_ROWS = 4096


@dataclass(frozen=True)
class VectorKey:
    organization_id: str
    user_id: str | None  # None: the whole organization
    kind: str
    field: str
    model: str


@dataclass
class _Entry:
    stamp: tuple[int, int]
    ids: list[str]
    matrix: np.ndarray

    @property
    def nbytes(self) -> int:
        return int(self.matrix.nbytes)


class VectorCache:
    def __init__(self, max_bytes: int = 256 * 1024 * 1024) -> None:
        self._max_bytes = max_bytes
        self._entries: OrderedDict[VectorKey, _Entry] = OrderedDict()
        self._bytes = 0
        self.loads = 0

    def _where(self, key: VectorKey) -> list:
        e = MemoryEmbedding
        conditions = [
            e.organization_id == key.organization_id,
            e.kind == key.kind,
            e.field == key.field,
            e.model == key.model,
        ]
        if key.user_id is not None:
            conditions.append(e.user_id == key.user_id)
        return conditions

    async def _entry(self, session: AsyncSession, key: VectorKey) -> _Entry:
        import numpy as np

        e = MemoryEmbedding
        # The highest row id alone is an O(log n) index lookup and changes with every new vector; vectors
        # removed since loading only yield candidates that the caller's SQL then finds gone.
        max_id = (await session.execute(select(func.max(e.id)).where(*self._where(key)))).scalar()
        stamp = (0, int(max_id or 0))
        entry = self._entries.get(key)
        if entry is not None and entry.stamp == stamp:
            self._entries.move_to_end(key)
            return entry
        rows = (
            await session.execute(
                select(e.memory_id, e.dim, type_coerce(e.vector, LargeBinary)).where(*self._where(key)).order_by(e.id)
            )
        ).all()
        dims = {dim for _, dim, _ in rows}
        dim = dims.pop() if len(dims) == 1 else 0
        ids = [memory_id for memory_id, _, _ in rows]
        matrix = (
            np.frombuffer(b"".join(blob for _, _, blob in rows), dtype=np.float32).reshape(len(rows), dim)
            if rows and dim
            else np.zeros((0, 0), dtype=np.float32)
        )
        self._store(key, _Entry(stamp, ids, matrix))
        self.loads += 1
        return self._entries[key]

    def _store(self, key: VectorKey, entry: _Entry) -> None:
        old = self._entries.pop(key, None)
        if old is not None:
            self._bytes -= old.nbytes
        self._entries[key] = entry
        self._bytes += entry.nbytes
        while self._bytes > self._max_bytes and len(self._entries) > 1:
            _, evicted = self._entries.popitem(last=False)
            self._bytes -= evicted.nbytes

    async def nearest(
        self, session: AsyncSession, key: VectorKey, query: list[float], k: int
    ) -> list[tuple[str, float]]:
        """Up to ``k`` (memory id, cosine similarity) pairs, most similar first."""
        import numpy as np

        entry = await self._entry(session, key)
        if not entry.ids or entry.matrix.shape[1] != len(query):
            return []
        q = np.asarray(query, dtype=np.float32)

        def rank() -> list[tuple[str, float]]:
            scores = entry.matrix @ q
            top = min(k, len(scores))
            best = np.argpartition(-scores, top - 1)[:top]
            best = best[np.argsort(-scores[best])]
            return [(entry.ids[i], float(scores[i])) for i in best]

        if len(entry.ids) <= INLINE_ROWS:
            return rank()
        return await asyncio.get_running_loop().run_in_executor(None, rank)
