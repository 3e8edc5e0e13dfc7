"""A model cannot reach memories outside its job, whatever ids it makes up.

Memory agents see existing items under small per-prompt numbers that only the server maps to rows.
Here the scripted model tries the ids of other users' memories (same organization, and another
organization), a number it was never shown, and the real id of its own user's memory that was not
in its snapshot. Every such call must come back to the model as a tool failure, nothing may change,
and the job must still end in a defined state. The chat agent's memory search is held to the same
line: the calling user's memories only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import func, select

from mirix.db.models import MemoryHistory
from mirix.server.server import AsyncServer
from mirix.services.memory.kinds import EPISODIC, SEMANTIC
from tests.fakes import FakeProvider, RecordedRequest, Reply, ToolCall
from tests.fakes.recorded import collect_text
from tests.support import Tenant, create_tenant
from tests.test_pipeline import initialize, llm_config

CONVERSATION = "I took Rex the beagle to the dog park."
SHOWN_SEMANTIC = 10  # the snapshot's size per type (pipeline.SNAPSHOT_ITEMS)
BOB_TEXT = "bob-only-marker ferret"
GLOBEX_TEXT = "globex-only-marker parrot"
HIDDEN_TEXT = "Zephyrine ledger"
CRM_TEXT = "crm-scope-marker hamster"
HACK = "HACKED"


@dataclass
class Planted:
    alice_semantic: list[str]  # relevant to the conversation: these fill the snapshot
    alice_hidden: str  # alice's too, but unrelated: left out of the snapshot
    alice_episodic: str
    bob_semantic: str
    bob_episodic: str
    globex_semantic: str
    globex_episodic: str

    @property
    def all_ids(self) -> list[str]:
        return [
            *self.alice_semantic,
            self.alice_hidden,
            self.alice_episodic,
            self.bob_semantic,
            self.bob_episodic,
            self.globex_semantic,
            self.globex_episodic,
        ]


async def import_items(http, tenant: Tenant, items: list[dict[str, Any]]) -> list[str]:
    response = await http.post("/memory/import", json={"items": items}, headers=tenant.headers)
    assert response.status_code == 200, response.text
    return response.json()["ids"]


def semantic(user: str, name: str, summary: str, details: str) -> dict[str, Any]:
    return {"memory_type": "semantic", "user_id": user, "name": name, "summary": summary, "details": details}


def episodic(user: str, summary: str, details: str) -> dict[str, Any]:
    return {
        "memory_type": "episodic",
        "user_id": user,
        "summary": summary,
        "details": details,
        "actor": "user",
        "event_type": "activity",
    }


@pytest.fixture
async def planted(http, tenant: Tenant, other_tenant: Tenant) -> Planted:
    """Alice's memories, Bob's (same organization and client) and those of a user also called
    'alice' in another organization; the strangers' memories match the conversation just as well."""
    alice = await import_items(
        http,
        tenant,
        [
            *(
                semantic("alice", f"Rex fact {i}", f"Rex the beagle fact number {i}", f"Rex the dog, park visit {i}")
                for i in range(SHOWN_SEMANTIC)
            ),
            semantic("alice", HIDDEN_TEXT, "Quarterly VAT codes, blue folder", "Kept near invoices"),
            episodic("alice", "Walked Rex the beagle on the beach", "Rex chased gulls"),
        ],
    )
    bob = await import_items(
        http,
        tenant,
        [
            semantic("bob", "Rex", f"Rex the beagle, {BOB_TEXT}", "Rex the dog at the park"),
            episodic("bob", f"Took Rex the beagle to the dog park, {BOB_TEXT}", "Bob's walk"),
        ],
    )
    globex = await import_items(
        http,
        other_tenant,
        [
            semantic("alice", "Rex", f"Rex the beagle, {GLOBEX_TEXT}", "Rex the dog at the park"),
            episodic("alice", f"Took Rex the beagle to the dog park, {GLOBEX_TEXT}", "Globex walk"),
        ],
    )
    return Planted(alice[:SHOWN_SEMANTIC], alice[SHOWN_SEMANTIC], alice[-1], bob[0], bob[1], globex[0], globex[1])


@pytest.fixture
async def fake():
    async with FakeProvider() as provider:
        yield provider


# -- what the database holds -----------------------------------------------------------------


def _plain(value: Any) -> Any:
    return value.tolist() if hasattr(value, "tolist") else value  # vectors compare as lists


async def database_state(server: AsyncServer, ids: list[str]) -> dict[str, Any]:
    """Every column of the given memories, their history, and how many memories exist at all."""
    rows: dict[str, dict[str, Any]] = {}
    counts: dict[str, int] = {}
    async with server.sessions() as session:
        for kind in (SEMANTIC, EPISODIC):
            model = kind.model
            for row in await session.scalars(select(model).where(model.id.in_(ids))):
                rows[row.id] = {c.key: _plain(getattr(row, c.key)) for c in model.__mapper__.column_attrs}
            counts[kind.name] = await session.scalar(select(func.count()).select_from(model))
        history = [
            (h.memory_id, h.operation, h.job_id, h.before, h.after)
            for h in await session.scalars(
                select(MemoryHistory).where(MemoryHistory.memory_id.in_(ids)).order_by(MemoryHistory.id)
            )
        ]
    assert set(rows) == set(ids)
    return {"rows": rows, "history": history, "counts": counts}


