"""The sequencer: the single writer that turns pending entries into tiles and a signed checkpoint.

One batch is one database transaction: assign indexes, write the changed tiles, compute the new root, prove
it consistent with the previous checkpoint, sign and store the new checkpoint. A crash anywhere rolls the whole
batch back, so an entry that has an index is always covered by a durable checkpoint. Across processes only one
sequencer runs at a time: SQLite's write lock (``BEGIN IMMEDIATE``) or a PostgreSQL advisory lock.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, bindparam, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from kernel.db import write_lock
from kernel.errors import InfrastructureFailure
from ledger import merkle
from ledger.note import Checkpoint, NoteSigner, sign_note
from ledger.store import DatabaseTiles, NodeReader, OverlayTiles
from ledger.tables import LogCheckpoint, LogEntry, LogTile
from ledger.tiles import TILE_HEIGHT, TILE_WIDTH, tile_levels, tiles_for_size

log = logging.getLogger("imi.ledger.sequencer")
SEQUENCER_LOCK_KEY = 0x1A1_106  # advisory lock id, arbitrary but fixed
_ENTRY = LogEntry.__table__  # type: ignore[attr-defined]
_TILE = LogTile.__table__  # type: ignore[attr-defined]
_CHECKPOINT = LogCheckpoint.__table__  # type: ignore[attr-defined]
_TILE_BYTES = TILE_WIDTH * merkle.HASH_SIZE


class RightEdge:
    """The partial tiles of a tree, growing as leaf hashes are appended; records every tile it changes."""

    def __init__(self, size: int, partial: dict[int, bytes]) -> None:
        self.size = size
        self._counts = {lvl: size >> (TILE_HEIGHT * lvl) for lvl in tile_levels(size)}
        self._buf = {lvl: bytearray(partial.get(lvl, b"")) for lvl in self._counts}
        self.dirty: dict[tuple[int, int], bytes] = {}

    def append(self, leaf_hash: bytes) -> None:
        self.size += 1
        self._push(0, leaf_hash)

    def _push(self, level: int, h: bytes) -> None:
        buf = self._buf.setdefault(level, bytearray())
        count = self._counts.get(level, 0)
        buf += h
        self._counts[level] = count + 1
        tile_index = count >> TILE_HEIGHT
        if len(buf) == _TILE_BYTES:
            data = bytes(buf)
            self.dirty[(level, tile_index)] = data
            self._buf[level] = bytearray()
            hashes = [data[i : i + merkle.HASH_SIZE] for i in range(0, _TILE_BYTES, merkle.HASH_SIZE)]
            while len(hashes) > 1:
                hashes = [merkle.node_hash(hashes[i], hashes[i + 1]) for i in range(0, len(hashes), 2)]
            self._push(level + 1, hashes[0])

    def flush_partials(self) -> None:
        """Record the current partial tiles as dirty (call once, after the last append)."""
        for level, buf in self._buf.items():
            if buf:
                self.dirty[(level, self._counts[level] >> TILE_HEIGHT)] = bytes(buf)


class Sequencer:
    """Integrates pending entries. Not thread-safe by itself: one loop per process calls it."""

    def __init__(
        self,
        engine: Engine,
        signer: NoteSigner,
        origin: str,
        *,
        batch_max: int = 50_000,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._engine = engine
        self._signer = signer
        self._origin = origin
        self._batch_max = batch_max
        self._clock = clock
        self._reader = NodeReader(DatabaseTiles(engine))

    def integrate(self) -> int:
        """Integrate one batch; returns how many entries it sequenced (0 if none, or another process holds the lock)."""
        try:
            with self._engine.connect() as raw:
                conn = raw.execution_options(sqlite_begin="IMMEDIATE")
                with conn.begin(), write_lock(conn, SEQUENCER_LOCK_KEY) as held:
                    if not held:
                        return 0
                    return self._integrate(conn)
        except Exception:
            self._reader = NodeReader(DatabaseTiles(self._engine))  # never keep hashes of a rolled-back batch
            raise

    def _integrate(self, conn: Connection) -> int:
        last = conn.execute(
            select(_CHECKPOINT.c.size, _CHECKPOINT.c.root).order_by(_CHECKPOINT.c.size.desc()).limit(1)
        ).first()
        pending = conn.execute(
            select(_ENTRY.c.seq, _ENTRY.c.leaf_input)
            .where(_ENTRY.c.idx.is_(None))
            .order_by(_ENTRY.c.seq)
            .limit(self._batch_max)
        ).all()
        if last is not None and not pending:
            return 0
        size0, root0 = (last.size, last.root) if last is not None else (0, merkle.EMPTY_ROOT)
        edge = RightEdge(size0, self._load_partials(conn, size0))
        leaf_hash = merkle.leaf_hash
        for row in pending:
            edge.append(leaf_hash(row.leaf_input))
        edge.flush_partials()
        if pending:
            conn.execute(
                update(_ENTRY).where(_ENTRY.c.seq == bindparam("b_seq")).values(idx=bindparam("b_idx")),
                [{"b_seq": row.seq, "b_idx": size0 + i} for i, row in enumerate(pending)],
            )
            self._write_tiles(conn, edge.dirty)
        size1 = edge.size
        self._reader.source = OverlayTiles(edge.dirty, DatabaseTiles(self._engine, conn))
        root1 = self._root(size1)
        self._prove_consistent(size0, root0, size1, root1)
        body = Checkpoint(origin=self._origin, size=size1, root_hash=root1).body()
        conn.execute(
            insert(_CHECKPOINT).values(
                size=size1, root=root1, note=sign_note(body, [self._signer]), created_at=self._clock()
            )
        )
        return len(pending)

    def _root(self, size: int) -> bytes:
        if size == 0:
            return merkle.EMPTY_ROOT
        plan = merkle.root_plan(size)
        nodes = self._reader.nodes(plan)
        return merkle.fold([nodes[n] for n in plan])

    def _prove_consistent(self, size0: int, root0: bytes, size1: int, root1: bytes) -> None:
        if size0 == 0:
            return
        plan = merkle.consistency_plan(size0, size1)
        nodes = self._reader.nodes(n for element in plan for n in element)
        proof = merkle.materialize(plan, nodes)
        try:
            merkle.verify_consistency(size1=size0, size2=size1, proof=proof, root1=root0, root2=root1)
        except Exception as exc:
            log.critical("refusing to publish an inconsistent checkpoint %d -> %d", size0, size1)
            raise InfrastructureFailure(
                "The log would fork; integration stopped.", slug="log-inconsistent"
            ) from exc

    @staticmethod
    def _load_partials(conn: Connection, size: int) -> dict[int, bytes]:
        keys = []
        for level in tile_levels(size):
            full, width = tiles_for_size(size, level)
            if width:
                keys.append((level, full, width))
        partial: dict[int, bytes] = {}
        for level, index, width in keys:
            data = conn.execute(
                select(_TILE.c.data).where(_TILE.c.level == level, _TILE.c.idx == index)
            ).scalar_one()
            partial[level] = data[: width * merkle.HASH_SIZE]
        return partial

    @staticmethod
    def _write_tiles(conn: Connection, dirty: dict[tuple[int, int], bytes]) -> None:
        rows = [
            {"level": lvl, "idx": idx, "width": len(data) // merkle.HASH_SIZE, "data": data}
            for (lvl, idx), data in sorted(dirty.items())
        ]
        ins = pg_insert(_TILE) if conn.dialect.name == "postgresql" else sqlite_insert(_TILE)
        stmt = ins.on_conflict_do_update(
            index_elements=["level", "idx"], set_={"width": ins.excluded.width, "data": ins.excluded.data}
        )
        conn.execute(stmt, rows)
