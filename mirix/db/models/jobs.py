"""Background jobs: the durable record of every memory write request."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from mirix.db.base import ID, Base, TimestampMixin
from mirix.db.models.tenancy import user_fk
from mirix.db.types import JSONType, UTCDateTime


class Job(TimestampMixin, Base):
    __tablename__ = "jobs"
    __table_args__ = (
        user_fk("organization_id", "user_id"),
        Index(None, "status", "created_at"),
        Index(None, "organization_id", "user_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"))
    client_id: Mapped[str] = mapped_column(ForeignKey("clients.id"))
    user_id: Mapped[str] = mapped_column(ID)
    agent_id: Mapped[str | None] = mapped_column(ID)
    kind: Mapped[str] = mapped_column(String(32), default="memory_add")
    status: Mapped[str] = mapped_column(String(16), default="queued")
    scope: Mapped[str | None] = mapped_column(String(128))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    occurred_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    llm_calls: Mapped[int] = mapped_column(Integer, default=0)
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)
    completion_tokens: Mapped[int] = mapped_column(Integer, default=0)
    written_ids: Mapped[list[str]] = mapped_column(JSONType, default=list)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The lease of a running job: the replica working on it and until when. A running job whose
    # lease expired belongs to a replica that died (or hung) and may be claimed by another one.
    locked_by: Mapped[str | None] = mapped_column(String(128))
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
