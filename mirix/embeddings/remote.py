"""What every remote embedding provider shares: options, batching, one retry policy, checks, error messages.

A subclass sends one request per batch (``_request``) and reduces its SDK's exceptions to a
:class:`Failure` (``_classify``); everything else - splitting, the per-attempt deadline, retries with
jittered back-off (``base.retry``), dimension checks and turning failures into an
:class:`EmbeddingError` that says what to fix - lives here, so the providers cannot drift apart.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Literal
from urllib.parse import urlsplit

from mirix.embeddings.base import EmbeddingError, retry

DEFAULT_TIMEOUT = 30.0
DEFAULT_MAX_RETRIES = 3
DEFAULT_RETRY_BASE_DELAY = 0.5
DEFAULT_RETRY_MAX_DELAY = 8.0
_MAX_DETAIL = 300


def import_sdk(module: str, package: str, extra: str, provider: str) -> ModuleType:
    """The SDK module, imported on first use so the server runs without SDKs it does not use."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise EmbeddingError(
            f"the {provider} embedding provider needs the {package!r} package: "
            f"install it, or the server with the {extra!r} extra (pip install 'mirix-server[{extra}]')"
        ) from exc


def resolve_api_key(explicit: Any, env_names: Sequence[str]) -> str | None:
    """``explicit`` (a str or a pydantic SecretStr), else the first non-empty variable of ``env_names``."""
    if explicit is not None and hasattr(explicit, "get_secret_value"):
        explicit = explicit.get_secret_value()
    if explicit:
        return str(explicit).strip()
    for name in env_names:
        value = os.environ.get(name, "").strip()
        if value:
            return value
    return None


def checked_url(url: str, provider: str, option: str = "base_url") -> str:
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise EmbeddingError(
            f"the {provider} embedding provider's {option} must be an http(s) URL such as "
            f"'https://host:port', not {url!r}"
        )
    return url.strip().rstrip("/")


def retry_after_seconds(headers: Any) -> float | None:
    """The server's requested wait (``retry-after-ms`` or a number of seconds in ``retry-after``)."""
    if headers is None:
        return None
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            return max(0.0, float(value) * scale)
        except ValueError:  # an HTTP date: rare for APIs, and the back-off covers it
            continue
    return None


@dataclass(frozen=True)
class Failure:
    """A provider exception reduced to what the retry policy and the error message need."""

    kind: Literal["status", "timeout", "connect"]
    status: int | None = None
    message: str = ""
    retry_after: float | None = None

    @property
    def transient(self) -> bool:
        if self.kind != "status":
            return True
        return self.status is not None and (self.status in (408, 429) or self.status >= 500)


class HTTPStatusFailure(Exception):
    """An error response from a provider spoken to over plain httpx (no SDK exception to reuse)."""

    def __init__(self, status: int, message: str, retry_after: float | None = None) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.message = message
        self.retry_after = retry_after


def transport_failure(exc: BaseException) -> Failure | None:
    """Timeouts and network errors of httpx, httpx2 (newer SDKs), aiohttp (google-genai when installed)
    and the standard library, without importing any of them."""
    if isinstance(exc, TimeoutError):
        return Failure("timeout", message=str(exc) or "timed out")
    for name in ("httpx", "httpx2"):
        http = sys.modules.get(name)
        if http is None:
            continue
        if isinstance(exc, http.TimeoutException):
            return Failure("timeout", message=str(exc) or type(exc).__name__)
        # Not UnsupportedProtocol or LocalProtocolError: those are configuration bugs, not blips.
        if isinstance(exc, http.NetworkError | http.RemoteProtocolError):
            return Failure("connect", message=str(exc) or type(exc).__name__)
    aiohttp = sys.modules.get("aiohttp")
    if aiohttp is not None and isinstance(exc, aiohttp.ClientConnectionError):
        return Failure("connect", message=str(exc) or type(exc).__name__)
    if isinstance(exc, OSError):
        return Failure("connect", message=str(exc) or type(exc).__name__)
    return None


def _number(value: Any, default: float, name: str, *, minimum: float, integer: bool = False) -> Any:
    """``value`` (``default`` when None), checked to be a number of at least ``minimum``."""
    value = default if value is None else value
    kind = int if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kind) or value < minimum:
        what = "an integer" if integer else "a number"
        raise EmbeddingError(f"{name} must be {what} of at least {minimum:g}, not {value!r}")
    return value if integer else float(value)


