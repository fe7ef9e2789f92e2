"""Database engine and sessions: SQLite (one file, WAL) by default, PostgreSQL in production.

The engine is built once by the app factory from ``Settings`` and passed down. SQLite needs two things the
driver does not do by itself: real ``BEGIN`` statements (so that ``BEGIN IMMEDIATE`` can take the write lock
up front, which is how the log's sequencer serializes across processes) and a busy timeout.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlmodel import Session

from kernel.errors import InfrastructureFailure

SQLITE_BUSY_TIMEOUT_MS = 30_000


def make_engine(url: str, *, durable: bool = True) -> Engine:
    """Create the engine for ``url``; for SQLite the parent folder is created and WAL is switched on."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(url, parsed.database, durable=durable)
    if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
        url = str(parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False))
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20, pool_recycle=1800)


def _sqlite_engine(url: str, database: str | None, *, durable: bool = True) -> Engine:
    if database and database != ":memory:" and not database.startswith("file:"):  # URIs name existing files
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False}
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: sqlite3.Connection, _record: Any) -> None:  # noqa: ANN401
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves, below
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        _enable_wal(cur)
        # FULL: an acknowledged write survives power loss, not only a crash. NORMAL (``durable=False``, WAL):
        # survives a process crash, may lose the last commits on power loss; for records that can be lost
        # without harm (replay cache, verification records), where an fsync per kiosk scan is the bottleneck.
        cur.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(
            "PRAGMA secure_delete=ON"
        )  # deleted rows are overwritten: erasure leaves no readable pages
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        mode = conn.get_execution_options().get("sqlite_begin", "")
        conn.exec_driver_sql(f"BEGIN {mode}".strip())

    return engine


def _enable_wal(cur: sqlite3.Cursor) -> None:
    """Switch the file to WAL once. Two processes opening a new file at the same moment can make the switch
    fail with "database is locked" at once (the busy handler does not cover it): retry briefly."""
    for attempt in range(100):
        try:
            if cur.execute("PRAGMA journal_mode").fetchone()[0] == "wal":
                return
            cur.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError:
            if attempt == 99:
                raise
            time.sleep(0.05)


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


@contextmanager
def write_lock(conn: Connection, key: int) -> Iterator[bool]:
    """Try to become the single writer for ``key`` inside the current transaction of ``conn``.

    PostgreSQL: a transaction-scoped advisory lock (released at commit/rollback). SQLite: the caller opened the
    transaction with ``BEGIN IMMEDIATE`` so the database write lock is already held. Yields whether we hold it.
    """
    if conn.dialect.name == "postgresql":
        got = conn.execute(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": key}).scalar_one()
        yield bool(got)
    else:
        yield True


def ping(engine: Engine) -> None:
    """Raise ``InfrastructureFailure`` unless the database answers a trivial query."""
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except (OperationalError, DBAPIError) as exc:
        raise InfrastructureFailure("The database is not reachable.", slug="database-unavailable") from exc


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session that commits on success and rolls back on error."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def writer(engine: Engine) -> Engine:
    """The same engine, but SQLite transactions start with ``BEGIN IMMEDIATE``.

    A deferred SQLite transaction that reads and then writes fails at once with "database is locked" if another
    connection committed in between (WAL snapshot conflict); taking the write lock up front makes it wait its
    turn instead. Services whose transactions read-then-write use this engine. PostgreSQL ignores the option.
    """
    return engine.execution_options(sqlite_begin="IMMEDIATE")
