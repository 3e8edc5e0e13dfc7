"""Settings come from MIRIX_* variables; importing the package has no side effects."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mirix.settings import Settings


def test_sqlite_is_the_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("MIRIX_PG_URI", raising=False)
    monkeypatch.delenv("MIRIX_DATABASE_URL", raising=False)
    monkeypatch.setenv("MIRIX_DATA_DIR", str(tmp_path))
    settings = Settings(_env_file=None)
    assert settings.async_database_url == f"sqlite+aiosqlite:///{tmp_path}/mirix.db"
    assert settings.should_auto_migrate and not settings.is_postgres
    assert settings.port == 8531


@pytest.mark.parametrize("variable", ["MIRIX_PG_URI", "MIRIX_DATABASE_URL"])
@pytest.mark.parametrize(
    "uri", ["postgresql://u:p@db:5432/mirix", "postgres://u:p@db:5432/mirix", "postgresql+pg8000://u:p@db:5432/mirix"]
)
def test_postgres_uri_gets_the_async_driver(monkeypatch: pytest.MonkeyPatch, variable: str, uri: str):
    monkeypatch.delenv("MIRIX_PG_URI", raising=False)
    monkeypatch.setenv(variable, uri)
    settings = Settings(_env_file=None)
    assert settings.async_database_url == "postgresql+asyncpg://u:p@db:5432/mirix"
    assert settings.is_postgres and not settings.should_auto_migrate


def test_non_postgres_uri_is_rejected(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("MIRIX_PG_URI", "mysql://u@h/db")
    with pytest.raises(ValueError, match="postgresql"):
        _ = Settings(_env_file=None).async_database_url


def test_short_jwt_secret_is_rejected(tmp_path: Path):
    from mirix.server.server import AsyncServer

    with pytest.raises(ValueError, match="32 characters"):
        AsyncServer(Settings(_env_file=None, data_dir=tmp_path, jwt_secret_key="short"))


def test_import_opens_nothing(tmp_path: Path):
    data_dir = tmp_path / "never-created"
    code = (
        "import mirix, mirix.api, mirix.cli, mirix.server, mirix.db.models, mirix.api.app;"
        "from mirix.api.app import create_app; create_app()"
    )
    env = {
        "MIRIX_DATA_DIR": str(data_dir),
        "MIRIX_PG_URI": "postgresql://nobody@127.0.0.1:1/none",
        "PATH": "/usr/bin:/bin",
    }
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert not data_dir.exists()
