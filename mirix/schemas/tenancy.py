"""Organizations, clients, API keys, users and admin accounts on the wire (MIRIX-compatible shapes)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field, field_validator

from mirix.schemas.common import Email, IdStr, Name, RequestModel, ResponseModel, Scope

ClientStatus = Literal["active", "inactive"]


class Organization(ResponseModel):
    id: str
    name: str
    created_at: datetime


class OrganizationCreateOrGet(RequestModel):
    org_id: IdStr | None = None
    name: Name | None = None


class Client(ResponseModel):
    id: str
    organization_id: str
    name: str
    status: str
    write_scope: str | None
    read_scopes: list[str]
    created_at: datetime
    updated_at: datetime
    is_deleted: bool = False


class ClientCreateOrGet(RequestModel):
    client_id: IdStr | None = None
    name: Name | None = None
    org_id: IdStr | None = None
    write_scope: Scope | None = None
    read_scopes: list[Scope] = Field(default_factory=list, max_length=100)
    status: ClientStatus = "active"


class ClientUpdate(RequestModel):
    # MIRIX sends the id in the body too; it must match the path when given.
    id: IdStr | None = None
    name: Name | None = None
    status: ClientStatus | None = None
    write_scope: Scope | None = None
    read_scopes: list[Scope] | None = Field(default=None, max_length=100)
    organization_id: IdStr | None = None


class ApiKeyCreate(RequestModel):
    name: Name | None = None
    permission: Literal["all", "restricted", "read_only"] = "all"
    user_id: IdStr | None = None


class ApiKeyInfo(ResponseModel):
    id: str
    client_id: str
    name: str | None
    status: str
    permission: str
    key_prefix: str
    created_at: datetime
    last_used_at: datetime | None


class ApiKeyCreated(ResponseModel):
    id: str
    client_id: str
    name: str | None
    api_key: str = Field(description="The key itself. It is shown only in this response.")
    status: str
    permission: str
    created_at: datetime


class ApiKeyDeleted(ResponseModel):
    message: str
    id: str


class User(ResponseModel):
    id: str
    organization_id: str
    name: str
    status: str
    timezone: str
    is_admin: bool
    created_at: datetime
    updated_at: datetime
    is_deleted: bool = False


class UserCreateOrGet(RequestModel):
    user_id: IdStr | None = None
    name: Name | None = None
    # Accepted for compatibility with MIRIX clients; users always join the caller's organization.
    org_id: IdStr | None = None
    timezone: str | None = Field(default=None, max_length=64)

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str | None) -> str | None:
        from mirix.timezones import normalize_timezone

        return None if value is None else normalize_timezone(value)


class DashboardClient(ResponseModel):
    id: str
    name: str
    email: str
    write_scope: str | None
    read_scopes: list[str]
    status: str
    admin_user_id: str
    created_at: datetime
    last_login: datetime | None


class AdminRegister(RequestModel):
    name: Name
    email: Email
    password: str = Field(min_length=8, max_length=256)


class AdminLogin(RequestModel):
    email: Email
    password: str = Field(min_length=1, max_length=256)


class ChangePassword(RequestModel):
    current_password: str = Field(min_length=1, max_length=256)
    new_password: str = Field(min_length=8, max_length=256)


class TokenResponse(ResponseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - a token kind, not a secret
    expires_in: int
    client: DashboardClient


class SetupStatus(ResponseModel):
    setup_required: bool
    message: str
