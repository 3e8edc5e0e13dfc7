"""``AsyncServer``: the one object API routes talk to.

It owns the database engine and the managers, authenticates callers, and is started and
stopped by the app's lifespan (or by the CLI for operator commands).
"""

from __future__ import annotations

import logging
import math
import secrets
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from sqlalchemy import text

from mirix.agents.chat import ChatAgent
from mirix.agents.pipeline import MemoryPipeline, PermanentJobError
from mirix.agents.prompting import default_prompt, memory_agent_prompt
from mirix.agents.topics import extract_topics
from mirix.cache import RateLimiter, create_cache
from mirix.db.base import new_id
from mirix.db.engine import create_engine, create_session_factory
from mirix.db.models import Agent, Job, Step
from mirix.db.types import utcnow
from mirix.embeddings.cache import CachedEmbedder, QueryEmbeddingCache
from mirix.embeddings.factory import create_embedding_provider
from mirix.errors import AuthenticationError, RateLimitError, UnprocessableError
from mirix.llm.base import CallRecord, LLMClient, LLMError
from mirix.llm.factory import LLMRegistry
from mirix.llm.retry import RetryPolicy
from mirix.logs import request_id_var
from mirix.observability import Metrics
from mirix.observability.embeddings import MeasuredEmbeddingProvider
from mirix.observability.tracing import record_llm_span
from mirix.queue import JobQueue, QueueUnavailableError, create_queue
from mirix.schemas.config import LLMConfig
from mirix.schemas.jobs import AddMemoryRequest
from mirix.schemas.tags import check_stored_tags
from mirix.search.text_index import TextIndex
from mirix.search.vector_cache import VectorCache, limit_blas_threads
from mirix.services.actor import Actor
from mirix.services.admins import AdminManager
from mirix.services.agents import AgentManager
from mirix.services.blocks import BlockManager
from mirix.services.bootstrap import bootstrap_if_empty, write_secret_file
from mirix.services.clients import ClientManager, actor_for
from mirix.services.jobs import JobManager, user_key
from mirix.services.memory.manager import MemoryManager
from mirix.services.memory.raw import RawMemoryService
from mirix.services.memory.retrieval import Retriever
from mirix.services.memory.search import MemorySearch
from mirix.services.meta_agents import META, MetaAgentManager
from mirix.services.organizations import OrganizationManager
from mirix.services.security import looks_like_jwt
from mirix.services.tools import ToolManager
from mirix.services.users import UserManager
from mirix.settings import Settings
from mirix.tools.web_search import create_web_search
from mirix.workers.jobs import JobRunner
from mirix.workers.lease import default_replica_id

log = logging.getLogger(__name__)


