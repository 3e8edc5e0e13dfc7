"""Alembic environment. Migrations run on a connection handed over by ``mirix.db.migrate``,
or, from the ``alembic`` command line, on the database the MIRIX settings point at."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from mirix.db.migrate import include_object
from mirix.db.models import Base

target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        include_object=include_object,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_from_settings() -> None:
    from mirix.db.engine import create_migration_engine
    from mirix.settings import Settings

    url = context.config.get_main_option("sqlalchemy.url") or Settings().async_database_url
    engine = create_migration_engine(url)
    async with engine.connect() as connection:
        await connection.run_sync(_run)
        await connection.commit()
    await engine.dispose()


connection = context.config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    asyncio.run(_run_from_settings())
