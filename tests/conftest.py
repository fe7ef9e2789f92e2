"""Shared fixtures: every test that touches a database gets a fresh one of the kind CI asks for.

``IMI_TEST_DATABASE_URL`` unset -> a new SQLite file per test. Set to a PostgreSQL URL -> a new schema per
test in that database (dropped afterwards), so tests never see each other's rows.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import settings
from sqlalchemy import create_engine, event, text

from imi import migrate
from imi.app import create_app
from kernel.accounts import Role, create_token
from kernel.db import make_engine
from kernel.settings import Settings

PG_URL = os.environ.get("IMI_TEST_DATABASE_URL", "")
# Timing is for benchmarks, not unit tests: a busy 2-core CI machine must not fail a property test on time.
settings.register_profile("imi", deadline=None)
settings.load_profile("imi")


def _with_schema(url: str, schema: str) -> str:
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options={quote(f'-csearch_path={schema}')}"


@contextmanager
def _pg_schema(prefix: str = "t") -> Iterator[str]:
    """A new, empty PostgreSQL schema for the block: its URL (search_path set); dropped afterwards."""
    schema = f"{prefix}_{secrets.token_hex(6)}"
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
def empty_database_url(tmp_path: Path) -> Iterator[str]:
    """A fresh database for one test with no table at all (for the migrations' own tests)."""
    if not PG_URL:
        yield f"sqlite:///{tmp_path / 'imi.sqlite3'}"
        return
    with _pg_schema() as url:
        yield url


@dataclass(frozen=True)
class MigratedTemplate:
    """What the Alembic history does to an empty database, done once per session and then reproduced for each
    test: a copy of the migrated SQLite file, or the SQL statements the migration sent to PostgreSQL, replayed
    in a new schema. Running the migrations costs 0.2 s (SQLite) to 0.4 s (PostgreSQL) of CPU, per test and
    per database that was most of the suite's time; ``test_migrations`` checks both results against the models.
    """

    sqlite_file: Path | None = None
    statements: tuple[tuple[str, Any], ...] = ()


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MigratedTemplate]:
    if not PG_URL:
        path = tmp_path_factory.mktemp("template") / "imi.sqlite3"
        engine = make_engine(f"sqlite:///{path}")
        migrate.upgrade(engine)
        engine.dispose()  # the last connection to close checkpoints the WAL into the file
        yield MigratedTemplate(sqlite_file=path)
        return
    sent: list[tuple[str, Any]] = []

    def record(_c: object, _cur: object, statement: str, parameters: Any, *_rest: object) -> None:
        if "pg_advisory" not in statement:  # the migration lock: nothing to reproduce
            sent.append((statement, parameters))

    # nothing stays connected for the session (a fault test restarts PostgreSQL): the schema goes at once
    with _pg_schema("template") as url:
        engine = make_engine(url)
        event.listen(engine, "before_cursor_execute", record)
        try:
            migrate.upgrade(engine)
        finally:
            engine.dispose()
    yield MigratedTemplate(statements=tuple(sent))


@pytest.fixture
def database_url(tmp_path: Path, migrated_template: MigratedTemplate) -> Iterator[str]:
    """A fresh database for one test, its schema at the newest revision (as ``imi serve`` leaves it)."""
    if migrated_template.sqlite_file is not None:
        target = tmp_path / "imi.sqlite3"
        shutil.copyfile(migrated_template.sqlite_file, target)
        yield f"sqlite:///{target}"
        return
    with _pg_schema() as url:
        engine = make_engine(url)
        with engine.begin() as conn:
            for statement, parameters in migrated_template.statements:
                conn.exec_driver_sql(statement, parameters)
        engine.dispose()
        yield url


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