class RemoteEmbeddingProvider:
    """Batching, retries and checks around one request per batch; see the module docstring.

    ``max_retries`` counts retries after the first attempt; ``timeout`` bounds each attempt (connect
    to last byte), not the whole call.
    """

    provider: str = ""
    default_max_batch_size: int = 256
    key_env: tuple[str, ...] = ()

    def __init__(
        self,
        model: str,
        dim: int,
        *,
        timeout: float | None = None,
        max_retries: int | None = None,
        retry_base_delay: float | None = None,
        retry_max_delay: float | None = None,
        max_batch_size: int | None = None,
    ) -> None:
        if not isinstance(model, str) or not model.strip():
            raise EmbeddingError(f"the {self.provider} embedding provider needs a model name")
        self.model = model.strip()
        self.dim = _number(dim, 0, "dim", minimum=1, integer=True)
        self.timeout = _number(timeout, DEFAULT_TIMEOUT, "timeout", minimum=0.001)
        self.max_retries = _number(max_retries, DEFAULT_MAX_RETRIES, "max_retries", minimum=0, integer=True)
        self.retry_base_delay = _number(retry_base_delay, DEFAULT_RETRY_BASE_DELAY, "retry_base_delay", minimum=0)
        self.retry_max_delay = _number(retry_max_delay, DEFAULT_RETRY_MAX_DELAY, "retry_max_delay", minimum=0)
        self.max_batch_size = _number(
            max_batch_size, self.default_max_batch_size, "max_batch_size", minimum=1, integer=True
        )
        self.endpoint = ""
        self._secret: str | None = None
        self._closed = False

    # -- for subclasses ----------------------------------------------------------------------

    async def _request(self, texts: list[str]) -> list[Any]:
        """One provider request for ``texts``; returns one vector per text, in input order."""
        raise NotImplementedError

    def _classify(self, exc: BaseException) -> Failure | None:
        """``exc`` as a Failure, or None when it is not a provider error (a bug: re-raised as is)."""
        return transport_failure(exc)

    async def _close_client(self) -> None:
        raise NotImplementedError

    def _key_hint(self) -> str:
        names = " or ".join(self.key_env)
        return f"pass api_key or set {names}" if names else "pass api_key"

    def _not_found_hint(self) -> str:
        return f"check that model {self.model!r} exists at {self.endpoint}"

    def _dim_hint(self) -> str:
        return f"set the embedding dim to what the model produces, or choose a model with {self.dim} dimensions"

    # -- the provider interface --------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closed

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        if isinstance(texts, str):
            raise TypeError("embed() takes a sequence of texts, not a single string")
        if not texts:
            return []
        if self._closed:
            raise EmbeddingError(f"{self._where()}: the provider is closed")
        vectors: list[list[float]] = []
        # Sequential, not gathered: parallel batches would only trade for rate-limit errors.
        for start in range(0, len(texts), self.max_batch_size):
            batch = list(texts[start : start + self.max_batch_size])
            vectors.extend(self._checked(batch, await self._call(batch)))
        return vectors

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self._close_client()

    # -- internals ---------------------------------------------------------------------------

    async def _call(self, batch: list[str]) -> list[Any]:
        requested_wait = 0.0

        def transient(exc: BaseException) -> bool:
            nonlocal requested_wait
            failure = self._classify(exc)
            if failure is None or not failure.transient:
                return False
            # A server's Retry-After is honoured, but never beyond our own ceiling.
            requested_wait = min(failure.retry_after or 0.0, self.retry_max_delay)
            return True

        async def sleep(delay: float) -> None:
            await asyncio.sleep(max(delay, requested_wait))

        async def attempt() -> list[Any]:
            # SDK timeouts are per phase (connect, each read); this bounds the attempt as a whole.
            async with asyncio.timeout(self.timeout):
                return await self._request(batch)

        try:
            return await retry(
                attempt,
                transient=transient,
                attempts=self.max_retries + 1,
                base_delay=self.retry_base_delay,
                max_delay=self.retry_max_delay,
                sleep=sleep,
            )
        except EmbeddingError:
            raise
        except Exception as exc:
            failure = self._classify(exc)
            if failure is None:
                raise
            raise EmbeddingError(self._redact(self._describe(failure))) from exc

    def _where(self) -> str:
        return f"{self.provider} embeddings (model {self.model!r} at {self.endpoint})"

    def _describe(self, failure: Failure) -> str:
        attempts = self.max_retries + 1 if failure.transient else 1
        tries = f" after {attempts} attempts" if attempts > 1 else ""
        detail = failure.message[:_MAX_DETAIL]
        status = failure.status
        if failure.kind == "connect":
            text = (
                f"cannot connect to {self.endpoint}{tries} ({detail}); "
                "check the base URL and that the service is running and reachable"
            )
        elif failure.kind == "timeout":
            text = (
                f"no response within {self.timeout:g}s{tries}; check that the service is up, "
                "or raise the timeout option"
            )
        elif status == 401:
            text = f"the API key was rejected (HTTP 401); {self._key_hint()} with a valid key"
        elif status == 403:
            text = f"access denied (HTTP 403): {detail}; check that the API key may use model {self.model!r}"
        elif status == 404:
            text = f"not found (HTTP 404): {detail}; {self._not_found_hint()}"
        elif status == 429:
            text = f"rate limited (HTTP 429){tries}; lower the request rate, raise max_retries or check the quota"
        elif status is not None and status >= 500:
            text = f"server error (HTTP {status}){tries}: {detail}"
        else:
            text = f"request rejected (HTTP {status}): {detail}"
        return f"{self._where()}: {text}"

    def _redact(self, message: str) -> str:
        # Defence in depth: some services echo (part of) a rejected key in their error text.
        if self._secret:
            message = message.replace(self._secret, "***")
        return message

    def _checked(self, batch: list[str], vectors: list[Any]) -> list[list[float]]:
        if not isinstance(vectors, list) or len(vectors) != len(batch):
            count = len(vectors) if isinstance(vectors, list) else "no"
            raise EmbeddingError(f"{self._where()}: returned {count} vectors for {len(batch)} texts")
        for vector in vectors:
            if not isinstance(vector, list):
                raise EmbeddingError(f"{self._where()}: returned a malformed vector ({type(vector).__name__})")
            if len(vector) != self.dim:
                raise EmbeddingError(
                    f"{self._where()}: returned {len(vector)}-dimensional vectors, but dim is configured as "
                    f"{self.dim}; {self._dim_hint()}"
                )
        return vectors
