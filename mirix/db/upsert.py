"""Insert-if-absent, the same on both dialects (both speak ``ON CONFLICT DO NOTHING``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession


async def insert_if_absent(session: AsyncSession, model: type, values: dict[str, Any]) -> None:
    """Insert a row unless one with the same key exists — safe when concurrent requests race."""
    dialect = postgresql if session.bind.dialect.name == "postgresql" else sqlite
    await session.execute(dialect.insert(model).values(**values).on_conflict_do_nothing())
