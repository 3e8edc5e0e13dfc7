"""Tenancy, agents, tools, blocks, messages, steps and jobs.

Revision ID: 0001
Revises:
Create Date: 2026-12-04 22:17:05.361455
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import mirix.db.types

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "organizations",
        sa.Column("id", sa.String(length=128), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("created_at", mirix.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", mirix.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", mirix.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_organizations")),
    )
    op.create_table(
        "clients",
        sa.Column("id", sa.String(length=128), nullable=False),
        sa.Column("organization_id", sa.String(length=128), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("write_scope", sa.String(length=128), nullable=True),
        sa.Column("read_scopes", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("created_at", mirix.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", mirix.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", mirix.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["organization_id"], ["organizations.id"], name=op.f("fk_clients_organization_id_organizations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_clients")),
    )
    with op.batch_alter_table("clients", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_clients_organization_id"), ["organization_id"], unique=False)

    op.create_table(
        "steps",
        sa.Column("id", sa.String(length=128), nullable=False),
        sa.Column("organization_id", sa.String(length=128), nullable=False),
        sa.Column("job_id", sa.String(length=128), nullable=True),
        sa.Column("agent_id", sa.String(length=128), nullable=True),
        sa.Column("provider", sa.String(length=64), nullable=False),
        sa.Column("model", sa.String(length=255), nullable=False),
        sa.Column("latency_ms", sa.Integer(), nullable=False),
        sa.Column("prompt_tokens", sa.Integer(), nullable=False),
        sa.Column("completion_tokens", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", mirix.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", mirix.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"], ["organizations.id"], name=op.f("fk_steps_organization_id_organizations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_steps")),
    )
    with op.batch_alter_table("steps", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_steps_job_id"), ["job_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_steps_organization_id_created_at"), ["organization_id", "created_at"], unique=False
        )

    op.create_table(
        "users",
        sa.Column("organization_id", sa.String(length=128), nullable=False),
        sa.Column("id", sa.String(length=128), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("is_admin", sa.Boolean(), nullable=False),
        sa.Column("created_at", mirix.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", mirix.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", mirix.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["organization_id"], ["organizations.id"], name=op.f("fk_users_organization_id_organizations")
        ),
        sa.PrimaryKeyConstraint("organization_id", "id", name=op.f("pk_users")),
    )
    op.create_table(
        "admin_accounts",
        sa.Column("id", sa.String(length=128), nullable=False),
        sa.Column("organization_id", sa.String(length=128), nullable=False),
        sa.Column("client_id", sa.String(length=128), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("last_login", mirix.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", mirix.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", mirix.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", mirix.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["client_id"], ["clients.id"], name=op.f("fk_admin_accounts_client_id_clients")),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_admin_accounts_organization_id_organizations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_admin_accounts")),
    )
    with op.batch_alter_table("admin_accounts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_admin_accounts_email"), ["email"], unique=True)

    op.create_table(
        "agents",
        sa.Column("id", sa.String(length=128), nullable=False),
        sa.Column("organization_id", sa.String(length=128), nullable=False),
        sa.Column("client_id", sa.String(length=128), nullable=False),
        sa.Column("parent_id", sa.String(length=128), nullable=True),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("agent_type", sa.String(length=64), nullable=False),
        sa.Column("system", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("llm_config", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=True),
        sa.Column("embedding_config", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=True),
        sa.Column("tool_rules", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=True),
        sa.Column("metadata", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=True),
        sa.Column("tags", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("created_at", mirix.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", mirix.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", mirix.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["client_id"], ["clients.id"], name=op.f("fk_agents_client_id_clients")),
        sa.ForeignKeyConstraint(
            ["organization_id"], ["organizations.id"], name=op.f("fk_agents_organization_id_organizations")
        ),
        sa.ForeignKeyConstraint(["parent_id"], ["agents.id"], name=op.f("fk_agents_parent_id_agents")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agents")),
    )
    with op.batch_alter_table("agents", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_agents_organization_id_client_id"), ["organization_id", "client_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_agents_parent_id"), ["parent_id"], unique=False)

    op.create_table(
        "blocks",
        sa.Column("id", sa.String(length=128), nullable=False),
        sa.Column("organization_id", sa.String(length=128), nullable=False),
        sa.Column("user_id", sa.String(length=128), nullable=True),
        sa.Column("scope", sa.String(length=128), nullable=False),
        sa.Column("label", sa.String(length=255), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("limit", sa.Integer(), nullable=False),
        sa.Column("filter_tags", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("created_by_id", sa.String(length=128), nullable=True),
        sa.Column("last_updated_by_id", sa.String(length=128), nullable=True),
        sa.Column("created_at", mirix.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", mirix.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", mirix.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["created_by_id"], ["clients.id"], name=op.f("fk_blocks_created_by_id_clients")),
        sa.ForeignKeyConstraint(
            ["last_updated_by_id"], ["clients.id"], name=op.f("fk_blocks_last_updated_by_id_clients")
        ),
        sa.ForeignKeyConstraint(
            ["organization_id", "user_id"],
            ["users.organization_id", "users.id"],
            name=op.f("fk_blocks_organization_id_user_id_users"),
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"], ["organizations.id"], name=op.f("fk_blocks_organization_id_organizations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_blocks")),
    )
    with op.batch_alter_table("blocks", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_blocks_organization_id_user_id_scope_label"),
            ["organization_id", "user_id", "scope", "label"],
            unique=False,
        )

    op.create_table(
        "client_api_keys",
        sa.Column("id", sa.String(length=128), nullable=False),
        sa.Column("client_id", sa.String(length=128), nullable=False),
        sa.Column("organization_id", sa.String(length=128), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=True),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("key_prefix", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("permission", sa.String(length=16), nullable=False),
        sa.Column("user_id", sa.String(length=128), nullable=True),
        sa.Column("last_used_at", mirix.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", mirix.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", mirix.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", mirix.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["client_id"], ["clients.id"], name=op.f("fk_client_api_keys_client_id_clients")),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_client_api_keys_organization_id_organizations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_client_api_keys")),
    )
    with op.batch_alter_table("client_api_keys", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_client_api_keys_client_id"), ["client_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_client_api_keys_key_hash"), ["key_hash"], unique=True)

    op.create_table(
        "jobs",
        sa.Column("id", sa.String(length=128), nullable=False),
        sa.Column("organization_id", sa.String(length=128), nullable=False),
        sa.Column("client_id", sa.String(length=128), nullable=False),
        sa.Column("user_id", sa.String(length=128), nullable=False),
        sa.Column("agent_id", sa.String(length=128), nullable=True),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("scope", sa.String(length=128), nullable=True),
        sa.Column("payload", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("occurred_at", mirix.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("llm_calls", sa.Integer(), nullable=False),
        sa.Column("prompt_tokens", sa.Integer(), nullable=False),
        sa.Column("completion_tokens", sa.Integer(), nullable=False),
        sa.Column("written_ids", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("started_at", mirix.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("finished_at", mirix.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", mirix.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", mirix.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["client_id"], ["clients.id"], name=op.f("fk_jobs_client_id_clients")),
        sa.ForeignKeyConstraint(
            ["organization_id", "user_id"],
            ["users.organization_id", "users.id"],
            name=op.f("fk_jobs_organization_id_user_id_users"),
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"], ["organizations.id"], name=op.f("fk_jobs_organization_id_organizations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jobs")),
    )
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_jobs_organization_id_user_id_created_at"),
            ["organization_id", "user_id", "created_at"],
            unique=False,
        )
        batch_op.create_index(batch_op.f("ix_jobs_status_created_at"), ["status", "created_at"], unique=False)

    op.create_table(
        "tools",
        sa.Column("id", sa.String(length=128), nullable=False),
        sa.Column("organization_id", sa.String(length=128), nullable=False),
        sa.Column("created_by_id", sa.String(length=128), nullable=True),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("tool_type", sa.String(length=64), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("tags", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("source_type", sa.String(length=64), nullable=True),
        sa.Column("source_code", sa.Text(), nullable=True),
        sa.Column("json_schema", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=True),
        sa.Column("return_char_limit", sa.Integer(), nullable=False),
        sa.Column("created_at", mirix.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", mirix.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", mirix.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["created_by_id"], ["clients.id"], name=op.f("fk_tools_created_by_id_clients")),
        sa.ForeignKeyConstraint(
            ["organization_id"], ["organizations.id"], name=op.f("fk_tools_organization_id_organizations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tools")),
    )
    with op.batch_alter_table("tools", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_tools_organization_id_name"), ["organization_id", "name"], unique=False)

    op.create_table(
        "agent_tools",
        sa.Column("agent_id", sa.String(length=128), nullable=False),
        sa.Column("tool_id", sa.String(length=128), nullable=False),
        sa.ForeignKeyConstraint(
            ["agent_id"], ["agents.id"], name=op.f("fk_agent_tools_agent_id_agents"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["tool_id"], ["tools.id"], name=op.f("fk_agent_tools_tool_id_tools"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("agent_id", "tool_id", name=op.f("pk_agent_tools")),
    )
    op.create_table(
        "messages",
        sa.Column("id", sa.String(length=128), nullable=False),
        sa.Column("organization_id", sa.String(length=128), nullable=False),
        sa.Column("user_id", sa.String(length=128), nullable=True),
        sa.Column("client_id", sa.String(length=128), nullable=True),
        sa.Column("agent_id", sa.String(length=128), nullable=True),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("content", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=True),
        sa.Column("name", sa.String(length=255), nullable=True),
        sa.Column("tool_calls", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=True),
        sa.Column("tool_call_id", sa.String(length=255), nullable=True),
        sa.Column("step_id", sa.String(length=128), nullable=True),
        sa.Column("filter_tags", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=True),
        sa.Column("created_at", mirix.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", mirix.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", mirix.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["agent_id"], ["agents.id"], name=op.f("fk_messages_agent_id_agents"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["client_id"], ["clients.id"], name=op.f("fk_messages_client_id_clients")),
        sa.ForeignKeyConstraint(
            ["organization_id", "user_id"],
            ["users.organization_id", "users.id"],
            name=op.f("fk_messages_organization_id_user_id_users"),
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"], ["organizations.id"], name=op.f("fk_messages_organization_id_organizations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_messages")),
    )
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_messages_agent_id_created_at"), ["agent_id", "created_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_messages_agent_id_created_at"))

    op.drop_table("messages")
    op.drop_table("agent_tools")
    with op.batch_alter_table("tools", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tools_organization_id_name"))

    op.drop_table("tools")
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_jobs_status_created_at"))
        batch_op.drop_index(batch_op.f("ix_jobs_organization_id_user_id_created_at"))

    op.drop_table("jobs")
    with op.batch_alter_table("client_api_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_client_api_keys_key_hash"))
        batch_op.drop_index(batch_op.f("ix_client_api_keys_client_id"))

    op.drop_table("client_api_keys")
    with op.batch_alter_table("blocks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_blocks_organization_id_user_id_scope_label"))

    op.drop_table("blocks")
    with op.batch_alter_table("agents", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_agents_parent_id"))
        batch_op.drop_index(batch_op.f("ix_agents_organization_id_client_id"))

    op.drop_table("agents")
    with op.batch_alter_table("admin_accounts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_admin_accounts_email"))

    op.drop_table("admin_accounts")
    op.drop_table("users")
    with op.batch_alter_table("steps", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_steps_organization_id_created_at"))
        batch_op.drop_index(batch_op.f("ix_steps_job_id"))

    op.drop_table("steps")
    with op.batch_alter_table("clients", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_clients_organization_id"))

    op.drop_table("clients")
    op.drop_table("organizations")
