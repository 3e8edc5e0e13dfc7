"""Helpers shared by tests (fixtures live in conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import event

from mirix.server.server import AsyncServer
from mirix.services.actor import Actor, default_user_id
from mirix.services.clients import actor_for


@dataclass
class Tenant:
    """An organization with one client and its API key, made through the operator path."""

    org_id: str
    client_id: str
    key_id: str
    key: str
    actor: Actor

    @property
    def headers(self) -> dict[str, str]:
        return {"X-API-Key": self.key}

    @property
    def user_id(self) -> str:
        return default_user_id(self.client_id)


async def create_tenant(
    server: AsyncServer,
    org: str,
    client: str = "app",
    write_scope: str | None = "default",
    read_scopes: list[str] | None = None,
) -> Tenant:
    organization = await server.organizations.get_or_create_by_name(org)
    row = await server.clients.create(
        organization.id, client, write_scope, read_scopes if read_scopes is not None else [write_scope or "default"]
    )
    key_row, key = await server.clients.issue_api_key(organization.id, row.id)
    return Tenant(organization.id, row.id, key_row.id, key, actor_for(row))


@contextmanager
def queries(server: AsyncServer) -> Iterator[list[str]]:
    """The SQL statements the server's engine sends while the block runs."""
    seen: list[str] = []

    def record(_connection, _cursor, statement, *_args) -> None:
        seen.append(statement)

    event.listen(server.engine.sync_engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(server.engine.sync_engine, "before_cursor_execute", record)