# -- what the model is told ------------------------------------------------------------------


def tool_results(request: RecordedRequest) -> dict[str, str]:
    """The tool results in an OpenAI chat request, by tool call id."""
    return {
        m["tool_call_id"]: collect_text(m.get("content"))
        for m in request.body["messages"]
        if isinstance(m, dict) and m.get("role") == "tool"
    }


def turn(request: RecordedRequest) -> int:
    return sum(1 for m in request.body["messages"] if isinstance(m, dict) and m.get("role") == "assistant")


def forbidden_calls(p: Planted, turn_number: int) -> dict[str, list[ToolCall]]:
    """Per agent (by a tool only it is offered), the calls that must all fail; ids end in the turn."""

    def call(name: str, arguments: dict[str, Any], label: str) -> ToolCall:
        return ToolCall(name, arguments, id=f"{label}_{turn_number}")

    def update(item: Any) -> dict[str, Any]:
        return {"updates": [{"item": item, "summary": HACK, "details": HACK}]}

    new_event = [{"summary": HACK, "details": HACK, "actor": "user", "event_type": "activity"}]
    return {
        "semantic_memory_update": [
            call("semantic_memory_update", update(p.bob_semantic), "sem_other_user"),
            call("semantic_memory_update", update(SHOWN_SEMANTIC + 1), "sem_never_shown"),
            call("semantic_memory_update", update(99), "sem_never_shown_far"),
            call("semantic_memory_update", update(p.alice_hidden), "sem_own_not_shown"),
            call("semantic_memory_update", update(p.globex_semantic), "sem_other_org"),
            # A good number next to a forbidden id: the call fails as a whole, [1] stays as it is.
            call(
                "semantic_memory_update",
                {"updates": [{"item": 1, "summary": HACK}, {"item": p.bob_semantic, "summary": HACK}]},
                "sem_mixed",
            ),
        ],
        "episodic_memory_merge": [
            call("episodic_memory_merge", {"item": p.bob_episodic, "details": HACK}, "epi_merge_other_user"),
            call("episodic_memory_merge", {"item": p.globex_episodic, "details": HACK}, "epi_merge_other_org"),
            call("episodic_memory_merge", {"item": 7, "details": HACK}, "epi_merge_never_shown"),
            call(
                "episodic_memory_replace",
                {"items": [p.bob_episodic], "new_items": new_event},
                "epi_replace_other_user",
            ),
            call(
                "episodic_memory_replace",
                {"items": [p.globex_episodic], "new_items": new_event},
                "epi_replace_other_org",
            ),
            call("episodic_memory_replace", {"items": [1, 5], "new_items": new_event}, "epi_replace_never_shown"),
        ],
    }


def scripted_model(planted: Planted, *, give_up_after_errors: bool):
    """Memory agents that try every forbidden call; then either finish, or keep trying."""

    def respond(request: RecordedRequest) -> Reply:
        for marker, calls in forbidden_calls(planted, turn(request)).items():
            if marker in request.tools:
                if give_up_after_errors and tool_results(request):
                    return Reply.tool_call("finish_memory_update", {})
                return Reply(calls=tuple(calls))
        raise AssertionError(f"unexpected request offering {request.tools}")

    return respond


def add_sync_body() -> dict[str, Any]:
    return {
        "user_id": "alice",
        "memory_types": ["semantic", "episodic"],
        "messages": [{"role": "user", "content": CONVERSATION}, {"role": "assistant", "content": "Fun!"}],
    }


def requests_of(fake: FakeProvider, marker: str) -> list[RecordedRequest]:
    return [r for r in fake.chat_requests if marker in r.tools]


def assert_snapshot_is_alices_own(fake: FakeProvider) -> None:
    """What the agents were shown: Alice's relevant items, nothing of anyone else's (and, as the
    premise of the 'own but not shown' case, not her unrelated item)."""
    first_semantic = requests_of(fake, "semantic_memory_update")[0].prompt_text
    shown = first_semantic.split("Existing semantic memories:")[1].split("The conversation:")[0]
    assert [f"[{n}]" in shown for n in range(1, SHOWN_SEMANTIC + 1)] == [True] * SHOWN_SEMANTIC
    assert f"[{SHOWN_SEMANTIC + 1}]" not in shown
    assert HIDDEN_TEXT not in shown, "premise: alice's unrelated memory is not in the snapshot"
    first_episodic = requests_of(fake, "episodic_memory_merge")[0].prompt_text
    assert "[1]" in first_episodic and "[2]" not in first_episodic.split("Existing episodic memories:")[1]
    for request in fake.chat_requests:
        assert BOB_TEXT not in request.prompt_text and GLOBEX_TEXT not in request.prompt_text


