"""API keys, password hashes and admin tokens."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt

API_KEY_PREFIX = "mirix_"
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}


def generate_api_key() -> str:
    """A new API key: 32 random bytes, URL-safe, with a recognisable prefix."""
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


def hash_api_key(key: str) -> str:
    # A plain digest is enough here: keys carry 256 random bits, so there is nothing to brute-force,
    # and a deterministic digest lets the lookup use a unique index.
    return hashlib.sha256(key.encode()).hexdigest()


def looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, dklen=32)


def _hash_password_sync(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = _scrypt(password, salt, **_SCRYPT)
    b64 = base64.b64encode
    return f"scrypt${_SCRYPT['n']}${_SCRYPT['r']}${_SCRYPT['p']}${b64(salt).decode()}${b64(digest).decode()}"


def _verify_password_sync(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    actual = _scrypt(password, base64.b64decode(salt), int(n), int(r), int(p))
    return hmac.compare_digest(actual, base64.b64decode(digest))


async def hash_password(password: str) -> str:
    """scrypt costs ~50 ms of CPU on purpose; it runs in the default thread pool, off the event loop."""
    return await asyncio.get_running_loop().run_in_executor(None, _hash_password_sync, password)


async def verify_password(password: str, stored: str) -> bool:
    return await asyncio.get_running_loop().run_in_executor(None, _verify_password_sync, password, stored)


def encode_token(secret: str, claims: dict[str, Any], hours: int) -> str:
    now = datetime.now(UTC)
    payload = {**claims, "iat": now, "exp": now + timedelta(hours=hours)}
    return jwt.encode(payload, secret, algorithm="HS256")


def decode_token(secret: str, token: str) -> dict[str, Any] | None:
    try:
        return jwt.decode(token, secret, algorithms=["HS256"], options={"require": ["exp", "sub"]})
    except jwt.PyJWTError:
        return None
