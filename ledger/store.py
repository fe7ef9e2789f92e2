"""Reading the log's tiles and nodes from the database, with caches for what can never change.

A perfect subtree's hash is immutable once the tree has grown past it, and so is a full tile: both are cached
without invalidation. Partial tiles are re-read when a cached copy is too short for the node asked for.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping
from typing import Generic, Protocol, TypeVar

from sqlalchemy import Connection, Engine, and_, select, tuple_

from ledger.merkle import HASH_SIZE, NodeID
from ledger.tables import LogTile
from ledger.tiles import TILE_WIDTH, node_from_tile, tile_for_node

_TILE = LogTile.__table__  # type: ignore[attr-defined]


class TileSource(Protocol):
    """Where hash tiles come from: the database, an HTTP log, or a batch being written."""

    def tiles(self, ids: Iterable[tuple[int, int]]) -> Mapping[tuple[int, int], bytes]: ...


K = TypeVar("K")
V = TypeVar("V")


class _LRU(Generic[K, V]):
    def __init__(self, capacity: int) -> None:
        self._data: OrderedDict[K, V] = OrderedDict()
        self._capacity = capacity

    def get(self, key: K) -> V | None:
        value = self._data.get(key)
        if value is not None:
            self._data.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> None:
        self._data[key] = value
        self._data.move_to_end(key)
        if len(self._data) > self._capacity:
            self._data.popitem(last=False)


class NodeReader:
    """Computes perfect-subtree hashes from tiles, caching nodes (immutable) and full tiles."""

    def __init__(self, source: TileSource, *, node_cache: int = 200_000, tile_cache: int = 4096) -> None:
        self.source = source
        self._nodes: _LRU[NodeID, bytes] = _LRU(node_cache)
        self._tiles: _LRU[tuple[int, int], bytes] = _LRU(tile_cache)

    def nodes(self, ids: Iterable[NodeID]) -> dict[NodeID, bytes]:
        """Hashes of the given perfect subtrees (all within the published tree). Raises ``LookupError``."""
        out: dict[NodeID, bytes] = {}
        missing: list[NodeID] = []
        for n in ids:
            h = self._nodes.get(n)
            if h is None:
                missing.append(n)
            else:
                out[n] = h
        if not missing:
            return out
        tiles = self._tiles_for(missing)
        for n in missing:
            level, index, _, _ = tile_for_node(n)
            h = node_from_tile(n, tiles[(level, index)])
            self._nodes.put(n, h)
            out[n] = h
        return out

    def _tiles_for(self, nodes: list[NodeID]) -> dict[tuple[int, int], bytes]:
        need: dict[tuple[int, int], int] = {}
        for n in nodes:
            level, index, offset, count = tile_for_node(n)
            need[(level, index)] = max(need.get((level, index), 0), (offset + count) * HASH_SIZE)
        have: dict[tuple[int, int], bytes] = {}
        fetch: list[tuple[int, int]] = []
        for key, length in need.items():
            cached = self._tiles.get(key)
            if cached is not None and len(cached) >= length:
                have[key] = cached
            else:
                fetch.append(key)
        if fetch:
            fetched = self.source.tiles(fetch)
            for key in fetch:
                data = fetched.get(key)
                if data is None or len(data) < need[key]:
                    raise LookupError(f"tile {key} is missing or too short")
                have[key] = data
                self._tiles.put(key, data)
        return have

    def remember(self, level: int, index: int, data: bytes) -> None:
        """Prime the tile cache with a tile just written (only full tiles are worth keeping)."""
        if len(data) == TILE_WIDTH * HASH_SIZE:
            self._tiles.put((level, index), data)


class DatabaseTiles:
    """``TileSource`` over the ``log_tile`` table, optionally inside an open connection (the sequencer's)."""

    def __init__(self, engine: Engine, conn: Connection | None = None) -> None:
        self._engine = engine
        self._conn = conn

    def tiles(self, ids: Iterable[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        keys = list(ids)
        if not keys:
            return {}
        stmt = select(_TILE.c.level, _TILE.c.idx, _TILE.c.data).where(
            tuple_(_TILE.c.level, _TILE.c.idx).in_(keys)
            if len(keys) > 1
            else and_(_TILE.c.level == keys[0][0], _TILE.c.idx == keys[0][1])
        )
        if self._conn is not None:
            rows = self._conn.execute(stmt).all()
        else:
            with self._engine.connect() as conn:
                rows = conn.execute(stmt).all()
        return {(r.level, r.idx): r.data for r in rows}


class OverlayTiles:
    """Tiles being written in the current batch, falling back to another source."""

    def __init__(self, fresh: Mapping[tuple[int, int], bytes], below: TileSource) -> None:
        self._fresh = fresh
        self._below = below

    def tiles(self, ids: Iterable[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        keys = list(ids)
        out = {k: self._fresh[k] for k in keys if k in self._fresh}
        rest = [k for k in keys if k not in out]
        if rest:
            out.update(self._below.tiles(rest))
        return out