async def test_memory_agents_cannot_touch_memories_outside_their_snapshot(
    http, server: AsyncServer, tenant: Tenant, other_tenant: Tenant, fake: FakeProvider, planted: Planted, workers
):
    await initialize(http, tenant, fake)
    before = await database_state(server, planted.all_ids)
    fake.responder = scripted_model(planted, give_up_after_errors=True)

    response = await http.post("/memory/add_sync", json=add_sync_body(), headers=tenant.headers)
    assert response.status_code == 200, response.text
    result = response.json()

    # The job is done, and wrote nothing: the model gave up once every forbidden call had failed.
    assert result["success"] is True and result["status"] == "processed", result
    assert result["job"]["written_ids"] == [] and result["job"]["llm_calls"] == 4
    assert await database_state(server, planted.all_ids) == before

    assert_snapshot_is_alices_own(fake)
    for marker, calls in forbidden_calls(planted, 0).items():
        _, second = requests_of(fake, marker)
        results = tool_results(second)
        assert set(results) == {c.id for c in calls}, "every call got its result in the next request"
        for call in calls:
            text = results[call.id]
            assert text.startswith("Error:"), (call.id, text)
            assert "There is no " in text and "numbers shown are" in text, (call.id, text)
            # A failure must not leak what lies behind the id it was given.
            for secret in (BOB_TEXT, GLOBEX_TEXT, HIDDEN_TEXT, "Quarterly VAT"):
                assert secret not in text, (call.id, text)

    # The other organization's memories, read through its own key, are as they were.
    for memory_type, memory_id in (("semantic", planted.globex_semantic), ("episodic", planted.globex_episodic)):
        history = await http.get(f"/memory/{memory_type}/{memory_id}/history", headers=other_tenant.headers)
        assert [entry["operation"] for entry in history.json()["history"]] == ["insert"], history.json()


async def test_a_model_that_keeps_trying_fails_the_job_without_writes(
    http, server: AsyncServer, tenant: Tenant, fake: FakeProvider, planted: Planted, workers
):
    await initialize(http, tenant, fake)
    server.job_runner._backoff = 0.01
    before = await database_state(server, planted.all_ids)
    fake.responder = scripted_model(planted, give_up_after_errors=False)

    response = await http.post("/memory/add_sync", json=add_sync_body(), headers=tenant.headers)
    assert response.status_code == 200, response.text
    job = response.json()["job"]

    assert job["status"] == "failed" and job["written_ids"] == [], job
    assert job["attempts"] == server.settings.job_max_attempts
    assert "tool calls kept failing" in job["error"] and "There is no" in job["error"], job["error"]
    for secret in (BOB_TEXT, GLOBEX_TEXT, HIDDEN_TEXT):
        assert secret not in job["error"]
    steps = server.settings.agent_max_steps
    assert len(requests_of(fake, "semantic_memory_update")) == steps * job["attempts"]
    assert await database_state(server, planted.all_ids) == before
    assert_snapshot_is_alices_own(fake)


async def test_chat_memory_search_returns_only_the_calling_users_memories(
    http, server: AsyncServer, tenant: Tenant, fake: FakeProvider, planted: Planted
):
    # Alice's memory in a scope this client does not read (another client of the same organization).
    crm = await create_tenant(server, "acme", client="crm", write_scope="crm")
    await import_items(http, crm, [semantic("alice", "Rex", f"Rex the beagle, {CRM_TEXT}", "Rex the dog")])
    agent = await http.post(
        "/agents",
        json={"name": "assistant", "agent_type": "chat_agent", "llm_config": llm_config(fake)},
        headers=tenant.headers,
    )
    searches = [
        ToolCall("search_in_memory", {"memory_type": "all", "query": "Rex the beagle dog park"}, id="search_all"),
        ToolCall("search_in_memory", {"memory_type": "semantic", "query": "Rex beagle"}, id="search_semantic"),
        ToolCall("search_in_memory", {"memory_type": "episodic", "query": "Rex dog park"}, id="search_episodic"),
    ]
    fake.queue(Reply(calls=tuple(searches)), Reply.text("Rex is your beagle."))
    body = {"message": "What do you know about Rex?", "role": "user", "user_id": "alice"}
    response = await http.post(f"/agents/{agent.json()['id']}/messages", json=body, headers=tenant.headers)
    assert response.status_code == 200, response.text

    results = tool_results(fake.chat_requests[1])
    assert set(results) == {c.id for c in searches}
    assert "Rex the beagle fact number" in results["search_all"]
    assert "Rex the beagle fact number" in results["search_semantic"]
    assert "Walked Rex the beagle on the beach" in results["search_episodic"]
    everything_the_model_saw = json.dumps([r.body for r in fake.chat_requests])
    for secret in (BOB_TEXT, GLOBEX_TEXT, CRM_TEXT):
        assert secret not in everything_the_model_saw
    returned = [m for m in response.json()["messages"] if m["message_type"] == "tool_return_message"]
    assert len(returned) == 3
    for secret in (BOB_TEXT, GLOBEX_TEXT, CRM_TEXT):
        assert secret not in json.dumps(response.json())
