"""Chat answers streamed as Server-Sent Events over a real socket: a full stream, and a client that
hangs up halfway (which an in-memory ASGI transport cannot model).

The app runs under uvicorn in the test's event loop, so its tasks and log records are observable;
the fake model writes slowly (``chunk_delay``), so a hang-up lands in the middle of its answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass

import httpx
import pytest
import uvicorn
from sqlalchemy import select

from mirix.api.app import create_app
from mirix.db.models import Message, Step
from mirix.server.server import AsyncServer
from tests.fakes import FakeProvider, Reply, StreamLog
from tests.fakes.provider import bind_socket
from tests.fakes.wire import text_pieces
from tests.test_pipeline import llm_config

CHUNK_DELAY = 0.05
#: 400 words in pieces of two: ~200 events, ~10 s for the whole answer at CHUNK_DELAY.
LONG_ANSWER = " ".join(f"w{i:03d}" for i in range(400))
READ_BEFORE_HANGUP = 5


class _InProcessServer(uvicorn.Server):
    """uvicorn without its signal handlers: inside pytest, Ctrl+C belongs to pytest."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@dataclass
class Live:
    url: str
    uvicorn: uvicorn.Server

    @property
    def request_tasks(self) -> set[asyncio.Task]:
        """The ASGI tasks uvicorn is still running (one per request in flight)."""
        return {task for task in self.uvicorn.server_state.tasks if not task.done()}


@pytest.fixture(params=["httptools", "h11"])
async def live(request: pytest.FixtureRequest, server: AsyncServer) -> AsyncIterator[Live]:
    """The app served by uvicorn on a loopback port, with either HTTP implementation."""
    sock = bind_socket("127.0.0.1", 0)
    config = uvicorn.Config(
        create_app(server=server),
        http=request.param,
        lifespan="off",
        ws="none",
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=2,
    )
    served = _InProcessServer(config)
    task = asyncio.create_task(served.serve(sockets=[sock]))
    try:
        while not served.started:
            assert not task.done(), "uvicorn stopped during startup"
            await asyncio.sleep(0.005)
        yield Live(f"http://127.0.0.1:{sock.getsockname()[1]}", served)
    finally:
        served.should_exit = True
        await asyncio.wait_for(task, 10)
        sock.close()


@pytest.fixture
async def fake() -> AsyncIterator[FakeProvider]:
    async with FakeProvider(chunk_delay=CHUNK_DELAY) as provider:
        yield provider


@pytest.fixture
async def chat_agent(live: Live, tenant, fake: FakeProvider) -> str:
    async with httpx.AsyncClient(base_url=live.url, headers=tenant.headers) as client:
        response = await client.post(
            "/agents", json={"name": "assistant", "agent_type": "chat_agent", "llm_config": llm_config(fake)}
        )
    assert response.status_code == 200, response.text
    return response.json()["id"]


@pytest.fixture
def logged_problems(caplog: pytest.LogCaptureFixture) -> Callable[[], str]:
    """What any logger (ours, uvicorn's, asyncio's) has reported as trouble so far: records of
    warning level and up, or carrying a traceback; empty when all is well."""
    caplog.set_level(logging.INFO)

    def problems() -> str:
        bad = [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]
        return "\n".join(f"{r.levelname} {r.name}: {r.getMessage()}" for r in bad)

    return problems


def sse_data(line: str) -> str | None:
    return line.removeprefix("data: ") if line.startswith("data: ") else None


async def settle(condition: Callable[[], bool], within: float, what: str | Callable[[], str]) -> None:
    """Wait until ``condition()`` holds; fail with ``what`` (called then, if callable) after ``within`` seconds."""
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() >= deadline:
            pytest.fail(what() if callable(what) else what)
        await asyncio.sleep(0.02)


async def only_stream(fake: FakeProvider) -> StreamLog:
    await settle(lambda: len(fake.streams) == 1, 5, "the model was never asked for a streamed answer")
    return fake.streams[0]


@pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")
async def test_full_stream_delivers_every_token_in_order_then_usage_and_done(
    live: Live, server: AsyncServer, tenant, fake: FakeProvider, chat_agent: str, logged_problems
):
    answer = " ".join(f"t{i:02d}" for i in range(30))
    fake.queue(Reply.text(answer))
    body = {"message": "Count for me", "role": "user", "user_id": "alice", "stream": True}
    raw: list[str] = []
    async with httpx.AsyncClient(base_url=live.url, headers=tenant.headers, timeout=30) as client:
        async with client.stream("POST", f"/agents/{chat_agent}/messages", json=body) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            assert response.headers["cache-control"] == "no-cache"
            async for line in response.aiter_lines():
                raw.append(line)
    data = [d for d in map(sse_data, raw) if d is not None]
    assert [line for line in raw if line and sse_data(line) is None] == [], "only data lines are sent"
    assert data[-1] == "[DONE]" and data.count("[DONE]") == 1
    events = [json.loads(d) for d in data[:-1]]
    deltas = [e["content"] for e in events if e["message_type"] == "assistant_message"]
    assert deltas == text_pieces(answer), "every piece the model wrote, once each, in its order"
    assert [e["message_type"] for e in events][-1] == "usage_statistics"
    usage = events[-1]
    assert usage["step_count"] == 1 and usage["completion_tokens"] > 0
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    log = await only_stream(fake)
    assert log.complete and log.ended_at is not None
    async with server.sessions() as session:
        saved = (await session.scalars(select(Message).where(Message.role == "assistant"))).all()
    assert [m.content[0]["text"] for m in saved] == [answer]
    await settle(lambda: not live.request_tasks, 5, "a request task outlived its response")
    assert logged_problems() == ""


@pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")
async def test_client_hanging_up_mid_stream_stops_the_model_stream_cleanly(
    live: Live, server: AsyncServer, tenant, fake: FakeProvider, chat_agent: str, logged_problems
):
    fake.queue(Reply.text(LONG_ANSWER))
    expected = text_pieces(LONG_ANSWER)
    body = {"message": "Talk for a long time", "role": "user", "user_id": "alice", "stream": True}
    deltas: list[str] = []
    client = httpx.AsyncClient(base_url=live.url, headers=tenant.headers, timeout=30)
    async with client.stream("POST", f"/agents/{chat_agent}/messages", json=body) as response:
        assert response.status_code == 200
        async for line in response.aiter_lines():
            data = sse_data(line)
            if data is None:
                continue
            assert data != "[DONE]", "the stream ended before the client hung up"
            event = json.loads(data)
            assert event["message_type"] == "assistant_message", event
            deltas.append(event["content"])
            if len(deltas) == READ_BEFORE_HANGUP:
                break
    await client.aclose()  # the connection is gone, not parked in a pool
    hung_up_at = time.monotonic()
    assert deltas == expected[:READ_BEFORE_HANGUP], "tokens arrive in the order the model wrote them"

    log = await only_stream(fake)
    full_stream_seconds = log.total * CHUNK_DELAY
    # Bounded well below the time the whole answer takes: a server that kept reading would be
    # caught here (or below, by ``complete``), however slow the machine.
    await settle(
        lambda: log.ended_at is not None,
        full_stream_seconds / 2,
        lambda: f"the server kept reading the model's stream after the client left ({log.sent}/{log.total} events)",
    )
    assert not log.complete, f"the model's stream ran to its end ({log.sent}/{log.total} events)"
    sent_after_hangup = log.sent - (READ_BEFORE_HANGUP + 1)  # +1: the role chunk before the text
    assert sent_after_hangup < log.total // 4, f"{log.sent}/{log.total} events sent, {log.ended_at - hung_up_at:.2f}s"
    stopped_at = log.sent
    await asyncio.sleep(10 * CHUNK_DELAY)
    assert log.sent == stopped_at, "nothing is sent on a stream that has ended"

    await settle(lambda: not live.request_tasks, 5, lambda: f"request tasks still running: {live.request_tasks}")

    # The server carries on: a health check and another (non-streamed) chat both work.
    fake.queue(Reply.text("still here"))
    async with httpx.AsyncClient(base_url=live.url, headers=tenant.headers, timeout=30) as again:
        health = await again.get("/health")
        assert health.status_code == 200
        answered = await again.post(
            f"/agents/{chat_agent}/messages", json={**body, "message": "Are you there?", "stream": False}
        )
        assert answered.status_code == 200, answered.text
        assert answered.json()["messages"][-1]["content"] == "still here"
    await settle(lambda: not live.request_tasks, 5, lambda: f"request tasks still running: {live.request_tasks}")

    async with server.sessions() as session:
        saved = (await session.scalars(select(Message).where(Message.role == "assistant"))).all()
        steps = (await session.scalars(select(Step).order_by(Step.created_at))).all()
    # The abandoned answer is not saved as if it had been given; the next exchange is.
    assert [m.content[0]["text"] for m in saved] == ["still here"]
    # The abandoned call is still accounted for, as a call that did not complete.
    assert [s.error for s in steps] == ["stream closed before completion", None], [(s.agent_id, s.error) for s in steps]
    assert logged_problems() == ""


async def test_first_chat_of_a_user_not_created_yet_is_answered_and_saved(
    http: httpx.AsyncClient, server: AsyncServer, tenant, fake: FakeProvider
):
    # Regression: saving the exchange hit the messages -> users foreign key, a 500 (or, streamed, a
    # connection cut after the last token without a terminal event).
    agent = await http.post(
        "/agents",
        json={"name": "assistant", "agent_type": "chat_agent", "llm_config": llm_config(fake)},
        headers=tenant.headers,
    )
    fake.queue(Reply.text("Hello, newcomer."))
    body = {"message": "Hi, I'm new", "role": "user", "user_id": "newcomer"}
    response = await http.post(f"/agents/{agent.json()['id']}/messages", json=body, headers=tenant.headers)
    assert response.status_code == 200, response.text
    assert response.json()["messages"][-1]["content"] == "Hello, newcomer."
    user = await http.get("/users/newcomer", headers=tenant.headers)
    assert user.status_code == 200, user.text
    async with server.sessions() as session:
        saved = (await session.scalars(select(Message).where(Message.user_id == "newcomer"))).all()
    assert sorted(m.role for m in saved) == ["assistant", "user"]
