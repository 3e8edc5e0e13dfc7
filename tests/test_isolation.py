"""Organizations are sealed from each other: every id of another organization is a 404,
and no list ever shows another organization's rows."""

from __future__ import annotations

import httpx
import pytest

from mirix.server.server import AsyncServer
from tests.support import Tenant


@pytest.fixture
async def world(http: httpx.AsyncClient, server: AsyncServer, tenant: Tenant, other_tenant: Tenant, admin_headers):
    """Tenant A ("acme") owns one of everything; B ("globex") has a client key and an admin."""
    a = tenant.headers
    await http.post("/users/create_or_get", json={"user_id": "alice"}, headers=a)
    block = (
        await http.post("/blocks", json={"block": {"label": "human", "value": "v"}, "user": {"id": "alice"}}, headers=a)
    ).json()
    tool = (await http.post("/tools", json={"name": "acme-tool"}, headers=a)).json()
    agent = (await http.post("/agents", json={"name": "acme-agent"}, headers=a)).json()
    await server.admins.create(other_tenant.org_id, "Bea", "bea@globex.test", "globex password")
    _, _, token = await server.admins.login("bea@globex.test", "globex password")
    return {
        "org": tenant.org_id,
        "client": tenant.client_id,
        "key": tenant.key_id,
        "user": "alice",
        "block": block["id"],
        "tool": tool["id"],
        "agent": agent["id"],
        "b_key": other_tenant.headers,
        "b_admin": {"Authorization": f"Bearer {token}"},
    }


FOREIGN_ID_CALLS = [
    ("GET", "/organizations/{org}", None),
    ("GET", "/clients/{client}", None),
    ("PATCH", "/clients/{client}", {"name": "pwned"}),
    ("DELETE", "/clients/{client}", None),
    ("POST", "/clients/{client}/api-keys", {}),
    ("GET", "/clients/{client}/api-keys", None),
    ("DELETE", "/clients/{client}/api-keys/{key}", None),
    ("GET", "/users/{user}", None),
    ("DELETE", "/users/{user}", None),
    ("GET", "/blocks/{block}", None),
    ("DELETE", "/blocks/{block}", None),
    ("POST", "/blocks", {"block": {"id": "{block}", "label": "human", "value": "pwned"}}),
    ("GET", "/tools/{tool}", None),
    ("DELETE", "/tools/{tool}", None),
    ("GET", "/agents/{agent}", None),
    ("PATCH", "/agents/{agent}", {"description": "pwned"}),
    ("PATCH", "/agents/{agent}/system", {"system_prompt": "pwned"}),
    ("DELETE", "/agents/{agent}", None),
    ("POST", "/agents", {"parent_id": "{agent}"}),
    ("POST", "/agents", {"tool_ids": ["{tool}"]}),
    ("GET", "/users?organization_id={org}", None),
]


def _fill(value, ids):
    if isinstance(value, str):
        return value.format(**ids)
    if isinstance(value, dict):
        return {k: _fill(v, ids) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, ids) for v in value]
    return value


@pytest.mark.parametrize("who", ["b_key", "b_admin"])
async def test_foreign_ids_are_404(http: httpx.AsyncClient, world, who):
    for method, path, body in FOREIGN_ID_CALLS:
        response = await http.request(method, _fill(path, world), json=_fill(body, world), headers=world[who])
        assert response.status_code == 404, f"{who} {method} {path}: {response.status_code} {response.text}"


async def test_foreign_rows_never_listed(http: httpx.AsyncClient, world, tenant: Tenant):
    for who in ("b_key", "b_admin"):
        headers = world[who]
        listings = {
            "/organizations": "id",
            "/clients": "id",
            "/users": "id",
            "/tools": "id",
            "/agents": "id",
            "/blocks?user_id=alice": "id",
        }
        for path, field in listings.items():
            response = await http.get(path, headers=headers)
            assert response.status_code == 200, path
            seen = {row[field] for row in response.json()}
            assert not seen & {world["org"], world["client"], "alice", world["tool"], world["agent"], world["block"]}, (
                who,
                path,
                seen,
            )
        dashboard = await http.get("/admin/dashboard-clients", headers=world["b_admin"])
        assert all(row["email"] != "ada@acme.test" for row in dashboard.json())


async def test_nothing_changed_in_a(http: httpx.AsyncClient, world, tenant: Tenant):
    for method, path, body in FOREIGN_ID_CALLS:
        await http.request(method, _fill(path, world), json=_fill(body, world), headers=world["b_admin"])
    a = tenant.headers
    assert (await http.get(f"/clients/{world['client']}", headers=a)).json()["name"] == "app"
    assert (await http.get(f"/blocks/{world['block']}", headers=a)).json()["value"] == "v"
    assert (await http.get(f"/agents/{world['agent']}", headers=a)).json()["description"] is None
    assert (await http.get("/users/alice", headers=a)).status_code == 200
    assert (await http.get(f"/tools/{world['tool']}", headers=a)).status_code == 200
    assert (await http.get("/users", headers=a)).status_code == 200  # A's key was not revoked
