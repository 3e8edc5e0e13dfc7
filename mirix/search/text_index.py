"""BM25 for SQLite from an in-process inverted index of one user's memories of one type.

FTS5 computes ``bm25()`` for every row that matches any query term before it can order them:
~5 ms for a few hundred matches among 10k rows, growing with the number of rows. Here the postings
of an (organization, user, type) live in numpy arrays, and a query costs a few vector operations
over that user's rows. The scoring is FTS5's (Okapi BM25, k1 = 1.2, b = 0.75, weighted columns),
with statistics over the user's own memories.

The index is a snapshot (``mirix.search.snapshots``): every insert and every change of a row's
indexed text gives the row a new ``fts_rowid`` from a counter that only grows (migration 0004),
so the highest ``fts_rowid`` of the user's rows says whether anything changed, and only the rows
past it are read again. Changed rows are re-indexed under a new slot, deleted ones are marked
dead; the caller's SQL filter confirms every candidate, so a result is never stale.

New documents go into a small second segment, merged into the main one once it grows, so
indexing one new memory does not rewrite the postings of every term.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from sqlalchemy import Select, bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from mirix.db.search import FTS_DELETIONS
from mirix.search.snapshots import MarkerQuery, SnapshotCache
from mirix.search.text import stems

if TYPE_CHECKING:
    import numpy as np

    from mirix.services.memory.kinds import MemoryKind

K1 = 1.2
B = 0.75
#: Rows to index before the work moves off the event loop.
INLINE_ROWS = 256


@dataclass(frozen=True)
class TextKey:
    organization_id: str
    user_id: str
    kind: str


@dataclass(frozen=True)
class _Segment:
    """Postings grouped by term: term ``t``'s are at ``offsets[t]:offsets[t + 1]``."""

    terms: dict[str, int]
    offsets: np.ndarray  # int64, len(terms) + 1
    slots: np.ndarray  # int32: the document
    fields: np.ndarray  # int8: which of the type's text fields
    counts: np.ndarray  # float32: occurrences of the term in that field

    @property
    def size(self) -> int:
        return len(self.slots)

    @property
    def nbytes(self) -> int:
        arrays = self.offsets.nbytes + self.slots.nbytes + self.fields.nbytes + self.counts.nbytes
        return int(arrays + 100 * len(self.terms))

    def postings(self, term: str) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        t = self.terms.get(term)
        if t is None:
            return None
        lo, hi = self.offsets[t], self.offsets[t + 1]
        return self.slots[lo:hi], self.fields[lo:hi], self.counts[lo:hi]

    def term_ids(self) -> np.ndarray:
        import numpy as np

        return np.repeat(np.arange(len(self.terms), dtype=np.int64), np.diff(self.offsets))


def _group(
    terms: dict[str, int], term_ids: np.ndarray, slots: np.ndarray, fields: np.ndarray, counts: np.ndarray
) -> _Segment:
    """A segment from postings in any order (each (term, slot, field) at most once)."""
    import numpy as np

    order = np.lexsort((fields, slots, term_ids))
    term_ids = term_ids[order]
    offsets = np.searchsorted(term_ids, np.arange(len(terms) + 1, dtype=np.int64))
    return _Segment(terms, offsets, slots[order], fields[order], counts[order])


def _segment(documents: Sequence[tuple[int, Sequence[str]]], field_count: int) -> tuple[_Segment, dict[int, int]]:
    """Index ``(slot, field texts)`` pairs; also returns each slot's length in words."""
    import numpy as np

    terms: dict[str, int] = {}
    token_terms: list[int] = []
    token_docs: list[int] = []
    lengths: dict[int, int] = {}
    for slot, texts in documents:
        length = 0
        for field, text in enumerate(texts):
            words = stems(text)
            length += len(words)
            token_terms.extend(terms.setdefault(word, len(terms)) for word in words)
            token_docs.extend([slot * field_count + field] * len(words))
        lengths[slot] = length
    width = (max(lengths, default=0) + 1) * field_count
    keys = np.asarray(token_terms, dtype=np.int64) * width + np.asarray(token_docs, dtype=np.int64)
    unique, counts = np.unique(keys, return_counts=True)  # sorted by term, then slot, then field
    term_ids, doc_fields = np.divmod(unique, width)
    slots, fields = np.divmod(doc_fields, field_count)
    offsets = np.searchsorted(term_ids, np.arange(len(terms) + 1, dtype=np.int64))
    segment = _Segment(terms, offsets, slots.astype(np.int32), fields.astype(np.int8), counts.astype(np.float32))
    return segment, lengths


