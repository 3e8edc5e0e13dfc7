"""Malformed requests get a clear 4xx on every endpoint; a 500 is always a bug.

The sweep walks the app's OpenAPI route table, so a new endpoint is covered without editing this file.
"""

from __future__ import annotations

import re

import httpx
import pytest

from mirix.api.app import create_app

LONG_ID = "x" * 300
ODD_IDS = [LONG_ID, "has space", "%00", "unknown-id", "a\u202eb", "'; DROP TABLE users; --"]
BAD_BODIES = [
    ("not json", b"{not json"),
    ("array", b"[1, 2, 3]"),
    ("scalar", b"42"),
    ("unknown field", b'{"definitely_not_a_field": 1}'),
    ("wrong types", b'{"name": 5, "user_id": [], "label": {}, "email": 1, "password": 2, "system_prompt": null}'),
    ("NUL in text", b'{"name": "a\\u0000b", "label": "\\u0000", "user_id": "u", "system_prompt": "\\u0000"}'),
    ("NUL in nested JSON", b'{"metadata": {"k\\u0000": "v"}, "json_schema": {"a": ["\\u0000"]}}'),
    ("huge string", b'{"name": "' + b"n" * 100_000 + b'"}'),
]
BAD_QUERIES = [
    "cursor=%00",
    "label=a%00b",
    "limit=abc",
    "limit=-5",
    "limit=99999999",
    "cursor=" + "c" * 5000,
    "fail_if_exists=maybe",
]


def _routes():
    # The OpenAPI document is the public route table, whatever the router nesting inside FastAPI.
    for path, operations in create_app().openapi()["paths"].items():
        for method, operation in operations.items():
            yield method.upper(), path, "requestBody" in operation


ROUTES = list(_routes())


def _materialise(path: str, value: str) -> str:
    return re.sub(r"\{[^}]+\}", lambda _: httpx.URL("/" + value).raw_path.decode()[1:] or "x", path)


@pytest.fixture
async def callers(http, tenant, admin_headers):
    return {"key": tenant.headers, "admin": admin_headers}


@pytest.mark.parametrize(("method", "path", "has_body"), ROUTES, ids=[f"{m} {p}" for m, p, _ in ROUTES])
async def test_route_rejects_bad_input(http: httpx.AsyncClient, callers, method, path, has_body):
    for who, headers in callers.items():
        for odd in ODD_IDS if "{" in path else ["-"]:
            url = _materialise(path, odd)
            for _name, raw in BAD_BODIES if method in ("POST", "PATCH", "PUT") else [("none", None)]:
                response = await http.request(
                    method, url, content=raw, headers={**headers, "Content-Type": "application/json"}
                )
                assert response.status_code < 500, (who, method, url, _name, response.text)
                if has_body and raw is not None and 200 <= response.status_code < 300:
                    pytest.fail(f"{who} {method} {url} accepted a malformed body {_name!r}: {response.text}")
                assert "detail" in response.json() or response.status_code < 300
            for query in BAD_QUERIES:
                response = await http.request(method, f"{url}?{query}", headers=headers)
                assert response.status_code < 500, (who, method, url, query, response.text)


async def test_malformed_json_is_422_with_a_message(http: httpx.AsyncClient, tenant):
    response = await http.post(
        "/users/create_or_get", content=b"{oops", headers={**tenant.headers, "Content-Type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["detail"]


async def test_unknown_timezone_is_422(http: httpx.AsyncClient, tenant):
    for zone in ("Mars/Olympus", "America", "../../etc/passwd", "x" * 60):
        response = await http.post(
            "/users/create_or_get", json={"user_id": "u", "timezone": zone}, headers=tenant.headers
        )
        assert response.status_code == 422, zone
        assert "time zone" in response.text


async def test_unexpected_errors_keep_the_request_id(server, tenant):
    import httpx

    from mirix.api.app import create_app

    app = create_app(server=server)

    @app.get("/boom-for-test")
    async def boom():
        raise RuntimeError("bug")

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.get("/boom-for-test", headers={"X-Request-ID": "req-123"})
    assert response.status_code == 500
    assert response.json() == {"detail": "Internal server error", "request_id": "req-123"}
    assert response.headers["x-request-id"] == "req-123"


async def test_exhausted_connection_pool_is_503(server):
    import httpx
    from sqlalchemy.exc import TimeoutError as PoolTimeoutError

    from mirix.api.app import create_app

    app = create_app(server=server)

    @app.get("/busy-for-test")
    async def busy():
        raise PoolTimeoutError("QueuePool limit reached")

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.get("/busy-for-test")
    assert response.status_code == 503 and response.headers["retry-after"] == "1"
