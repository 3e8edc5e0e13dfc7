"""By-id memory operations and search are confined, for every typed memory kind.

Organization A ("acme") has a client ``app`` (scope "default") that owns one memory of each kind for
user alice and one for user bob. Around it sit callers that must not touch those rows:

* another organization ("globex"), by API key and by admin token; globex has its own user "alice";
* clients of acme whose scopes exclude "default": ``private`` (reads and writes "private" only) and
  acme's dashboard admin (scope "admin");
* clients of acme that may read "default" but write elsewhere: ``reader`` (read-only) and ``team``
  (writes "team"), which see the rows but may not change them.

Every refusal is a 404 (AGENTS.md: an id the caller may not use looks like an id that does not exist),
and afterwards the owner sees the row exactly as before. The owner doing the same requests succeeds,
so the refusals are not caused by a malformed request.

``user_id``: of the three by-id routes only PATCH takes a ``user_id`` query parameter; the manager then
requires the row to belong to that user. DELETE and history take none (their confinement is
organization + scopes), so naming another user there is not something the API can refuse.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from mirix.server.server import AsyncServer
from mirix.services.memory.kinds import SEARCHABLE
from mirix.services.memory.search import METHODS
from mirix.settings import Settings
from tests.support import Tenant, create_tenant

KINDS = [kind.name for kind in SEARCHABLE]

# The field each PATCH changes (one every kind's search results show) and its new value.
EDIT_FIELD = {
    "episodic": "summary",
    "semantic": "summary",
    "procedural": "summary",
    "resource": "summary",
    "knowledge_vault": "caption",
}
PWNED = "zephyr pwned"


def memory_item(kind: str, user_id: str, tag: str) -> dict[str, Any]:
    """One importable item; every kind's searchable text holds "zephyr", so every method finds it."""
    text = f"zephyr {tag} {kind}"
    fields: dict[str, dict[str, Any]] = {
        "episodic": {"actor": "user", "event_type": "activity", "summary": text, "details": f"{text} details"},
        "semantic": {"name": text, "summary": text, "details": f"{text} details", "source": "chat"},
        "procedural": {"entry_type": "workflow", "summary": text, "steps": [f"{text} step one", "step two"]},
        "resource": {"title": text, "summary": text, "resource_type": "doc", "content": f"{text} content"},
        "knowledge_vault": {
            "entry_type": "note",
            "source": "user",
            "sensitivity": "low",
            "secret_value": f"secret-{tag}",
            "caption": text,
        },
    }
    return {"memory_type": kind, "user_id": user_id, "filter_tags": {"tag": tag}, **fields[kind]}


async def import_one_per_kind(http: httpx.AsyncClient, caller: Tenant, user_id: str, tag: str) -> dict[str, str]:
    """kind → id of the memory ``caller`` wrote for ``user_id``."""
    items = [memory_item(kind, user_id, tag) for kind in KINDS]
    response = await http.post("/memory/import", json={"items": items}, headers=caller.headers)
    assert response.status_code == 200, response.text
    return dict(zip(KINDS, response.json()["ids"], strict=True))


async def admin_token(server: AsyncServer, org_id: str, email: str) -> dict[str, str]:
    await server.admins.create(org_id, "Admin", email, "a long enough password")
    _, _, token = await server.admins.login(email, "a long enough password")
    return {"Authorization": f"Bearer {token}"}


def with_embeddings(test):
    """Marks a test that needs vectors; the others run without, so they do not each load the model."""
    test.with_embeddings = True
    return test


@pytest.fixture
def settings(settings: Settings, request: pytest.FixtureRequest) -> Settings:
    if getattr(request.function, "with_embeddings", False):
        return settings
    return settings.model_copy(update={"embeddings_enabled": False})


@dataclass
class World:
    owner: Tenant  # acme / app, scope "default"
    alice: dict[str, str]  # kind → alice's row, written by owner
    bob: dict[str, str]  # kind → bob's row, written by owner
    private_rows: dict[str, str]  # kind → alice's row in acme's "private" scope
    foreign_rows: dict[str, str]  # kind → globex's alice's row
    private: Tenant
    foreign: Tenant
    #: name → headers of every caller that must not change acme's "default" rows
    intruders: dict[str, dict[str, str]] = field(default_factory=dict)


