"""Shared field types for request and response models."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, StringConstraints

#: Caller-chosen ids: 1–128 characters, no whitespace and no slash (ids travel in URL paths).
IdStr = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[^\s/]+$")]
Name = Annotated[str, StringConstraints(min_length=1, max_length=255)]
Email = Annotated[
    str,
    StringConstraints(max_length=320, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", to_lower=True, strip_whitespace=True),
]
Scope = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[^\s]+$")]


class RequestModel(BaseModel):
    """Request bodies reject unknown fields, so a typo is a 422 rather than silently ignored."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


class ResponseModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class Message(ResponseModel):
    message: str
