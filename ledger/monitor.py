"""A log monitor: follow a log over HTTP, check every checkpoint's signature and its consistency with the last.

Consistency proofs are computed here from the log's C2SP tiles, not taken from the log's JSON endpoint, so a
log cannot lie its way through: the proof must match both signed roots.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import httpx

from kernel.errors import InfrastructureFailure, VerificationFailed
from ledger import merkle
from ledger.note import Checkpoint, NoteVerifier, open_checkpoint
from ledger.store import NodeReader
from ledger.tiles import TileID, tiles_for_size


class HttpTiles:
    """``TileSource`` reading ``<base>/tile/...`` of a log whose latest size is ``size``."""

    def __init__(self, client: httpx.Client, base_url: str, size: int) -> None:
        self._client = client
        self._base = base_url.rstrip("/")
        self.size = size

    def tiles(self, ids: Iterable[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        out: dict[tuple[int, int], bytes] = {}
        for level, index in ids:
            full, width = tiles_for_size(self.size, level)
            tid = TileID(level, index) if index < full else TileID(level, index, width)
            resp = self._client.get(f"{self._base}/{tid.path()}")
            if resp.status_code != 200:
                raise InfrastructureFailure(
                    f"GET {tid.path()} answered {resp.status_code}.", slug="log-unreachable"
                )
            out[(level, index)] = resp.content
        return out


@dataclass(frozen=True)
class Observation:
    checkpoint: Checkpoint
    note: str


def check_growth(previous: Checkpoint | None, current: Checkpoint, reader: NodeReader | None) -> None:
    """Raise ``VerificationFailed`` if ``current`` is not an append-only extension of ``previous``.

    Slugs: ``log-rollback`` (the tree shrank), ``log-fork`` (same size, other root, or the consistency proof
    from the tiles fails).
    """
    if previous is None:
        return
    if current.size < previous.size:
        raise VerificationFailed(
            f"The log shrank from {previous.size} to {current.size}.", slug="log-rollback"
        )
    if current.size == previous.size:
        if current.root_hash != previous.root_hash:
            raise VerificationFailed(f"Two different roots for size {current.size}.", slug="log-fork")
        return
    if previous.size == 0:
        return
    assert reader is not None
    plan = merkle.consistency_plan(previous.size, current.size)
    try:
        proof = merkle.materialize(plan, reader.nodes(n for e in plan for n in e))
        merkle.verify_consistency(
            size1=previous.size,
            size2=current.size,
            proof=proof,
            root1=previous.root_hash,
            root2=current.root_hash,
        )
    except (VerificationFailed, LookupError) as exc:
        raise VerificationFailed(
            f"Checkpoint {current.size} is not consistent with {previous.size}: the log forked or was rewritten.",
            slug="log-fork",
        ) from exc


def observe(
    client: httpx.Client, base_url: str, verifier: NoteVerifier, previous: Checkpoint | None
) -> Observation:
    """Fetch and verify the latest checkpoint, then prove it extends ``previous``."""
    resp = client.get(f"{base_url.rstrip('/')}/checkpoint")
    if resp.status_code != 200:
        raise InfrastructureFailure(f"GET checkpoint answered {resp.status_code}.", slug="log-unreachable")
    checkpoint, _ = open_checkpoint(resp.text, log_verifier=verifier, expected_origin=verifier.name)
    reader = NodeReader(HttpTiles(client, base_url, checkpoint.size))
    check_growth(previous, checkpoint, reader)
    return Observation(checkpoint, resp.text)