def _merge(a: _Segment, b: _Segment, alive: np.ndarray) -> _Segment:
    """One segment with the postings of both, dropping those of dead documents."""
    import numpy as np

    terms = dict(a.terms)
    remap = np.fromiter((terms.setdefault(term, len(terms)) for term in b.terms), dtype=np.int64, count=len(b.terms))
    term_ids = np.concatenate([a.term_ids(), remap[b.term_ids()]])
    slots = np.concatenate([a.slots, b.slots])
    keep = alive[slots]
    return _group(
        terms,
        term_ids[keep],
        slots[keep],
        np.concatenate([a.fields, b.fields])[keep],
        np.concatenate([a.counts, b.counts])[keep],
    )


@dataclass(frozen=True)
class _Index:
    marker: int  # read before the rows: every change after it has a higher number
    ids: list[str]  # slot -> memory id
    slots: dict[str, int]  # memory id -> its live slot
    scopes: list[str]  # slot -> the memory's scope
    alive: np.ndarray  # bool per slot
    lengths: np.ndarray  # float32 words per slot
    average_length: float  # over the live slots
    main: _Segment
    delta: _Segment | None

    @property
    def nbytes(self) -> int:
        delta = self.delta.nbytes if self.delta is not None else 0
        return int(self.main.nbytes + delta + self.alive.nbytes + self.lengths.nbytes + 150 * len(self.ids))

    @property
    def dead(self) -> int:
        return len(self.ids) - len(self.slots)

    def visible(self, memory_ids: Sequence[str], scopes: Sequence[str]) -> set[str]:
        """Those of ``memory_ids`` that exist, are not deleted and belong to one of ``scopes``."""
        allowed = set(scopes)
        found = ((memory_id, self.slots.get(memory_id)) for memory_id in memory_ids)
        return {memory_id for memory_id, slot in found if slot is not None and self.scopes[slot] in allowed}

    def top(self, terms: Sequence[str], weights: Sequence[float], k: int) -> list[tuple[str, float]]:
        """Up to ``k`` (memory id, BM25 score) pairs, best first; ``weights`` per text field (0 leaves
        a field out)."""
        import numpy as np

        n = len(self.ids)
        live = len(self.slots)
        if not live or k <= 0:
            return []
        field_weights = np.asarray(weights, dtype=np.float32)
        scores = np.zeros(n, dtype=np.float64)
        present = np.zeros(n, dtype=bool)
        for term in terms:
            found = [p for p in (self.main.postings(term), self.delta and self.delta.postings(term)) if p]
            if not found:
                continue
            frequency = sum(np.bincount(s, weights=field_weights[f] * c, minlength=n) for s, f, c in found)
            present[:] = False
            for s, _, _ in found:
                present[s] = True  # in any field, also one this search leaves out
            df = int(np.count_nonzero(present & self.alive))
            idf = max(math.log((live - df + 0.5) / (df + 0.5)), 1e-6)
            hit = np.flatnonzero(frequency)
            tf = frequency[hit]
            norm = K1 * (1 - B + B * self.lengths[hit] / self.average_length)
            scores[hit] += idf * tf * (K1 + 1) / (tf + norm)
        scores[~self.alive] = 0.0
        matched = np.flatnonzero(scores > 0)
        if len(matched) > k:
            matched = matched[np.argpartition(-scores[matched], k - 1)[:k]]
        best = matched[np.lexsort((matched, -scores[matched]))]
        return [(self.ids[i], float(scores[i])) for i in best]


def _build(rows: list[tuple], field_count: int, entry: _Index | None, marker: int) -> _Index | None:
    """``entry`` with ``rows`` (id, fts_rowid, deleted, scope, *texts — in fts_rowid order) folded in."""
    import numpy as np

    ids = list(entry.ids) if entry is not None else []
    slots = dict(entry.slots) if entry is not None else {}
    scopes = list(entry.scopes) if entry is not None else []
    changed = {row[0]: row for row in rows}  # the newest version of each row
    retired = [slots.pop(memory_id) for memory_id in changed if memory_id in slots]
    documents = []
    for memory_id, _, deleted, scope, *texts in changed.values():
        if not deleted:
            slots[memory_id] = len(ids)
            documents.append((len(ids), texts))
            ids.append(memory_id)
            scopes.append(scope)
    if not ids:
        return None
    segment, lengths = _segment(documents, field_count)
    alive = np.zeros(len(ids), dtype=bool)
    length = np.zeros(len(ids), dtype=np.float32)
    if entry is not None:
        alive[: len(entry.ids)] = entry.alive
        length[: len(entry.ids)] = entry.lengths
    alive[retired] = False
    alive[list(lengths)] = True
    length[list(lengths)] = list(lengths.values())
    average = float(length[alive].mean()) if slots else 0.0
    average = average or 1.0
    if entry is None:
        return _Index(marker, ids, slots, scopes, alive, length, average, segment, None)
    delta = segment if entry.delta is None else _merge(entry.delta, segment, alive)
    main = entry.main
    if delta.size * 8 > main.size:  # a large delta slows every query: fold it into the main segment
        main, delta = _merge(main, delta, alive), None
    return _Index(marker, ids, slots, scopes, alive, length, average, main, delta)


