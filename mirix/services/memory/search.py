"""Search over one or all memory types: BM25, embeddings, their fusion, substring and fuzzy match.

Every method applies the same confinement (organization, user, read scopes, not deleted), the
caller's ``filter_tags`` and the date range, inside the database query.
"""

from __future__ import annotations

import asyncio
import difflib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Select, bindparam, literal, or_, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from mirix.db.engine import Sessions
from mirix.db.models.memory import MemoryEmbedding, MemoryMixin
from mirix.db.search import Owner, SqliteSearch, search_dialect
from mirix.errors import UnprocessableError
from mirix.search.filters import compile_filter_tags
from mirix.search.snapshots import MarkerQuery
from mirix.search.text import query_stems, search_terms
from mirix.search.text_index import TextIndex, TextKey, field_weights
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


@dataclass(frozen=True)
class _Unconfirmed:
    """Candidates from an in-process index, which the database has yet to check against the query's
    filters: ``load(marker)`` brings the owner's snapshot up to date (the only step using the
    session), ``rank(snapshot, k)`` gives its best ``k`` (id, score) pairs; ``marker_query`` reads
    the index's change marker (see ``mirix.search.snapshots``)."""

    load: Callable[[int], Awaitable[Any]]
    rank: Callable[[Any, int], Awaitable[list[tuple[str, float]]]]
    marker_query: MarkerQuery
    method: str


_Part = list[Ranked] | _Unconfirmed


