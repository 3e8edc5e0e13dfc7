"""Standalone fake provider for benchmarks, and the import point of ``FakeProvider``.

    python -m tests.fakes.provider_server --port 18000 --latency-ms 300

Every chat request is answered by the default script (``--reply-text``, "ok" by default) after
the given latency; embeddings work as in tests. It binds to loopback unless told otherwise.
The embedded, scriptable server used by tests lives in ``tests.fakes.provider`` (kept apart so
``python -m`` does not import this module twice).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys

import uvicorn

from tests.fakes.embedder import DEFAULT_DIMENSION
from tests.fakes.provider import FakeProvider, bind_socket, server_config
from tests.fakes.script import Script

__all__ = ["FakeProvider", "main"]


async def _serve_forever(args: argparse.Namespace) -> None:
    script = Script(
        latency=args.latency_ms / 1000,
        embedding_dim=args.embedding_dim,
        default_text=args.reply_text,
    )
    sock = bind_socket(args.host, args.port)
    print(f"fake provider listening on http://{args.host}:{sock.getsockname()[1]}", flush=True)
    await uvicorn.Server(server_config(script, embedded=False)).serve(sockets=[sock])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Fake OpenAI/Azure/Anthropic/Gemini/Ollama server for benchmarks.")
    parser.add_argument("--host", default="127.0.0.1", help="bind address (keep it on loopback)")
    parser.add_argument("--port", type=int, default=18000)
    parser.add_argument("--latency-ms", type=float, default=0.0, help="delay added to every response")
    parser.add_argument("--embedding-dim", type=int, default=DEFAULT_DIMENSION)
    parser.add_argument("--reply-text", default="ok", help="text of every chat answer")
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve_forever(args))


if __name__ == "__main__":
    main(sys.argv[1:])
