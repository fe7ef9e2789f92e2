"""Database helpers of the consent API: one write transaction, the event chain, anchoring in the same transaction.

Every event is written together with its log entry: the ``log_entry`` row (design.md "Leaf encoding":
``commitment = SHA-256(tag || event_type || salt || object_hash)``) is inserted in the *same* transaction as the
event and the consent's new state, so no transition or release can exist without its anchor, nor the other way
round. The sequencer integrates the entry within a batch interval; :func:`pending_of` rebuilds what
``LogService.receipt`` needs to hand out the anchor receipt. ``object_hash`` is the event's chain hash, except
for ``given``/``narrowed`` events, which anchor ``SHA-256(receipt JWS)`` so that the signed consent receipt is
itself verifiable against the log, like a credential.

Write transactions come from :class:`kernel.groupcommit.Writer` (``BEGIN IMMEDIATE`` on SQLite behind a
process-wide gate).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Row, bindparam, insert, select, update

from ledger.commitment import commitment, encode_leaf
from ledger.service import PendingAppend
from ledger.tables import LogEntry
from wallet_api.consent_rules import LOG_EVENT_TYPE, ConsentState, EventKind, event_body, link
from wallet_api.consent_tables import Consent, ConsentEvent

CONSENT = Consent.__table__  # type: ignore[attr-defined]
EVENT = ConsentEvent.__table__  # type: ignore[attr-defined]
_LOG = LogEntry.__table__  # type: ignore[attr-defined]
# Built once: a statement object reused with parameters skips SQLAlchemy's per-call construction and cache-key work.
_INSERT_LOG = insert(_LOG).returning(_LOG.c.seq)
_INSERT_EVENT = insert(EVENT).returning(EVENT.c.id)
_UPDATE_CONSENT = update(CONSENT).where(CONSENT.c.id == bindparam("b_consent_id"))
_LOAD = select(CONSENT).where(CONSENT.c.id == bindparam("consent_id"))
_LOAD_LOCKED = _LOAD.with_for_update()
Rng = Callable[[int], bytes]


@dataclass
class Chain:
    """The head of one consent's event chain, advanced by :func:`record`."""

    consent_id: str
    version: int
    seq: int
    head: str

    @classmethod
    def of(cls, row: Any) -> Chain:  # noqa: ANN401 - a consent row (SQLAlchemy Row or consent_fastsql.ReleaseRow)
        return cls(row.id, row.version, row.event_seq, row.chain_head)

    def columns(self) -> dict[str, Any]:
        return {"event_seq": self.seq, "chain_head": self.head}


@dataclass(frozen=True)
class Recorded:
    event_id: int
    seq: int
    hash: str
    kind: EventKind
    at: int
    version: int
    pending: PendingAppend


@dataclass(frozen=True)
class Draft:
    """One event and its log entry, computed but not yet written (the chain has already advanced)."""

    event: dict[str, Any]  # the consent_event row, without log_seq
    log: dict[str, Any]  # the log_entry row
    salt: bytes
    object_hash: bytes
    commitment: bytes
    recorded_as: tuple[int, str, EventKind, int, int]  # seq, hash, kind, at, version

    def done(self, event_id: int, log_seq: int) -> Recorded:
        seq, digest, kind, at, version = self.recorded_as
        pending = PendingAppend(log_seq, self.log["event_type"], self.salt, self.object_hash, self.commitment)
        return Recorded(event_id, seq, digest, kind, at, version, pending)


def draft(
    chain: Chain,
    kind: EventKind,
    *,
    actor: str,
    at: int,
    detail: Mapping[str, Any],
    rng: Rng,
    object_hash: bytes | None = None,
) -> Draft:
    """Chain one event (advancing ``chain``) and commit to it for the log: the pure half of :func:`record`."""
    seq = chain.seq + 1
    body = event_body(
        consent_id=chain.consent_id, seq=seq, version=chain.version, kind=kind, at=at, detail=detail
    )
    digest = link(chain.head, body)
    obj = object_hash if object_hash is not None else bytes.fromhex(digest)
    event_type, salt = LOG_EVENT_TYPE[kind], rng(32)
    committed = commitment(event_type, salt, obj)
    log = {
        "event_type": event_type,
        "leaf_input": encode_leaf(event_type, committed),
        "created_at": datetime.fromtimestamp(at, UTC),
    }
    event = {
        "consent_id": chain.consent_id,
        "seq": seq,
        "version": chain.version,
        "kind": kind.value,
        "actor": actor[:200],
        "at": at,
        "detail": json.dumps(dict(detail), ensure_ascii=False, separators=(",", ":")),
        "prev_hash": chain.head,
        "hash": digest,
        **_anchor_columns(event_type, salt, obj),
    }
    chain.seq, chain.head = seq, digest
    return Draft(event, log, salt, obj, committed, (seq, digest, kind, at, chain.version))


def _anchor_columns(event_type: str, salt: bytes, obj: bytes) -> dict[str, Any]:
    return {"log_event_type": event_type, "salt": salt.hex(), "object_hash": obj.hex(), "notified": False}


def record(
    conn: Connection,
    chain: Chain,
    kind: EventKind,
    *,
    actor: str,
    at: int,
    detail: Mapping[str, Any],
    rng: Rng,
    object_hash: bytes | None = None,
) -> Recorded:
    """Append one event to the chain and its commitment to the log, in ``conn``'s transaction (as
    ``LogService.append`` would, but atomically with the event); the caller then stores ``chain.columns()``."""
    made = draft(chain, kind, actor=actor, at=at, detail=detail, rng=rng, object_hash=object_hash)
    log_seq = int(conn.execute(_INSERT_LOG, made.log).scalar_one())
    event_id = int(conn.execute(_INSERT_EVENT, {**made.event, "log_seq": log_seq}).scalar_one())
    return made.done(event_id, log_seq)


def load(conn: Connection, consent_id: str, *, lock: bool) -> Row[Any] | None:
    """The consent row; ``lock`` takes its row lock on PostgreSQL (SQLite already holds the database lock)."""
    return conn.execute(_LOAD_LOCKED if lock else _LOAD, {"consent_id": consent_id[:64]}).first()


def save(conn: Connection, consent_id: str, chain: Chain, **values: Any) -> None:  # noqa: ANN401
    conn.execute(_UPDATE_CONSENT, {"b_consent_id": consent_id, **chain.columns(), **values})


def pending_of(event: Row[Any]) -> PendingAppend:
    """What ``LogService.receipt`` needs for a stored event's anchor."""
    salt, obj = bytes.fromhex(event.salt), bytes.fromhex(event.object_hash)
    digest = commitment(event.log_event_type, salt, obj)
    return PendingAppend(int(event.log_seq), event.log_event_type, salt, obj, digest)


def event_row(conn: Connection, event_id: int) -> Row[Any] | None:
    return conn.execute(select(EVENT).where(EVENT.c.id == event_id)).first()


def events_of(conn: Connection, consent_id: str) -> list[Row[Any]]:
    return list(
        conn.execute(select(EVENT).where(EVENT.c.consent_id == consent_id).order_by(EVENT.c.seq)).all()
    )


def state_of(row: Row[Any]) -> ConsentState:
    return ConsentState(row.state)
