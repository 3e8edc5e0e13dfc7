"""SQLite: change markers that let in-process search indexes read only what changed.

- ``fts_rowid`` now comes from a counter that only grows (``memory_fts_sequence``) on every
  insert and on every change of an indexed column, so the highest ``fts_rowid`` of a user's rows
  moves whenever their searchable text does. An index on (organization, user, fts_rowid) makes
  reading that marker one lookup. Deleting a row also takes a number from the counter and records
  it per (organization, user, table) in ``memory_fts_deletions``, so deletions move the marker too.
- ``memory_embeddings`` ids are never reused (AUTOINCREMENT). SQLite otherwise hands the id of a
  deleted newest row to the next insert, and replacing the newest vector of a user then looks like
  no change at all.

Both dialects: the owner index of ``memory_embeddings`` leaves out the field, because the vector
cache now holds all fields of a type in one matrix and reads its marker per type.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05 04:05:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

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
NEXT = "(SELECT value FROM memory_fts_sequence)"


def _values(fields: list[str], row: str) -> str:
    owner = (
        f"'o' || hex({row}organization_id) || ' u' || hex({row}organization_id || '/' || {row}user_id)"
        f" || ' s' || hex({row}organization_id || '/' || {row}scope)"
    )
    texts = (
        f"(SELECT group_concat(value, ' ') FROM json_each({row}{f}))" if f in LIST_FIELDS else f"{row}{f}"
        for f in fields
    )
    return ", ".join([owner, *texts])


def _create_triggers(table: str, fields: list[str], *, counter: bool) -> None:
    columns = ", ".join(["owner", *fields])
    watched = ", ".join([*fields, "deleted_at", "scope", "user_id", "organization_id"])
    values = _values(fields, "new.")
    if counter:
        assign = (
            "UPDATE memory_fts_sequence SET value = value + 1; "
            f"UPDATE {table} SET fts_rowid = {NEXT} WHERE rowid = new.rowid; "
        )
        rowid_on_insert = rowid_on_update = NEXT
    else:
        assign = f"UPDATE {table} SET fts_rowid = new.rowid WHERE rowid = new.rowid; "
        rowid_on_insert, rowid_on_update = "new.rowid", "new.fts_rowid"
    op.execute(
        f"CREATE TRIGGER {table}_fts_ai AFTER INSERT ON {table} BEGIN {assign}"
        f"INSERT INTO {table}_fts(rowid, {columns}) SELECT {rowid_on_insert}, {values} "
        "WHERE new.deleted_at IS NULL; END"
    )
    op.execute(
        f"CREATE TRIGGER {table}_fts_au AFTER UPDATE OF {watched} ON {table} BEGIN "
        f"DELETE FROM {table}_fts WHERE rowid = old.fts_rowid; {assign if counter else ''}"
        f"INSERT INTO {table}_fts(rowid, {columns}) SELECT {rowid_on_update}, {values} "
        "WHERE new.deleted_at IS NULL; END"
    )


def _create_delete_trigger(table: str, *, counter: bool) -> None:
    record = (
        "UPDATE memory_fts_sequence SET value = value + 1; "
        "INSERT INTO memory_fts_deletions (organization_id, user_id, table_name, seq) "
        f"VALUES (old.organization_id, old.user_id, '{table}', {NEXT}) "
        "ON CONFLICT (organization_id, user_id, table_name) DO UPDATE SET seq = excluded.seq; "
    )
    op.execute(
        f"CREATE TRIGGER {table}_fts_ad AFTER DELETE ON {table} BEGIN "
        f"DELETE FROM {table}_fts WHERE rowid = old.fts_rowid; {record if counter else ''}END"
    )


def _drop_triggers(table: str) -> None:
    for suffix in ("ai", "au", "ad"):
        op.execute(f"DROP TRIGGER IF EXISTS {table}_fts_{suffix}")


def _owner_index(columns: list[str]) -> None:
    with op.batch_alter_table("memory_embeddings", schema=None) as batch_op:
        batch_op.drop_index("ix_memory_embeddings_owner")
        batch_op.create_index("ix_memory_embeddings_owner", columns, unique=False)


def upgrade() -> None:
    _owner_index(["organization_id", "user_id", "kind", "model", "id"])
    if op.get_bind().dialect.name != "sqlite":
        return
    op.execute("CREATE TABLE memory_fts_sequence (value INTEGER NOT NULL)")
    highest = " UNION ALL ".join(f"SELECT max(fts_rowid) AS m FROM {table}" for table in TEXT_FIELDS)
    op.execute(f"INSERT INTO memory_fts_sequence (value) SELECT coalesce(max(m), 0) FROM ({highest})")
    op.execute(
        "CREATE TABLE memory_fts_deletions (organization_id VARCHAR(128) NOT NULL, user_id VARCHAR(128) NOT NULL, "
        "table_name VARCHAR(64) NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (organization_id, user_id, table_name))"
    )
    for table, fields in TEXT_FIELDS.items():
        _drop_triggers(table)
        _create_triggers(table, fields, counter=True)
        _create_delete_trigger(table, counter=True)
        op.execute(f"CREATE INDEX sqx_{table}_owner_fts ON {table} (organization_id, user_id, fts_rowid)")
    with op.batch_alter_table("memory_embeddings", recreate="always", table_kwargs={"sqlite_autoincrement": True}):
        pass  # rebuilt as it is, plus AUTOINCREMENT


def downgrade() -> None:
    _owner_index(["organization_id", "user_id", "kind", "field", "model", "id"])
    if op.get_bind().dialect.name != "sqlite":
        return
    with op.batch_alter_table("memory_embeddings", recreate="always", table_kwargs={"sqlite_autoincrement": False}):
        pass
    for table, fields in TEXT_FIELDS.items():
        op.execute(f"DROP INDEX IF EXISTS sqx_{table}_owner_fts")
        _drop_triggers(table)
        # Back to fts_rowid = rowid, which the old triggers assume for new rows.
        op.execute(f"DELETE FROM {table}_fts")
        op.execute(f"UPDATE {table} SET fts_rowid = rowid")
        columns = ", ".join(["owner", *fields])
        op.execute(
            f"INSERT INTO {table}_fts(rowid, {columns}) SELECT rowid, {_values(fields, '')} "
            f"FROM {table} WHERE deleted_at IS NULL"
        )
        _create_triggers(table, fields, counter=False)
        _create_delete_trigger(table, counter=False)
    op.execute("DROP TABLE memory_fts_deletions")
    op.execute("DROP TABLE memory_fts_sequence")
