"""Server configuration: one ``Settings`` object, read from ``MIRIX_*`` environment variables.

Nothing here touches the disk or the network; building a ``Settings`` is free of side effects.
The object is created once (by the CLI or the app factory) and passed down explicitly.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="MIRIX_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
    )

    data_dir: Path = Field(
        default=Path("~/.mirix"),
        description="Directory for the SQLite database, the bootstrap API key and other local state.",
    )
    database_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("MIRIX_PG_URI", "MIRIX_DATABASE_URL"),
        description="PostgreSQL URI (postgresql://...). Unset means SQLite inside data_dir.",
    )
    db_pool_size: int = Field(default=10, ge=1)
    db_max_overflow: int = Field(default=20, ge=0)
    db_echo: bool = False
    auto_migrate: bool | None = Field(
        default=None,
        description="Apply migrations when the server starts. Default: on for SQLite, off for PostgreSQL.",
    )

    host: str = "127.0.0.1"
    port: int = Field(default=8531, ge=1, le=65535)
    http_keep_alive_seconds: int = Field(
        default=75,
        ge=1,
        description="How long an idle keep-alive connection stays open. Longer than the idle time of client pools "
        "and proxies (commonly 60 s): a connection closed under a client that just reused it is a reset request.",
    )
    bootstrap: bool = Field(
        default=True,
        description="On first start with an empty database, create a default org, client, user and API key.",
    )

    jwt_secret_key: SecretStr | None = Field(
        default=None,
        description="HS256 secret for admin tokens; generated and kept in data_dir when unset.",
    )
    jwt_expiration_hours: int = Field(default=24, ge=1, le=24 * 30)
    trusted_gateway: bool = Field(
        default=False,
        description="Accept X-Client-ID/X-Org-ID headers without an API key. Only behind a gateway that "
        "authenticates callers and strips these headers from outside traffic.",
    )
    api_key_touch_interval_seconds: int = Field(
        default=60,
        ge=0,
        description="How often last_used_at of an API key is written at most (per key and process).",
    )

    llm_model: str | None = Field(
        default=None, description="Default LLM for clients that did not call /agents/meta/initialize."
    )
    llm_api_key: SecretStr | None = Field(default=None, description="API key of the default LLM.")
    llm_endpoint_type: str = "openai"
    llm_endpoint: str | None = None
    llm_context_window: int = 128000
    embedding_endpoint_type: str = Field(
        default="local", description="'local' runs all-MiniLM-L6-v2 in-process; no network needed."
    )
    embedding_model: str = "all-MiniLM-L6-v2"
    embedding_dim: int = 384
    embedding_endpoint: str | None = Field(default=None, description="Base URL of a remote embedding provider.")
    embedding_api_key: SecretStr | None = None
    embedding_api_version: str | None = None
    embedding_azure_deployment: str | None = None
    embedding_timeout_seconds: float = Field(default=30.0, gt=0)
    embedding_max_retries: int = Field(default=3, ge=0, le=20)
    embeddings_enabled: bool = Field(
        default=True, description="Store vectors for memories (needed for embedding search)."
    )
    query_embedding_cache_size: int = Field(default=2048, ge=0)
    vector_cache_mb: int = Field(
        default=256, ge=1, description="SQLite only: memory for per-user vector matrices used by embedding search."
    )
    text_index_mb: int = Field(
        default=256, ge=1, description="SQLite only: memory for per-user BM25 postings used by text search."
    )
    hybrid_text_weight: float = Field(default=1.0, ge=0, description="Weight of BM25 ranks in hybrid search.")
    hybrid_vector_weight: float = Field(default=1.0, ge=0, description="Weight of embedding ranks in hybrid search.")
    hybrid_rrf_k: float = Field(
        default=5.0, ge=0, description="Reciprocal-rank-fusion constant: smaller trusts the top ranks more."
    )
    retrieval_topic_llm: bool = Field(
        default=True,
        description="retrieve/conversation asks the client's LLM (when one is configured) for topics and time.",
    )
    prompt_max_sensitivity: str = Field(
        default="medium",
        pattern="^(low|medium|high)$",
        description="Knowledge-vault items above this sensitivity never appear in retrieval (prompt) output.",
    )

    workers: int = Field(
        default=32,
        ge=1,
        le=1024,
        description="Memory jobs running at once (different users in parallel; one user's jobs in order).",
    )
    llm_timeout_seconds: float = Field(default=60.0, gt=0, description="Per-call LLM timeout.")
    llm_max_attempts: int = Field(default=4, ge=1, le=20, description="Tries of one LLM call on 429/5xx/timeouts.")
    llm_retry_base_delay: float = Field(default=0.5, ge=0, description="First back-off delay; doubles, with jitter.")
    agent_max_steps: int = Field(default=3, ge=1, le=10, description="LLM turns a memory agent may take.")
    job_max_attempts: int = Field(default=3, ge=1, le=20, description="Tries of a job on transient LLM errors.")
    job_retry_backoff_seconds: float = Field(default=2.0, ge=0)
    add_sync_timeout_seconds: float = Field(default=300.0, gt=0)

    queue: str = Field(
        default="memory",
        pattern="^(memory|kafka)$",
        description="Job queue: 'memory' (in-process) or 'kafka' (shared by replicas; needs the kafka extra).",
    )
    replica_id: str | None = Field(
        default=None,
        description="Name of this process in job leases; default: host, pid and a random suffix. A stable id "
        "(e.g. the pod name) lets a restarted replica resume its own jobs without waiting for their leases.",
    )
    job_lease_seconds: float = Field(
        default=60.0, gt=0, description="How long a running job belongs to its replica without a renewal."
    )
    job_lease_renew_seconds: float = Field(
        default=15.0, gt=0, description="How often a replica renews the leases of the jobs it runs."
    )
    kafka_bootstrap_servers: str = Field(default="localhost:9092", description="Comma-separated host:port list.")
    kafka_topic: str = "mirix-jobs"
    kafka_group_id: str = "mirix-workers"
    kafka_partitions: int = Field(
        default=32, ge=1, description="Partitions of the topic when this server creates it (users spread over them)."
    )
    kafka_replication_factor: int = Field(default=1, ge=1, description="Replication of the topic when created.")
    kafka_security_protocol: str = Field(default="PLAINTEXT", pattern="^(PLAINTEXT|SSL|SASL_PLAINTEXT|SASL_SSL)$")
    kafka_sasl_mechanism: str | None = Field(
        default=None, pattern="^(PLAIN|SCRAM-SHA-256|SCRAM-SHA-512)$", description="With SASL_* protocols."
    )
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: str | None = Field(default=None, description="CA bundle to verify the brokers (SSL/SASL_SSL).")
    kafka_ssl_certfile: str | None = Field(default=None, description="Client certificate for mutual TLS.")
    kafka_ssl_keyfile: str | None = None
    kafka_ssl_password: SecretStr | None = Field(default=None, description="Password of the client key file.")
    kafka_idempotent_producer: bool = Field(
        default=False, description="enable.idempotence on the producer (real Kafka; some compatible brokers lack it)."
    )
    kafka_session_timeout_ms: int = Field(
        default=10000, ge=1000, description="A consumer silent this long is dropped and its partitions reassigned."
    )
    kafka_heartbeat_interval_ms: int = Field(default=3000, ge=100)

    redis_url: str | None = Field(
        default=None,
        description="redis://host:6379/0 shares the cache and rate limits between replicas; unset: in-process.",
    )
    redis_prefix: str = Field(default="mirix:", description="Prefix of every Redis key this server writes.")
    redis_timeout_seconds: float = Field(
        default=1.0,
        gt=0,
        description="Connect and socket timeout of Redis calls; a slow Redis counts as down. Not much shorter: a "
        "busy event loop can make a healthy Redis look late.",
    )
    cache_ttl_seconds: float = Field(default=300.0, ge=0, description="Redis: users and core blocks (0 = off).")
    cache_auth_ttl_seconds: float = Field(default=60.0, ge=0, description="Redis: API-key lookups (0 = off).")
    cache_local_ttl_seconds: float = Field(
        default=30.0, ge=0, description="Without Redis: users and core blocks, in-process (0 = off)."
    )
    cache_local_auth_ttl_seconds: float = Field(
        default=0.0,
        ge=0,
        description="Without Redis: API-key lookups, in-process. Off by default: other processes (another "
        "replica, `mirix keys revoke`) cannot invalidate it, so a revoked key would work until this expires.",
    )
    rate_limit_per_second: float = Field(default=0.0, ge=0, description="Requests per second per client (0 = off).")
    rate_limit_burst: int = Field(default=0, ge=0, description="Bucket size; 0 = one second's worth (at least 1).")

    web_search: str | None = Field(
        default=None, description="Web search tool of the chat agent: 'duckduckgo' (needs the web extra) or unset."
    )

    log_level: str = "INFO"
    log_json: bool = False
    otel_enabled: bool = Field(
        default=False,
        description="OpenTelemetry traces of requests, httpx calls and LLM calls (needs the otel extra); "
        "the exporter is configured by the standard OTEL_* variables.",
    )

    @field_validator("data_dir")
    @classmethod
    def _expand(cls, value: Path) -> Path:
        return value.expanduser()

    @cached_property
    def is_postgres(self) -> bool:
        return self.database_url is not None

    @cached_property
    def async_database_url(self) -> str:
        """The SQLAlchemy URL with the async driver for the configured database."""
        if self.database_url is None:
            return f"sqlite+aiosqlite:///{self.data_dir / 'mirix.db'}"
        url = self.database_url
        for prefix in (
            "postgresql+asyncpg://",
            "postgresql+psycopg2://",
            "postgresql+pg8000://",
            "postgresql://",
            "postgres://",
        ):
            if url.startswith(prefix):
                return "postgresql+asyncpg://" + url[len(prefix) :]
        raise ValueError("MIRIX_PG_URI must be a postgresql:// URI")

    @cached_property
    def should_auto_migrate(self) -> bool:
        return self.auto_migrate if self.auto_migrate is not None else not self.is_postgres

    @property
    def api_key_file(self) -> Path:
        return self.data_dir / "api_key"

    @property
    def jwt_secret_file(self) -> Path:
        return self.data_dir / "jwt_secret"
