"""Nearest-neighbour search for SQLite: the vectors of one user and field, held in memory.

SQLite has no vector index here (the sqlite-vec extension cannot be loaded into every Python
build), and scanning blobs through a Python function costs ~40 ms per 10k rows. Instead the
vectors of a (user, type, field, model) are loaded once into a float32 matrix and a query is one
matrix product. Before each use a cheap indexed query (the highest row id of those embeddings)
tells whether vectors were added since — also by another process — and only the new rows are
read and appended; a new vector for a memory already held (an update) replaces the old one.
Vectors removed since only yield candidates that the caller's SQL filter then drops, so results
are never stale. Entries are evicted least-recently-used by size.
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


@dataclass(frozen=True)
class _Entry:
    """A snapshot: ``buffer[:size]`` are the vectors of ``ids``. Appending writes past ``size`` into
    the same buffer and makes a new snapshot, so a product running on an older one is undisturbed."""

    max_id: int
    ids: list[str]
    buffer: np.ndarray
    size: int

    @property
    def matrix(self) -> np.ndarray:
        return self.buffer[: self.size]

    @property
    def nbytes(self) -> int:
        return int(self.buffer.nbytes)


def limit_blas_threads() -> None:
    """One BLAS thread per process: a matrix-vector product over a few hundred thousand rows is
    memory-bound, and OpenBLAS's extra threads spin-wait on the other cores, roughly doubling the
    CPU a search costs while other requests need those cores."""
    import numpy  # noqa: F401 - threadpoolctl limits only libraries already loaded
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1, user_api="blas")


class VectorCache:
    def __init__(self, max_bytes: int = 256 * 1024 * 1024) -> None:
        self._max_bytes = max_bytes
        self._entries: OrderedDict[VectorKey, _Entry] = OrderedDict()
        self._locks: dict[VectorKey, asyncio.Lock] = {}
        self._bytes = 0
        self.loads = 0  # reads of vectors from the database (whole or only the new rows)

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

    async def _entry(self, session: AsyncSession, key: VectorKey) -> _Entry | None:
        e = MemoryEmbedding
        # The highest row id alone is an O(log n) index lookup and changes with every new vector.
        max_id = int((await session.execute(select(func.max(e.id)).where(*self._where(key)))).scalar() or 0)
        entry = self._entries.get(key)
        if entry is not None and entry.max_id == max_id:
            self._entries.move_to_end(key)
            return entry
        if max_id == 0:  # no vectors (any more)
            self._store(key, None)
            return None
        # One reader per key: requests arriving while a matrix loads wait for it instead of each
        # reading the same rows.
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            entry = self._entries.get(key)
            if entry is not None and entry.max_id >= max_id:
                return entry
            if entry is not None and max_id < entry.max_id:  # its newest rows were deleted: read it all again
                entry = None
            entry = await self._read(session, key, entry)
            self._store(key, entry)
            self.loads += 1
            return entry

    async def _read(self, session: AsyncSession, key: VectorKey, entry: _Entry | None) -> _Entry | None:
        """``entry`` plus the vectors added after it (all of them without an entry)."""
        import numpy as np

        e = MemoryEmbedding
        after = entry.max_id if entry is not None else 0
        rows = (
            await session.execute(
                select(e.id, e.memory_id, e.dim, type_coerce(e.vector, LargeBinary))
                .where(*self._where(key), e.id > after)
                .order_by(e.id)
            )
        ).all()
        if not rows:
            return entry
        dims = {dim for _, _, dim, _ in rows}
        dim = dims.pop() if len(dims) == 1 else 0
        if dim == 0 or (entry is not None and entry.size and dim != entry.buffer.shape[1]):
            return None  # mixed dimensions under one model name: nothing sensible to compare
        max_id = int(rows[-1][0])
        latest = {memory_id: blob for _, memory_id, _, blob in rows}  # one vector per memory: the newest
        new_ids = list(latest)
        new = np.frombuffer(b"".join(latest.values()), dtype=np.float32).reshape(len(new_ids), dim)
        if entry is None or entry.size == 0:
            return _Entry(max_id, new_ids, new.copy(), len(new_ids))
        replaced = set(new_ids).intersection(entry.ids)
        if replaced:  # updated memories: drop their old vectors (rare; costs one compaction)
            keep = [i for i, memory_id in enumerate(entry.ids) if memory_id not in replaced]
            entry = _Entry(entry.max_id, [entry.ids[i] for i in keep], entry.matrix[keep], len(keep))
        size = entry.size + len(new_ids)
        buffer = entry.buffer
        if size > len(buffer):  # grow geometrically so appending one vector at a time stays cheap
            buffer = np.empty((max(size, len(buffer) * 3 // 2), dim), dtype=np.float32)
            buffer[: entry.size] = entry.matrix
        buffer[entry.size : size] = new
        return _Entry(max_id, [*entry.ids, *new_ids], buffer, size)

    def _store(self, key: VectorKey, entry: _Entry | None) -> None:
        old = self._entries.pop(key, None)
        if old is not None:
            self._bytes -= old.nbytes
        if entry is None:
            self._locks.pop(key, None)
            return
        self._entries[key] = entry
        self._bytes += entry.nbytes
        while self._bytes > self._max_bytes and len(self._entries) > 1:
            evicted_key, evicted = self._entries.popitem(last=False)
            self._bytes -= evicted.nbytes
            self._locks.pop(evicted_key, None)

    async def nearest(
        self, session: AsyncSession, key: VectorKey, query: list[float], k: int
    ) -> list[tuple[str, float]]:
        """Up to ``k`` (memory id, cosine similarity) pairs, most similar first."""
        import numpy as np

        entry = await self._entry(session, key)
        if entry is None or not entry.size or entry.buffer.shape[1] != len(query):
            return []
        q = np.asarray(query, dtype=np.float32)
        matrix, ids = entry.matrix, entry.ids

        def rank() -> list[tuple[str, float]]:
            scores = matrix @ q
            top = min(k, len(scores))
            best = np.argpartition(-scores, top - 1)[:top]
            best = best[np.argsort(-scores[best])]
            return [(ids[i], float(scores[i])) for i in best]

        if entry.size <= INLINE_ROWS:
            return rank()
        return await asyncio.get_running_loop().run_in_executor(None, rank)