@pytest.fixture
async def world(http: httpx.AsyncClient, server: AsyncServer, tenant: Tenant, other_tenant: Tenant) -> World:
    private = await create_tenant(server, "acme", client="private", write_scope="private", read_scopes=["private"])
    reader = await create_tenant(server, "acme", client="reader", write_scope=None, read_scopes=["default"])
    team = await create_tenant(server, "acme", client="team", write_scope="team", read_scopes=["default", "team"])
    return World(
        owner=tenant,
        alice=await import_one_per_kind(http, tenant, "alice", "alice"),
        bob=await import_one_per_kind(http, tenant, "bob", "bob"),
        private_rows=await import_one_per_kind(http, private, "alice", "private"),
        foreign_rows=await import_one_per_kind(http, other_tenant, "alice", "globex"),
        private=private,
        foreign=other_tenant,
        intruders={
            "globex key": other_tenant.headers,
            "globex admin": await admin_token(server, other_tenant.org_id, "admin@globex.test"),
            "acme private client": private.headers,
            "acme admin": await admin_token(server, tenant.org_id, "admin@acme.test"),
            "acme read-only client": reader.headers,
            "acme team client": team.headers,
        },
    )


async def owner_view(http: httpx.AsyncClient, caller: Tenant, kind: str, memory_id: str, user_id: str = "alice"):
    """The row as its owner sees it: the search result (without score) and the history entries."""
    response = await http.get(
        "/memory/search",
        params={"user_id": user_id, "memory_type": kind, "query": "", "limit": 1000},
        headers=caller.headers,
    )
    assert response.status_code == 200, response.text
    rows = [{k: v for k, v in row.items() if k != "score"} for row in response.json()["results"]]
    row = next((row for row in rows if row["id"] == memory_id), None)
    history = await http.get(f"/memory/{kind}/{memory_id}/history", headers=caller.headers)
    entries = history.json()["history"] if history.status_code == 200 else None
    return row, entries


async def attempts(http: httpx.AsyncClient, headers: dict[str, str], kind: str, memory_id: str, **params):
    """History, PATCH and DELETE of one row by one caller, in that order: method → response."""
    path = f"/memory/{kind}/{memory_id}"
    return {
        "history": await http.get(f"{path}/history", params=params, headers=headers),
        "PATCH": await http.patch(path, json={EDIT_FIELD[kind]: PWNED}, params=params, headers=headers),
        "DELETE": await http.delete(path, params=params, headers=headers),
    }


def not_found_body(kind: str, memory_id: str) -> dict[str, str]:
    label = kind.replace("_", " ").capitalize()
    return {"detail": f"{label} memory {memory_id} not found"}


# --- by-id operations -----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
async def test_callers_outside_the_rows_scope_get_404_and_change_nothing(
    http: httpx.AsyncClient, world: World, kind: str
):
    """(a) other organization, (b) same organization without the row's scope: 404 for everything,
    with exactly the body an id that does not exist gets."""
    memory_id = world.alice[kind]
    before = await owner_view(http, world.owner, kind, memory_id)
    assert before[0] is not None and [e["operation"] for e in before[1]] == ["insert"]
    unknown_id = memory_id[:-4] + "zzzz"
    for who in ("globex key", "globex admin", "acme private client", "acme admin"):
        headers = world.intruders[who]
        for method, response in (await attempts(http, headers, kind, memory_id)).items():
            assert response.status_code == 404, f"{who} {method} {kind}: {response.status_code} {response.text}"
            assert response.json() == not_found_body(kind, memory_id), (who, method)
        # An id that does not exist at all answers the same way.
        for method, response in (await attempts(http, headers, kind, unknown_id)).items():
            assert response.status_code == 404 and response.json() == not_found_body(kind, unknown_id), (who, method)
        # globex has a user "alice" of its own; naming her does not reach acme's row either.
        response = await http.patch(
            f"/memory/{kind}/{memory_id}", json={EDIT_FIELD[kind]: PWNED}, params={"user_id": "alice"}, headers=headers
        )
        assert response.status_code == 404, (who, response.text)
    assert await owner_view(http, world.owner, kind, memory_id) == before


