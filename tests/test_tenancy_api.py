"""Organizations, clients, API keys and users through the HTTP API (MIRIX-compatible shapes)."""

from __future__ import annotations

import httpx

from tests.support import Tenant


async def test_organization_endpoints(http: httpx.AsyncClient, tenant: Tenant):
    listed = await http.get("/organizations", headers=tenant.headers)
    assert [org["id"] for org in listed.json()] == [tenant.org_id]
    assert set(listed.json()[0]) == {"id", "name", "created_at"}
    own = await http.post("/organizations/create_or_get", json={"org_id": tenant.org_id}, headers=tenant.headers)
    assert own.status_code == 200 and own.json()["id"] == tenant.org_id
    implicit = await http.post("/organizations/create_or_get", json={}, headers=tenant.headers)
    assert implicit.json()["id"] == tenant.org_id
    foreign = await http.post("/organizations/create_or_get", json={"org_id": "org-new"}, headers=tenant.headers)
    assert foreign.status_code == 403
    assert (await http.post("/organizations?name=x", headers=tenant.headers)).status_code == 403


async def test_client_key_sees_only_itself(http: httpx.AsyncClient, tenant: Tenant):
    me = await http.get(f"/clients/{tenant.client_id}", headers=tenant.headers)
    assert me.status_code == 200
    body = me.json()
    assert body["write_scope"] == "default" and body["read_scopes"] == ["default"]
    assert "password_hash" not in body and "email" not in body
    assert [c["id"] for c in (await http.get("/clients", headers=tenant.headers)).json()] == [tenant.client_id]
    same = await http.post("/clients/create_or_get", json={"client_id": tenant.client_id}, headers=tenant.headers)
    assert same.status_code == 200 and same.json()["id"] == tenant.client_id
    sdk_style = await http.post("/clients/create_or_get", json={"name": "x", "read_scopes": []}, headers=tenant.headers)
    assert sdk_style.status_code == 200 and sdk_style.json()["id"] == tenant.client_id
    other = await http.post("/clients/create_or_get", json={"client_id": "client-new"}, headers=tenant.headers)
    assert other.status_code == 403
    assert (
        await http.patch(f"/clients/{tenant.client_id}", json={"write_scope": "x"}, headers=tenant.headers)
    ).status_code == 403
    assert (await http.get(f"/clients/{tenant.client_id}/api-keys", headers=tenant.headers)).status_code == 403


async def test_admin_manages_clients_and_keys(http: httpx.AsyncClient, tenant: Tenant, admin_headers):
    created = await http.post(
        "/clients/create_or_get",
        json={"client_id": "client-reader", "name": "reader", "write_scope": None, "read_scopes": ["default"]},
        headers=admin_headers,
    )
    assert created.status_code == 201, created.text
    assert created.json()["organization_id"] == tenant.org_id
    again = await http.post("/clients/create_or_get", json={"client_id": "client-reader"}, headers=admin_headers)
    assert again.status_code == 200
    conflict = await http.post(
        "/clients/create_or_get?fail_if_exists=true", json={"client_id": "client-reader"}, headers=admin_headers
    )
    assert conflict.status_code == 409
    generated = await http.post("/clients/create_or_get", json={"name": "gen"}, headers=admin_headers)
    assert generated.status_code == 201 and generated.json()["id"].startswith("client-")

    listed = {c["id"] for c in (await http.get("/clients", headers=admin_headers)).json()}
    assert {tenant.client_id, "client-reader", generated.json()["id"]} <= listed

    patched = await http.patch(
        "/clients/client-reader", json={"name": "Reader", "read_scopes": ["default", "x"]}, headers=admin_headers
    )
    assert patched.json()["name"] == "Reader" and patched.json()["read_scopes"] == ["default", "x"]
    mismatched = await http.patch("/clients/client-reader", json={"id": "client-other"}, headers=admin_headers)
    assert mismatched.status_code == 403

    key = await http.post("/clients/client-reader/api-keys", json={"name": "ci"}, headers=admin_headers)
    assert key.status_code == 200
    key_body = key.json()
    assert set(key_body) >= {"id", "client_id", "name", "api_key", "status", "permission", "created_at"}
    reader_headers = {"X-API-Key": key_body["api_key"]}
    me = await http.get("/clients/client-reader", headers=reader_headers)
    assert me.json()["write_scope"] is None
    keys = (await http.get("/clients/client-reader/api-keys", headers=admin_headers)).json()
    assert [k["id"] for k in keys] == [key_body["id"]]
    assert "api_key" not in keys[0] and "key_hash" not in keys[0]

    deleted = await http.delete("/clients/client-reader", headers=admin_headers)
    assert deleted.json() == {"message": "Client client-reader soft deleted successfully"}
    assert (await http.get("/clients/client-reader", headers=admin_headers)).status_code == 404
    assert (await http.get("/users", headers=reader_headers)).status_code == 401


