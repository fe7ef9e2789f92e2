"""C2SP tlog-tiles geometry: which tile holds which hashes, tile paths, and entry bundles. Pure functions.

Tiles have height 8: a tile at level ``L``, index ``N`` holds up to 256 hashes of Merkle level ``8L``, the
nodes ``256N .. 256N+255``. A node at any level is either stored in a tile (levels 8L) or computed from the
``2**k`` hashes below it in one tile (level ``8L + k``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from kernel.errors import MalformedInput
from ledger.merkle import HASH_SIZE, NodeID, node_hash

TILE_HEIGHT = 8
TILE_WIDTH = 1 << TILE_HEIGHT
MAX_LEVEL = 63
MAX_INDEX = (1 << 63) - 1
_GROUP = re.compile(r"^(?:x[0-9]{3}/)*[0-9]{3}$")  # ASCII digits only: \d would take other scripts' digits


@dataclass(frozen=True, slots=True)
class TileID:
    level: int  # tile level; -1 for an entry bundle
    index: int
    width: int = TILE_WIDTH  # 1..256; < 256 is a partial tile

    @property
    def is_partial(self) -> bool:
        return self.width < TILE_WIDTH

    def path(self) -> str:
        """The C2SP path below the log prefix, e.g. ``tile/0/x001/234`` or ``tile/entries/000.p/5``."""
        level = "entries" if self.level < 0 else str(self.level)
        suffix = f".p/{self.width}" if self.is_partial else ""
        return f"tile/{level}/{encode_index(self.index)}{suffix}"


def encode_index(n: int) -> str:
    """C2SP tile index: groups of three digits, all but the last prefixed with ``x``."""
    digits = f"{n:03d}"
    digits = "0" * (-len(digits) % 3) + digits
    groups = [digits[i : i + 3] for i in range(0, len(digits), 3)]
    return "/".join([f"x{g}" for g in groups[:-1]] + [groups[-1]])


def parse_tile_path(level: str, rest: str) -> TileID:
    """Parse ``<L>`` (or ``entries``) and ``<N>[.p/<W>]``. Raises ``MalformedInput`` for anything else."""
    if level == "entries":
        lvl = -1
    elif (
        level.isascii()
        and level.isdigit()
        and len(level) <= 2
        and int(level) <= MAX_LEVEL
        and str(int(level)) == level
    ):
        lvl = int(level)
    else:
        raise MalformedInput(
            f"Tile level {level[:20]!r} is not 0..63 or 'entries'.", slug="tile-path-invalid"
        )
    width = TILE_WIDTH
    index_part = rest
    if ".p/" in rest:
        index_part, _, w = rest.partition(".p/")
        if not (
            w.isascii() and w.isdigit() and len(w) <= 3 and str(int(w)) == w and 1 <= int(w) < TILE_WIDTH
        ):
            raise MalformedInput("Partial width must be 1..255.", slug="tile-path-invalid")
        width = int(w)
    if len(index_part) > 40 or not _GROUP.match(index_part):
        raise MalformedInput(
            "Tile index must be groups of three digits (x001/234).", slug="tile-path-invalid"
        )
    index = int(index_part.replace("x", "").replace("/", ""))
    if index > MAX_INDEX:
        raise MalformedInput("Tile index out of range.", slug="tile-path-invalid")
    return TileID(lvl, index, width)


def tile_for_node(node: NodeID) -> tuple[int, int, int, int]:
    """Where the hashes below ``node`` live: ``(tile level, tile index, first offset, count)``."""
    tile_level, k = divmod(node.level, TILE_HEIGHT)
    first = node.index << k
    return tile_level, first >> TILE_HEIGHT, first & (TILE_WIDTH - 1), 1 << k


def node_from_tile(node: NodeID, tile_data: bytes) -> bytes:
    """Compute ``node`` from the data of the tile that holds the hashes below it."""
    _, _, offset, count = tile_for_node(node)
    end = (offset + count) * HASH_SIZE
    if len(tile_data) < end:
        raise LookupError(f"tile too short for {node}")
    level = [tile_data[i : i + HASH_SIZE] for i in range(offset * HASH_SIZE, end, HASH_SIZE)]
    while len(level) > 1:
        level = [node_hash(level[i], level[i + 1]) for i in range(0, len(level), 2)]
    return level[0]


def tiles_for_size(size: int, level: int) -> tuple[int, int]:
    """``(full tiles, width of the trailing partial tile or 0)`` at tile ``level`` for a tree of ``size``."""
    hashes = size >> (TILE_HEIGHT * level)
    return hashes >> TILE_HEIGHT, hashes & (TILE_WIDTH - 1)


def tile_levels(size: int) -> Iterator[int]:
    level = 0
    while size >> (TILE_HEIGHT * level):
        yield level
        level += 1


def encode_bundle(entries: Sequence[bytes]) -> bytes:
    """C2SP entry bundle: each entry as big-endian uint16 length then the bytes."""
    out = bytearray()
    for e in entries:
        if len(e) > 0xFFFF:
            raise MalformedInput("Entry too long for a bundle.", slug="entry-too-long")
        out += len(e).to_bytes(2, "big") + e
    return bytes(out)


def decode_bundle(data: bytes) -> list[bytes]:
    """Inverse of :func:`encode_bundle`; raises ``MalformedInput`` on truncation."""
    out: list[bytes] = []
    pos = 0
    while pos < len(data):
        if pos + 2 > len(data):
            raise MalformedInput("Truncated entry bundle.", slug="bundle-malformed")
        n = int.from_bytes(data[pos : pos + 2], "big")
        if pos + 2 + n > len(data):
            raise MalformedInput("Truncated entry bundle.", slug="bundle-malformed")
        out.append(data[pos + 2 : pos + 2 + n])
        pos += 2 + n
    return out