def _texts(kind: MemoryKind, values: Sequence) -> list[str]:
    item = dict(zip(kind.text_fields, values, strict=True))
    return [kind.text_of(item, f) for f in kind.text_fields]


class TextIndex(SnapshotCache[TextKey, _Index]):
    """The BM25 indexes of recently searched (organization, user, type) keys."""

    def __init__(self, max_bytes: int = 256 * 1024 * 1024) -> None:
        super().__init__(max_bytes)
        self._statements: dict[str, Select[Any]] = {}

    def marker_query(self, key: TextKey, kind: MemoryKind) -> MarkerQuery:
        """The highest counter value of the user's rows or of their latest deletion."""
        statement = self._statements.get(kind.name)
        if statement is None:
            model = kind.model
            rows = select(func.max(model.fts_rowid)).where(
                model.organization_id == bindparam("fts_org"), model.user_id == bindparam("fts_user")
            )
            deleted = self._deleted(kind).scalar_subquery()
            statement = select(func.max(func.coalesce(rows.scalar_subquery(), 0), func.coalesce(deleted, 0)))
            self._statements[kind.name] = statement
        return MarkerQuery(statement, {"fts_org": key.organization_id, "fts_user": key.user_id})

    @staticmethod
    def _deleted(kind: MemoryKind) -> Select[Any]:
        d = FTS_DELETIONS
        return select(d.c.seq).where(
            d.c.organization_id == bindparam("fts_org"),
            d.c.user_id == bindparam("fts_user"),
            d.c.table_name == kind.table,
        )

    async def _read(
        self, session: AsyncSession, key: TextKey, kind: MemoryKind, entry: _Index | None, marker: int
    ) -> _Index | None:
        model = kind.model
        if entry is not None and entry.dead * 3 > len(entry.ids):  # mostly stale slots: start over
            entry = None
        if entry is not None:  # rows deleted since cannot be read: start over
            params = {"fts_org": key.organization_id, "fts_user": key.user_id}
            deleted = (await session.execute(self._deleted(kind), params)).scalar()
            if deleted is not None and deleted > entry.marker:
                entry = None
        after = entry.marker if entry is not None else 0
        columns = [getattr(model, f) for f in kind.text_fields]
        result = await session.execute(
            select(model.id, model.fts_rowid, model.deleted_at.is_not(None), model.scope, *columns)
            .where(model.organization_id == key.organization_id, model.user_id == key.user_id, model.fts_rowid > after)
            .order_by(model.fts_rowid)
        )
        rows = [(*row[:4], *_texts(kind, row[4:])) for row in result]
        if not rows:
            return entry if entry is None else replace(entry, marker=marker)
        count = len(kind.text_fields)
        if len(rows) <= INLINE_ROWS:
            return _build(rows, count, entry, marker)
        # Tokenising thousands of rows is CPU work: keep the event loop answering meanwhile.
        return await asyncio.get_running_loop().run_in_executor(None, _build, rows, count, entry, marker)

    async def top(
        self,
        session: AsyncSession,
        key: TextKey,
        kind: MemoryKind,
        terms: Sequence[str],
        fields: Sequence[str],
        k: int,
        *,
        marker: int | None = None,
    ) -> list[tuple[str, float]]:
        """Up to ``k`` (memory id, score) pairs of ``key``'s memories matching ``terms`` (stems) in
        ``fields``, best first."""
        index = await self.current(session, key, kind, marker=marker)
        return index.top(terms, field_weights(kind, fields), k) if index is not None else []


def field_weights(kind: MemoryKind, fields: Sequence[str]) -> list[float]:
    """The type's BM25 weight of each text field, 0 for those not searched."""
    return [w if f in fields else 0.0 for f, w in zip(kind.text_fields, kind.text_weights, strict=True)]
