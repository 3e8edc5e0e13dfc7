"""Tags stored on memories (``filter_tags``): any JSON values under keys that filters can name."""

from __future__ import annotations

import json
import re
from typing import Any

from mirix.errors import UnprocessableError

_KEY = re.compile(r"[A-Za-z0-9_.:\-]{1,64}")
MAX_KEYS = 50
MAX_BYTES = 16_384


def check_stored_tags(tags: Any, name: str = "filter_tags") -> dict[str, Any]:
    """Validate tags to be stored; the reserved ``scope`` key is dropped (the server sets it)."""
    if tags is None:
        return {}
    if not isinstance(tags, dict):
        raise UnprocessableError(f"{name} must be a JSON object")
    if len(tags) > MAX_KEYS:
        raise UnprocessableError(f"{name} may have at most {MAX_KEYS} keys")
    for key in tags:
        if not isinstance(key, str) or not _KEY.fullmatch(key):
            raise UnprocessableError(
                f"{name} key {key[:70]!r} must be 1-64 letters, digits or _ . : - (so filters can name it)"
            )
    if len(json.dumps(tags)) > MAX_BYTES:
        raise UnprocessableError(f"{name} is larger than {MAX_BYTES} bytes")
    return {key: value for key, value in tags.items() if key != "scope"}
