"""The server with a remote embedding provider (OpenAI wire format, served by the fake provider)."""

from __future__ import annotations

import httpx

from mirix.api.app import create_app
from mirix.server.server import AsyncServer
from tests.fakes import FakeProvider


async def test_memories_embedded_by_a_remote_provider(settings, tenant):
    async with FakeProvider(embedding_dim=64) as fake:
        remote = settings.model_copy(
            update={
                "embedding_endpoint_type": "openai",
                "embedding_model": "fake-embedding",
                "embedding_dim": 64,
                "embedding_endpoint": fake.openai_base_url,
                "embedding_api_key": "sk-test",
            }
        )
        server = await AsyncServer.start(remote)
        try:
            transport = httpx.ASGITransport(app=create_app(server=server))
            async with httpx.AsyncClient(transport=transport, base_url="http://t", headers=tenant.headers) as http:
                items = [
                    {"memory_type": "semantic", "user_id": "alice", "name": name, "summary": summary}
                    for name, summary in (("Rex", "dog beagle puppy"), ("Ledger", "accounting invoices"))
                ]
                assert (await http.post("/memory/import", json={"items": items})).status_code == 200
                assert len(fake.embedding_requests) == 1, "every field of every item in one request"
                found = await http.get(
                    "/memory/search", params={"user_id": "alice", "query": "beagle puppy", "search_method": "embedding"}
                )
                assert found.json()["results"][0]["name"] == "Rex"
        finally:
            await server.close()
        assert all(r.headers.get("authorization") == "Bearer sk-test" for r in fake.embedding_requests)
