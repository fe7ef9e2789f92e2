"""Fixtures of the system tests: a fresh database shared by several real processes, and a cluster on it."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests.conftest import PG_URL, _with_schema
from tests.system.cluster import Cluster


def fresh_database(tmp: Path) -> Iterator[str]:
    """Like ``tests.conftest.database_url``: a new SQLite file, or a new PostgreSQL schema if CI asks for it."""
    if not PG_URL:
        yield f"sqlite:///{tmp / 'imi.sqlite3'}"
        return
    schema = f"t_{secrets.token_hex(6)}"
    admin = create_engine(  # pre-ping: a fault test restarts PostgreSQL under this engine
        PG_URL.replace("postgresql://", "postgresql+psycopg://", 1),
        isolation_level="AUTOCOMMIT",
        pool_pre_ping=True,
    )
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield _with_schema(PG_URL, schema)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(scope="module")
def module_database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from fresh_database(tmp_path_factory.mktemp("db"))


@pytest.fixture
def system_database_url(tmp_path: Path) -> Iterator[str]:
    yield from fresh_database(tmp_path)


@pytest.fixture(scope="module")
def cluster(module_database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """Three ``imi serve`` processes on one fresh database, one master key, one data dir."""
    started = Cluster.start(module_database_url, tmp_path_factory.mktemp("cluster"), 3)
    try:
        yield started
    finally:
        started.stop()
