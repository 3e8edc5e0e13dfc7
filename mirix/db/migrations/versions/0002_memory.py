"""Memory tables, embeddings, history, and their full-text and vector search structures.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-04 22:35:05.337400
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import mirix.db.types

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE EXTENSION IF NOT EXISTS vector")
    op.create_table(
        "memory_embeddings",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("memory_id", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("field", sa.String(length=32), nullable=False),
        sa.Column("organization_id", sa.String(length=128), nullable=False),
        sa.Column("user_id", sa.String(length=128), nullable=False),
        sa.Column("model", sa.String(length=255), nullable=False),
        sa.Column("dim", sa.Integer(), nullable=False),
        sa.Column("vector", mirix.db.types.EmbeddingVector(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_memory_embeddings")),
        sa.UniqueConstraint("memory_id", "field", "model", name=op.f("uq_memory_embeddings_memory_id_field_model")),
    )
    with op.batch_alter_table("memory_embeddings", schema=None) as batch_op:
        batch_op.create_index("ix_memory_embeddings_org", ["organization_id", "kind", "field", "model"], unique=False)
        batch_op.create_index(
            "ix_memory_embeddings_owner", ["organization_id", "user_id", "kind", "field", "model", "id"], unique=False
        )

    op.create_table(
        "memory_history",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("memory_id", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("organization_id", sa.String(length=128), nullable=False),
        sa.Column("user_id", sa.String(length=128), nullable=False),
        sa.Column("operation", sa.String(length=32), nullable=False),
        sa.Column("before", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=True),
        sa.Column("after", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=True),
        sa.Column("job_id", sa.String(length=128), nullable=True),
        sa.Column("client_id", sa.String(length=128), nullable=True),
        sa.Column("created_at", mirix.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_memory_history")),
    )
    with op.batch_alter_table("memory_history", schema=None) as batch_op:
        batch_op.create_index("ix_memory_history_item", ["memory_id", "id"], unique=False)
        batch_op.create_index("ix_memory_history_job", ["job_id"], unique=False)

    op.create_table(
        "episodic_memory",
        sa.Column("event_type", sa.String(length=255), nullable=False),
        sa.Column("actor", sa.String(length=255), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("details", sa.Text(), nullable=False),
        sa.Column("id", sa.String(length=128), nullable=False),
        sa.Column("organization_id", sa.String(length=128), nullable=False),
        sa.Column("user_id", sa.String(length=128), nullable=False),
        sa.Column("client_id", sa.String(length=128), nullable=True),
        sa.Column("scope", sa.String(length=128), nullable=False),
        sa.Column("filter_tags", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("occurred_at", mirix.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("job_id", sa.String(length=128), nullable=True),
        sa.Column("fts_rowid", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("created_at", mirix.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", mirix.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", mirix.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["client_id"], ["clients.id"], name=op.f("fk_episodic_memory_client_id_clients")),
        sa.ForeignKeyConstraint(
            ["organization_id", "user_id"],
            ["users.organization_id", "users.id"],
            name=op.f("fk_episodic_memory_organization_id_user_id_users"),
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"], ["organizations.id"], name=op.f("fk_episodic_memory_organization_id_organizations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_episodic_memory")),
    )
    with op.batch_alter_table("episodic_memory", schema=None) as batch_op:
        batch_op.create_index("ix_episodic_memory_fts_rowid", ["fts_rowid"], unique=True)
        batch_op.create_index("ix_episodic_memory_job_id", ["job_id"], unique=False)
        batch_op.create_index("ix_episodic_memory_org_scope", ["organization_id", "scope"], unique=False)
        batch_op.create_index(
            "ix_episodic_memory_owner_time", ["organization_id", "user_id", "occurred_at"], unique=False
        )

    op.create_table(
        "knowledge_vault",
        sa.Column("entry_type", sa.String(length=255), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("sensitivity", sa.String(length=16), nullable=False),
        sa.Column("secret_value", sa.Text(), nullable=False),
        sa.Column("caption", sa.Text(), nullable=False),
        sa.Column("id", sa.String(length=128), nullable=False),
        sa.Column("organization_id", sa.String(length=128), nullable=False),
        sa.Column("user_id", sa.String(length=128), nullable=False),
        sa.Column("client_id", sa.String(length=128), nullable=True),
        sa.Column("scope", sa.String(length=128), nullable=False),
        sa.Column("filter_tags", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("occurred_at", mirix.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("job_id", sa.String(length=128), nullable=True),
        sa.Column("fts_rowid", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("created_at", mirix.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", mirix.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", mirix.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["client_id"], ["clients.id"], name=op.f("fk_knowledge_vault_client_id_clients")),
        sa.ForeignKeyConstraint(
            ["organization_id", "user_id"],
            ["users.organization_id", "users.id"],
            name=op.f("fk_knowledge_vault_organization_id_user_id_users"),
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"], ["organizations.id"], name=op.f("fk_knowledge_vault_organization_id_organizations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_knowledge_vault")),
    )
    with op.batch_alter_table("knowledge_vault", schema=None) as batch_op:
        batch_op.create_index("ix_knowledge_vault_fts_rowid", ["fts_rowid"], unique=True)
        batch_op.create_index("ix_knowledge_vault_job_id", ["job_id"], unique=False)
        batch_op.create_index("ix_knowledge_vault_org_scope", ["organization_id", "scope"], unique=False)
        batch_op.create_index(
            "ix_knowledge_vault_owner_time", ["organization_id", "user_id", "occurred_at"], unique=False
        )

    op.create_table(
        "procedural_memory",
        sa.Column("entry_type", sa.String(length=255), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("steps", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("id", sa.String(length=128), nullable=False),
        sa.Column("organization_id", sa.String(length=128), nullable=False),
        sa.Column("user_id", sa.String(length=128), nullable=False),
        sa.Column("client_id", sa.String(length=128), nullable=True),
        sa.Column("scope", sa.String(length=128), nullable=False),
        sa.Column("filter_tags", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("occurred_at", mirix.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("job_id", sa.String(length=128), nullable=True),
        sa.Column("fts_rowid", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("created_at", mirix.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", mirix.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", mirix.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["client_id"], ["clients.id"], name=op.f("fk_procedural_memory_client_id_clients")),
        sa.ForeignKeyConstraint(
            ["organization_id", "user_id"],
            ["users.organization_id", "users.id"],
            name=op.f("fk_procedural_memory_organization_id_user_id_users"),
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"], ["organizations.id"], name=op.f("fk_procedural_memory_organization_id_organizations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_procedural_memory")),
    )
    with op.batch_alter_table("procedural_memory", schema=None) as batch_op:
        batch_op.create_index("ix_procedural_memory_fts_rowid", ["fts_rowid"], unique=True)
        batch_op.create_index("ix_procedural_memory_job_id", ["job_id"], unique=False)
        batch_op.create_index("ix_procedural_memory_org_scope", ["organization_id", "scope"], unique=False)
        batch_op.create_index(
            "ix_procedural_memory_owner_time", ["organization_id", "user_id", "occurred_at"], unique=False
        )

    op.create_table(
        "raw_memory",
        sa.Column("context", sa.Text(), nullable=False),
        sa.Column("id", sa.String(length=128), nullable=False),
        sa.Column("organization_id", sa.String(length=128), nullable=False),
        sa.Column("user_id", sa.String(length=128), nullable=False),
        sa.Column("client_id", sa.String(length=128), nullable=True),
        sa.Column("scope", sa.String(length=128), nullable=False),
        sa.Column("filter_tags", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("occurred_at", mirix.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("job_id", sa.String(length=128), nullable=True),
        sa.Column("fts_rowid", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("created_at", mirix.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", mirix.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", mirix.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["client_id"], ["clients.id"], name=op.f("fk_raw_memory_client_id_clients")),
        sa.ForeignKeyConstraint(
            ["organization_id", "user_id"],
            ["users.organization_id", "users.id"],
            name=op.f("fk_raw_memory_organization_id_user_id_users"),
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"], ["organizations.id"], name=op.f("fk_raw_memory_organization_id_organizations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_raw_memory")),
    )
    with op.batch_alter_table("raw_memory", schema=None) as batch_op:
        batch_op.create_index("ix_raw_memory_fts_rowid", ["fts_rowid"], unique=True)
        batch_op.create_index("ix_raw_memory_job_id", ["job_id"], unique=False)
        batch_op.create_index("ix_raw_memory_org_scope", ["organization_id", "scope"], unique=False)
        batch_op.create_index("ix_raw_memory_org_updated", ["organization_id", "updated_at", "id"], unique=False)
        batch_op.create_index("ix_raw_memory_owner_time", ["organization_id", "user_id", "occurred_at"], unique=False)

    op.create_table(
        "resource_memory",
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("resource_type", sa.String(length=255), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("id", sa.String(length=128), nullable=False),
        sa.Column("organization_id", sa.String(length=128), nullable=False),
        sa.Column("user_id", sa.String(length=128), nullable=False),
        sa.Column("client_id", sa.String(length=128), nullable=True),
        sa.Column("scope", sa.String(length=128), nullable=False),
        sa.Column("filter_tags", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("occurred_at", mirix.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("job_id", sa.String(length=128), nullable=True),
        sa.Column("fts_rowid", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("created_at", mirix.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", mirix.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", mirix.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["client_id"], ["clients.id"], name=op.f("fk_resource_memory_client_id_clients")),
        sa.ForeignKeyConstraint(
            ["organization_id", "user_id"],
            ["users.organization_id", "users.id"],
            name=op.f("fk_resource_memory_organization_id_user_id_users"),
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"], ["organizations.id"], name=op.f("fk_resource_memory_organization_id_organizations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_resource_memory")),
    )
    with op.batch_alter_table("resource_memory", schema=None) as batch_op:
        batch_op.create_index("ix_resource_memory_fts_rowid", ["fts_rowid"], unique=True)
        batch_op.create_index("ix_resource_memory_job_id", ["job_id"], unique=False)
        batch_op.create_index("ix_resource_memory_org_scope", ["organization_id", "scope"], unique=False)
        batch_op.create_index(
            "ix_resource_memory_owner_time", ["organization_id", "user_id", "occurred_at"], unique=False
        )

    op.create_table(
        "semantic_memory",
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("details", sa.Text(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("id", sa.String(length=128), nullable=False),
        sa.Column("organization_id", sa.String(length=128), nullable=False),
        sa.Column("user_id", sa.String(length=128), nullable=False),
        sa.Column("client_id", sa.String(length=128), nullable=True),
        sa.Column("scope", sa.String(length=128), nullable=False),
        sa.Column("filter_tags", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("occurred_at", mirix.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("job_id", sa.String(length=128), nullable=True),
        sa.Column("fts_rowid", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("created_at", mirix.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", mirix.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", mirix.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["client_id"], ["clients.id"], name=op.f("fk_semantic_memory_client_id_clients")),
        sa.ForeignKeyConstraint(
            ["organization_id", "user_id"],
            ["users.organization_id", "users.id"],
            name=op.f("fk_semantic_memory_organization_id_user_id_users"),
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"], ["organizations.id"], name=op.f("fk_semantic_memory_organization_id_organizations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_semantic_memory")),
    )
    with op.batch_alter_table("semantic_memory", schema=None) as batch_op:
        batch_op.create_index("ix_semantic_memory_fts_rowid", ["fts_rowid"], unique=True)
        batch_op.create_index("ix_semantic_memory_job_id", ["job_id"], unique=False)
        batch_op.create_index("ix_semantic_memory_org_scope", ["organization_id", "scope"], unique=False)
        batch_op.create_index(
            "ix_semantic_memory_owner_time", ["organization_id", "user_id", "occurred_at"], unique=False
        )
    _create_search_structures()


def downgrade() -> None:
    _drop_search_structures()
    with op.batch_alter_table("semantic_memory", schema=None) as batch_op:
        batch_op.drop_index("ix_semantic_memory_owner_time")
        batch_op.drop_index("ix_semantic_memory_org_scope")
        batch_op.drop_index("ix_semantic_memory_job_id")
        batch_op.drop_index("ix_semantic_memory_fts_rowid")

    op.drop_table("semantic_memory")
    with op.batch_alter_table("resource_memory", schema=None) as batch_op:
        batch_op.drop_index("ix_resource_memory_owner_time")
        batch_op.drop_index("ix_resource_memory_org_scope")
        batch_op.drop_index("ix_resource_memory_job_id")
        batch_op.drop_index("ix_resource_memory_fts_rowid")

    op.drop_table("resource_memory")
    with op.batch_alter_table("raw_memory", schema=None) as batch_op:
        batch_op.drop_index("ix_raw_memory_owner_time")
        batch_op.drop_index("ix_raw_memory_org_updated")
        batch_op.drop_index("ix_raw_memory_org_scope")
        batch_op.drop_index("ix_raw_memory_job_id")
        batch_op.drop_index("ix_raw_memory_fts_rowid")

    op.drop_table("raw_memory")
    with op.batch_alter_table("procedural_memory", schema=None) as batch_op:
        batch_op.drop_index("ix_procedural_memory_owner_time")
        batch_op.drop_index("ix_procedural_memory_org_scope")
        batch_op.drop_index("ix_procedural_memory_job_id")
        batch_op.drop_index("ix_procedural_memory_fts_rowid")

    op.drop_table("procedural_memory")
    with op.batch_alter_table("knowledge_vault", schema=None) as batch_op:
        batch_op.drop_index("ix_knowledge_vault_owner_time")
        batch_op.drop_index("ix_knowledge_vault_org_scope")
        batch_op.drop_index("ix_knowledge_vault_job_id")
        batch_op.drop_index("ix_knowledge_vault_fts_rowid")

    op.drop_table("knowledge_vault")
    with op.batch_alter_table("episodic_memory", schema=None) as batch_op:
        batch_op.drop_index("ix_episodic_memory_owner_time")
        batch_op.drop_index("ix_episodic_memory_org_scope")
        batch_op.drop_index("ix_episodic_memory_job_id")
        batch_op.drop_index("ix_episodic_memory_fts_rowid")

    op.drop_table("episodic_memory")
    with op.batch_alter_table("memory_history", schema=None) as batch_op:
        batch_op.drop_index("ix_memory_history_job")
        batch_op.drop_index("ix_memory_history_item")

    op.drop_table("memory_history")
    with op.batch_alter_table("memory_embeddings", schema=None) as batch_op:
        batch_op.drop_index("ix_memory_embeddings_owner")
        batch_op.drop_index("ix_memory_embeddings_org")

    op.drop_table("memory_embeddings")


# --- Search structures, one dialect each (not modelled in the ORM) ----------------------------
# Written out literally so this migration keeps meaning what it meant when it was written.

TEXT_FIELDS = {
    "episodic_memory": ["summary", "details", "actor", "event_type"],
    "semantic_memory": ["name", "summary", "details", "source"],
    "procedural_memory": ["summary", "steps", "entry_type"],
    "resource_memory": ["title", "summary", "content", "resource_type"],
    "knowledge_vault": ["caption", "source", "entry_type"],
    "raw_memory": ["context"],
}
LIST_FIELDS = {"steps"}
INDEXED_DIMENSIONS = (384, 768, 1024, 1536)


def _create_search_structures() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for table, fields in TEXT_FIELDS.items():
            _create_sqlite_fts(table, fields)
    else:
        for table, fields in TEXT_FIELDS.items():
            _create_pg_tsvector(table, fields)
        for dim in INDEXED_DIMENSIONS:
            op.execute(
                f"CREATE INDEX pgx_memory_embeddings_hnsw_{dim} ON memory_embeddings "
                f"USING hnsw ((vector::vector({dim})) vector_cosine_ops) WHERE dim = {dim}"
            )


def _drop_search_structures() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for table in TEXT_FIELDS:
            for suffix in ("ai", "au", "ad"):
                op.execute(f"DROP TRIGGER IF EXISTS {table}_fts_{suffix}")
            op.execute(f"DROP TABLE IF EXISTS {table}_fts")
    else:
        for dim in INDEXED_DIMENSIONS:
            op.execute(f"DROP INDEX IF EXISTS pgx_memory_embeddings_hnsw_{dim}")


def _create_sqlite_fts(table: str, fields: list[str]) -> None:
    """An FTS5 table per memory table, kept in step by triggers.

    The ``owner`` column holds one token each for the organization, the user and the scope, so
    a search can ask FTS for one user's rows instead of filtering every match afterwards (the SQL
    filters stay authoritative). Deleted rows leave the index. Rows are keyed by ``fts_rowid``, a
    copy of the rowid that survives VACUUM.
    """
    columns = ", ".join(["owner", *fields])
    op.execute(
        f"CREATE VIRTUAL TABLE {table}_fts USING fts5({columns}, tokenize = 'porter unicode61 remove_diacritics 2')"
    )
    owner = (
        "'o' || hex(new.organization_id) || ' u' || hex(new.organization_id || '/' || new.user_id)"
        " || ' s' || hex(new.organization_id || '/' || new.scope)"
    )
    values = ", ".join(
        [
            owner,
            *(
                f"(SELECT group_concat(value, ' ') FROM json_each(new.{f}))" if f in LIST_FIELDS else f"new.{f}"
                for f in fields
            ),
        ]
    )
    watched = ", ".join([*fields, "deleted_at", "scope", "user_id", "organization_id"])
    op.execute(
        f"CREATE TRIGGER {table}_fts_ai AFTER INSERT ON {table} BEGIN "
        f"UPDATE {table} SET fts_rowid = new.rowid WHERE rowid = new.rowid; "
        f"INSERT INTO {table}_fts(rowid, {columns}) SELECT new.rowid, {values} WHERE new.deleted_at IS NULL; "
        "END"
    )
    op.execute(
        f"CREATE TRIGGER {table}_fts_au AFTER UPDATE OF {watched} ON {table} BEGIN "
        f"DELETE FROM {table}_fts WHERE rowid = old.fts_rowid; "
        f"INSERT INTO {table}_fts(rowid, {columns}) SELECT new.fts_rowid, {values} "
        "WHERE new.deleted_at IS NULL; "
        "END"
    )
    op.execute(
        f"CREATE TRIGGER {table}_fts_ad AFTER DELETE ON {table} BEGIN "
        f"DELETE FROM {table}_fts WHERE rowid = old.fts_rowid; "
        "END"
    )


def _create_pg_tsvector(table: str, fields: list[str]) -> None:
    """A stored, weighted tsvector (English stemming and stop words) with a GIN index, plus a
    GIN index on the filter tags."""
    parts = " || ".join(
        f"setweight(to_tsvector('english'::regconfig, coalesce({f}{'::text' if f in LIST_FIELDS else ''}, '')), "
        f"'{'ABCD'[i]}')"
        for i, f in enumerate(fields)
    )
    op.execute(f"ALTER TABLE {table} ADD COLUMN search_tsv tsvector GENERATED ALWAYS AS ({parts}) STORED")
    op.execute(f"CREATE INDEX pgx_{table}_search_tsv ON {table} USING gin (search_tsv)")
    op.execute(f"CREATE INDEX pgx_{table}_filter_tags ON {table} USING gin (filter_tags)")