class AsyncServer:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.metrics = Metrics()
        self.engine = create_engine(settings)
        self.sessions = create_session_factory(self.engine)
        self.cache = create_cache(settings)
        for namespace in self.cache.ttls:  # mirix_cache_requests_total{cache="auth"|"user"|"blocks"|"embedding"}
            self.metrics.cache_requests.watch(namespace, partial(self.cache.counts, namespace))
        self.rate_limiter = (
            RateLimiter(settings.rate_limit_per_second, settings.rate_limit_burst, self.cache.redis)
            if settings.rate_limit_per_second > 0
            else None
        )
        self.organizations = OrganizationManager(self.sessions)
        self.clients = ClientManager(
            self.sessions, touch_interval_seconds=settings.api_key_touch_interval_seconds, cache=self.cache
        )
        self.users = UserManager(self.sessions, self.cache)
        self.tools = ToolManager(self.sessions)
        self.agents = AgentManager(self.sessions, self.tools)
        self.blocks = BlockManager(self.sessions, self.engine.dialect.name, self.cache)
        self.admins = AdminManager(
            self.sessions, secret=_jwt_secret(settings), token_hours=settings.jwt_expiration_hours
        )
        dialect = self.engine.dialect.name
        self.embedder = _embedder(settings, self.metrics)
        if self.embedder is not None:
            self.embedder.shared = self.cache  # a Redis second level for query embeddings; unused in-process
        self.vector_cache = VectorCache(settings.vector_cache_mb * 1024 * 1024)
        self.text_index = TextIndex(settings.text_index_mb * 1024 * 1024)
        self.memories = MemoryManager(self.sessions, self.embedder)
        self.search = MemorySearch(
            self.sessions,
            dialect,
            self.memories,
            self.vector_cache,
            self.text_index,
            text_weight=settings.hybrid_text_weight,
            vector_weight=settings.hybrid_vector_weight,
            rrf_k=settings.hybrid_rrf_k,
        )
        self.raw_memories = RawMemoryService(self.sessions, self.memories, dialect)
        self.retriever = Retriever(
            self.memories, self.search, self.blocks, max_prompt_sensitivity=settings.prompt_max_sensitivity
        )
        self.jobs = JobManager(
            self.sessions,
            replica_id=settings.replica_id or default_replica_id(),
            lease_seconds=settings.job_lease_seconds,
            single_node=dialect == "sqlite",
        )
        self.meta_agents = MetaAgentManager(self.sessions, self.agents)
        self.llms = LLMRegistry(
            recorder=self._record_llm_call,
            retry=RetryPolicy(max_attempts=settings.llm_max_attempts, base_delay=settings.llm_retry_base_delay),
            timeout=settings.llm_timeout_seconds,
        )
        self.pipeline = MemoryPipeline(
            self.memories,
            self.search,
            self.blocks,
            self.sessions,
            stage_steps=self.jobs.stage_steps,
            max_steps=settings.agent_max_steps,
        )
        self.job_runner = JobRunner(
            self.sessions,
            self.jobs,
            self.pipeline,
            self._llm_for_job,
            max_attempts=settings.job_max_attempts,
            backoff_seconds=settings.job_retry_backoff_seconds,
            observe=self.metrics.observe_job,
            lease_renew_seconds=min(settings.job_lease_renew_seconds, settings.job_lease_seconds / 3),
        )
        self.queue: JobQueue = create_queue(settings, self.jobs.replica_id)
        self.chat = ChatAgent(self.sessions, self.retriever, self.search, create_web_search(settings.web_search))
        self._workers_started = False
        self.metrics.watch_server(self)
        #: The API key made by the first start on an empty database, if this start made one.
        self.bootstrap_key: str | None = None

    @classmethod
    async def start(cls, settings: Settings) -> AsyncServer:
        if settings.should_auto_migrate:
            from mirix.db.migrate import upgrade  # Alembic is only needed when migrating

            await upgrade(settings.async_database_url)
        limit_blas_threads()
        server = cls(settings)
        if settings.bootstrap:
            server.bootstrap_key = await bootstrap_if_empty(server.sessions, server.clients, settings.api_key_file)
        return server

    async def warm_up(self) -> None:
        """Pay the one-time costs before the first request rather than during it: importing the
        default LLM SDK and loading the local embedding model. Both hold the GIL for a good part of
        a second, which would stall every request in flight behind the first memory job. On SQLite
        also the vector scan's kernels (a tenth of a second, before the first vector search)."""
        from mirix.llm.factory import import_sdk
        from mirix.search.quantized import load_kernels

        import_sdk(self.settings.llm_endpoint_type)  # before serving, so blocking here stalls nobody
        if self.engine.dialect.name == "sqlite":
            load_kernels()
        load = getattr(self.embedder.provider, "load", None) if self.embedder is not None else None
        if load is not None:
            await load()

    async def start_workers(self) -> None:
        """Start taking memory jobs, beginning with those a previous run left unfinished."""
        await self.queue.start(self.job_runner)
        self._workers_started = True
        for job in await self.jobs.resumable():
            await self.queue.enqueue(job.id, user_key(job.organization_id, job.user_id))

    async def stop_workers(self) -> None:
        if self._workers_started:
            await self.queue.stop()
            self._workers_started = False
            try:  # interrupted jobs: other replicas need not wait for their leases to run out
                await self.jobs.release_held()
            except Exception:  # noqa: BLE001 - they are resumed when the leases expire all the same
                log.warning("could not release the leases of interrupted jobs", exc_info=True)

    async def close(self) -> None:
        await self.stop_workers()
        await self.llms.aclose_all()
        if self.embedder is not None and self.settings.embedding_endpoint_type != "local":
            # The local model is shared by every server in the process; remote clients are ours.
            await self.embedder.aclose()
        await self.cache.aclose()
        await self.engine.dispose()

    # --- the write path ----------------------------------------------------------------------------

    async def add_memory(self, actor: Actor, request: AddMemoryRequest) -> Job:
        """Validate an add, store its job and queue it. The job carries everything it needs."""
        actor.require_write_scope()
        meta = await self._meta_agent(actor, request.meta_agent_id)
        if meta is None and self.settings.llm_model is None:
            raise UnprocessableError(
                "No LLM is configured for this client: call POST /agents/meta/initialize with an llm_config, "
                "or start the server with MIRIX_LLM_MODEL"
            )
        payload = {
            "messages": request.messages,
            "filter_tags": check_stored_tags(request.filter_tags),
            "block_filter_tags": check_stored_tags(request.block_filter_tags, "block_filter_tags"),
            "block_filter_tags_update_mode": request.block_filter_tags_update_mode,
            "memory_types": request.memory_types,
            "request_id": request_id_var.get(),  # the job's log lines name the request that queued it
        }
        job = await self.jobs.create(
            actor,
            request.user_id or actor.default_user_id,
            meta.id if meta else None,
            payload,
            occurred_at=request.occurred_at or utcnow(),
        )
        try:
            await self.queue.enqueue(job.id, user_key(job.organization_id, job.user_id))
        except QueueUnavailableError as exc:
            await self.jobs.fail_unqueued(job.id, str(exc))  # the caller gets 503 and may send it again
            raise
        return job

    async def chat_setup(self, actor: Actor, agent: Agent) -> tuple[LLMClient, str]:
        """The chat agent's model (its own configuration, else its client's meta agent's, else the
        server default) and its system prompt."""
        config = agent.llm_config
        if not config:
            meta = await self.meta_agents.find(actor)
            config = meta.llm_config if meta is not None else None
        try:
            client = self.llms.get(config) if config else self.llms.get(self._default_llm_config())
        except LLMError as exc:
            raise UnprocessableError(f"The chat agent's LLM configuration is unusable: {exc}") from exc
        return client, agent.system or default_prompt("chat_agent")

    async def conversation_topics(self, actor: Actor, messages: list[dict[str, Any]]) -> tuple[str, str]:
        """Topics and time of a conversation from the client's LLM, when one is configured and the
        step is enabled; ("", "") otherwise (retrieval then uses the conversation's own words)."""
        if not self.settings.retrieval_topic_llm:
            return "", ""
        meta = await self.meta_agents.find(actor)
        config = meta.llm_config if meta is not None and meta.llm_config else None
        if config is None and self.settings.llm_model is None:
            return "", ""
        try:
            llm = self.llms.get(config or self._default_llm_config())
        except LLMError:
            return "", ""
        return await extract_topics(llm, messages, {"organization_id": actor.organization_id, "agent": "retrieval"})

    def _default_llm_config(self) -> LLMConfig:
        s = self.settings
        if s.llm_model is None:
            raise UnprocessableError("No LLM is configured: give the agent an llm_config or set MIRIX_LLM_MODEL")
        return LLMConfig(
            model=s.llm_model,
            model_endpoint_type=s.llm_endpoint_type,
            model_endpoint=s.llm_endpoint,
            context_window=s.llm_context_window,
            api_key=s.llm_api_key.get_secret_value() if s.llm_api_key else None,
        )

    async def _meta_agent(self, actor: Actor, agent_id: str | None) -> Agent | None:
        if agent_id is None:
            return await self.meta_agents.find(actor)
        return (await self.agents.get(actor, agent_id)).agent  # 404 unless it is the caller's

    async def _llm_for_job(self, job: Job) -> tuple[LLMClient, Callable[[str], Awaitable[str]]]:
        """The job's model (its meta agent's configuration, else the server default) and prompts."""
        meta, overrides = await self.meta_agents.with_prompts(job.agent_id) if job.agent_id else (None, {})
        if meta is not None and meta.llm_config:
            config = LLMConfig.model_validate(meta.llm_config)
        elif self.settings.llm_model is not None:
            config = self._default_llm_config()
        else:
            raise PermanentJobError("no LLM configured for this job's client")
        try:
            client = self.llms.get(config)
        except LLMError as exc:
            raise PermanentJobError(str(exc)) from exc

        async def prompt(agent_name: str) -> str:
            if agent_name in overrides:
                text = overrides[agent_name]
                return (
                    memory_agent_prompt(text) if agent_name.endswith("_memory_agent") and agent_name != META else text
                )
            return default_prompt(agent_name)

        return client, prompt

    async def _record_llm_call(self, record: CallRecord) -> None:
        """Every LLM call becomes a steps row (provider, model, latency, tokens, error), metrics and a span."""
        self.metrics.observe_llm_call(record)
        record_llm_span(record)
        metadata = record.metadata or {}
        organization_id = metadata.get("organization_id")
        if organization_id is None:
            return
        step = Step(
            id=new_id("step"),
            organization_id=organization_id,
            job_id=metadata.get("job_id"),
            agent_id=metadata.get("agent"),
            provider=record.provider,
            model=record.model,
            latency_ms=int(record.latency_ms),
            prompt_tokens=record.prompt_tokens,
            completion_tokens=record.completion_tokens,
            error=record.error,
        )
        if step.job_id is not None:
            self.jobs.hold_step(step)  # written with the job's end (or retry), in the same transaction
            return
        async with self.sessions.begin() as session:
            session.add(step)

    async def authenticate(
        self, *, api_key: str | None, bearer: str | None, client_id: str | None, org_id: str | None
    ) -> Actor:
        """Resolve the caller from its credentials, strongest first."""
        if api_key:
            return await self.clients.authenticate(api_key)
        if bearer:
            if looks_like_jwt(bearer):
                actor = await self.admins.authenticate(bearer)
                if actor is None:
                    raise AuthenticationError("Invalid or expired token")
                return actor
            return await self.clients.authenticate(bearer)
        if client_id and self.settings.trusted_gateway:
            client = await self.clients.get_active(client_id)
            if org_id and org_id != client.organization_id:
                raise AuthenticationError("X-Org-ID does not match the client's organization")
            return actor_for(client)
        if client_id:
            raise AuthenticationError(
                "X-Client-ID without an API key is only accepted in trusted-gateway mode; send X-API-Key"
            )
        raise AuthenticationError("Authentication required: send X-API-Key (or Authorization: Bearer)")

    async def check_database(self) -> bool:
        try:
            async with self.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
            return True
        except Exception:  # noqa: BLE001 - health reports any failure as "down"
            log.exception("database health check failed")
            return False

    async def check_cache(self) -> bool:
        """False while Redis is unreachable (requests are then served from the database)."""
        return await self.cache.ping()

    async def check_rate_limit(self, actor: Actor) -> None:
        """Take one token from the caller's client bucket, or raise 429 with the wait."""
        if self.rate_limiter is None:
            return
        wait = await self.rate_limiter.take(actor.client_id)
        if wait > 0:
            seconds = max(1, math.ceil(wait))
            raise RateLimitError(
                f"Rate limit exceeded for this client ({self.rate_limiter.rate:g} requests/s, burst "
                f"{self.rate_limiter.burst}); retry after {seconds} s",
                retry_after=seconds,
            )


