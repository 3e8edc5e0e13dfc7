"""The dialect-specific search structures exist, stay in step with the rows, and are used."""

from __future__ import annotations

import pytest
from sqlalchemy import event, text

from mirix.services.memory.kinds import EPISODIC, SEARCHABLE
from tests.support import queries


async def _import(http, tenant, n=30):
    items = [
        {
            "memory_type": "episodic",
            "user_id": "alice",
            "summary": f"event {i} about gardening",
            "details": f"detail {i} tomatoes",
        }
        for i in range(n)
    ]
    response = await http.post("/memory/import", json={"items": items}, headers=tenant.headers)
    return response.json()["ids"]


@pytest.mark.sqlite_only
async def test_fts5_rows_follow_inserts_updates_and_deletes(http, server, tenant):
    ids = await _import(http, tenant, 3)

    async def fts_count(match: str) -> int:
        async with server.engine.connect() as connection:
            result = await connection.execute(
                text(f"SELECT count(*) FROM {EPISODIC.fts_table} WHERE {EPISODIC.fts_table} MATCH :q"), {"q": match}
            )
            return result.scalar()

    assert await fts_count("tomatoes") == 3
    await http.patch(f"/memory/episodic/{ids[0]}", json={"details": "cucumbers"}, headers=tenant.headers)
    assert await fts_count("tomatoes") == 2 and await fts_count("cucumbers") == 1
    await http.delete(f"/memory/episodic/{ids[1]}", headers=tenant.headers)
    assert await fts_count("tomatoes") == 1
    async with server.engine.connect() as connection:
        await connection.execution_options(isolation_level="AUTOCOMMIT")
        await connection.exec_driver_sql("VACUUM")
    # fts_rowid keeps the link even if VACUUM renumbers rowids, so a later update still finds its FTS row.
    await http.patch(f"/memory/episodic/{ids[2]}", json={"details": "peppers"}, headers=tenant.headers)
    assert await fts_count("tomatoes") == 0 and await fts_count("peppers") == 1


@pytest.mark.postgres_only
async def test_postgres_text_search_uses_the_gin_index(http, server, tenant):
    await _import(http, tenant)
    async with server.engine.connect() as connection:
        await connection.exec_driver_sql("SET enable_seqscan = off")  # few rows: make the planner show its hand
        for kind in SEARCHABLE:
            plan = await connection.exec_driver_sql(
                f"EXPLAIN SELECT id FROM {kind.table} WHERE search_tsv @@ to_tsquery('english', 'garden | tomato')"
            )
            assert f"pgx_{kind.table}_search_tsv" in "\n".join(row[0] for row in plan), kind.name


@pytest.mark.postgres_only
async def test_postgres_vector_search_can_use_hnsw(http, server, tenant):
    await _import(http, tenant)
    query = "[" + ",".join(["0.05"] * 384) + "]"
    async with server.engine.connect() as connection:
        await connection.exec_driver_sql("SET enable_seqscan = off")
        plan = await connection.exec_driver_sql(
            "EXPLAIN SELECT memory_id FROM memory_embeddings WHERE dim = 384 "
            f"ORDER BY vector::vector(384) <=> '{query}'::vector LIMIT 10"
        )
        assert "pgx_memory_embeddings_hnsw_384" in "\n".join(row[0] for row in plan)


@pytest.mark.sqlite_only
async def test_a_search_of_every_type_checks_all_in_process_indexes_in_one_statement(http, server, tenant):
    items = [
        {"memory_type": "episodic", "user_id": "alice", "summary": "Planted tomatoes in the garden"},
        {"memory_type": "semantic", "user_id": "alice", "name": "Tomatoes", "summary": "Alice grows tomatoes"},
        {"memory_type": "procedural", "user_id": "alice", "entry_type": "how-to", "summary": "Water tomatoes"},
    ]
    assert (await http.post("/memory/import", json={"items": items}, headers=tenant.headers)).status_code == 200
    params = {"user_id": "alice", "query": "tomatoes", "memory_type": "all", "search_method": "hybrid"}
    first = await http.get("/memory/search", params=params, headers=tenant.headers)  # loads the indexes
    with queries(server) as seen:
        again = await http.get("/memory/search", params=params, headers=tenant.headers)
    assert again.json()["results"] == first.json()["results"]
    assert {item["memory_type"] for item in again.json()["results"]} == {"episodic", "semantic", "procedural"}
    searches = [s for s in seen if "client_api_keys" not in s]  # the API-key lookup aside
    # One statement reads the change markers of both indexes of all five types; then one loads
    # the hits of each type that has any.
    assert len(searches) == 1 + 3, searches


