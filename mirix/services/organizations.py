"""Organizations. Callers see only their own; new organizations are made by an operator (CLI)."""

from __future__ import annotations

from sqlalchemy import select

from mirix.db.base import new_id
from mirix.db.models import Organization
from mirix.errors import NotFoundError, PermissionDeniedError
from mirix.services.actor import Actor
from mirix.services.base import Manager


class OrganizationManager(Manager):
    async def get(self, actor: Actor, org_id: str) -> Organization:
        if org_id != actor.organization_id:
            raise NotFoundError(f"Organization with id {org_id} not found")
        async with self._sessions() as session:
            org = await session.get(Organization, org_id)
        if org is None or org.is_deleted:
            raise NotFoundError(f"Organization with id {org_id} not found")
        return org

    async def list(self, actor: Actor) -> list[Organization]:
        return [await self.get(actor, actor.organization_id)]

    async def create_or_get(self, actor: Actor, org_id: str | None) -> Organization:
        if org_id is None or org_id == actor.organization_id:
            return await self.get(actor, actor.organization_id)
        raise PermissionDeniedError(
            "Organizations are created by an operator (`mirix keys create --org NAME ...`); "
            "a caller can only use its own organization"
        )

    async def get_or_create_by_name(self, name: str) -> Organization:
        """Operator path (CLI): find an organization by name or create it."""
        async with self._sessions.begin() as session:
            org = await session.scalar(
                select(Organization).where(Organization.name == name, Organization.deleted_at.is_(None))
            )
            if org is None:
                org = Organization(id=new_id("org"), name=name)
                session.add(org)
        return org
