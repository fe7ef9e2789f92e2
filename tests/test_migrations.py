"""The Alembic history builds exactly the tables the code declares, on SQLite and on PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

import imi.tables
from imi import migrate
from kernel.db import make_engine


def test_migrations_match_the_models(database_url: str) -> None:
    engine = make_engine(database_url)
    migrate.upgrade(engine)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), imi.tables.metadata)
    engine.dispose()
    # rate_limit_window is kernel.ratelimit's own table (kept outside the models' metadata on purpose)
    unexpected = [d for d in diff if "rate_limit_window" not in repr(d)]
    assert unexpected == []
