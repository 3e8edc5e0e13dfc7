"""A fake LLM provider served over real HTTP on loopback: the embedded server's lifecycle.

Tests must never reach a paid API, yet the SDK client code (request building, SSE parsing,
retries, timeouts) should run for real. So the fake is an actual HTTP server speaking the
OpenAI, Azure OpenAI, Anthropic, Gemini and Ollama wire formats, run by uvicorn inside the
caller's event loop::

    async with FakeProvider() as fake:
        fake.queue(Reply.tool_call("trigger_memory_update", {"memory_types": ["episodic"]}))
        client = openai.AsyncOpenAI(base_url=fake.openai_base_url, api_key="test")

Standalone, for benchmarks, see ``tests.fakes.provider_server``.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator
from types import TracebackType

import uvicorn

from tests.fakes.app import build_app
from tests.fakes.embedder import DEFAULT_DIMENSION
from tests.fakes.replies import Responder
from tests.fakes.script import Script

_SHUTDOWN_GRACE_SECONDS = 1.0


class _EmbeddedServer(uvicorn.Server):
    """uvicorn without its signal handlers: inside pytest, Ctrl+C belongs to pytest."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def bind_socket(host: str, port: int) -> socket.socket:
    """A bound TCP socket for uvicorn; binding it ourselves is the reliable way to learn the port
    chosen for port 0 (uvicorn does not report it)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP matters: asyncio enables TCP_NODELAY only on sockets that say they are TCP,
    # and without it every response waits ~40 ms for a delayed ACK (Nagle).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    # Listening now lets clients connect (and queue) as soon as the address is announced.
    sock.listen(128)
    return sock


def server_config(script: Script, *, embedded: bool) -> uvicorn.Config:
    """uvicorn settings: quiet and hands-off when embedded in tests, access-logged standalone."""
    return uvicorn.Config(
        build_app(script),
        lifespan="off",
        ws="none",
        access_log=not embedded,
        log_level="warning" if embedded else "info",
        # Embedded, leave the test process's logging configuration alone.
        log_config=None if embedded else uvicorn.config.LOGGING_CONFIG,
        timeout_graceful_shutdown=_SHUTDOWN_GRACE_SECONDS,
        server_header=False,
    )


class FakeProvider(Script):
    """A scripted fake LLM provider on ``http://127.0.0.1:<port>`` (see ``Script`` for scripting).

    Use as ``async with FakeProvider() as fake`` or call ``start()``/``stop()``; the server runs
    as a task of the current event loop, so it must be started and stopped in the same loop.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        latency: float = 0.0,
        chunk_delay: float = 0.0,
        embedding_dim: int = DEFAULT_DIMENSION,
        responder: Responder | None = None,
        default_text: str = "ok",
    ) -> None:
        super().__init__(
            latency=latency,
            chunk_delay=chunk_delay,
            embedding_dim=embedding_dim,
            responder=responder,
            default_text=default_text,
        )
        self.host = host
        self._requested_port = port
        self._port: int | None = None
        self._server: _EmbeddedServer | None = None
        self._task: asyncio.Task[None] | None = None
        self._socket: socket.socket | None = None

    # -- addresses -------------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("FakeProvider is not started")
        return self._port

    @property
    def url(self) -> str:
        """Root URL: the base for Anthropic, Gemini (``HttpOptions(base_url=...)``), Ollama, and
        Azure's ``azure_endpoint``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def openai_base_url(self) -> str:
        return f"{self.url}/v1"

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        if self._task is not None:
            raise RuntimeError("FakeProvider is already started")
        self._socket = bind_socket(self.host, self._requested_port)
        self._port = self._socket.getsockname()[1]
        self._server = _EmbeddedServer(server_config(self, embedded=True))
        self._task = asyncio.create_task(self._server.serve(sockets=[self._socket]), name=f"fake-provider:{self._port}")
        while not self._server.started:
            if self._task.done():
                await self._task  # re-raises the startup failure
                raise RuntimeError("fake provider stopped during startup")
            await asyncio.sleep(0.005)

    async def stop(self) -> None:
        """Shut the server down and re-raise the first responder error, if any."""
        if self._task is None or self._server is None:
            return
        self._server.should_exit = True
        try:
            await asyncio.wait_for(asyncio.shield(self._task), timeout=_SHUTDOWN_GRACE_SECONDS + 2)
        except TimeoutError:
            self._server.force_exit = True
            await self._task
        finally:
            self._task = None
            self._server = None
            if self._socket is not None:
                self._socket.close()
                self._socket = None
        if self.errors:
            raise RuntimeError(f"fake provider responder failed {len(self.errors)} time(s)") from self.errors[0]

    async def __aenter__(self) -> FakeProvider:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is not None:
            # The test already failed; its own exception is the one to show.
            self.errors.clear()
        await self.stop()