async def test_user_endpoints(http: httpx.AsyncClient, tenant: Tenant):
    created = await http.post(
        "/users/create_or_get", json={"user_id": "alice", "name": "Alice"}, headers=tenant.headers
    )
    assert created.status_code == 200
    alice = created.json()
    assert alice["id"] == "alice" and alice["organization_id"] == tenant.org_id and alice["timezone"] == "UTC"
    assert set(alice) >= {"id", "organization_id", "name", "status", "timezone", "is_admin", "created_at"}
    same = await http.post("/users/create_or_get", json={"user_id": "alice", "name": "Other"}, headers=tenant.headers)
    assert same.json()["name"] == "Alice"
    generated = await http.post(
        "/users/create_or_get", json={"timezone": "America/New_York (UTC-05:00)"}, headers=tenant.headers
    )
    assert generated.json()["id"].startswith("user-") and generated.json()["timezone"] == "America/New_York"
    assert (await http.get("/users/alice", headers=tenant.headers)).json()["name"] == "Alice"
    ids = [u["id"] for u in (await http.get("/users", headers=tenant.headers)).json()]
    assert "alice" in ids and generated.json()["id"] in ids
    first_page = (await http.get("/users?limit=1", headers=tenant.headers)).json()
    second_page = (await http.get(f"/users?limit=1&cursor={first_page[0]['id']}", headers=tenant.headers)).json()
    assert len(first_page) == len(second_page) == 1 and first_page[0]["id"] < second_page[0]["id"]

    deleted = await http.delete("/users/alice", headers=tenant.headers)
    assert deleted.json() == {"message": "User alice soft deleted successfully"}
    assert (await http.get("/users/alice", headers=tenant.headers)).status_code == 404
    assert (await http.delete("/users/alice", headers=tenant.headers)).status_code == 404
    assert "alice" not in [u["id"] for u in (await http.get("/users", headers=tenant.headers)).json()]
    revived = await http.post("/users/create_or_get", json={"user_id": "alice"}, headers=tenant.headers)
    assert revived.status_code == 200 and revived.json()["is_deleted"] is False


async def test_same_user_id_in_two_organizations(http: httpx.AsyncClient, tenant: Tenant, other_tenant: Tenant):
    for t, name in ((tenant, "Acme Bob"), (other_tenant, "Globex Bob")):
        response = await http.post("/users/create_or_get", json={"user_id": "bob", "name": name}, headers=t.headers)
        assert response.status_code == 200
    assert (await http.get("/users/bob", headers=tenant.headers)).json()["name"] == "Acme Bob"
    assert (await http.get("/users/bob", headers=other_tenant.headers)).json()["name"] == "Globex Bob"


async def test_read_only_client_cannot_delete_users(http: httpx.AsyncClient, server, tenant: Tenant):
    from tests.support import create_tenant

    reader = await create_tenant(server, "acme", client="reader", write_scope=None, read_scopes=["default"])
    await http.post("/users/create_or_get", json={"user_id": "carol"}, headers=tenant.headers)
    assert (await http.delete("/users/carol", headers=reader.headers)).status_code == 403


async def test_config_endpoints(http: httpx.AsyncClient, tenant: Tenant):
    assert (await http.get("/config/llm")).status_code == 401
    assert (await http.get("/config/llm", headers=tenant.headers)).json() == []
    embedding = (await http.get("/config/embedding", headers=tenant.headers)).json()
    assert embedding[0]["embedding_model"] == "all-MiniLM-L6-v2" and embedding[0]["embedding_dim"] == 384
    assert "api_key" not in embedding[0]


async def test_concurrent_first_requests_for_a_new_user(http, tenant):
    import asyncio

    responses = await asyncio.gather(
        *(http.post("/users/create_or_get", json={"user_id": "racer"}, headers=tenant.headers) for _ in range(8))
    )
    assert [r.status_code for r in responses] == [200] * 8
    items = [{"memory_type": "semantic", "user_id": "new-racer", "name": "x", "summary": "y"}]
    imports = await asyncio.gather(
        *(http.post("/memory/import", json={"items": items}, headers=tenant.headers) for _ in range(4))
    )
    assert [r.status_code for r in imports] == [200] * 4
