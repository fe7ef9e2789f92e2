"""Booking a verification: its replay-cache key and its record, for a whole batch in one transaction.

A kiosk fleet scans at a thousand or more a second, and every scan writes twice: the presentation's replay key
(the first insert wins, across every process on the database) and the verification record for the citizen's
history. :func:`book_all` is the batch function of the verifier's group committer (``kernel.groupcommit``): one
multi-row ``INSERT ... ON CONFLICT DO NOTHING RETURNING key`` for the batch's keys, one ``executemany`` for its
records. The statements go to the driver as written here (``exec_driver_sql``): SQLAlchemy's per-statement work
would cost more than SQLite takes to run them, and the committer thread must hold the GIL as briefly as it can,
since the event loop verifies the next scans meanwhile. Tables and columns: ``verifier.tables``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection

from kernel.errors import ImiError
from verifier.core import VerificationReport, with_replay_outcome

_EVENT_COLUMNS = "at, verifier_id, channel, outcome, problem, credential_id, claims"
# SQLAlchemy's SQLite DateTime storage format (naive, UTC here): records written either way compare as text.
_SQLITE_DATETIME = "%Y-%m-%d %H:%M:%S.%f"


@dataclass(frozen=True)
class Booking:
    """A verification to book: its report and, if it had a KB-JWT, its replay-cache key."""

    report: VerificationReport
    replay_key: str | None
    expires_at: int
    verifier_id: str
    channel: str


@dataclass(frozen=True)
class ScanRequest:
    """A scanned QR still to be checked: the committer's ``prepare`` step turns it into a :class:`Booking`."""

    qr_text: str
    verifier_id: str


def book_checked(conn: Connection, jobs: list[Booking | ScanRequest]) -> list[VerificationReport | ImiError]:
    """:func:`book_all` for a batch whose scans have all been checked (``prepare`` ran on every job)."""
    bookings = [job for job in jobs if isinstance(job, Booking)]
    if len(bookings) != len(jobs):
        raise RuntimeError("a scan reached its booking unchecked")
    return book_all(conn, bookings)


def book_all(conn: Connection, jobs: list[Booking]) -> list[VerificationReport | ImiError]:
    """Book a batch; the final reports, in order. A key already in the cache, or met earlier in the same batch,
    makes that presentation a replay."""
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    keys = {job.replay_key: job.expires_at for job in jobs if job.replay_key is not None}
    new: set[str] = set()
    if keys:
        values = ",".join([f"({mark}, {mark})"] * len(keys))
        sql = f"INSERT INTO verifier_replay (key, expires_at) VALUES {values} ON CONFLICT DO NOTHING RETURNING key"  # noqa: S608 - placeholders only
        params = tuple(value for pair in keys.items() for value in pair)
        new = {row[0] for row in conn.exec_driver_sql(sql, params)}
    at = _timestamp(conn)
    reports: list[VerificationReport | ImiError] = []
    records: list[tuple[Any, ...]] = []
    for job in jobs:
        report = job.report
        if job.replay_key is not None:
            report = with_replay_outcome(report, first_use=job.replay_key in new)
            new.discard(job.replay_key)  # a second copy in the same batch is a replay too
        reports.append(report)
        records.append((at, *event_values(report, verifier_id=job.verifier_id, channel=job.channel)))
    marks = ", ".join([mark] * 7)
    sql = f"INSERT INTO verification_event ({_EVENT_COLUMNS}) VALUES ({marks})"  # noqa: S608 - placeholders only
    conn.exec_driver_sql(sql, records)
    return reports


def event_values(report: VerificationReport, *, verifier_id: str, channel: str) -> tuple[str | None, ...]:
    """The record after its time: who, over which channel, the outcome, which claims; never their values."""
    failure = report.failure
    return (
        verifier_id[:200],
        channel,
        "verified" if report.verified else "refused",
        failure.slug if failure else "",
        (report.credential_id or "")[:64] or None,
        ",".join(sorted(report.disclosed)),
    )


def _timestamp(conn: Connection) -> datetime | str:
    now = datetime.now(UTC)
    return now.strftime(_SQLITE_DATETIME) if conn.dialect.name == "sqlite" else now
