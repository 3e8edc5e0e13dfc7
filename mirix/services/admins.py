"""Admin accounts: people who manage an organization's clients, keys and users with a token."""

from __future__ import annotations

from sqlalchemy import func, select

from mirix.db.base import new_id
from mirix.db.models import AdminAccount, Client, Organization
from mirix.db.types import utcnow
from mirix.errors import AuthenticationError, BadRequestError, ConflictError, PermissionDeniedError
from mirix.services.actor import Actor, default_user_id
from mirix.services.base import Manager
from mirix.services.clients import actor_for
from mirix.services.security import decode_token, encode_token, hash_password, verify_password
from mirix.services.users import UserManager

ADMIN_SCOPE = "admin"


class AdminManager(Manager):
    def __init__(self, sessions, *, secret: str, token_hours: int) -> None:
        super().__init__(sessions)
        self._secret = secret
        self.token_hours = token_hours

    async def count(self) -> int:
        async with self._sessions() as session:
            return (
                await session.scalar(
                    select(func.count()).select_from(AdminAccount).where(AdminAccount.deleted_at.is_(None))
                )
                or 0
            )

    async def setup_first_admin(self, name: str, email: str, password: str) -> tuple[AdminAccount, Client]:
        """The one-time setup: allowed only while no admin account exists."""
        if await self.count() > 0:
            raise PermissionDeniedError(
                "Setup is complete: an admin already exists. Ask an admin, or use `mirix admin create`."
            )
        async with self._sessions() as session:
            org = await session.scalar(
                select(Organization).where(Organization.deleted_at.is_(None)).order_by(Organization.created_at)
            )
        org_id = org.id if org else None
        return await self.create(org_id, name, email, password)

    async def create(self, org_id: str | None, name: str, email: str, password: str) -> tuple[AdminAccount, Client]:
        """Create an admin (operator path). Without an org, a new organization is made for it."""
        email = email.strip().lower()
        password_hash = await hash_password(password)
        async with self._sessions.begin() as session:
            taken = await session.scalar(
                select(AdminAccount.id).where(AdminAccount.email == email, AdminAccount.deleted_at.is_(None))
            )
            if taken:
                raise ConflictError("An admin with this email already exists")
            if org_id is None:
                org_id = new_id("org")
                session.add(Organization(id=org_id, name=f"{name}'s organization"))
                await session.flush()
            client = Client(
                id=new_id("client"),
                organization_id=org_id,
                name=f"dashboard: {email}",
                write_scope=ADMIN_SCOPE,
                read_scopes=[ADMIN_SCOPE],
            )
            session.add(client)
            await session.flush()
            await UserManager.ensure(session, org_id, default_user_id(client.id), name)
            admin = AdminAccount(
                id=new_id("admin"),
                organization_id=org_id,
                client_id=client.id,
                email=email,
                name=name,
                password_hash=password_hash,
            )
            session.add(admin)
        return admin, client

    async def login(self, email: str, password: str) -> tuple[AdminAccount, Client, str]:
        email = email.strip().lower()
        async with self._sessions() as session:
            row = (
                await session.execute(
                    select(AdminAccount, Client)
                    .join(Client, Client.id == AdminAccount.client_id)
                    .where(AdminAccount.email == email, AdminAccount.deleted_at.is_(None))
                )
            ).first()
        # One message for unknown email and wrong password, so logins cannot probe for accounts.
        failure = AuthenticationError("Invalid email or password")
        if row is None:
            await hash_password(password)  # same cost as a real check: no timing oracle either
            raise failure
        admin, client = row
        if not await verify_password(password, admin.password_hash):
            raise failure
        if client.is_deleted or client.status != "active":
            raise failure
        async with self._sessions.begin() as session:
            stored = await session.get(AdminAccount, admin.id)
            stored.last_login = utcnow()
            admin = stored
        return admin, client, self.issue_token(admin, client)

    def issue_token(self, admin: AdminAccount, client: Client) -> str:
        claims = {
            "sub": client.id,
            "adm": admin.id,
            "org": admin.organization_id,
            "name": admin.name,
            "email": admin.email,
            "write_scope": client.write_scope,
            "read_scopes": client.read_scopes,
            "admin_user_id": default_user_id(client.id),
        }
        return encode_token(self._secret, claims, self.token_hours)

    async def authenticate(self, token: str) -> Actor | None:
        """Actor for a valid admin token, or None. The account is re-read so deletion is immediate."""
        claims = decode_token(self._secret, token)
        if claims is None or "adm" not in claims:
            return None
        async with self._sessions() as session:
            row = (
                await session.execute(
                    select(AdminAccount, Client)
                    .join(Client, Client.id == AdminAccount.client_id)
                    .where(AdminAccount.id == claims["adm"], AdminAccount.deleted_at.is_(None))
                )
            ).first()
        if row is None:
            return None
        admin, client = row
        if client.is_deleted or client.status != "active":
            return None
        return actor_for(client, admin_id=admin.id)

    async def me(self, actor: Actor) -> tuple[AdminAccount, Client]:
        actor.require_admin()
        async with self._sessions() as session:
            admin = await session.get(AdminAccount, actor.admin_id)
            client = await session.get(Client, actor.client_id)
        return admin, client

    async def list_dashboard_clients(self, actor: Actor) -> list[tuple[AdminAccount, Client]]:
        actor.require_admin()
        async with self._sessions() as session:
            rows = await session.execute(
                select(AdminAccount, Client)
                .join(Client, Client.id == AdminAccount.client_id)
                .where(AdminAccount.organization_id == actor.organization_id, AdminAccount.deleted_at.is_(None))
                .order_by(AdminAccount.created_at)
            )
            return [tuple(row) for row in rows]

    async def change_password(self, actor: Actor, current: str, new: str) -> None:
        actor.require_admin()
        async with self._sessions() as session:
            admin = await session.get(AdminAccount, actor.admin_id)
        if admin is None or not await verify_password(current, admin.password_hash):
            raise BadRequestError("Invalid current password")
        new_hash = await hash_password(new)
        async with self._sessions.begin() as session:
            stored = await session.get(AdminAccount, actor.admin_id)
            stored.password_hash = new_hash
