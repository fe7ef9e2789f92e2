"""The log as a service for the other parts of IMI and for the HTTP layer: append, receipts, proofs, tiles."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine, func, insert, select

from kernel.errors import Conflict, InfrastructureFailure, MalformedInput, NotFound
from ledger import merkle
from ledger.commitment import commitment, encode_leaf
from ledger.note import NoteVerifier, WitnessVerifier, add_cosignatures, parse_note, verify_cosignatures
from ledger.receipt import Receipt
from ledger.sequencer import Sequencer
from ledger.store import DatabaseTiles, NodeReader
from ledger.tables import LogCheckpoint, LogEntry
from ledger.tiles import TILE_WIDTH, TileID, encode_bundle, tiles_for_size

_ENTRY = LogEntry.__table__  # type: ignore[attr-defined]
_CHECKPOINT = LogCheckpoint.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class PendingAppend:
    """What the appender keeps until the receipt is ready; ``salt`` is the off-log secret."""

    seq: int
    event_type: str
    salt: bytes
    object_hash: bytes
    commitment: bytes


@dataclass(frozen=True, slots=True)
class LatestCheckpoint:
    size: int
    root: bytes
    note: str


class LogService:
    """Appends commitments and serves everything a log client needs. Thread-safe."""

    def __init__(
        self,
        engine: Engine,
        sequencer: Sequencer,
        *,
        origin: str,
        verifier: NoteVerifier,
        witnesses: Sequence[WitnessVerifier] = (),
        rng: Callable[[int], bytes] = secrets.token_bytes,
    ) -> None:
        self._engine = engine
        self.sequencer = sequencer
        self.origin = origin
        self.verifier = verifier
        self.witnesses = tuple(witnesses)
        self._rng = rng
        self._reader = NodeReader(DatabaseTiles(engine))
        self._integrate_lock = threading.Lock()
        self.wakeup = threading.Event()

    # -- writing -------------------------------------------------------------------------------------------
    def append(self, event_type: str, object_hash: bytes) -> PendingAppend:
        return self.append_many([(event_type, object_hash)])[0]

    def append_many(self, items: Sequence[tuple[str, bytes]]) -> list[PendingAppend]:
        """Queue commitments to ``(event_type, object_hash)`` items in one transaction; salts are fresh."""
        now = datetime.now(UTC)
        prepared = []
        for event_type, obj in items:
            salt = self._rng(32)
            c = commitment(event_type, salt, obj)
            prepared.append((event_type, salt, obj, c))
        rows = [
            {"event_type": e, "leaf_input": encode_leaf(e, c), "created_at": now} for e, _, _, c in prepared
        ]
        with self._engine.begin() as conn:
            seqs = (
                conn.execute(insert(_ENTRY).returning(_ENTRY.c.seq, sort_by_parameter_order=True), rows)
                .scalars()
                .all()
            )
        self.wakeup.set()
        return [
            PendingAppend(s, e, salt, obj, c) for s, (e, salt, obj, c) in zip(seqs, prepared, strict=True)
        ]

    def integrate_now(self) -> int:
        """Run one batch in this thread (the background loop does the same on a timer)."""
        with self._integrate_lock:
            return self.sequencer.integrate()

    # -- receipts ------------------------------------------------------------------------------------------
    def receipt(self, pending: PendingAppend) -> Receipt | None:
        """The receipt once ``pending`` is covered by a durable checkpoint, else ``None``."""
        with self._engine.connect() as conn:
            idx = conn.execute(select(_ENTRY.c.idx).where(_ENTRY.c.seq == pending.seq)).scalar_one_or_none()
        if idx is None:
            return None
        latest = self.latest()
        proof = self.inclusion_proof(idx, latest.size)
        return Receipt(
            origin=self.origin,
            index=idx,
            event_type=pending.event_type,
            salt=pending.salt.hex(),
            object_hash=pending.object_hash.hex(),
            commitment=pending.commitment.hex(),
            tree_size=latest.size,
            inclusion_proof=[h.hex() for h in proof],
            checkpoint=latest.note,
        )

    def wait_receipts(self, pending: Sequence[PendingAppend], *, timeout: float = 10.0) -> list[Receipt]:
        """Block until every item is integrated (integrating ourselves if need be), then build all receipts
        against one checkpoint. ``InfrastructureFailure`` on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            indexes = self._indexes([p.seq for p in pending])
            if all(i is not None for i in indexes):
                break
            if time.monotonic() > deadline:
                raise InfrastructureFailure(
                    "The log did not integrate the entry in time.", slug="log-timeout"
                )
            if self.integrate_now() == 0:
                time.sleep(0.01)
        latest = self.latest()
        return [
            Receipt(
                origin=self.origin,
                index=idx,
                event_type=p.event_type,
                salt=p.salt.hex(),
                object_hash=p.object_hash.hex(),
                commitment=p.commitment.hex(),
                tree_size=latest.size,
                inclusion_proof=[h.hex() for h in self._proof(idx, latest.size)],
                checkpoint=latest.note,
            )
            for p, idx in zip(pending, indexes, strict=True)
            if idx is not None
        ]

    def _indexes(self, seqs: Sequence[int]) -> list[int | None]:
        found: dict[int, int | None] = {}
        with self._engine.connect() as conn:
            for start in range(0, len(seqs), 500):
                chunk = seqs[start : start + 500]
                rows = conn.execute(select(_ENTRY.c.seq, _ENTRY.c.idx).where(_ENTRY.c.seq.in_(chunk))).all()
                found.update({r.seq: r.idx for r in rows})
        return [found.get(s) for s in seqs]

    def _proof(self, index: int, tree_size: int) -> list[bytes]:
        plan = merkle.inclusion_plan(index, tree_size)
        return merkle.materialize(plan, self._reader.nodes(n for e in plan for n in e))

    # -- reading -------------------------------------------------------------------------------------------
    def latest(self) -> LatestCheckpoint:
        with self._engine.connect() as conn:
            row = conn.execute(
                select(_CHECKPOINT.c.size, _CHECKPOINT.c.root, _CHECKPOINT.c.note)
                .order_by(_CHECKPOINT.c.size.desc())
                .limit(1)
            ).first()
        if row is None:
            self.integrate_now()
            return self.latest()
        return LatestCheckpoint(row.size, row.root, row.note)

    def inclusion_proof(self, index: int, tree_size: int) -> list[bytes]:
        """RFC 9162 inclusion proof of leaf ``index`` in the tree of ``tree_size`` (a published size)."""
        self._check_size(tree_size)
        if not 0 <= index < tree_size:
            raise MalformedInput(f"index must be in [0, {tree_size}).", slug="index-out-of-range")
        plan = merkle.inclusion_plan(index, tree_size)
        return merkle.materialize(plan, self._reader.nodes(n for e in plan for n in e))

    def consistency_proof(self, first: int, second: int) -> list[bytes]:
        self._check_size(second)
        if not 0 <= first <= second:
            raise MalformedInput("Need 0 <= first <= second.", slug="index-out-of-range")
        plan = merkle.consistency_plan(first, second)
        return merkle.materialize(plan, self._reader.nodes(n for e in plan for n in e))

    def root_at(self, size: int) -> bytes:
        with self._engine.connect() as conn:
            root = conn.execute(
                select(_CHECKPOINT.c.root).where(_CHECKPOINT.c.size == size)
            ).scalar_one_or_none()
        if root is None:
            raise NotFound(f"No checkpoint of size {size}.", slug="checkpoint-not-found")
        return bytes(root)

    def leaf(self, index: int) -> bytes:
        with self._engine.connect() as conn:
            data = conn.execute(select(_ENTRY.c.leaf_input).where(_ENTRY.c.idx == index)).scalar_one_or_none()
        if data is None:
            raise NotFound(f"No entry {index} in the log.", slug="entry-not-found")
        return bytes(data)

    def tile(self, tile: TileID) -> bytes:
        """A hash tile or entry bundle, full or partial, as C2SP tlog-tiles serves it."""
        size = self.latest().size
        if tile.level < 0:
            return self._bundle(tile, size)
        full, width = tiles_for_size(size, tile.level)
        self._check_tile_exists(tile, full, width)
        data = DatabaseTiles(self._engine).tiles([(tile.level, tile.index)]).get((tile.level, tile.index))
        if data is None:
            raise NotFound("No such tile.", slug="tile-not-found")
        return bytes(data[: tile.width * merkle.HASH_SIZE])

    def _bundle(self, tile: TileID, size: int) -> bytes:
        full, width = tiles_for_size(size, 0)
        self._check_tile_exists(tile, full, width)
        first = tile.index * TILE_WIDTH
        with self._engine.connect() as conn:
            rows = (
                conn.execute(
                    select(_ENTRY.c.leaf_input)
                    .where(_ENTRY.c.idx >= first, _ENTRY.c.idx < first + tile.width)
                    .order_by(_ENTRY.c.idx)
                )
                .scalars()
                .all()
            )
        return encode_bundle([bytes(r) for r in rows])

    @staticmethod
    def _check_tile_exists(tile: TileID, full: int, width: int) -> None:
        ok = tile.index < full or (tile.index == full and tile.is_partial and tile.width <= width)
        if not ok:
            raise NotFound("That tile is not (yet) in the log.", slug="tile-not-found")

    def _check_size(self, tree_size: int) -> None:
        if tree_size > self.latest().size:
            raise MalformedInput("tree_size is beyond the current checkpoint.", slug="tree-size-too-large")
        if tree_size < 0:
            raise MalformedInput("tree_size must be >= 0.", slug="index-out-of-range")

    def entry_count(self) -> int:
        with self._engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(_ENTRY)).scalar_one())

    # -- witnesses -----------------------------------------------------------------------------------------
    def add_cosignatures(self, cosigned: str) -> list[str]:
        """Accept a checkpoint note carrying witness cosignatures; keep the valid ones. Returns witness names."""
        note = parse_note(cosigned)
        latest = self.latest()
        from ledger.note import parse_checkpoint

        cp = parse_checkpoint(note.text)
        if cp.origin != self.origin:
            raise MalformedInput("Cosigned checkpoint is for another log.", slug="checkpoint-origin-mismatch")
        with self._engine.begin() as conn:
            stored = conn.execute(
                select(_CHECKPOINT.c.note).where(_CHECKPOINT.c.size == cp.size)
            ).scalar_one_or_none()
            if stored is None or parse_note(stored).text != note.text:
                raise Conflict("No such checkpoint was published by this log.", slug="checkpoint-unknown")
            names = verify_cosignatures(note, cp, self.witnesses, threshold=1)
            lines = [
                line for line in cosigned.split("\n") if line.startswith("— ") and line.split(" ")[1] in names
            ]
            conn.execute(
                _CHECKPOINT.update()
                .where(_CHECKPOINT.c.size == cp.size)
                .values(note=add_cosignatures(stored, lines))
            )
        del latest
        return names


class SequencerLoop:
    """Background thread: integrate at least every ``interval`` seconds, sooner when woken by an append."""

    def __init__(self, service: LogService, interval: float) -> None:
        self._service = service
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="imi-sequencer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._service.wakeup.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        import logging

        log = logging.getLogger("imi.ledger.loop")
        while not self._stop.is_set():
            self._service.wakeup.wait(self._interval)
            self._service.wakeup.clear()
            try:
                while self._service.integrate_now() > 0 and not self._stop.is_set():
                    pass
            except Exception:  # the database may be down: keep trying, the next tick may work
                log.exception("integration failed; retrying")
                self._stop.wait(self._interval)
