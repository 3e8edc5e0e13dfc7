"""Time zones and timestamps: IANA names validated once at the edge; instants always UTC-aware."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

# MIRIX stores zones like "America/New_York (UTC-05:00)"; the part before the bracket is the name.
_DECORATED = re.compile(r"^\s*([^\s(]+)\s*\(.*\)\s*$")


def normalize_timezone(value: str) -> str:
    """Return the IANA name for ``value`` or raise ``ValueError`` if it is not a known zone."""
    match = _DECORATED.match(value)
    name = match.group(1) if match else value.strip()
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: "America" is a directory
        raise ValueError(f"unknown time zone {value!r}; use an IANA name such as 'Europe/Paris'") from None
    return name


def as_utc(value: datetime) -> datetime:
    """A timestamp without a zone is taken as UTC (what MIRIX clients send); others keep theirs."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def parse_iso(value: str) -> datetime:
    """An ISO 8601 date or datetime ("Z" allowed), zone-aware; ``ValueError`` if it is not one."""
    return as_utc(datetime.fromisoformat(value.strip().replace("Z", "+00:00")))
