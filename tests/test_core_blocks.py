"""Core memory per user and scope: templates copied on first use, block_filter_tags merge/replace."""

from __future__ import annotations

import pytest

from mirix.errors import PermissionDeniedError, UnprocessableError
from mirix.schemas.agents import BlockIn
from tests.support import create_tenant


async def test_templates_are_copied_once_per_user_and_scope(server, tenant):
    await server.blocks.upsert(tenant.actor, BlockIn(label="human", value=""), None)
    await server.blocks.upsert(tenant.actor, BlockIn(label="persona", value="I am helpful"), None)
    copies = await server.blocks.ensure_from_templates(tenant.actor, "alice", {"project": "p1", "scope": "evil"})
    assert sorted(b.label for b in copies) == ["human", "persona"]
    assert all(b.user_id == "alice" and b.scope == "default" and b.filter_tags == {"project": "p1"} for b in copies)
    again = await server.blocks.ensure_from_templates(tenant.actor, "alice")
    assert sorted(b.id for b in again) == sorted(b.id for b in copies)
    # Another scope has its own templates (none here), so nothing is copied there.
    other = await create_tenant(server, "acme", client="crm", write_scope="crm", read_scopes=["crm"])
    assert await server.blocks.ensure_from_templates(other.actor, "alice") == []
    assert await server.blocks.for_user(other.actor, "alice") == []
    assert len(await server.blocks.for_user(tenant.actor, "alice")) == 2


async def test_block_filter_tags_merge_and_replace(server, tenant):
    await server.blocks.upsert(tenant.actor, BlockIn(label="human", value=""), None)
    await server.blocks.ensure_from_templates(tenant.actor, "alice", {"a": 1})
    assert await server.blocks.apply_filter_tags(tenant.actor, "alice", {"b": 2, "scope": "x"}, "merge") == 1
    (block,) = await server.blocks.for_user(tenant.actor, "alice")
    assert block.filter_tags == {"a": 1, "b": 2} and block.scope == "default"
    assert await server.blocks.apply_filter_tags(tenant.actor, "alice", {"b": 2}, "merge") == 0  # no-op detected
    assert await server.blocks.apply_filter_tags(tenant.actor, "alice", {"c": 3}, "replace") == 1
    (block,) = await server.blocks.for_user(tenant.actor, "alice")
    assert block.filter_tags == {"c": 3} and block.scope == "default"
    with pytest.raises(UnprocessableError):
        await server.blocks.apply_filter_tags(tenant.actor, "alice", {}, "upsert")


async def test_read_only_clients_cannot_copy_templates(server):
    reader = await create_tenant(server, "acme", client="reader", write_scope=None, read_scopes=["default"])
    with pytest.raises(PermissionDeniedError):
        await server.blocks.ensure_from_templates(reader.actor, "alice")


async def test_search_all_users_core_blocks_filtered_by_tags(http, server, tenant):
    await server.blocks.upsert(tenant.actor, BlockIn(label="human", value="likes tea"), None)
    for user, project in (("alice", "p1"), ("bob", "p2")):
        await server.blocks.ensure_from_templates(tenant.actor, user, {"project": project})
    params = {"query": "tea", "include_core_memory": "true", "block_filter_tags": '{"project": "p2"}'}
    body = (await http.get("/memory/search_all_users", params=params, headers=tenant.headers)).json()
    core = [item for item in body["results"] if item["memory_type"] == "core"]
    assert [item["user_id"] for item in core] == ["bob"]


async def test_no_write_transaction_once_copied_or_without_templates(server, tenant, monkeypatch):
    """Every memory job asks for the user's blocks: unless there is something to copy, that is one
    read and never a write transaction (SQLite has one writer at a time)."""
    blocks = server.blocks
    writes: list[str] = []
    begin = blocks._sessions.begin

    def counting_begin():
        writes.append("begin")
        return begin()

    monkeypatch.setattr(blocks._sessions, "begin", counting_begin)
    assert await blocks.ensure_from_templates(tenant.actor, "alice") == []  # the scope has no templates
    assert writes == []
    await blocks.upsert(tenant.actor, BlockIn(label="human", value="Likes tea."), None)
    writes.clear()
    (copy,) = await blocks.ensure_from_templates(tenant.actor, "alice")  # a template now: copied once
    assert copy.user_id == "alice" and copy.value == "Likes tea." and writes == ["begin"]
    writes.clear()
    assert [b.id for b in await blocks.ensure_from_templates(tenant.actor, "alice")] == [copy.id]
    assert writes == []
