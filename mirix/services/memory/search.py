"""Search over one or all memory types: BM25, embeddings, their fusion, substring and fuzzy match.

Every method applies the same confinement (organization, user, read scopes, not deleted), the
caller's ``filter_tags`` and the date range, inside the database query.
"""

from __future__ import annotations

import asyncio
import difflib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from mirix.db.engine import Sessions
from mirix.db.models.memory import MemoryEmbedding, MemoryMixin
from mirix.db.search import Owner, SqliteSearch, search_dialect
from mirix.errors import UnprocessableError
from mirix.search.filters import compile_filter_tags
from mirix.search.text import search_terms
from mirix.search.vector_cache import VectorCache, VectorKey
from mirix.services.actor import Actor
from mirix.services.memory.kinds import EPISODIC, MemoryKind
from mirix.services.memory.manager import MemoryManager, normalise

Method = Literal["bm25", "embedding", "hybrid", "string_match", "fuzzy_match"]
METHODS: tuple[str, ...] = ("bm25", "embedding", "hybrid", "string_match", "fuzzy_match")

FUZZY_CANDIDATES = 200


@dataclass(frozen=True)
class SearchQuery:
    query: str
    kinds: Sequence[MemoryKind]
    method: Method = "hybrid"
    field: str | None = None
    limit: int = 10
    user_id: str | None = None  # None searches the whole organization
    filter_tags: dict[str, Any] | None = None
    scope: str | None = None  # narrows the caller's read scopes to one
    similarity_threshold: float | None = None
    start: datetime | None = None  # occurred_at range, episodic memories only
    end: datetime | None = None


@dataclass
class Ranked:
    """A search result before its row is loaded (``row`` is set when ranking needed it anyway)."""

    kind: MemoryKind
    id: str
    score: float
    scores: dict[str, float] = field(default_factory=dict)
    row: MemoryMixin | None = None


@dataclass
class Hit:
    kind: MemoryKind
    row: MemoryMixin
    score: float
    scores: dict[str, float] = field(default_factory=dict)


def check_field(kind: MemoryKind, method: str, name: str | None) -> None:
    """Reject a search field the type does not have or the method cannot search."""
    if name is None:
        return
    if name not in kind.search_fields and name not in kind.text_fields:
        allowed = ", ".join(dict.fromkeys((*kind.search_fields, *kind.text_fields)))
        raise UnprocessableError(f"search_field '{name}' is not valid for {kind.name}; use one of: {allowed}")
    if method == "embedding" and name not in kind.embedded_fields:
        raise UnprocessableError(
            f"{kind.name}.{name} has no embeddings; embedding search works on {', '.join(kind.embedded_fields)}"
        )
    if method in ("bm25", "hybrid", "fuzzy_match") and name not in kind.text_fields:
        raise UnprocessableError(f"{kind.name}.{name} is not full-text indexed; use search_method=string_match")


