"""The scripting state of a fake provider: what to answer, and what was asked.

Kept apart from the HTTP server so the Starlette app depends only on this, and every piece of
state lives on one instance (no module globals): two fakes in one test never interfere.
"""

from __future__ import annotations

import inspect
import itertools
from collections import deque
from dataclasses import dataclass

from tests.fakes.embedder import DEFAULT_DIMENSION
from tests.fakes.recorded import RecordedRequest
from tests.fakes.replies import EmbeddingFault, Reply, Responder, Scripted


@dataclass
class StreamLog:
    """How far one streamed answer got: events sent, and whether and when the response ended.

    ``ended_at`` (``time.monotonic()``) is set when the response is over, whether it ran to its
    last event or the client hung up; ``complete`` tells the two apart.
    """

    request: RecordedRequest
    total: int
    sent: int = 0
    ended_at: float | None = None

    @property
    def complete(self) -> bool:
        return self.sent == self.total


class Script:
    """Queue of scripted answers, optional responder, latency, and the request log.

    Chat requests take the next queued item; when the queue is empty the ``responder`` computes
    an answer from the request, and without a responder the answer is ``Reply.text(default_text)``.
    Embedding requests never touch that queue: their vectors derive from the text, and only
    faults queued with ``fail_embeddings`` interrupt them.
    """

    def __init__(
        self,
        *,
        latency: float = 0.0,
        chunk_delay: float = 0.0,
        embedding_dim: int = DEFAULT_DIMENSION,
        responder: Responder | None = None,
        default_text: str = "ok",
    ) -> None:
        self.latency = latency
        """Seconds added before every response (before the first byte of a stream)."""
        self.chunk_delay = chunk_delay
        """Seconds between the events of a streamed answer (a slow model writing token by token)."""
        self.embedding_dim = embedding_dim
        """Vector size when the request does not ask for one (OpenAI ``dimensions``, Gemini
        ``outputDimensionality``, Ollama ``dimensions``)."""
        self.responder = responder
        self.default_text = default_text
        self.requests: list[RecordedRequest] = []
        self.streams: list[StreamLog] = []
        """One entry per streamed chat answer, in the order they started."""
        self.errors: list[BaseException] = []
        """Exceptions raised by the responder; re-raised when the fake stops, so a buggy
        responder fails the test instead of surfacing as a puzzling 500."""
        self._queue: deque[Scripted] = deque()
        self._embedding_faults: deque[EmbeddingFault] = deque()
        self._ids = itertools.count(1)

    def queue(self, *items: Scripted) -> None:
        """Append answers for the next chat requests, whatever provider they come through."""
        self._queue.extend(items)

    def fail_embeddings(self, *faults: EmbeddingFault) -> None:
        """Make the next embedding requests fail, one fault each, before vectors resume."""
        self._embedding_faults.extend(faults)

    @property
    def pending(self) -> tuple[Scripted, ...]:
        """Queued chat answers not consumed yet (assert ``== ()`` to prove a script ran fully)."""
        return tuple(self._queue)

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.operation == "chat"]

    @property
    def embedding_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.operation == "embeddings"]

    def reset(self) -> None:
        """Forget queued answers, faults, recorded requests and errors; keep settings."""
        self._queue.clear()
        self._embedding_faults.clear()
        self.requests.clear()
        self.streams.clear()
        self.errors.clear()

    # The methods below are the server's side of the script.

    def record(self, request: RecordedRequest) -> None:
        self.requests.append(request)

    def next_id(self) -> int:
        return next(self._ids)

    async def next_answer(self, request: RecordedRequest) -> Scripted:
        if self._queue:
            return self._queue.popleft()
        if self.responder is None:
            return Reply.text(self.default_text)
        answer = self.responder(request)
        if inspect.isawaitable(answer):
            answer = await answer
        return answer

    def next_embedding_fault(self) -> EmbeddingFault | None:
        return self._embedding_faults.popleft() if self._embedding_faults else None
