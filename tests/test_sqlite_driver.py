"""The SQLite dialect that makes one driver-thread trip per statement behaves like the stock one."""

from __future__ import annotations

from collections.abc import Callable

import aiosqlite
import pytest
from sqlalchemy import exc, text

from mirix.db.engine import create_engine
from mirix.db.sqlite_driver import DRIVER

pytestmark = pytest.mark.sqlite_only


@pytest.fixture
async def engine(settings):
    engine = create_engine(settings)
    assert engine.dialect.driver == DRIVER
    yield engine
    await engine.dispose()


@pytest.fixture
def count_trips(monkeypatch) -> Callable[[], list[str]]:
    """Call it to start recording the functions sent to aiosqlite's driver thread, by name."""

    def start() -> list[str]:
        trips: list[str] = []
        real = aiosqlite.Connection._execute

        async def counted(connection, fn, *args, **kwargs):
            trips.append(getattr(fn, "__name__", repr(fn)))
            return await real(connection, fn, *args, **kwargs)

        monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)
        return trips

    return start


async def test_rows_counts_ids_and_errors(engine):
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT UNIQUE)"))
        inserted = await conn.execute(text("INSERT INTO t (name) VALUES (:n)"), {"n": "a"})
        assert inserted.lastrowid == 1
        many = await conn.execute(text("INSERT INTO t (name) VALUES (:n)"), [{"n": "b"}, {"n": "c"}])
        assert many.rowcount == 2
        returned = await conn.execute(text("INSERT INTO t (name) VALUES ('d') RETURNING id, name"))
        assert returned.all() == [(4, "d")]
        updated = await conn.execute(text("UPDATE t SET name = name || '!' WHERE id > 2"))
        assert updated.rowcount == 2
        rows = await conn.execute(text("SELECT id, name FROM t ORDER BY id"))
        assert rows.keys() == ["id", "name"]
        assert rows.all() == [(1, "a"), (2, "b"), (3, "c!"), (4, "d!")]
        with pytest.raises(exc.IntegrityError):
            await conn.execute(text("INSERT INTO t (name) VALUES ('a')"))
    async with engine.connect() as conn:  # the failed statement rolled nothing else back
        assert (await conn.execute(text("SELECT count(*) FROM t"))).scalar() == 4


async def test_a_statement_is_one_trip_to_the_driver_thread(engine, count_trips):
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))  # the pool's first connect happens outside the count
        trips = count_trips()
        assert (await conn.execute(text("SELECT 2"))).scalar() == 2
        assert trips == ["_run"]


async def test_ending_a_read_costs_no_trip_and_ending_a_write_still_does(engine, count_trips):
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY)"))
    trips = count_trips()
    async with engine.connect() as conn:  # closes with a rollback, which has nothing to end
        await conn.execute(text("SELECT count(*) FROM t"))
    assert trips == ["_run"]

    trips.clear()
    async with engine.connect() as conn:  # a write left uncommitted is rolled back
        await conn.execute(text("INSERT INTO t (id) VALUES (1)"))
    assert trips == ["_run", "rollback"]
    async with engine.begin() as conn:  # ... and a committed one is kept
        assert (await conn.execute(text("SELECT count(*) FROM t"))).scalar() == 0
        await conn.execute(text("INSERT INTO t (id) VALUES (2)"))
    async with engine.connect() as conn:
        assert (await conn.execute(text("SELECT id FROM t"))).scalars().all() == [2]
