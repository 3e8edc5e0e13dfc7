"""Long-term memory tables: five typed memories, raw memory, their embeddings and their history.

Every memory row carries its organization, user, writing client, scope, free-form filter tags,
the job that wrote it and soft-delete state. Full-text search structures (FTS5 tables on SQLite,
a stored ``tsvector`` on PostgreSQL) are created by the migrations and kept in step by the
database itself; see ``mirix/db/fulltext.py``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from mirix.db.base import ID, Base, SoftDeleteMixin, TimestampMixin
from mirix.db.models.tenancy import user_fk
from mirix.db.types import EmbeddingVector, JSONType, UTCDateTime, utcnow

# Integer on SQLite so the column is the rowid (auto-increment); BIGINT elsewhere.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class MemoryMixin(TimestampMixin, SoftDeleteMixin):
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"))
    user_id: Mapped[str] = mapped_column(ID)
    client_id: Mapped[str | None] = mapped_column(ForeignKey("clients.id"))
    scope: Mapped[str] = mapped_column(String(128))
    #: Free-form tags; the scope lives in its own column and is merged in on the way out.
    filter_tags: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    #: The job that wrote the row, so a retried job can undo its earlier attempt.
    job_id: Mapped[str | None] = mapped_column(ID)
    #: SQLite only: the row's id in its FTS5 table, taken from a counter that only grows whenever the
    #: row is inserted or its indexed text changes (migration 0004), so it doubles as a change marker.
    fts_rowid: Mapped[int | None] = mapped_column(BigId)


def _memory_indexes(table: str) -> tuple[Any, ...]:
    return (
        user_fk("organization_id", "user_id"),
        Index(f"ix_{table}_owner_time", "organization_id", "user_id", "occurred_at"),
        Index(f"ix_{table}_org_scope", "organization_id", "scope"),
        Index(f"ix_{table}_job_id", "job_id"),
        Index(f"ix_{table}_fts_rowid", "fts_rowid", unique=True),
    )


class EpisodicMemory(MemoryMixin, Base):
    __tablename__ = "episodic_memory"
    __table_args__ = _memory_indexes(__tablename__)

    event_type: Mapped[str] = mapped_column(String(255), default="")
    actor: Mapped[str] = mapped_column(String(255), default="")
    summary: Mapped[str] = mapped_column(Text, default="")
    details: Mapped[str] = mapped_column(Text, default="")


class SemanticMemory(MemoryMixin, Base):
    __tablename__ = "semantic_memory"
    __table_args__ = _memory_indexes(__tablename__)

    name: Mapped[str] = mapped_column(Text, default="")
    summary: Mapped[str] = mapped_column(Text, default="")
    details: Mapped[str] = mapped_column(Text, default="")
    source: Mapped[str] = mapped_column(Text, default="")


class ProceduralMemory(MemoryMixin, Base):
    __tablename__ = "procedural_memory"
    __table_args__ = _memory_indexes(__tablename__)

    entry_type: Mapped[str] = mapped_column(String(255), default="")
    summary: Mapped[str] = mapped_column(Text, default="")
    steps: Mapped[list[str]] = mapped_column(JSONType, default=list)


class ResourceMemory(MemoryMixin, Base):
    __tablename__ = "resource_memory"
    __table_args__ = _memory_indexes(__tablename__)

    title: Mapped[str] = mapped_column(Text, default="")
    summary: Mapped[str] = mapped_column(Text, default="")
    resource_type: Mapped[str] = mapped_column(String(255), default="")
    content: Mapped[str] = mapped_column(Text, default="")


class KnowledgeVaultItem(MemoryMixin, Base):
    __tablename__ = "knowledge_vault"
    __table_args__ = _memory_indexes(__tablename__)

    entry_type: Mapped[str] = mapped_column(String(255), default="")
    source: Mapped[str] = mapped_column(Text, default="")
    sensitivity: Mapped[str] = mapped_column(String(16), default="medium")
    secret_value: Mapped[str] = mapped_column(Text, default="")
    caption: Mapped[str] = mapped_column(Text, default="")


class RawMemory(MemoryMixin, Base):
    """Verbatim task context stored by the API without any LLM; expires after a retention period."""

    __tablename__ = "raw_memory"
    __table_args__ = (
        *_memory_indexes(__tablename__),
        Index("ix_raw_memory_org_updated", "organization_id", "updated_at", "id"),
    )

    context: Mapped[str] = mapped_column(Text, default="")


class MemoryEmbedding(Base):
    """One vector per embedded field of a memory, with the model that made it.

    Kept apart from the memory rows so vectors of any dimension fit, several models can coexist
    while a re-embed runs, and search can read just the vectors of one user and field.
    """

    __tablename__ = "memory_embeddings"
    __table_args__ = (
        UniqueConstraint("memory_id", "field", "model"),
        Index("ix_memory_embeddings_owner", "organization_id", "user_id", "kind", "model", "id"),
        Index("ix_memory_embeddings_org", "organization_id", "kind", "field", "model"),
        # Ids are never reused: the SQLite vector cache detects new vectors by the highest id.
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    memory_id: Mapped[str] = mapped_column(ID)
    kind: Mapped[str] = mapped_column(String(32))
    field: Mapped[str] = mapped_column(String(32))
    organization_id: Mapped[str] = mapped_column(String(128))
    user_id: Mapped[str] = mapped_column(ID)
    model: Mapped[str] = mapped_column(String(255))
    dim: Mapped[int] = mapped_column(Integer)
    vector: Mapped[list[float]] = mapped_column(EmbeddingVector())


class MemoryHistory(Base):
    """Every change to a memory item, so nothing the agents (or callers) do is unrecoverable."""

    __tablename__ = "memory_history"
    __table_args__ = (
        Index("ix_memory_history_item", "memory_id", "id"),
        Index("ix_memory_history_job", "job_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    memory_id: Mapped[str] = mapped_column(ID)
    kind: Mapped[str] = mapped_column(String(32))
    organization_id: Mapped[str] = mapped_column(String(128))
    user_id: Mapped[str] = mapped_column(ID)
    operation: Mapped[str] = mapped_column(String(32))
    before: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    job_id: Mapped[str | None] = mapped_column(ID)
    client_id: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
