"""In-process snapshots of database content, kept current by a cheap change marker.

The SQLite search indexes (vectors, BM25 postings) hold one snapshot per key in memory. Before a
snapshot is used, one indexed query reads the key's *marker*: a number that grows whenever the
key's rows change, also when another process changed them. An unchanged marker means the
snapshot is current; a higher one means only the rows past the old marker are read and folded in;
a lower one (the newest rows were deleted) means reading everything again. Snapshots are
immutable, so a search still running on an older one is undisturbed, and they are evicted
least-recently-used by size.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any, Generic, NamedTuple, Protocol, TypeVar

from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncSession


class MarkerQuery(NamedTuple):
    """A one-value query for a change marker: a statement built once per shape, and its values."""

    statement: Select[Any]
    params: dict[str, Any]


class Snapshot(Protocol):
    @property
    def marker(self) -> int: ...

    @property
    def nbytes(self) -> int: ...


K = TypeVar("K", bound=Hashable)
S = TypeVar("S", bound=Snapshot)


class SnapshotCache(ABC, Generic[K, S]):
    def __init__(self, max_bytes: int) -> None:
        self._max_bytes = max_bytes
        self._entries: OrderedDict[K, S] = OrderedDict()
        self._locks: dict[K, asyncio.Lock] = {}
        self._bytes = 0
        self.loads = 0  # reads from the database (whole or only the changed rows)

    @abstractmethod
    def marker_query(self, key: K, source: Any = None) -> MarkerQuery:
        """The query for the key's change marker (NULL or 0 when it has no rows). Public so a caller
        about to use several snapshots can read all their markers in one statement: the bound
        parameter names of different caches must differ, and a statement serving several keys may
        only take parameters whose values those keys share (the owner, not the memory type)."""

    @abstractmethod
    async def _read(self, session: AsyncSession, key: K, source: Any, entry: S | None, marker: int) -> S | None:
        """``entry`` with the rows changed after its marker folded in (all rows without an entry)."""

    async def current(
        self, session: AsyncSession, key: K, source: Any = None, *, marker: int | None = None
    ) -> S | None:
        """The up-to-date snapshot of ``key`` (``None`` when it has no rows). ``source`` is passed
        through to the subclass (what to read for this key); ``marker``, if the caller read it in
        this session already, saves the query."""
        if marker is None:
            statement, params = self.marker_query(key, source)
            marker = int((await session.execute(statement, params)).scalar() or 0)
        entry = self._entries.get(key)
        if entry is not None and entry.marker == marker:
            self._entries.move_to_end(key)
            return entry
        if marker == 0:
            self._store(key, None)
            return None
        # One reader per key: requests arriving while a snapshot loads wait for it instead of each
        # reading the same rows.
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            entry = self._entries.get(key)
            if entry is not None and entry.marker >= marker:
                return entry
            if entry is not None and marker < entry.marker:  # its newest rows were deleted: read it all
                entry = None
            entry = await self._read(session, key, source, entry, marker)
            self._store(key, entry)
            self.loads += 1
            return entry

    def _store(self, key: K, entry: S | None) -> None:
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
