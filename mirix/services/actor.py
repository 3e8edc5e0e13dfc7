"""Who is calling: the authenticated identity every service call is confined by."""

from __future__ import annotations

from dataclasses import dataclass

from mirix.errors import PermissionDeniedError


@dataclass(frozen=True, slots=True)
class Actor:
    organization_id: str
    client_id: str
    write_scope: str | None
    read_scopes: tuple[str, ...]
    #: Set when an admin token (not a client key) authenticated the call.
    admin_id: str | None = None

    @property
    def is_admin(self) -> bool:
        return self.admin_id is not None

    @property
    def default_user_id(self) -> str:
        """The user a request acts for when it names none (MIRIX's "client admin user")."""
        return default_user_id(self.client_id)

    def require_admin(self) -> None:
        if not self.is_admin:
            raise PermissionDeniedError("This endpoint needs an admin token (POST /admin/auth/login)")

    def require_write_scope(self) -> str:
        if self.write_scope is None:
            raise PermissionDeniedError("Client has no write_scope - it is read-only")
        return self.write_scope

    def can_read(self, scope: str | None) -> bool:
        return scope is not None and scope in self.read_scopes


def default_user_id(client_id: str) -> str:
    return "user-" + client_id.removeprefix("client-")
