"""Full-text and vector search SQL for each dialect — the one place the two databases differ.

SQLite ranks with FTS5's ``bm25()`` (Porter stemming, column weights); PostgreSQL matches a
stored English ``tsvector`` through its GIN index and ranks with ``ts_rank`` (length-normalised)
and finds neighbours with pgvector's cosine distance on the dimension-specific HNSW index.
Callers pass search terms that are already reduced to letters and digits
(``mirix.search.text.search_terms``), and every value is a bound parameter.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Float, Select, bindparam, cast, func, literal_column, select, text
from sqlalchemy.sql import column, table

from mirix.db.models.memory import MemoryEmbedding
from mirix.services.memory.kinds import MemoryKind


@dataclass(frozen=True)
class Owner:
    """Whose rows a search may see: always one organization, usually one user, some scopes."""

    organization_id: str
    user_id: str | None
    scopes: tuple[str, ...]


#: SQLite: per (organization, user, table), the counter value taken by the latest deletion of a row
#: (migration 0004); with the rows' ``fts_rowid`` it makes the change marker of a user's memories.
FTS_DELETIONS = table(
    "memory_fts_deletions", column("organization_id"), column("user_id"), column("table_name"), column("seq")
)


def _hex(value: str) -> str:
    return value.encode().hex().upper()


class SqliteSearch:
    name = "sqlite"

    def text_query(
        self, kind: MemoryKind, terms: Sequence[str], fields: Sequence[str], owner: Owner, *, prefix: bool = False
    ) -> tuple[Select[Any], ColumnElement[float]]:
        """Ids of ``kind`` rows matching any term, with a score where higher is better."""
        model = kind.model
        fts = table(kind.fts_table, column("rowid"))
        phrase = " OR ".join(f'"{term}"' + ("*" if prefix else "") for term in terms)
        # The scope and user tokens both spell the organization out (its ids never contain "/"), so no
        # separate organization token is needed: every token ANDed in costs a walk of its posting list.
        owner_terms = []
        if owner.user_id is not None:
            owner_terms.append(f'owner : "u{_hex(owner.organization_id + "/" + owner.user_id)}"')
        scopes = " OR ".join(f'"s{_hex(owner.organization_id + "/" + scope)}"' for scope in owner.scopes)
        owner_terms.append(f"owner : ({scopes})")
        columns = " ".join(fields)
        match = " AND ".join([*owner_terms, f"{{{columns}}} : ({phrase})"])
        weights = ", ".join(
            [
                "0.0",
                *(str(w) if f in fields else "0.0" for f, w in zip(kind.text_fields, kind.text_weights, strict=True)),
            ]
        )
        # bm25() is lower-is-better; negate it so every method ranks by "higher is better".
        score = (-literal_column(f"bm25({kind.fts_table}, {weights})", Float)).label("score")
        query = (
            select(model.id, score)
            .select_from(fts.join(model, model.fts_rowid == fts.c.rowid))
            .where(literal_column(kind.fts_table).op("MATCH")(bindparam("fts_match", match)))
        )
        return query, score

    def vector_distance(self, dim: int, vector: list[float]) -> ColumnElement[float]:
        raise NotImplementedError("SQLite vector search runs on the in-process vector cache")


class PostgresSearch:
    name = "postgresql"

    def text_query(
        self, kind: MemoryKind, terms: Sequence[str], fields: Sequence[str], owner: Owner, *, prefix: bool = False
    ) -> tuple[Select[Any], ColumnElement[float]]:
        model = kind.model
        labels = "".join("ABCD"[kind.text_fields.index(f)] for f in fields)
        restrict = "" if len(fields) == len(kind.text_fields) else labels
        suffix = (":" + ("*" if prefix else "") + restrict) if (prefix or restrict) else ""
        tsquery_text = " | ".join(f"{term}{suffix}" for term in terms)
        tsquery = func.to_tsquery(
            literal_column("'english'::regconfig"), bindparam("tsquery", tsquery_text, unique=True)
        )
        # ts_rank's weight array is ordered {D, C, B, A} and each weight must be within 0..1.
        top = max(kind.text_weights)
        by_label = {label: weight / top for label, weight in zip("ABCD", kind.text_weights, strict=False)}
        weights = ",".join(str(by_label.get(label, 0.0) if label in labels else 0.0) for label in "DCBA")
        tsv = literal_column(f"{kind.table}.search_tsv")
        score = func.ts_rank(literal_column(f"'{{{weights}}}'::float4[]"), tsv, tsquery, 1).label("score")
        query = select(model.id, score).where(tsv.op("@@")(tsquery))
        return query, score

    async def prepare_vector_search(self, session: Any, limit: int) -> None:
        """Let the HNSW index keep scanning until the WHERE clause (one user, one field, ...) has let
        ``limit`` rows through; by default it stops after ef_search candidates and returns fewer."""
        # set_config(..., true) is SET LOCAL: both settings in one round trip, the number bound.
        await session.execute(
            text(
                "SELECT set_config('hnsw.iterative_scan', 'relaxed_order', true), "
                "set_config('hnsw.ef_search', :ef_search, true)"
            ),
            {"ef_search": str(max(40, min(int(limit) * 2, 1000)))},
        )

    def vector_distance(self, dim: int, vector: list[float]) -> ColumnElement[float]:
        """Cosine distance written exactly like the partial HNSW index expression, so it is used."""
        from pgvector.sqlalchemy import VECTOR

        return cast(MemoryEmbedding.vector, VECTOR(dim)).op("<=>", return_type=Float)(
            bindparam("query_vector", vector, type_=VECTOR(dim), unique=True)
        )


SearchDialect = SqliteSearch | PostgresSearch


def search_dialect(name: str) -> SearchDialect:
    return PostgresSearch() if name == "postgresql" else SqliteSearch()