def _embedder(settings: Settings, metrics: Metrics) -> CachedEmbedder | None:
    """The embedding model all memories and queries use (created lazily: nothing loads here)."""
    if not settings.embeddings_enabled:
        return None
    options: dict[str, Any] = {}
    if settings.embedding_endpoint_type != "local":
        options = {
            "base_url": settings.embedding_endpoint,
            "api_key": settings.embedding_api_key,
            "api_version": settings.embedding_api_version,
            "azure_deployment": settings.embedding_azure_deployment,
            "timeout": settings.embedding_timeout_seconds,
            "max_retries": settings.embedding_max_retries,
        }
    provider = create_embedding_provider(
        settings.embedding_endpoint_type, settings.embedding_model, settings.embedding_dim, **options
    )
    return CachedEmbedder(
        MeasuredEmbeddingProvider(provider, metrics), QueryEmbeddingCache(settings.query_embedding_cache_size)
    )


# Older code imports the synchronous-sounding name; it is the same async server.
SyncServer = AsyncServer


def _jwt_secret(settings: Settings) -> str:
    """The admin-token secret: from the environment, else kept in the data directory (0600)."""
    if settings.jwt_secret_key is not None:
        secret = settings.jwt_secret_key.get_secret_value()
        if len(secret) < 32:
            raise ValueError("MIRIX_JWT_SECRET_KEY must be at least 32 characters")
        return secret
    path = settings.jwt_secret_file
    if path.exists():
        secret = path.read_text().strip()
        if len(secret) >= 32:
            return secret
    secret = secrets.token_hex(32)
    write_secret_file(path, secret)
    return secret
