"""Admin accounts: one-time setup, login with tokens, and what a token may do."""

from __future__ import annotations

import httpx

from mirix.server.server import AsyncServer
from tests.support import Tenant


async def test_one_time_setup_then_closed(http: httpx.AsyncClient, server: AsyncServer):
    assert (await http.get("/admin/auth/check-setup")).json()["setup_required"] is True
    registered = await http.post(
        "/admin/auth/register", json={"name": "Root", "email": "Root@Example.com", "password": "s3cret-pass"}
    )
    assert registered.status_code == 200, registered.text
    body = registered.json()
    assert body["token_type"] == "bearer" and body["expires_in"] == 24 * 3600
    assert body["client"]["email"] == "root@example.com"
    assert (await http.get("/admin/auth/check-setup")).json()["setup_required"] is False
    second = await http.post(
        "/admin/auth/register", json={"name": "Mallory", "email": "m@example.com", "password": "s3cret-pass"}
    )
    assert second.status_code == 403
    me = await http.get("/admin/auth/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200 and me.json()["email"] == "root@example.com"


async def test_login_does_not_reveal_which_emails_exist(http: httpx.AsyncClient, admin_headers):
    wrong_password = await http.post("/admin/auth/login", json={"email": "ada@acme.test", "password": "nope"})
    unknown_email = await http.post("/admin/auth/login", json={"email": "who@acme.test", "password": "nope"})
    assert wrong_password.status_code == unknown_email.status_code == 401
    assert wrong_password.json() == unknown_email.json()
    ok = await http.post("/admin/auth/login", json={"email": "ADA@acme.test", "password": "correct horse battery"})
    assert ok.status_code == 200 and ok.json()["client"]["last_login"] is not None


async def test_change_password(http: httpx.AsyncClient, admin_headers):
    bad = await http.post(
        "/admin/auth/change-password",
        headers=admin_headers,
        json={"current_password": "wrong", "new_password": "brand new pass"},
    )
    assert bad.status_code == 400
    short = await http.post(
        "/admin/auth/change-password",
        headers=admin_headers,
        json={"current_password": "correct horse battery", "new_password": "short"},
    )
    assert short.status_code == 422
    ok = await http.post(
        "/admin/auth/change-password",
        headers=admin_headers,
        json={"current_password": "correct horse battery", "new_password": "brand new pass"},
    )
    assert ok.json() == {"message": "Password changed successfully"}
    old = await http.post("/admin/auth/login", json={"email": "ada@acme.test", "password": "correct horse battery"})
    new = await http.post("/admin/auth/login", json={"email": "ada@acme.test", "password": "brand new pass"})
    assert (old.status_code, new.status_code) == (401, 200)


async def test_admin_token_scope(http: httpx.AsyncClient, tenant: Tenant, admin_headers):
    await http.post("/users/create_or_get", json={"user_id": "alice"}, headers=tenant.headers)
    assert "alice" in [u["id"] for u in (await http.get("/users", headers=admin_headers)).json()]
    dashboard = (await http.get("/admin/dashboard-clients", headers=admin_headers)).json()
    assert [row["email"] for row in dashboard] == ["ada@acme.test"]
    # Client keys cannot use admin-only endpoints.
    assert (await http.get("/admin/auth/me", headers=tenant.headers)).status_code == 403
    assert (await http.get("/admin/dashboard-clients", headers=tenant.headers)).status_code == 403


async def test_deleted_admin_client_token_stops_working(
    http: httpx.AsyncClient, server: AsyncServer, tenant, admin_headers
):
    me = (await http.get("/admin/auth/me", headers=admin_headers)).json()
    await server.admins.create(tenant.org_id, "Other", "other@acme.test", "another password")
    _, _, other_token = await server.admins.login("other@acme.test", "another password")
    other = {"Authorization": f"Bearer {other_token}"}
    assert (await http.delete(f"/clients/{me['id']}", headers=other)).status_code == 200
    assert (await http.get("/admin/auth/me", headers=admin_headers)).status_code == 401
