"""Run Alembic migrations programmatically (``imi serve`` and tests do it on start)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, text

import migrations

MIGRATIONS = Path(migrations.__file__).resolve().parent
_MIGRATION_LOCK = 0x1A1_0DB


def alembic_config(url: str | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if url:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(engine: Engine) -> None:
    """Bring the schema to the newest revision. Concurrent starts wait for each other: PostgreSQL through an
    advisory lock, SQLite through ``BEGIN IMMEDIATE`` around the whole migration (its DDL is transactional)."""
    with engine.connect() as raw:
        conn = raw.execution_options(sqlite_begin="IMMEDIATE")
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _MIGRATION_LOCK})
            conn.commit()
        try:
            with conn.begin():
                cfg = alembic_config()
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
        finally:
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _MIGRATION_LOCK})
                conn.commit()