class MemorySearch:
    def __init__(
        self,
        sessions: Sessions,
        dialect_name: str,
        memories: MemoryManager,
        vector_cache: VectorCache,
        *,
        text_weight: float = 1.0,
        vector_weight: float = 1.0,
        rrf_k: float = 5.0,
    ) -> None:
        self._sessions = sessions
        self._sql = search_dialect(dialect_name)
        self._memories = memories
        self._vectors = vector_cache
        self.text_weight = text_weight
        self.vector_weight = vector_weight
        self.rrf_k = rrf_k

    async def embed_query(self, query: str) -> None:
        """Embed ``query`` ahead of a search that will need it (it lands in the query cache)."""
        if query.strip() and self._memories.embedder is not None:
            await self._memories.embedder.embed_query(query)

    async def search(self, actor: Actor, q: SearchQuery) -> list[Hit]:
        """Up to ``q.limit`` hits per type, ordered by score across types (higher is better).

        Searching yields ids and scores only; full rows are loaded for the final hits alone, so the
        candidates that ranking and fusion look at (several times ``limit``) cost an index entry each
        rather than a whole row."""
        if q.method not in METHODS:
            raise UnprocessableError(f"search_method must be one of {', '.join(METHODS)}")
        for kind in q.kinds:
            check_field(kind, q.method, q.field)
        if not actor.read_scopes or (q.scope is not None and q.scope not in actor.read_scopes):
            return []
        query_vector = None
        if q.query.strip() and q.method in ("embedding", "hybrid") and self._memories.embedder is not None:
            query_vector = normalise(await self._memories.embedder.embed_query(q.query))
        if len(q.kinds) == 1:  # the common case: search and load in one session
            async with self._sessions() as session:
                results = [await self._search_kind(session, actor, q.kinds[0], q, query_vector)]
                return await self._load(session, actor, q, self._rank(q, results))

        async def search_kind(kind: MemoryKind) -> Any:
            async with self._sessions() as session:
                return await self._search_kind(session, actor, kind, q, query_vector)

        results = await asyncio.gather(*(search_kind(kind) for kind in q.kinds))
        async with self._sessions() as session:
            return await self._load(session, actor, q, self._rank(q, results))

    def _rank(self, q: SearchQuery, results: list[Any]) -> list[Ranked]:
        if q.method == "hybrid" and q.query.strip():
            # Fuse over all types at once: ranks within one type say nothing about another type.
            text_hits = sorted((h for text, _ in results for h in text), key=_by_score)
            vector_hits = sorted((h for _, vec in results for h in vec), key=_by_score)
            ranked = self._fuse(text_hits, vector_hits)
        else:
            ranked = sorted((h for kind_hits in results for h in kind_hits), key=_by_score)
        return _cap_per_kind(ranked, q.limit)

    async def _load(self, session: AsyncSession, actor: Actor, q: SearchQuery, ranked: list[Ranked]) -> list[Hit]:
        """The rows of the final hits, in rank order (rows deleted meanwhile drop out)."""
        by_kind: dict[str, list[str]] = {}
        for hit in ranked:
            if hit.row is None:
                by_kind.setdefault(hit.kind.name, []).append(hit.id)
        kinds = {hit.kind.name: hit.kind for hit in ranked}
        rows: dict[str, MemoryMixin] = {}
        for name, ids in by_kind.items():
            model = kinds[name].model
            rows.update((row.id, row) for row in await session.scalars(select(model).where(model.id.in_(ids))))
        hits = []
        for hit in ranked:
            row = hit.row or rows.get(hit.id)
            if row is not None and self._memories._readable(actor, row, q.user_id):
                hits.append(Hit(hit.kind, row, hit.score, hit.scores))
        return hits

    def _conditions(self, actor: Actor, kind: MemoryKind, q: SearchQuery, *, owner: bool = True) -> list[Any]:
        """The SQL filters every method applies. ``owner=False`` leaves out organization and user, for
        queries by id whose ids already come from that owner (so SQLite looks rows up by key instead
        of scanning the owner's index), which then check the owner on the rows."""
        model = kind.model
        conditions = MemoryManager.owner_conditions(actor, kind, q.user_id)
        if not owner:
            conditions = [model.deleted_at.is_(None), model.scope.in_(actor.read_scopes)]
        if q.scope is not None:
            conditions.append(model.scope == q.scope)
        tags = compile_filter_tags(model.filter_tags, q.filter_tags, self._sql.name)
        if tags is not None:
            conditions.append(tags)
        if kind is EPISODIC and q.start is not None:
            conditions.append(model.occurred_at >= q.start)
        if kind is EPISODIC and q.end is not None:
            conditions.append(model.occurred_at < q.end)
        return conditions

    def _owner(self, actor: Actor, q: SearchQuery) -> Owner:
        scopes = (q.scope,) if q.scope is not None else actor.read_scopes
        return Owner(actor.organization_id, q.user_id, scopes)

    async def _search_kind(
        self,
        session: AsyncSession,
        actor: Actor,
        kind: MemoryKind,
        q: SearchQuery,
        query_vector: list[float] | None,
    ) -> Any:
        """The ranked ids of one type; for hybrid search the (text, vector) pair, fused by the caller."""
        conditions = self._conditions(actor, kind, q)
        if not q.query.strip():
            return await self._recent(session, kind, conditions, q.limit)
        if q.method == "bm25":
            return await self._text(session, actor, kind, q, conditions, q.limit)
        if q.method == "embedding":
            return await self._vector(session, actor, kind, q, conditions, query_vector, q.limit)
        if q.method == "hybrid":
            depth = max(q.limit * 3, 30)
            text_hits = await self._text(session, actor, kind, q, conditions, depth)
            vector_hits = await self._vector(session, actor, kind, q, conditions, query_vector, depth)
            return text_hits, vector_hits
        if q.method == "string_match":
            return await self._substring(session, kind, q, conditions)
        return await self._fuzzy(session, actor, kind, q, conditions)

    async def _recent(self, session: AsyncSession, kind: MemoryKind, conditions: list, limit: int) -> list[Ranked]:
        model = kind.model
        ids = await session.scalars(
            select(model.id).where(*conditions).order_by(model.occurred_at.desc(), model.id).limit(limit)
        )
        return [Ranked(kind, memory_id, 0.0) for memory_id in ids]

    async def _text(
        self,
        session: AsyncSession,
        actor: Actor,
        kind: MemoryKind,
        q: SearchQuery,
        conditions: list,
        limit: int,
        *,
        prefix: bool = False,
    ) -> list[Ranked]:
        terms = search_terms(q.query)
        if not terms:
            return []
        fields = (q.field,) if q.field else kind.text_fields
        query, score = self._sql.text_query(kind, terms, fields, self._owner(actor, q), prefix=prefix)
        rows = await session.execute(query.where(*conditions).order_by(score.desc(), kind.model.id).limit(limit))
        return [Ranked(kind, memory_id, float(value), {"bm25": float(value)}) for memory_id, value in rows]

    async def _vector(
        self,
        session: AsyncSession,
        actor: Actor,
        kind: MemoryKind,
        q: SearchQuery,
        conditions: list,
        query_vector: list[float] | None,
        limit: int,
    ) -> list[Ranked]:
        """Nearest items by cosine similarity; without a named field, an item's best field counts."""
        if query_vector is None or self._memories.embedder is None:
            return []
        best: dict[str, Ranked] = {}
        for field_name in (q.field,) if q.field else kind.embedded_fields:
            if isinstance(self._sql, SqliteSearch):
                found = await self._vector_from_cache(session, actor, kind, q, query_vector, field_name, limit)
            else:
                found = await self._vector_field(session, actor, kind, q, conditions, query_vector, field_name, limit)
            for hit in found:
                if hit.id not in best or hit.score > best[hit.id].score:
                    best[hit.id] = hit
        hits = sorted(best.values(), key=_by_score)[:limit]
        if q.similarity_threshold is not None:
            # MIRIX's threshold is a cosine *distance* bound.
            hits = [hit for hit in hits if 1.0 - hit.score < q.similarity_threshold]
        return hits

    async def _vector_field(
        self,
        session: AsyncSession,
        actor: Actor,
        kind: MemoryKind,
        q: SearchQuery,
        conditions: list,
        query_vector: list[float],
        field_name: str,
        limit: int,
    ) -> list[Ranked]:
        e = MemoryEmbedding
        await self._sql.prepare_vector_search(session, limit)
        distance = self._sql.vector_distance(len(query_vector), query_vector).label("distance")
        owner = [
            e.organization_id == actor.organization_id,
            e.kind == kind.name,
            e.field == field_name,
            e.model == self._memories.embedder.model,
            e.dim == len(query_vector),
        ]
        if q.user_id is not None:
            owner.append(e.user_id == q.user_id)
        rows = await session.execute(
            select(kind.model.id, distance)
            .join(e, e.memory_id == kind.model.id)
            .where(*owner, *conditions)
            .order_by(distance)
            .limit(limit)
        )
        return [Ranked(kind, memory_id, 1.0 - float(d), {"embedding": 1.0 - float(d)}) for memory_id, d in rows]

    async def _vector_from_cache(
        self,
        session: AsyncSession,
        actor: Actor,
        kind: MemoryKind,
        q: SearchQuery,
        query_vector: list[float],
        field_name: str,
        limit: int,
    ) -> list[Ranked]:
        model = kind.model
        key = VectorKey(actor.organization_id, q.user_id, kind.name, field_name, self._memories.embedder.model)
        by_id = self._conditions(actor, kind, q, owner=False)
        depth = limit * 4
        while True:
            candidates = await self._vectors.nearest(session, key, query_vector, depth)
            passing = await session.execute(
                select(model.id, model.organization_id, model.user_id).where(
                    model.id.in_([memory_id for memory_id, _ in candidates]), *by_id
                )
            )
            allowed = {
                memory_id
                for memory_id, organization_id, user_id in passing
                if organization_id == actor.organization_id and (q.user_id is None or user_id == q.user_id)
            }
            hits = [
                Ranked(kind, memory_id, similarity, {"embedding": similarity})
                for memory_id, similarity in candidates
                if memory_id in allowed
            ]
            # Filters removed too many candidates and more exist: look deeper.
            if len(hits) >= limit or len(candidates) < depth:
                return hits[:limit]
            depth *= 4

    def _fuse(self, text_hits: list[Ranked], vector_hits: list[Ranked]) -> list[Ranked]:
        """Weighted reciprocal-rank fusion: robust to the two scores being on different scales."""
        fused: dict[str, Ranked] = {}
        for weight, hits, name in (
            (self.text_weight, text_hits, "bm25"),
            (self.vector_weight, vector_hits, "embedding"),
        ):
            for rank, hit in enumerate(hits):
                entry = fused.setdefault(hit.id, Ranked(hit.kind, hit.id, 0.0, {}))
                entry.score += weight / (self.rrf_k + rank + 1)
                entry.scores[name] = hit.score
        return sorted(fused.values(), key=_by_score)

    async def _substring(
        self, session: AsyncSession, kind: MemoryKind, q: SearchQuery, conditions: list
    ) -> list[Ranked]:
        model = kind.model
        fields = (q.field,) if q.field else kind.text_fields
        needle = q.query.strip()
        match = or_(
            *(getattr(model, f).icontains(needle, autoescape=True) for f in fields if f not in kind.list_fields)
        )
        ids = await session.scalars(
            select(model.id).where(*conditions, match).order_by(model.occurred_at.desc(), model.id).limit(q.limit)
        )
        return [Ranked(kind, memory_id, 1.0, {"string_match": 1.0}) for memory_id in ids]

    async def _fuzzy(
        self, session: AsyncSession, actor: Actor, kind: MemoryKind, q: SearchQuery, conditions: list
    ) -> list[Ranked]:
        """Typo-tolerant: prefix matches from the text index, re-ranked by string similarity."""
        shortened = " ".join(term[:4] for term in search_terms(q.query))
        probe = SearchQuery(**{**q.__dict__, "query": shortened})
        candidates = await self._text(session, actor, kind, probe, conditions, FUZZY_CANDIDATES, prefix=True)
        if not candidates:
            return []
        rows = await session.scalars(select(kind.model).where(kind.model.id.in_([c.id for c in candidates])))
        needle = q.query.lower()
        fields = (q.field,) if q.field else kind.text_fields
        ranked = []
        for row in rows:
            score = max(_partial_ratio(needle, kind.text_of(row, f).lower()) for f in fields)
            ranked.append(Ranked(kind, row.id, score, {"fuzzy_match": score}, row))
        ranked.sort(key=_by_score)
        return ranked[: q.limit]


def _by_score(hit: Ranked) -> float:
    """Sort key, best first; sorting is stable, so ties keep the order the database gave them."""
    return -hit.score


def _cap_per_kind(hits: list[Ranked], limit: int) -> list[Ranked]:
    taken: dict[str, int] = {}
    kept = []
    for hit in hits:
        if taken.get(hit.kind.name, 0) < limit:
            taken[hit.kind.name] = taken.get(hit.kind.name, 0) + 1
            kept.append(hit)
    return kept


def _partial_ratio(needle: str, haystack: str) -> float:
    """Best similarity of ``needle`` to any equally long window of ``haystack`` (0..1)."""
    if not needle or not haystack:
        return 0.0
    if len(haystack) <= len(needle):
        return difflib.SequenceMatcher(None, needle, haystack).ratio()
    matcher = difflib.SequenceMatcher(None, needle, haystack, autojunk=False)
    best = 0.0
    for block in matcher.get_matching_blocks():
        start = max(0, block.b - block.a)
        window = haystack[start : start + len(needle)]
        best = max(best, difflib.SequenceMatcher(None, needle, window).ratio())
    return best
