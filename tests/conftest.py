"""Shared fixtures: every test that touches a database gets a fresh one of the kind CI asks for.

``IMI_TEST_DATABASE_URL`` unset -> a new SQLite file per test. Set to a PostgreSQL URL -> a new schema per
test in that database (dropped afterwards), so tests never see each other's rows.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import settings
from sqlalchemy import create_engine, text

from imi.app import create_app
from kernel.accounts import Role, create_token
from kernel.settings import Settings

PG_URL = os.environ.get("IMI_TEST_DATABASE_URL", "")
# Timing is for benchmarks, not unit tests: a busy 2-core CI machine must not fail a property test on time.
settings.register_profile("imi", deadline=None)
settings.load_profile("imi")


def _with_schema(url: str, schema: str) -> str:
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options={quote(f'-csearch_path={schema}')}"


@pytest.fixture
def database_url(tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database for one test."""
    if not PG_URL:
        yield f"sqlite:///{tmp_path / 'imi.sqlite3'}"
        return
    schema = f"t_{secrets.token_hex(6)}"
    admin = create_engine(
        PG_URL.replace("postgresql://", "postgresql+psycopg://", 1), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield _with_schema(PG_URL, schema)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def make_settings(tmp_path: Path, database_url: str) -> Callable[..., Settings]:
    def factory(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "data_dir": tmp_path / "data",
            "database_url": database_url,
            "public_url": "http://testserver",
            "log_batch_interval": 0.05,
        }
        values.update(overrides)
        return Settings(**values)

    return factory


@pytest.fixture
def app(make_settings: Callable[..., Settings]) -> Iterator[FastAPI]:
    application = create_app(make_settings())
    yield application
    application.state.engine.dispose()


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as c:
        yield c


@pytest.fixture
def token_for(app: FastAPI) -> Callable[[Role], dict[str, str]]:
    """``token_for(Role.NOTARY)`` -> Authorization header of a fresh service account."""

    def factory(role: Role, name: str = "test") -> dict[str, str]:
        return {"Authorization": f"Bearer {create_token(app.state.engine, role=role, name=name)}"}

    return factory
