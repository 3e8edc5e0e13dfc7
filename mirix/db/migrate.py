"""Apply Alembic migrations from Python (used by ``mirix migrate``, server start and tests)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.engine import Connection

from mirix.db.engine import create_migration_engine

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
#: PostgreSQL advisory lock key held while migrating, so replicas started together migrate one at a time.
MIGRATION_LOCK_KEY = 0x6D6972697801

#: Search structures that live only in the migrations (one dialect each), not in the ORM models:
#: SQLite FTS5 tables (and their shadow tables, and the ``fts_rowid`` counter), SQLite-only ``sqx_``
#: indexes, PostgreSQL tsvector columns and ``pgx_`` indexes.
NOT_MODELLED_COLUMNS = frozenset({"search_tsv"})


def include_object(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    """Alembic filter: leave the dialect-specific search structures out of model comparisons."""
    if name is None:
        return True
    if type_ == "table" and "_fts" in name:
        return False
    if type_ == "index" and name.startswith(("pgx_", "sqx_")):
        return False
    return not (type_ == "column" and name in NOT_MODELLED_COLUMNS)


def alembic_config(url: str | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url:
        config.set_main_option("sqlalchemy.url", url)
    return config


async def upgrade(url: str, revision: str = "head") -> None:
    """Bring the database at ``url`` up to ``revision``."""
    config = alembic_config(url)

    def _upgrade(connection: Connection) -> None:
        if connection.dialect.name == "postgresql":
            # Held until this transaction ends; the next replica then finds the schema at head.
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        config.attributes["connection"] = connection
        command.upgrade(config, revision)

    engine = create_migration_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_upgrade)
    finally:
        await engine.dispose()


async def current_revision(url: str) -> str | None:
    from alembic.runtime.migration import MigrationContext

    engine = create_migration_engine(url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(lambda sync: MigrationContext.configure(sync).get_current_revision())
    finally:
        await engine.dispose()
