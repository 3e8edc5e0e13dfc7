"""Nearest-neighbour search for SQLite: the vectors of one user and memory type, held in memory.

SQLite has no vector index here (the sqlite-vec extension cannot be loaded into every Python
build), and scanning blobs through a Python function costs ~40 ms per 10k rows. Instead the
vectors of a (user, type, model) are loaded once into a float32 matrix, with int8 codes of each
row that a query scans before scoring the rows left in float32 (``mirix.search.quantized``: the
result is exactly that of a float32 scan, at a quarter of the memory traffic). Before each use a
cheap indexed query (the highest row id of those embeddings) tells whether vectors were added
since — also by another process — and only the new rows are read and appended; a new vector for a
memory already held (an update) replaces the old one. Vectors removed since only yield candidates
that the caller's SQL filter then drops, so results are never stale. Entries are evicted
least-recently-used by size.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import LargeBinary, Select, bindparam, func, select, type_coerce
from sqlalchemy.ext.asyncio import AsyncSession

from mirix.db.models.memory import MemoryEmbedding
from mirix.search.quantized import Query, best, quantize, scan
from mirix.search.snapshots import MarkerQuery, SnapshotCache

if TYPE_CHECKING:
    import numpy as np

#: Above this many rows the scan of the codes moves off the event loop (32k rows of 384 int8
#: dimensions take ~0.55 ms). Below it the loop scans itself: under load a hand-off to a worker
#: thread and back (wake-ups, GIL transfers) cost the server ~0.5 ms of CPU, more than the scan ...
INLINE_ROWS = 32768
#: ... split into slices of at least this many rows, one per core: the scan is memory-bound and
#: releases the GIL, so slices scanned side by side in worker threads finish sooner.
SLICE_ROWS = 32768
#: Picking the best rows out of the scores stays on the event loop up to this many rows (~0.1 ms).
RANK_INLINE_ROWS = 65536
_CORES = max(1, min(4, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1))


@dataclass(frozen=True)
class VectorKey:
    organization_id: str
    user_id: str | None  # None: the whole organization
    kind: str
    model: str


@dataclass(frozen=True)
class _Entry:
    """A snapshot: ``buffer[:size]`` are the vectors, row ``i`` for field ``fields[i]`` of memory
    ``ids[i]``; ``codes`` and ``table`` hold their int8 codes (``mirix.search.quantized``).
    Appending writes past ``size`` into the same buffers and makes a new snapshot, so a search
    running on an older one is undisturbed."""

    marker: int  # the highest embedding row id read
    ids: list[str]
    fields: np.ndarray  # int8, an index into field_names
    field_names: tuple[str, ...]
    buffer: np.ndarray
    codes: np.ndarray  # int8, shaped like buffer
    table: np.ndarray  # float32, (3, len(buffer))
    size: int

    @property
    def matrix(self) -> np.ndarray:
        return self.buffer[: self.size]

    @property
    def nbytes(self) -> int:
        arrays = self.buffer.nbytes + self.codes.nbytes + self.table.nbytes + self.fields.nbytes
        return int(arrays + 100 * len(self.ids))


def limit_blas_threads() -> None:
    """One BLAS thread per process: a matrix-vector product over a few hundred thousand rows is
    memory-bound, and OpenBLAS's extra threads spin-wait on the other cores, roughly doubling the
    CPU a search costs while other requests need those cores."""
    import numpy  # noqa: F401 - threadpoolctl limits only libraries already loaded
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1, user_api="blas")


class VectorCache(SnapshotCache[VectorKey, _Entry]):
    def __init__(self, max_bytes: int = 256 * 1024 * 1024) -> None:
        super().__init__(max_bytes)
        self._statements: dict[tuple[bool, str], Select[Any]] = {}

    def _where(self, key: VectorKey) -> list:
        e = MemoryEmbedding
        conditions = [e.organization_id == key.organization_id, e.kind == key.kind, e.model == key.model]
        if key.user_id is not None:
            conditions.append(e.user_id == key.user_id)
        return conditions

    def marker_query(self, key: VectorKey, source: object = None) -> MarkerQuery:
        # The highest row id alone is an O(log n) index lookup and changes with every new vector
        # (ids are never reused: the table is AUTOINCREMENT on SQLite). One statement per memory
        # type, with the type in it, so the markers of several types can be read in one statement.
        by_user = key.user_id is not None
        statement = self._statements.get((by_user, key.kind))
        if statement is None:
            e = MemoryEmbedding
            conditions = [
                e.organization_id == bindparam("vec_org"),
                e.kind == key.kind,
                e.model == bindparam("vec_model"),
            ]
            if by_user:
                conditions.append(e.user_id == bindparam("vec_user"))
            statement = self._statements[(by_user, key.kind)] = select(func.max(e.id)).where(*conditions)
        params = {"vec_org": key.organization_id, "vec_model": key.model}
        if by_user:
            params["vec_user"] = key.user_id
        return MarkerQuery(statement, params)

    async def _read(
        self, session: AsyncSession, key: VectorKey, source: object, entry: _Entry | None, marker: int
    ) -> _Entry | None:
        """``entry`` plus the vectors added after it (all of them without an entry)."""
        import numpy as np

        e = MemoryEmbedding
        after = entry.marker if entry is not None else 0
        rows = (
            await session.execute(
                select(e.id, e.memory_id, e.field, e.dim, type_coerce(e.vector, LargeBinary))
                .where(*self._where(key), e.id > after)
                .order_by(e.id)
            )
        ).all()
        if not rows:
            return entry
        dims = {dim for *_, dim, _ in rows}
        dim = dims.pop() if len(dims) == 1 else 0
        if dim == 0 or (entry is not None and entry.size and dim != entry.buffer.shape[1]):
            return None  # mixed dimensions under one model name: nothing sensible to compare
        max_id = int(rows[-1][0])
        latest = {(memory_id, field): blob for _, memory_id, field, _, blob in rows}  # the newest per field
        names = list(entry.field_names) if entry is not None else []
        for _, field in latest:
            if field not in names:
                names.append(field)
        new_ids = [memory_id for memory_id, _ in latest]
        new_fields = np.array([names.index(field) for _, field in latest], dtype=np.int8)
        new = np.frombuffer(b"".join(latest.values()), dtype=np.float32).reshape(len(new_ids), dim)
        if entry is None or entry.size == 0:
            codes, table = np.empty(new.shape, dtype=np.int8), np.empty((3, len(new)), dtype=np.float32)
            quantize(new, codes, table)
            return _Entry(max_id, new_ids, new_fields, tuple(names), new.copy(), codes, table, len(new_ids))
        replaced = {(memory_id, names.index(field)) for memory_id, field in latest}
        old = list(zip(entry.ids, entry.fields.tolist(), strict=True))
        if not replaced.isdisjoint(old):  # updated memories: drop their old vectors (costs one compaction)
            keep = [i for i, pair in enumerate(old) if pair not in replaced]
            entry = _Entry(
                entry.marker,
                [entry.ids[i] for i in keep],
                entry.fields[keep],
                entry.field_names,
                entry.matrix[keep],
                entry.codes[keep],
                entry.table[:, keep],
                len(keep),
            )
        size = entry.size + len(new_ids)
        buffer, codes, table = entry.buffer, entry.codes, entry.table
        if size > len(buffer):  # grow geometrically so appending one vector at a time stays cheap
            capacity = max(size, len(buffer) * 3 // 2)
            buffer = np.empty((capacity, dim), dtype=np.float32)
            codes = np.empty((capacity, dim), dtype=np.int8)
            table = np.empty((3, capacity), dtype=np.float32)
            buffer[: entry.size], codes[: entry.size] = entry.matrix, entry.codes[: entry.size]
            table[:, : entry.size] = entry.table[:, : entry.size]
        buffer[entry.size : size] = new
        quantize(new, codes[entry.size : size], table[:, entry.size : size])
        fields = np.concatenate([entry.fields, new_fields])
        return _Entry(max_id, [*entry.ids, *new_ids], fields, tuple(names), buffer, codes, table, size)

    async def nearest(
        self,
        session: AsyncSession,
        key: VectorKey,
        query: list[float],
        k: int,
        field: str | None = None,
        *,
        marker: int | None = None,
    ) -> list[tuple[str, float]]:
        """Up to ``k`` (memory id, cosine similarity) pairs, most similar first: of ``field``'s
        vectors, or the best field of each memory when ``field`` is None."""
        return await self.rank(await self.current(session, key, marker=marker), query, k, field)

    async def rank(
        self, entry: _Entry | None, query: list[float], k: int, field: str | None = None
    ) -> list[tuple[str, float]]:
        """``nearest`` on a snapshot already at hand (it needs no session)."""
        import numpy as np

        if entry is None or not entry.size or entry.buffer.shape[1] != len(query):
            return []
        if field is not None and field not in entry.field_names:
            return []
        probe = Query(np.asarray(query, dtype=np.float32))
        size, ids = entry.size, entry.ids
        rows = np.flatnonzero(entry.fields == entry.field_names.index(field)) if field is not None else None
        per_memory = 1 if field is not None else len(entry.field_names)

        def rank(dots: np.ndarray) -> list[tuple[str, float]]:
            # Each memory has at most one row per field, so this many rows hold k distinct memories.
            found: dict[str, float] = {}
            top, scores = best(entry.matrix, entry.table[:, :size], dots, probe, k * per_memory, rows)
            for i, score in zip(top.tolist(), scores.tolist(), strict=True):
                if len(found) == k:
                    break
                found.setdefault(ids[i], score)
            return list(found.items())

        dots = np.empty(size, dtype=np.float32)
        codes = entry.codes[:size]
        if size <= INLINE_ROWS:
            scan(codes, probe, dots)
            return rank(dots)
        loop = asyncio.get_running_loop()
        # The slices are awaited from the event loop, never from a worker thread: a worker waiting
        # on other workers could exhaust the pool.
        await asyncio.gather(
            *(
                loop.run_in_executor(None, scan, codes[part], probe, dots[part])
                for part in _slices(size, SLICE_ROWS, _CORES)
            )
        )
        if size <= RANK_INLINE_ROWS:
            return rank(dots)
        return await loop.run_in_executor(None, rank, dots)


def _slices(rows: int, min_rows: int, cores: int) -> list[slice]:
    """Up to ``cores`` contiguous slices of about equal size, none under ``min_rows`` (except a lone one)."""
    count = max(1, min(cores, rows // min_rows))
    step = -(-rows // count)
    return [slice(start, min(start + step, rows)) for start in range(0, rows, step)]