@pytest.mark.parametrize("kind", KINDS)
async def test_readers_without_the_write_scope_cannot_change(http: httpx.AsyncClient, world: World, kind: str):
    """(b) same organization, "default" in read_scopes but not the write_scope: the row's history is
    readable, PATCH and DELETE are 404."""
    memory_id = world.alice[kind]
    before = await owner_view(http, world.owner, kind, memory_id)
    for who in ("acme read-only client", "acme team client"):
        responses = await attempts(http, world.intruders[who], kind, memory_id)
        assert responses["history"].status_code == 200, (who, responses["history"].text)
        assert responses["history"].json()["history"] == before[1]
        for method in ("PATCH", "DELETE"):
            assert responses[method].status_code == 404, f"{who} {method}: {responses[method].text}"
    assert await owner_view(http, world.owner, kind, memory_id) == before


@pytest.mark.parametrize("kind", KINDS)
async def test_patch_naming_another_user_cannot_change(http: httpx.AsyncClient, world: World, kind: str):
    """(c) ``user_id`` on PATCH, DELETE and history must be the row's user: the owner's own key naming
    bob (who exists and has rows of his own) or a user nobody created gets 404 for alice's row;
    naming alice works."""
    memory_id, bob_id = world.alice[kind], world.bob[kind]
    before = await owner_view(http, world.owner, kind, memory_id)
    bob_before = await owner_view(http, world.owner, kind, bob_id, user_id="bob")
    body = {EDIT_FIELD[kind]: PWNED}
    for target, user_id in ((memory_id, "bob"), (memory_id, "nobody"), (bob_id, "alice")):
        response = await http.patch(
            f"/memory/{kind}/{target}", json=body, params={"user_id": user_id}, headers=world.owner.headers
        )
        assert response.status_code == 404, (target, user_id, response.text)
        assert response.json() == not_found_body(kind, target)
        # DELETE and history take the same guard.
        for method, path in (("DELETE", f"/memory/{kind}/{target}"), ("GET", f"/memory/{kind}/{target}/history")):
            response = await http.request(method, path, params={"user_id": user_id}, headers=world.owner.headers)
            assert response.status_code == 404, (method, target, user_id, response.text)
    assert await owner_view(http, world.owner, kind, memory_id) == before
    assert await owner_view(http, world.owner, kind, bob_id, user_id="bob") == bob_before

    response = await http.patch(
        f"/memory/{kind}/{memory_id}", json=body, params={"user_id": "alice"}, headers=world.owner.headers
    )
    assert response.status_code == 200, response.text
    row, history = await owner_view(http, world.owner, kind, memory_id)
    assert row[EDIT_FIELD[kind]] == PWNED
    assert [e["operation"] for e in history] == ["insert", "update"]


@pytest.mark.parametrize("kind", KINDS)
async def test_owners_can_patch_and_delete(http: httpx.AsyncClient, world: World, kind: str):
    """(d) the positive control: each row's own client changes and deletes it with the very requests
    the other tests refuse; the neighbouring rows are untouched."""
    owners = [
        (world.owner, world.alice[kind], "alice"),
        (world.owner, world.bob[kind], "bob"),
        (world.private, world.private_rows[kind], "alice"),
        (world.foreign, world.foreign_rows[kind], "alice"),
    ]
    alice_row = world.alice[kind]
    others_before = [await owner_view(http, caller, kind, mid, user) for caller, mid, user in owners[1:]]

    path = f"/memory/{kind}/{alice_row}"
    response = await http.patch(path, json={EDIT_FIELD[kind]: PWNED}, headers=world.owner.headers)
    assert response.status_code == 200, response.text
    assert response.json()["memory"]["id"] == alice_row
    assert response.json()["memory"][EDIT_FIELD[kind]] == PWNED
    row, history = await owner_view(http, world.owner, kind, alice_row)
    assert row[EDIT_FIELD[kind]] == PWNED
    assert [e["operation"] for e in history] == ["insert", "update"]
    assert history[1]["before"][EDIT_FIELD[kind]] == f"zephyr alice {kind}"

    response = await http.delete(path, headers=world.owner.headers)
    assert response.status_code == 200, response.text
    assert await owner_view(http, world.owner, kind, alice_row) == (None, None)
    assert (await http.delete(path, headers=world.owner.headers)).status_code == 404
    assert (await http.patch(path, json={EDIT_FIELD[kind]: "again"}, headers=world.owner.headers)).status_code == 404

    assert [await owner_view(http, caller, kind, mid, user) for caller, mid, user in owners[1:]] == others_before
    for caller, memory_id, _ in owners[1:]:
        # Each of the other rows is its own client's to change.
        response = await http.patch(
            f"/memory/{kind}/{memory_id}", json={EDIT_FIELD[kind]: PWNED}, headers=caller.headers
        )
        assert response.status_code == 200, (caller.client_id, response.text)


