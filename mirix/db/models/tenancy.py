"""Organizations, client applications, their API keys, end users and admin accounts."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, ForeignKeyConstraint, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from mirix.db.base import ID, Base, SoftDeleteMixin, TimestampMixin
from mirix.db.types import JSONType, UTCDateTime


class Organization(TimestampMixin, SoftDeleteMixin, Base):
    __tablename__ = "organizations"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    name: Mapped[str] = mapped_column(String(255))


class Client(TimestampMixin, SoftDeleteMixin, Base):
    """An application that talks to the server. Users of its organization are shared by all clients."""

    __tablename__ = "clients"
    __table_args__ = (Index(None, "organization_id"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"))
    name: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16), default="active")
    # The scope stamped on everything this client writes; None makes the client read-only.
    write_scope: Mapped[str | None] = mapped_column(String(128))
    read_scopes: Mapped[list[str]] = mapped_column(JSONType, default=list)


class ApiKey(TimestampMixin, Base):
    """A client's API key. Only a SHA-256 digest is kept; the key itself is shown once."""

    __tablename__ = "client_api_keys"
    __table_args__ = (Index(None, "key_hash", unique=True), Index(None, "client_id"))

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    client_id: Mapped[str] = mapped_column(ForeignKey("clients.id"))
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"))
    name: Mapped[str | None] = mapped_column(String(255))
    key_hash: Mapped[str] = mapped_column(String(64))
    # The first characters of the key, so people can tell their keys apart in listings.
    key_prefix: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="active")
    permission: Mapped[str] = mapped_column(String(16), default="all")
    user_id: Mapped[str | None] = mapped_column(ID)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class User(TimestampMixin, SoftDeleteMixin, Base):
    """An end user of the applications. Ids are unique within an organization only, so two
    organizations may both have a user called ``alice``."""

    __tablename__ = "users"

    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"), primary_key=True)
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16), default="active")
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)


class AdminAccount(TimestampMixin, SoftDeleteMixin, Base):
    """A person who manages an organization through the admin API. Each account acts through
    its own dashboard client, which is how MIRIX represents dashboard logins on the wire."""

    __tablename__ = "admin_accounts"
    __table_args__ = (Index(None, "email", unique=True),)

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    organization_id: Mapped[str] = mapped_column(ForeignKey("organizations.id"))
    client_id: Mapped[str] = mapped_column(ForeignKey("clients.id"))
    email: Mapped[str] = mapped_column(String(320))
    name: Mapped[str] = mapped_column(String(255))
    password_hash: Mapped[str] = mapped_column(String(255))
    last_login: Mapped[datetime | None] = mapped_column(UTCDateTime())


def user_fk(*local: str) -> ForeignKeyConstraint:
    """Composite foreign key to ``users``: a row can only point at a user of its own organization."""
    return ForeignKeyConstraint(list(local), ["users.organization_id", "users.id"])
