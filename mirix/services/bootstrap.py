"""First start on an empty database: a default organization, client, user and one API key,
so the CLI and SDK work on this machine with no further setup."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from mirix.db.models import Client, Organization
from mirix.services.actor import default_user_id
from mirix.services.clients import ClientManager
from mirix.services.users import UserManager

log = logging.getLogger(__name__)

DEFAULT_ORG_ID = "org-default"
DEFAULT_CLIENT_ID = "client-default"
DEFAULT_SCOPE = "default"


async def bootstrap_if_empty(sessions, clients: ClientManager, key_file: Path) -> str | None:
    """Create the defaults when no organization exists yet. Returns the new API key, or None.

    Fixed ids make this safe when several replicas start at once: only one insert wins.
    """
    async with sessions() as session:
        if await session.scalar(select(func.count()).select_from(Organization)):
            return None
    try:
        async with sessions.begin() as session:
            session.add(Organization(id=DEFAULT_ORG_ID, name="default_org"))
            await session.flush()
            session.add(
                Client(
                    id=DEFAULT_CLIENT_ID,
                    organization_id=DEFAULT_ORG_ID,
                    name="default_client",
                    write_scope=DEFAULT_SCOPE,
                    read_scopes=[DEFAULT_SCOPE],
                )
            )
            await session.flush()
            await UserManager.ensure(session, DEFAULT_ORG_ID, default_user_id(DEFAULT_CLIENT_ID), "default_user")
    except IntegrityError:
        log.info("another process created the default organization first")
        return None
    _, key = await clients.issue_api_key(DEFAULT_ORG_ID, DEFAULT_CLIENT_ID)
    write_secret_file(key_file, key)
    return key


def write_secret_file(path: Path, value: str) -> None:
    """Write ``value`` to ``path`` readable by the owner only (created 0600, never world-readable)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(value + "\n")
    os.chmod(path, 0o600)
