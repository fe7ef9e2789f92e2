"""SQL tables of the log. Separate from the wire models (``ledger.receipt``)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, Index, Integer, LargeBinary, text
from sqlmodel import Field, SQLModel

# SQLite only auto-increments an ``INTEGER PRIMARY KEY``; PostgreSQL gets a 64-bit key.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class LogEntry(SQLModel, table=True):
    """An appended leaf. ``idx`` is NULL while pending and set, once, by the sequencer."""

    __tablename__ = "log_entry"
    __table_args__ = (
        Index(
            "ix_log_entry_pending",
            "seq",
            sqlite_where=text("idx IS NULL"),
            postgresql_where=text("idx IS NULL"),
        ),
    )
    seq: int | None = Field(default=None, sa_column=Column(BigId, primary_key=True, autoincrement=True))
    idx: int | None = Field(default=None, sa_column=Column(BigInteger, unique=True, nullable=True))
    event_type: str = Field(max_length=64)
    leaf_input: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    created_at: datetime


class LogTile(SQLModel, table=True):
    """A C2SP hash tile; ``width`` 256 means full, and a full tile is never written again."""

    __tablename__ = "log_tile"
    level: int = Field(primary_key=True)
    idx: int = Field(sa_column=Column(BigInteger, primary_key=True))
    width: int
    data: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class LogCheckpoint(SQLModel, table=True):
    """Every published checkpoint, with the signed note (later merged with witness cosignatures)."""

    __tablename__ = "log_checkpoint"
    size: int = Field(sa_column=Column(BigInteger, primary_key=True))
    root: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    note: str
    created_at: datetime
