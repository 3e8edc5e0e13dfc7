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

from sqlalchemy import select
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

    async def search(self, actor: Actor, q: SearchQuery) -> list[Hit]:
        """Up to ``q.limit`` hits per type, ordered by score across types (higher is better)."""
        if q.method not in METHODS:
            raise UnprocessableError(f"search_method must be one of {', '.join(METHODS)}")
        for kind in q.kinds:
            check_field(kind, q.method, q.field)
        if not actor.read_scopes or (q.scope is not None and q.scope not in actor.read_scopes):
            return []
        query_vector = None
        if q.query.strip() and q.method in ("embedding", "hybrid") and self._memories.embedder is not None:
            query_vector = normalise(await self._memories.embedder.embed_query(q.query))
        results = await asyncio.gather(*(self._search_kind(actor, kind, q, query_vector) for kind in q.kinds))
        if q.method == "hybrid" and q.query.strip():
            # Fuse over all types at once: ranks within one type say nothing about another type.
            text_hits = sorted((h for text, _ in results for h in text), key=lambda h: h.score, reverse=True)
            vector_hits = sorted((h for _, vec in results for h in vec), key=lambda h: h.score, reverse=True)
            hits = self._fuse(text_hits, vector_hits)
        else:
            hits = sorted((h for kind_hits in results for h in kind_hits), key=lambda h: h.score, reverse=True)
        return _cap_per_kind(hits, q.limit)

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
        self, actor: Actor, kind: MemoryKind, q: SearchQuery, query_vector: list[float] | None
    ) -> Any:
        """The hits of one type; for hybrid search the (text, vector) pair, fused by the caller."""
        conditions = self._conditions(actor, kind, q)
        async with self._sessions() as session:
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

    async def _recent(self, session: AsyncSession, kind: MemoryKind, conditions: list, limit: int) -> list[Hit]:
        model = kind.model
        rows = await session.scalars(
            select(model).where(*conditions).order_by(model.occurred_at.desc(), model.id).limit(limit)
        )
        return [Hit(kind, row, 0.0) for row in rows]

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
    ) -> list[Hit]:
        terms = search_terms(q.query)
        if not terms:
            return []
        fields = (q.field,) if q.field else kind.text_fields
        query, score = self._sql.text_query(kind, terms, fields, self._owner(actor, q), prefix=prefix)
        rows = await session.execute(query.where(*conditions).order_by(score.desc(), kind.model.id).limit(limit))
        return [Hit(kind, row, float(value), {"bm25": float(value)}) for row, value in rows]

    async def _vector(
        self,
        session: AsyncSession,
        actor: Actor,
        kind: MemoryKind,
        q: SearchQuery,
        conditions: list,
        query_vector: list[float] | None,
        limit: int,
    ) -> list[Hit]:
        """Nearest items by cosine similarity; without a named field, an item's best field counts."""
        if query_vector is None or self._memories.embedder is None:
            return []
        best: dict[str, Hit] = {}
        for field_name in (q.field,) if q.field else kind.embedded_fields:
            for hit in await self._vector_field(session, actor, kind, q, conditions, query_vector, field_name, limit):
                if hit.row.id not in best or hit.score > best[hit.row.id].score:
                    best[hit.row.id] = hit
        hits = sorted(best.values(), key=lambda hit: hit.score, reverse=True)[:limit]
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
    ) -> list[Hit]:
        if isinstance(self._sql, SqliteSearch):
            return await self._vector_from_cache(session, actor, kind, q, conditions, query_vector, field_name, limit)
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
            select(kind.model, distance)
            .join(e, e.memory_id == kind.model.id)
            .where(*owner, *conditions)
            .order_by(distance)
            .limit(limit)
        )
        return [Hit(kind, row, 1.0 - float(d), {"embedding": 1.0 - float(d)}) for row, d in rows]

    async def _vector_from_cache(
        self,
        session: AsyncSession,
        actor: Actor,
        kind: MemoryKind,
        q: SearchQuery,
        conditions: list,
        query_vector: list[float],
        field_name: str,
        limit: int,
    ) -> list[Hit]:
        key = VectorKey(actor.organization_id, q.user_id, kind.name, field_name, self._memories.embedder.model)
        by_id = self._conditions(actor, kind, q, owner=False)
        depth = limit * 4
        while True:
            candidates = await self._vectors.nearest(session, key, query_vector, depth)
            similarity = dict(candidates)
            rows = await session.scalars(select(kind.model).where(kind.model.id.in_(similarity), *by_id))
            rows = [
                r
                for r in rows
                if r.organization_id == actor.organization_id and (q.user_id is None or r.user_id == q.user_id)
            ]
            hits = sorted(
                (Hit(kind, row, similarity[row.id], {"embedding": similarity[row.id]}) for row in rows),
                key=lambda hit: hit.score,
                reverse=True,
            )
            # Filters removed too many candidates and more exist: look deeper.
            if len(hits) >= limit or len(candidates) < depth:
                return hits[:limit]
            depth *= 4

    def _fuse(self, text_hits: list[Hit], vector_hits: list[Hit]) -> list[Hit]:
        """Weighted reciprocal-rank fusion: robust to the two scores being on different scales."""
        fused: dict[str, Hit] = {}
        for weight, hits, name in (
            (self.text_weight, text_hits, "bm25"),
            (self.vector_weight, vector_hits, "embedding"),
        ):
            for rank, hit in enumerate(hits):
                entry = fused.setdefault(hit.row.id, Hit(hit.kind, hit.row, 0.0, {}))
                entry.score += weight / (self.rrf_k + rank + 1)
                entry.scores[name] = hit.score
        return sorted(fused.values(), key=lambda hit: hit.score, reverse=True)

    async def _substring(self, session: AsyncSession, kind: MemoryKind, q: SearchQuery, conditions: list) -> list[Hit]:
        model = kind.model
        fields = (q.field,) if q.field else kind.text_fields
        from sqlalchemy import or_

        needle = q.query.strip()
        match = or_(
            *(getattr(model, f).icontains(needle, autoescape=True) for f in fields if f not in kind.list_fields)
        )
        rows = await session.scalars(
            select(model).where(*conditions, match).order_by(model.occurred_at.desc(), model.id).limit(q.limit)
        )
        return [Hit(kind, row, 1.0, {"string_match": 1.0}) for row in rows]

    async def _fuzzy(
        self, session: AsyncSession, actor: Actor, kind: MemoryKind, q: SearchQuery, conditions: list
    ) -> list[Hit]:
        """Typo-tolerant: prefix matches from the text index, re-ranked by string similarity."""
        shortened = " ".join(term[:4] for term in search_terms(q.query))
        probe = SearchQuery(**{**q.__dict__, "query": shortened})
        candidates = await self._text(session, actor, kind, probe, conditions, FUZZY_CANDIDATES, prefix=True)
        needle = q.query.lower()
        fields = (q.field,) if q.field else kind.text_fields
        for hit in candidates:
            hit.score = max(_partial_ratio(needle, kind.text_of(hit.row, f).lower()) for f in fields)
            hit.scores = {"fuzzy_match": hit.score}
        candidates.sort(key=lambda hit: hit.score, reverse=True)
        return candidates[: q.limit]


def _cap_per_kind(hits: list[Hit], limit: int) -> list[Hit]:
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
