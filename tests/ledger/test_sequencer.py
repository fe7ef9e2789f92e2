"""One sequencer at a time: concurrent writer processes and a SIGKILLed writer leave one consistent log."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import create_engine, select

from kernel.db import make_engine
from ledger import merkle
from ledger.commitment import decode_leaf
from ledger.store import DatabaseTiles, NodeReader
from ledger.tables import LogCheckpoint, LogEntry

WRITER = Path(__file__).with_name("_writer.py")
ROOT = Path(__file__).resolve().parents[2]


def _spawn(url: str, data_dir: Path, count: int, mode: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(WRITER), url, str(data_dir), str(count), mode],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def _check_log(url: str, expected: int) -> list[bytes]:
    """Every index 0..n-1 exactly once, the root matches, and each checkpoint extends the previous one."""
    engine = make_engine(url)
    entry, cp = LogEntry.__table__, LogCheckpoint.__table__  # type: ignore[attr-defined]
    with engine.connect() as conn:
        rows = conn.execute(select(entry.c.idx, entry.c.leaf_input).order_by(entry.c.idx)).all()
        checkpoints = conn.execute(select(cp.c.size, cp.c.root).order_by(cp.c.size)).all()
    assert [r.idx for r in rows] == list(range(expected))
    hashes = [merkle.leaf_hash(r.leaf_input) for r in rows]
    assert checkpoints[-1].size == expected
    assert merkle.root_of(hashes) == checkpoints[-1].root
    reader = NodeReader(DatabaseTiles(engine))
    for prev, cur in itertools.pairwise(checkpoints):
        if prev.size == 0:
            continue
        plan = merkle.consistency_plan(prev.size, cur.size)
        proof = merkle.materialize(plan, reader.nodes(n for e in plan for n in e))
        merkle.verify_consistency(
            size1=prev.size, size2=cur.size, proof=proof, root1=prev.root, root2=cur.root
        )
    engine.dispose()
    return [r.leaf_input for r in rows]


def test_two_writer_processes_give_one_consistent_tree(database_url: str, tmp_path: Path) -> None:
    procs = [_spawn(database_url, tmp_path, 5000, "append") for _ in range(2)]
    for p in procs:
        assert p.wait(timeout=240) == 0
    leaves = _check_log(database_url, 10_000)
    assert len(set(leaves)) == 10_000
    assert {decode_leaf(x).event_type for x in leaves} == {"notarization"}


def test_sigkill_mid_batch_loses_no_acknowledged_entry(database_url: str, tmp_path: Path) -> None:
    proc = _spawn(database_url, tmp_path, 1_000_000, "ack")
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    acked: list[dict[str, object]] = []
    deadline = time.monotonic() + 60
    while len(acked) < 300 and time.monotonic() < deadline:
        acked.append(json.loads(proc.stdout.readline()))
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    assert len(acked) >= 300
    engine = create_engine(database_url.replace("postgresql://", "postgresql+psycopg://", 1))
    cp = LogCheckpoint.__table__  # type: ignore[attr-defined]
    with engine.connect() as conn:
        before = conn.execute(select(cp.c.size).order_by(cp.c.size.desc()).limit(1)).scalar_one()
    engine.dispose()
    restarted = _spawn(database_url, tmp_path, 10, "append")  # a new writer integrates what was pending
    assert restarted.wait(timeout=60) == 0
    engine = make_engine(database_url)
    entry = LogEntry.__table__  # type: ignore[attr-defined]
    with engine.connect() as conn:
        total = conn.execute(select(entry.c.idx).where(entry.c.idx.is_not(None))).scalars().all()
    engine.dispose()
    leaves = _check_log(database_url, len(total))
    assert len(leaves) >= before + 10
    for a in acked:
        assert decode_leaf(leaves[int(a["index"])]).commitment.hex() == a["commitment"]  # type: ignore[call-overload]
