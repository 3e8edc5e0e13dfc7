"""Alembic migrations build exactly the schema the ORM models declare, on both dialects."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from mirix.db.engine import create_migration_engine
from mirix.db.migrate import alembic_config, current_revision, include_object, upgrade
from mirix.db.models import Base
from mirix.settings import Settings


async def _diff(url: str) -> list:
    engine = create_migration_engine(url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(
                lambda sync: compare_metadata(
                    MigrationContext.configure(sync, opts={"compare_type": True, "include_object": include_object}),
                    Base.metadata,
                )
            )
    finally:
        await engine.dispose()


async def test_upgrade_head_matches_models(settings: Settings):
    url = settings.async_database_url
    await upgrade(url)  # idempotent on an already migrated database
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert await current_revision(url) == head
    assert await _diff(url) == []


async def test_downgrade_to_base_and_back(settings: Settings):
    url = settings.async_database_url
    config = alembic_config(url)
    engine = create_migration_engine(url)
    try:
        async with engine.begin() as connection:

            def downgrade(sync):
                config.attributes["connection"] = sync
                command.downgrade(config, "base")

            await connection.run_sync(downgrade)
        async with engine.connect() as connection:
            tables = await connection.run_sync(lambda sync: inspect(sync).get_table_names())
        assert set(tables) <= {"alembic_version"}
    finally:
        await engine.dispose()
    await upgrade(url)
    assert await _diff(url) == []