@pytest.mark.postgres_only
async def test_postgres_vector_search_settings_last_only_for_the_search_transaction(server):
    from mirix.db.search import search_dialect

    async with server.sessions() as session:
        await search_dialect("postgresql").prepare_vector_search(session, 300)
        assert (await session.execute(text("SHOW hnsw.ef_search"))).scalar() == "600"
        assert (await session.execute(text("SHOW hnsw.iterative_scan"))).scalar() == "relaxed_order"
    async with server.sessions() as session:  # SET LOCAL: gone with the transaction
        assert (await session.execute(text("SHOW hnsw.ef_search"))).scalar() != "600"


GARDEN = [
    {"memory_type": "episodic", "user_id": "alice", "summary": "Planted tomatoes", "details": "in the back garden"},
    {"memory_type": "episodic", "user_id": "alice", "summary": "Bought a garden hose", "details": "green, 20 m"},
    {"memory_type": "semantic", "user_id": "alice", "name": "Tomatoes", "summary": "Alice grows tomatoes"},
    {"memory_type": "procedural", "user_id": "alice", "entry_type": "how-to", "summary": "Water the garden at dawn"},
    {"memory_type": "resource", "user_id": "alice", "title": "Seed catalogue", "summary": "Tomato and bean seeds"},
    {
        "memory_type": "knowledge_vault",
        "user_id": "alice",
        "entry_type": "credential",
        "secret_value": "s3cret",
        "caption": "Garden shed padlock code",
    },
    {"memory_type": "episodic", "user_id": "bob", "summary": "Bob's tomatoes", "details": "not Alice's garden"},
]


async def _search(http, tenant, memory_type, method):
    params = {"user_id": "alice", "query": "garden tomatoes", "memory_type": memory_type, "search_method": method}
    response = await http.get("/memory/search", params=params, headers=tenant.headers)
    assert response.status_code == 200, response.text
    return [(item["memory_type"], item["id"], item["score"]) for item in response.json()["results"]]


@pytest.mark.parametrize("method", ["bm25", "embedding"])
async def test_a_search_of_every_type_ranks_what_each_type_alone_finds(http, tenant, method):
    assert (await http.post("/memory/import", json={"items": GARDEN}, headers=tenant.headers)).status_code == 200
    alone = [hit for kind in SEARCHABLE for hit in await _search(http, tenant, kind.name, method)]
    together = await _search(http, tenant, "all", method)
    assert {hit[:2]: pytest.approx(hit[2]) for hit in together} == {hit[:2]: hit[2] for hit in alone}
    assert len({hit[0] for hit in together}) >= 4  # the query reaches most types
    scores = [hit[2] for hit in together]
    assert scores == sorted(scores, reverse=True)


@pytest.mark.postgres_only
async def test_a_postgres_search_of_every_type_takes_one_statement_per_method_and_keeps_the_indexes(
    http, server, tenant
):
    assert (await http.post("/memory/import", json={"items": GARDEN}, headers=tenant.headers)).status_code == 200
    seen: list[tuple[str, object]] = []

    def record(_connection, _cursor, statement, parameters, *_args) -> None:
        seen.append((statement, parameters))

    event.listen(server.engine.sync_engine, "before_cursor_execute", record)
    try:
        hits = await _search(http, tenant, "all", "hybrid")
    finally:
        event.remove(server.engine.sync_engine, "before_cursor_execute", record)
    assert {hit[0] for hit in hits} >= {"episodic", "semantic", "procedural"}
    searches = [(s, p) for s, p in seen if "client_api_keys" not in s]
    unions = [(s, p) for s, p in searches if "UNION ALL" in s]
    # Text matches of every type, then the HNSW settings and the nearest vectors of every embedded
    # field, then the rows of each type with hits.
    assert len(unions) == 2 and len(searches) <= 3 + len(SEARCHABLE), [s for s, _ in searches]
    async with server.engine.connect() as connection:
        await connection.exec_driver_sql("SET enable_seqscan = off")  # few rows: make the planner show its hand
        plans = []
        for statement, parameters in unions:
            plan = await connection.exec_driver_sql(f"EXPLAIN {statement}", parameters)
            plans.append("\n".join(row[0] for row in plan))
    text_plan, vector_plan = plans
    # Every branch keeps its own LIMIT and an index (the owner's, or GIN when it is the better one).
    assert "Seq Scan" not in text_plan and text_plan.count("Limit") == len(SEARCHABLE), text_plan
    assert "Seq Scan" not in vector_plan and vector_plan.count("Limit") >= len(SEARCHABLE), vector_plan
    assert vector_plan.count("pgx_memory_embeddings_hnsw_384") == vector_plan.count("Limit"), vector_plan
