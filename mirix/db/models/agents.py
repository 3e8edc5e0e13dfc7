"""Agents, tools, core-memory blocks, chat messages and LLM call records (steps)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Column, ForeignKey, Index, Integer, String, Table, Text
from sqlalchemy.orm import Mapped, mapped_column

from mirix.db.base import ID, Base, SoftDeleteMixin, TimestampMixin
from mirix.db.models.tenancy import user_fk
from mirix.db.types import JSONType


class Agent(TimestampMixin, SoftDeleteMixin, Base):
    """An agent belongs to the client that created it; other clients never see it."""

    __tablename__ = "agents"
    __table_args__ = (Index(None, "organization_id", "client_id"), Index(None, "parent_id"))

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"))
    client_id: Mapped[str] = mapped_column(ForeignKey("clients.id"))
    parent_id: Mapped[str | None] = mapped_column(ForeignKey("agents.id"))
    name: Mapped[str] = mapped_column(String(255))
    agent_type: Mapped[str] = mapped_column(String(64))
    system: Mapped[str] = mapped_column(Text, default="")
    description: Mapped[str | None] = mapped_column(Text)
    llm_config: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    embedding_config: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    tool_rules: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONType)
    metadata_: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSONType)
    tags: Mapped[list[str]] = mapped_column(JSONType, default=list)


class Tool(TimestampMixin, SoftDeleteMixin, Base):
    """A tool an agent may call. Tool source code is stored for reference and never executed."""

    __tablename__ = "tools"
    __table_args__ = (Index(None, "organization_id", "name"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"))
    created_by_id: Mapped[str | None] = mapped_column(ForeignKey("clients.id"))
    name: Mapped[str] = mapped_column(String(255))
    tool_type: Mapped[str] = mapped_column(String(64), default="custom")
    description: Mapped[str | None] = mapped_column(Text)
    tags: Mapped[list[str]] = mapped_column(JSONType, default=list)
    source_type: Mapped[str | None] = mapped_column(String(64))
    source_code: Mapped[str | None] = mapped_column(Text)
    json_schema: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    return_char_limit: Mapped[int] = mapped_column(Integer, default=6000)


agent_tools = Table(
    "agent_tools",
    Base.metadata,
    Column("agent_id", ForeignKey("agents.id", ondelete="CASCADE"), primary_key=True),
    Column("tool_id", ForeignKey("tools.id", ondelete="CASCADE"), primary_key=True),
)


class Block(TimestampMixin, SoftDeleteMixin, Base):
    """A core-memory block (``human``, ``persona``, …) of one user in one scope.

    Template blocks have no user; they are copied to a user the first time that user needs them.
    """

    __tablename__ = "blocks"
    __table_args__ = (
        user_fk("organization_id", "user_id"),
        Index(None, "organization_id", "user_id", "scope", "label"),
    )

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"))
    user_id: Mapped[str | None] = mapped_column(ID)
    scope: Mapped[str] = mapped_column(String(128), default="default")
    label: Mapped[str] = mapped_column(String(255))
    value: Mapped[str] = mapped_column(Text, default="")
    limit: Mapped[int] = mapped_column(Integer, default=5000)
    filter_tags: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    created_by_id: Mapped[str | None] = mapped_column(ForeignKey("clients.id"))
    last_updated_by_id: Mapped[str | None] = mapped_column(ForeignKey("clients.id"))


class Message(TimestampMixin, SoftDeleteMixin, Base):
    __tablename__ = "messages"
    __table_args__ = (
        user_fk("organization_id", "user_id"),
        Index(None, "agent_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"))
    user_id: Mapped[str | None] = mapped_column(ID)
    client_id: Mapped[str | None] = mapped_column(ForeignKey("clients.id"))
    agent_id: Mapped[str | None] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(16))
    content: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONType)
    name: Mapped[str | None] = mapped_column(String(255))
    tool_calls: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONType)
    tool_call_id: Mapped[str | None] = mapped_column(String(255))
    step_id: Mapped[str | None] = mapped_column(ID)
    filter_tags: Mapped[dict[str, Any] | None] = mapped_column(JSONType)


class Step(TimestampMixin, Base):
    """One LLM call: who made it, with which model, how long it took and what it cost."""

    __tablename__ = "steps"
    __table_args__ = (Index(None, "job_id"), Index(None, "organization_id", "created_at"))

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"))
    job_id: Mapped[str | None] = mapped_column(ID)
    agent_id: Mapped[str | None] = mapped_column(ID)
    provider: Mapped[str] = mapped_column(String(64))
    model: Mapped[str] = mapped_column(String(255))
    latency_ms: Mapped[int] = mapped_column(Integer, default=0)
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)
    completion_tokens: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
