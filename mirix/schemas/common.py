"""Shared field types for request and response models."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, StringConstraints, model_validator

from mirix.timezones import as_utc

#: A timestamp on the wire: naive ones are UTC.
UtcDatetime = Annotated[datetime, AfterValidator(as_utc)]
#: Caller-chosen ids: 1–128 characters, no whitespace and no slash (ids travel in URL paths).
IdStr = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[^\s/\x00-\x1f\x7f]+$")]
Name = Annotated[str, StringConstraints(min_length=1, max_length=255)]
Email = Annotated[
    str,
    StringConstraints(max_length=320, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", to_lower=True, strip_whitespace=True),
]
Scope = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[^\s]+$")]


class RequestModel(BaseModel):
    """Request bodies reject unknown fields, so a typo is a 422 rather than silently ignored."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)

    @model_validator(mode="before")
    @classmethod
    def _no_nul_characters(cls, data: Any) -> Any:
        # PostgreSQL text and JSONB cannot hold U+0000; refuse it up front on every backend.
        if _contains_nul(data):
            raise ValueError("text must not contain NUL (\\u0000) characters")
        return data


def _contains_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_contains_nul(k) or _contains_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(_contains_nul(v) for v in value)
    return False


class ResponseModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class Message(ResponseModel):
    message: str
