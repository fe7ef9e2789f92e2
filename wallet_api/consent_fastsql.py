"""The five statements of a data release, run on the DBAPI cursor of the caller's SQLAlchemy transaction.

A release is a handful of primary-key reads and writes, and SQLAlchemy's per-execute work (parameter processing,
result metadata, events) costs more than SQLite itself takes to run them. Here they are written out once in SQL
for SQLite (``:name`` parameters) and PostgreSQL (``%(name)s``, ``FOR UPDATE OF``), and executed on the raw
cursor of the same connection, so they share the transaction, the lock and the commit with everything else.
On PostgreSQL the three writes travel as one statement (data-modifying CTEs), saving two round trips.
The tables and columns are those of ``consent_tables``, ``ledger.tables.LogEntry`` and ``wallet_api.tables``;
``tests/wallet/consent`` runs every release through this path on both databases.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, NamedTuple

from sqlalchemy import Connection, Dialect

from ledger.tables import LogEntry


class ReleaseRow(NamedTuple):
    id: str
    client_id: str
    citizen_id: str | None
    subject: str | None
    state: str
    version: int
    terms: str
    granted: str | None
    credential_item: str | None
    valid_until: int | None
    request_expires_at: int
    frequency_count: int | None
    window_start: int
    window_count: int
    releases: int
    event_seq: int
    chain_head: str
    purpose_active: bool | None
    max_frequency_count: int | None
    max_frequency_period: str | None
    max_retention_days: int | None
    citizen_status: str | None


_TOKEN = """SELECT t.client_id, t.expires_at, c.disabled_at FROM consent_access_token t
JOIN consent_client c ON c.id = t.client_id WHERE t.token_hash = :token_hash"""  # noqa: S105 - SQL, not a secret
_CONSENT = """SELECT c.id, c.client_id, c.citizen_id, c.subject, c.state, c.version, c.terms, c.granted,
c.credential_item, c.valid_until, c.request_expires_at, c.frequency_count, c.window_start, c.window_count,
c.releases, c.event_seq, c.chain_head, p.active, p.max_frequency_count, p.max_frequency_period,
p.max_retention_days, z.status FROM consent c LEFT JOIN consent_purpose p ON p.term = c.purpose
LEFT JOIN wallet_citizen z ON z.id = c.citizen_id WHERE c.id = :consent_id"""
_LOG = """INSERT INTO log_entry (event_type, leaf_input, created_at) VALUES (:event_type, :leaf_input, :created_at)
RETURNING seq"""
_EVENT = """INSERT INTO consent_event (consent_id, seq, version, kind, actor, at, detail, prev_hash, hash, log_seq,
log_event_type, salt, object_hash, notified) VALUES (:consent_id, :seq, :version, :kind, :actor, :at, :detail,
:prev_hash, :hash, :log_seq, :log_event_type, :salt, :object_hash, :notified)"""
# PostgreSQL: the three writes of a release in one statement (data-modifying CTEs), one round trip.
_WRITE_PG = """WITH l AS (INSERT INTO log_entry (event_type, leaf_input, created_at)
VALUES (:event_type, :leaf_input, :created_at) RETURNING seq),
e AS (INSERT INTO consent_event (consent_id, seq, version, kind, actor, at, detail, prev_hash, hash, log_seq,
log_event_type, salt, object_hash, notified) SELECT :consent_id, :seq, :version, :kind, :actor, :at, :detail,
:prev_hash, :hash, l.seq, :log_event_type, :salt, :object_hash, :notified FROM l)
UPDATE consent SET window_start = :window_start, window_count = :window_count, releases = :releases,
event_seq = :event_seq, chain_head = :chain_head, updated_at = :updated_at WHERE id = :consent_id"""
_UPDATE = """UPDATE consent SET window_start = :window_start, window_count = :window_count, releases = :releases,
event_seq = :event_seq, chain_head = :chain_head, updated_at = :updated_at WHERE id = :consent_id"""


class FastSql:
    """The release statements rendered for one dialect."""

    def __init__(self, dialect: Dialect) -> None:
        pg = dialect.name == "postgresql"
        render = (lambda sql: re.sub(r":(\w+)", r"%(\1)s", sql)) if pg else (lambda sql: sql)
        self._token = render(_TOKEN)
        self._consent = render(_CONSENT + (" FOR UPDATE OF c" if pg else ""))
        self._log = render(_LOG)
        self._event = render(_EVENT)
        self._update = render(_UPDATE)
        self._write_pg = render(_WRITE_PG) if pg else None
        created = LogEntry.__table__.c.created_at.type  # type: ignore[attr-defined]
        self._created_at = created.bind_processor(dialect) or (lambda value: value)

    @staticmethod
    def cursor(conn: Connection) -> Any:  # noqa: ANN401 - a DBAPI cursor (sqlite3 or psycopg)
        return conn.connection.driver_connection.cursor()  # type: ignore[union-attr]

    def token(self, cur: Any, token_hash: str) -> tuple[str, int, int | None] | None:  # noqa: ANN401
        cur.execute(self._token, {"token_hash": token_hash})
        row = cur.fetchone()
        return None if row is None else (str(row[0]), int(row[1]), row[2])

    def consent(self, cur: Any, consent_id: str) -> ReleaseRow | None:  # noqa: ANN401
        cur.execute(self._consent, {"consent_id": consent_id})
        row = cur.fetchone()
        return None if row is None else ReleaseRow(*row)

    def write_release(
        self,
        cur: Any,  # noqa: ANN401
        log: Mapping[str, Any],
        event: Mapping[str, Any],
        consent: Mapping[str, Any],
    ) -> None:
        """Insert the log entry and the event (linked by the entry's ``seq``) and update the consent row."""
        if self._write_pg is not None:
            cur.execute(self._write_pg, {**log, **event, **consent})
            return
        cur.execute(self._log, {**log, "created_at": self._created_at(log["created_at"])})
        cur.execute(self._event, {**event, "log_seq": int(cur.fetchone()[0])})
        cur.execute(self._update, consent)
