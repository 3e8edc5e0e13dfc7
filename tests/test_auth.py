"""Authentication: API keys, admin tokens and the (off by default) trusted-gateway headers."""

from __future__ import annotations

import httpx
import pytest

from mirix.api.app import create_app
from mirix.server.server import AsyncServer
from mirix.services.security import hash_api_key
from tests.support import Tenant, create_tenant


async def test_health_needs_no_key(http: httpx.AsyncClient):
    response = await http.get("/health")
    assert response.status_code == 200
    assert response.json()["status"] == "healthy"
    assert response.json()["service"] == "mirix-api"


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-API-Key": "mirix_not-a-real-key"},
        {"X-API-Key": ""},
        {"Authorization": "Bearer mirix_not-a-real-key"},
        {"Authorization": "Bearer a.b.c"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
    ],
)
async def test_missing_or_wrong_credentials_are_401(http: httpx.AsyncClient, tenant: Tenant, headers):
    response = await http.get("/users", headers=headers)
    assert response.status_code == 401
    assert response.json()["detail"]


async def test_api_key_in_header_or_bearer(http: httpx.AsyncClient, tenant: Tenant):
    for headers in (tenant.headers, {"Authorization": f"Bearer {tenant.key}"}):
        response = await http.get(f"/organizations/{tenant.org_id}", headers=headers)
        assert response.status_code == 200, response.text


async def test_header_only_identity_refused_by_default(http: httpx.AsyncClient, tenant: Tenant):
    response = await http.get("/users", headers={"X-Client-ID": tenant.client_id, "X-Org-ID": tenant.org_id})
    assert response.status_code == 401
    assert "trusted-gateway" in response.json()["detail"]


async def test_trusted_gateway_mode_accepts_client_header(server: AsyncServer, tenant: Tenant):
    gateway_server = AsyncServer(server.settings.model_copy(update={"trusted_gateway": True}))
    try:
        app = create_app(server=gateway_server)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
            ok = await http.get(f"/clients/{tenant.client_id}", headers={"X-Client-ID": tenant.client_id})
            assert ok.status_code == 200
            wrong_org = await http.get("/users", headers={"X-Client-ID": tenant.client_id, "X-Org-ID": "org-x"})
            assert wrong_org.status_code == 401
            unknown = await http.get("/users", headers={"X-Client-ID": "client-does-not-exist"})
            assert unknown.status_code == 401
    finally:
        await gateway_server.close()


async def test_revoked_key_stops_working_at_once(
    http: httpx.AsyncClient, tenant: Tenant, admin_headers: dict[str, str]
):
    assert (await http.get("/users", headers=tenant.headers)).status_code == 200
    response = await http.delete(f"/clients/{tenant.client_id}/api-keys/{tenant.key_id}", headers=admin_headers)
    assert response.status_code == 200
    assert response.json() == {"message": f"API key {tenant.key_id} deleted successfully", "id": tenant.key_id}
    assert (await http.get("/users", headers=tenant.headers)).status_code == 401
    listed = await http.get(f"/clients/{tenant.client_id}/api-keys", headers=admin_headers)
    assert [k["status"] for k in listed.json() if k["id"] == tenant.key_id] == ["revoked"]
    again = await http.delete(f"/clients/{tenant.client_id}/api-keys/{tenant.key_id}", headers=admin_headers)
    assert again.status_code == 404


async def test_deleted_or_inactive_client_cannot_authenticate(
    http: httpx.AsyncClient, server: AsyncServer, admin_headers: dict[str, str]
):
    victim = await create_tenant(server, "acme", client="short-lived")
    response = await http.patch(f"/clients/{victim.client_id}", json={"status": "inactive"}, headers=admin_headers)
    assert response.status_code == 200 and response.json()["status"] == "inactive"
    assert (await http.get("/users", headers=victim.headers)).status_code == 403
    await http.patch(f"/clients/{victim.client_id}", json={"status": "active"}, headers=admin_headers)
    assert (await http.get("/users", headers=victim.headers)).status_code == 200
    assert (await http.delete(f"/clients/{victim.client_id}", headers=admin_headers)).status_code == 200
    assert (await http.get("/users", headers=victim.headers)).status_code == 401


async def test_keys_are_stored_hashed_and_touch_last_used(http: httpx.AsyncClient, server: AsyncServer, tenant: Tenant):
    from sqlalchemy import select

    from mirix.db.models import ApiKey

    await http.get("/users", headers=tenant.headers)
    async with server.sessions() as session:
        row = await session.scalar(select(ApiKey).where(ApiKey.id == tenant.key_id))
    assert row.key_hash == hash_api_key(tenant.key)
    assert tenant.key not in (row.key_hash, row.key_prefix)
    assert row.last_used_at is not None
    assert tenant.key.startswith("mirix_") and len(tenant.key) >= 6 + 43


async def test_admin_token_expired_or_tampered_is_401(http: httpx.AsyncClient, admin_headers: dict[str, str]):
    from mirix.services.security import encode_token

    token = admin_headers["Authorization"].split()[1]
    header, payload, signature = token.split(".")
    tampered = f"{header}.{payload}.{signature[:-4]}AAAA"
    assert (await http.get("/admin/auth/me", headers={"Authorization": f"Bearer {tampered}"})).status_code == 401
    forged = encode_token("some-other-secret-" + "y" * 32, {"sub": "client-x", "adm": "admin-x"}, 1)
    assert (await http.get("/admin/auth/me", headers={"Authorization": f"Bearer {forged}"})).status_code == 401
    assert (await http.get("/admin/auth/me", headers=admin_headers)).status_code == 200
