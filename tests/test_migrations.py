"""The Alembic history builds exactly the tables the code declares, on SQLite and on PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

import imi.tables
from imi import migrate
from kernel.db import make_engine


def _differences(engine: Engine) -> list[object]:
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), imi.tables.metadata)
    # rate_limit_window is kernel.ratelimit's own table (kept outside the models' metadata on purpose)
    return [d for d in diff if "rate_limit_window" not in repr(d)]


def test_migrations_match_the_models(empty_database_url: str) -> None:
    engine = make_engine(empty_database_url)
    migrate.upgrade(engine)
    assert _differences(engine) == []
    engine.dispose()


def test_the_tests_fresh_databases_are_migrated_ones(database_url: str) -> None:
    """``tests.conftest.database_url`` reproduces a migration done once: the result is the same schema, at the
    head revision (so that the app's own upgrade on start has nothing left to do)."""
    engine = make_engine(database_url)
    assert _differences(engine) == []
    with engine.connect() as conn:
        assert MigrationContext.configure(conn).get_current_heads() == (
            ScriptDirectory.from_config(migrate.alembic_config()).get_current_head(),
        )
    engine.dispose()