# --- search ---------------------------------------------------------------------------------------


async def found(http: httpx.AsyncClient, headers, path: str, query: str, method: str, **params) -> set[str]:
    response = await http.get(
        path, params={"query": query, "search_method": method, "limit": 50, **params}, headers=headers
    )
    assert response.status_code == 200, (path, params, response.text)
    return {row["id"] for row in response.json()["results"]}


@with_embeddings
@pytest.mark.parametrize(("method", "query"), [(m, "zephyr") for m in METHODS] + [("hybrid", "")])
async def test_search_returns_exactly_the_callers_rows(http: httpx.AsyncClient, world: World, method: str, query: str):
    """Every search method, with and without a query text: a caller gets all rows of its organization
    and read scopes (every row matches "zephyr"), and nothing of another organization or scope."""
    alice, bob = set(world.alice.values()), set(world.bob.values())
    private, foreign = set(world.private_rows.values()), set(world.foreign_rows.values())
    owner = world.owner.headers

    async def one_user(headers, user_id="alice", **params):
        return await found(http, headers, "/memory/search", query, method, user_id=user_id, **params)

    async def all_users(headers, **params):
        return await found(http, headers, "/memory/search_all_users", query, method, **params)

    assert await one_user(owner) == alice
    assert await one_user(owner, "bob") == bob
    assert await all_users(owner) == alice | bob
    assert await one_user(world.private.headers) == private
    assert await all_users(world.private.headers) == private
    assert await one_user(world.foreign.headers) == foreign
    assert await all_users(world.foreign.headers) == foreign
    assert await one_user(world.intruders["acme read-only client"]) == alice
    assert await all_users(world.intruders["acme team client"]) == alice | bob
    assert await all_users(world.intruders["acme admin"]) == set()
    assert await all_users(world.intruders["globex admin"]) == set()

    # Tags cannot widen the caller's scopes: `scope` narrows to one of them, `read_scopes` is ignored.
    for tags, expected in (
        ({"scope": "private"}, set()),
        ({"scope": "default"}, alice | bob),
        ({"read_scopes": ["private", "default"]}, alice | bob),
        ({"read_scopes": ["private"], "tag": "private"}, set()),
        ({"tag": {"$in": ["alice", "private", "globex"]}}, alice),
    ):
        assert await all_users(owner, filter_tags=json.dumps(tags)) == expected, tags


async def test_search_all_users_cannot_name_another_client_or_organization(http: httpx.AsyncClient, world: World):
    for params in (
        {"client_id": world.private.client_id},
        {"client_id": world.foreign.client_id},
        {"org_id": world.foreign.org_id},
    ):
        response = await http.get(
            "/memory/search_all_users", params={"query": "zephyr", **params}, headers=world.owner.headers
        )
        assert response.status_code == 404, (params, response.text)
    mine = {"client_id": world.owner.client_id, "org_id": world.owner.org_id}
    assert await found(http, world.owner.headers, "/memory/search_all_users", "zephyr", "bm25", **mine) == set(
        world.alice.values()
    ) | set(world.bob.values())