@dataclass(frozen=True)
class _Plan:
    """One type's ranking search before its candidates are confirmed: the parts (text and/or
    vectors) and how many hits each needs."""

    kind: MemoryKind
    parts: list[_Part]
    depth: int


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
        text_index: TextIndex,
        *,
        text_weight: float = 1.0,
        vector_weight: float = 1.0,
        rrf_k: float = 5.0,
    ) -> None:
        self._sessions = sessions
        self._sql = search_dialect(dialect_name)
        self._memories = memories
        self._vectors = vector_cache
        # SQLite ranks with in-process indexes; PostgreSQL's are all in the database (None here).
        self._text_index = text_index if isinstance(self._sql, SqliteSearch) else None
        self._marker_statements: dict[tuple[int, ...], Select[Any]] = {}
        self._by_ids: dict[str, Select[Any]] = {}
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
        ranking = bool(q.query.strip()) and q.method in ("bm25", "embedding", "hybrid")
        if len(q.kinds) == 1 or self._text_index is not None or ranking:
            # One session. SQLite: each type takes a few quick statements, and the in-process
            # indexes of all types are checked for changes in one of them. PostgreSQL: one
            # statement per method for all the types.
            async with self._sessions() as session:
                if ranking and self._text_index is None:
                    results = await self._search_together(session, actor, q.kinds, q, query_vector)
                else:
                    results = await self._search_kinds(session, actor, q.kinds, q, query_vector)
                return await self._load(session, actor, q, self._rank(q, results))

        async def search_kind(kind: MemoryKind) -> Any:  # PostgreSQL: the types' queries side by side
            async with self._sessions() as session:
                return (await self._search_kinds(session, actor, [kind], q, query_vector))[0]

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
            statement = self._by_ids.get(name)
            if statement is None:  # built once per type: building it cost more than running it
                model = kinds[name].model
                statement = self._by_ids[name] = select(model).where(model.id.in_(bindparam("ids", expanding=True)))
            rows.update((row.id, row) for row in await session.scalars(statement, {"ids": ids}))
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
        return Owner(actor.organization_id, q.user_id, _scopes(actor, q))

    async def _search_kinds(
        self,
        session: AsyncSession,
        actor: Actor,
        kinds: Sequence[MemoryKind],
        q: SearchQuery,
        query_vector: list[float] | None,
    ) -> list[Any]:
        """The ranked ids of each type; for hybrid search a (text, vector) pair per type, fused by
        the caller. The change markers of every in-process index involved are read in one statement."""
        plans = [await self._plan(session, actor, kind, q, query_vector) for kind in kinds]
        queries = [
            query for plan in plans if isinstance(plan, _Plan) for query in self._confirm_markers(actor, plan, q)[0]
        ]
        values = await self._markers(session, queries) if queries else []
        known = {id(query.statement): value for query, value in zip(queries, values, strict=True)}
        results = []
        for plan in plans:
            if not isinstance(plan, _Plan):
                results.append(plan)
                continue
            found = await self._confirm(session, actor, plan, q, known)
            text, per_field = (found[0], found[1:]) if q.method != "embedding" else ([], found)
            results.append(self._per_kind(q, text, per_field, plan.depth))
        return results

    def _per_kind(self, q: SearchQuery, text: list[Ranked], per_field: list[list[Ranked]], depth: int) -> Any:
        """One type's result as ``_rank`` takes it: the text hits (bm25), the best field of each
        item's vector hits (embedding), or both (hybrid)."""
        if q.method == "bm25":
            return text
        nearest = self._best_per_item(per_field, depth, q)
        return (text, nearest) if q.method == "hybrid" else nearest

    async def _plan(
        self,
        session: AsyncSession,
        actor: Actor,
        kind: MemoryKind,
        q: SearchQuery,
        query_vector: list[float] | None,
    ) -> _Plan | list[Ranked]:
        """A ranking search's plan, or the hits of the methods that need none. (PostgreSQL ranks in
        ``_search_together``: its indexes are all in the database.)"""
        if not q.query.strip():
            return await self._recent(session, kind, self._conditions(actor, kind, q), q.limit)
        if q.method == "string_match":
            return await self._substring(session, kind, q, self._conditions(actor, kind, q))
        if q.method == "fuzzy_match":
            return await self._fuzzy(session, actor, kind, q)
        depth = _depth(q)
        parts: list[_Part] = []
        if q.method != "embedding":
            parts.append(await self._text(session, actor, kind, q, depth))
        if q.method != "bm25":
            parts.extend(self._vector_parts(session, actor, kind, q, query_vector))
        return _Plan(kind, parts, depth)

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
        limit: int,
        *,
        prefix: bool = False,
    ) -> _Part:
        """BM25 hits: from the in-process index for one user on SQLite (to be confirmed), else from the
        database's full-text index (already filtered)."""
        fields = (q.field,) if q.field else kind.text_fields
        if self._text_index is not None and q.user_id is not None and not prefix:
            stemmed = query_stems(q.query)
            if stemmed:  # (a question of stop words only goes to FTS5, which indexes them)
                key = TextKey(actor.organization_id, q.user_id, kind.name)
                index, weights = self._text_index, field_weights(kind, fields)

                async def load(marker: int) -> Any:
                    return await index.current(session, key, kind, marker=marker)

                async def rank(snapshot: Any, depth: int) -> list[tuple[str, float]]:
                    return snapshot.top(stemmed, weights, depth) if snapshot is not None else []

                return _Unconfirmed(load, rank, index.marker_query(key, kind), "bm25")
        terms = search_terms(q.query)
        if not terms:
            return []
        rows = await session.execute(self._text_select(actor, kind, q, terms, fields, limit, prefix=prefix))
        return [Ranked(kind, memory_id, float(value), {"bm25": float(value)}) for memory_id, value in rows]

    def _text_select(
        self,
        actor: Actor,
        kind: MemoryKind,
        q: SearchQuery,
        terms: Sequence[str],
        fields: Sequence[str],
        limit: int,
        *,
        prefix: bool = False,
    ) -> Select[Any]:
        """The database's full-text query: (id, score) of the best ``limit`` matches, already filtered."""
        query, score = self._sql.text_query(kind, terms, fields, self._owner(actor, q), prefix=prefix)
        return query.where(*self._conditions(actor, kind, q)).order_by(score.desc(), kind.model.id).limit(limit)

    def _vector_parts(
        self,
        session: AsyncSession,
        actor: Actor,
        kind: MemoryKind,
        q: SearchQuery,
        query_vector: list[float] | None,
    ) -> list[_Part]:
        """Nearest items by cosine similarity from the in-process vector cache (SQLite): one part,
        as one matrix holds all the type's embedded fields."""
        if query_vector is None or self._memories.embedder is None:
            return []
        key = VectorKey(actor.organization_id, q.user_id, kind.name, self._memories.embedder.model)
        cache = self._vectors

        async def load(marker: int) -> Any:
            return await cache.current(session, key, marker=marker)

        async def rank(snapshot: Any, depth: int) -> list[tuple[str, float]]:
            return await cache.rank(snapshot, query_vector, depth, q.field)

        return [_Unconfirmed(load, rank, cache.marker_query(key), "embedding")]

    @staticmethod
    def _best_per_item(per_field: list[list[Ranked]], limit: int, q: SearchQuery) -> list[Ranked]:
        """Without a named field, an item's best field counts."""
        best: dict[str, Ranked] = {}
        for found in per_field:
            for hit in found:
                if hit.id not in best or hit.score > best[hit.id].score:
                    best[hit.id] = hit
        hits = sorted(best.values(), key=_by_score)[:limit]
        if q.similarity_threshold is not None:
            # MIRIX's threshold is a cosine *distance* bound.
            hits = [hit for hit in hits if 1.0 - hit.score < q.similarity_threshold]
        return hits

    def _vector_select(
        self,
        actor: Actor,
        kind: MemoryKind,
        q: SearchQuery,
        query_vector: list[float],
        field_name: str,
        limit: int,
    ) -> Select[Any]:
        """PostgreSQL's nearest vectors of one field: (id, cosine distance), through the HNSW index."""
        e = MemoryEmbedding
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
        return (
            select(kind.model.id, distance)
            .join(e, e.memory_id == kind.model.id)
            .where(*owner, *self._conditions(actor, kind, q))
            .order_by(distance)
            .limit(limit)
        )

    async def _search_together(
        self,
        session: AsyncSession,
        actor: Actor,
        kinds: Sequence[MemoryKind],
        q: SearchQuery,
        query_vector: list[float] | None,
    ) -> list[Any]:
        """``_search_kinds`` on PostgreSQL, for one type or several: the text matches of all the
        types in one statement, and the nearest vectors of all their embedded fields in another.
        (A session of its own with two or three statements per type cost ``memory_type=all``
        four times the CPU of a one-type search.)

        Each branch of a UNION ALL keeps its own ORDER BY and LIMIT (and so its index); the outer
        ORDER BY only restores each branch's order, which UNION ALL does not promise."""
        depth = _depth(q)
        text: dict[str, list[Ranked]] = {kind.name: [] for kind in kinds}
        terms = search_terms(q.query)
        if q.method != "embedding" and terms:
            branches = [
                self._text_select(
                    actor, kind, q, terms, (q.field,) if q.field else kind.text_fields, depth
                ).add_columns(literal(i).label("branch"))
                for i, kind in enumerate(kinds)
            ]
            together = union_all(*branches).subquery()
            rows = await session.execute(
                select(together).order_by(together.c.branch, together.c.score.desc(), together.c.id)
            )
            for memory_id, score, i in rows:
                text[kinds[i].name].append(Ranked(kinds[i], memory_id, float(score), {"bm25": float(score)}))
        vectors: dict[str, list[list[Ranked]]] = {kind.name: [] for kind in kinds}
        if q.method != "bm25" and query_vector is not None and self._memories.embedder is not None:
            fields = [(kind, name) for kind in kinds for name in ((q.field,) if q.field else kind.embedded_fields)]
            if fields:
                await self._sql.prepare_vector_search(session, depth)
                branches = [
                    self._vector_select(actor, kind, q, query_vector, name, depth).add_columns(
                        literal(i).label("branch")
                    )
                    for i, (kind, name) in enumerate(fields)
                ]
                together = union_all(*branches).subquery()
                found: list[list[Ranked]] = [[] for _ in fields]
                rows = await session.execute(
                    select(together).order_by(together.c.branch, together.c.distance, together.c.id)
                )
                for memory_id, distance, i in rows:
                    found[i].append(_similar(fields[i][0], memory_id, distance))
                for (kind, _), hits in zip(fields, found, strict=True):
                    vectors[kind.name].append(hits)
        return [self._per_kind(q, text[kind.name], vectors[kind.name], depth) for kind in kinds]

    def _confirm_markers(self, actor: Actor, plan: _Plan, q: SearchQuery) -> tuple[list[MarkerQuery], TextKey | None]:
        """The change markers ``_confirm`` needs: of each in-process part, then of the text index
        that confirms the candidates when the query filters on nothing but the owner's scopes."""
        queries = [part.marker_query for part in plan.parts if isinstance(part, _Unconfirmed)]
        if not queries or self._text_index is None or q.user_id is None or _tag_or_date(plan.kind, q):
            return queries, None
        index_key = TextKey(actor.organization_id, q.user_id, plan.kind.name)
        return [*queries, self._text_index.marker_query(index_key, plan.kind)], index_key

    async def _confirm(
        self, session: AsyncSession, actor: Actor, plan: _Plan, q: SearchQuery, known: dict[int, int] | None = None
    ) -> list[list[Ranked]]:
        """Each part's best ``plan.depth`` hits that the caller may see and that pass the query's filters.

        Candidates of the in-process indexes are confirmed for all parts at once: by the user's text
        index, which knows which memories exist and their scopes, when the query filters on nothing
        else; otherwise by the database, by primary key (and the owner on the row). A part whose
        candidates the filters thinned out below ``limit`` is asked again for more. ``known`` holds
        change markers already read (by statement)."""
        kind, parts, limit = plan.kind, plan.parts, plan.depth
        results: list[list[Ranked]] = [part if isinstance(part, list) else [] for part in parts]
        pending = [i for i, part in enumerate(parts) if isinstance(part, _Unconfirmed)]
        if not pending:
            return results
        # Ask for more than needed only when filters beyond the owner's scopes may thin them out.
        depth = limit * 4 if _tag_or_date(kind, q) or q.scope is not None else limit
        queries, index_key = self._confirm_markers(actor, plan, q)
        if known is not None and all(id(query.statement) in known for query in queries):
            values = [known[id(query.statement)] for query in queries]
        else:
            values = await self._markers(session, queries)
        markers = dict(zip(pending, values, strict=False))
        index = None
        if index_key is not None and self._text_index is not None:
            index = await self._text_index.current(session, index_key, kind, marker=values[-1])
        snapshots = {i: await parts[i].load(markers[i]) for i in pending}  # one at a time: one session
        scopes = _scopes(actor, q)
        # Vector parts first: their products run in worker threads while a text part ranks on the loop.
        pending.sort(key=lambda i: parts[i].method != "embedding")
        while pending:
            if len(pending) == 1:
                found_lists = [await parts[pending[0]].rank(snapshots[pending[0]], depth)]
            else:
                found_lists = await asyncio.gather(*(parts[i].rank(snapshots[i], depth) for i in pending))
            candidates = dict(zip(pending, found_lists, strict=True))
            ids = {memory_id for found in candidates.values() for memory_id, _ in found}
            if index_key is not None:
                allowed = index.visible(list(ids), scopes) if index is not None else set()
            else:
                allowed = await self._allowed(session, actor, kind, q, ids)
            still = []
            for i, found in candidates.items():
                method = parts[i].method
                hits = [Ranked(kind, id_, score, {method: score}) for id_, score in found if id_ in allowed]
                results[i] = hits[:limit]
                if len(hits) < limit and len(found) == depth:  # filtered out too many, and more exist
                    still.append(i)
            pending, depth = still, depth * 4
        return results

    async def _markers(self, session: AsyncSession, queries: list[MarkerQuery]) -> list[int]:
        """All the indexes' change markers in one statement (built once per combination)."""
        statements = {id(query.statement): query.statement for query in queries}
        shape = tuple(statements)
        combined = self._marker_statements.get(shape)
        if combined is None:
            combined = select(*(statement.scalar_subquery() for statement in statements.values()))
            self._marker_statements[shape] = combined
        params = {name: value for query in queries for name, value in query.params.items()}
        row = (await session.execute(combined, params)).one()
        by_statement = dict(zip(shape, row, strict=True))
        return [int(by_statement[id(query.statement)] or 0) for query in queries]

    async def _allowed(
        self, session: AsyncSession, actor: Actor, kind: MemoryKind, q: SearchQuery, ids: set[str]
    ) -> set[str]:
        if not ids:
            return set()
        model = kind.model
        passing = await session.execute(
            select(model.id, model.organization_id, model.user_id).where(
                model.id.in_(ids), *self._conditions(actor, kind, q, owner=False)
            )
        )
        return {
            memory_id
            for memory_id, organization_id, user_id in passing
            if organization_id == actor.organization_id and (q.user_id is None or user_id == q.user_id)
        }

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

    async def _fuzzy(self, session: AsyncSession, actor: Actor, kind: MemoryKind, q: SearchQuery) -> list[Ranked]:
        """Typo-tolerant: prefix matches from the text index, re-ranked by string similarity."""
        shortened = " ".join(term[:4] for term in search_terms(q.query))
        probe = SearchQuery(**{**q.__dict__, "query": shortened})
        text = await self._text(session, actor, kind, probe, FUZZY_CANDIDATES, prefix=True)
        (candidates,) = await self._confirm(session, actor, _Plan(kind, [text], FUZZY_CANDIDATES), q)
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


def _depth(q: SearchQuery) -> int:
    """How many hits each ranking of a type fetches: fusion needs more than the final ``limit``."""
    return max(q.limit * 3, 30) if q.method == "hybrid" else q.limit


def _tag_or_date(kind: MemoryKind, q: SearchQuery) -> bool:
    """Whether the query filters on tags or (episodic) dates, beyond owner and scopes."""
    return bool(q.filter_tags) or (kind is EPISODIC and (q.start is not None or q.end is not None))


def _scopes(actor: Actor, q: SearchQuery) -> tuple[str, ...]:
    """The scopes a search reads: the one it names (already checked readable) or all readable ones."""
    return (q.scope,) if q.scope is not None else actor.read_scopes


def _similar(kind: MemoryKind, memory_id: str, distance: float) -> Ranked:
    """A nearest-vector hit from PostgreSQL's cosine distance."""
    similarity = 1.0 - float(distance)
    return Ranked(kind, memory_id, similarity, {"embedding": similarity})


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
