"""Log benchmark: appends integrated per second, integration latency, inclusion-proof time at 1M leaves.

Run: ``python -m bench.ledger [--quick] [--leaves N]``. SQLite always; PostgreSQL if it answers.
Baselines in the same run: a plain ``executemany`` INSERT of the same rows into an unindexed table (what the
database alone can do), and one primary-key SELECT (the floor under any proof served from the database).
"""

from __future__ import annotations

import argparse
import random
import secrets
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import Column, Integer, LargeBinary, MetaData, Table, insert, select, text

from bench.common import PG_URL, Result, median, percentile, print_table
from imi.app import build_services
from kernel.settings import Settings
from ledger import merkle


def _fresh_pg_schema() -> str | None:
    from sqlalchemy import create_engine

    try:
        engine = create_engine(
            PG_URL.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT"
        )
        with engine.connect() as conn:
            schema = f"bench_{secrets.token_hex(4)}"
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        engine.dispose()
    except Exception:
        return None
    return f"{PG_URL}?options=-csearch_path%3D{schema}"


def bench_appends(label: str, url: str | None, tmp: Path, count: int) -> list[Result]:
    services = build_services(Settings(data_dir=tmp, database_url=url, public_url="http://bench"))
    log = services.log
    items = [("notarization", secrets.token_bytes(32)) for _ in range(count)]
    chunk = 10_000
    start = time.perf_counter()
    for i in range(0, count, chunk):
        log.append_many(items[i : i + chunk])
        while log.integrate_now():
            pass
    elapsed = time.perf_counter() - start
    # baseline: the same number of rows through a plain executemany INSERT, same database
    meta = MetaData()
    plain = Table(
        f"bench_plain_{secrets.token_hex(3)}",
        meta,
        Column("id", Integer, primary_key=True),
        Column("data", LargeBinary),
    )
    meta.create_all(services.engine)
    rows = [{"data": b"imi-log-v1\x00notarization\x00" + h} for _, h in items]
    t = time.perf_counter()
    for i in range(0, count, chunk):
        with services.engine.begin() as conn:
            conn.execute(insert(plain), rows[i : i + chunk])
    base = time.perf_counter() - t
    latencies = []
    for _ in range(30):
        t = time.perf_counter()
        log.wait_receipts([log.append("notarization", secrets.token_bytes(32))])
        latencies.append((time.perf_counter() - t) * 1000)
    services.engine.dispose()
    return [
        Result(
            "ledger",
            f"appends integrated/s ({label}, {count:,})",
            count / elapsed,
            "/s",
            count / base,
            "plain executemany INSERT, same rows",
            ">= 20,000/s in-process on SQLite",
        ),
        Result("ledger", f"append->receipt p50 ({label}, on demand)", percentile(latencies, 50), "ms"),
        Result("ledger", f"append->receipt p99 ({label}, on demand)", percentile(latencies, 99), "ms"),
    ]


def bench_proofs(label: str, url: str | None, tmp: Path, leaves: int) -> list[Result]:
    services = build_services(Settings(data_dir=tmp, database_url=url, public_url="http://bench"))
    log = services.log
    chunk = 50_000
    have = log.latest().size
    while have < leaves:
        n = min(chunk, leaves - have)
        log.append_many([("notarization", secrets.token_bytes(32)) for _ in range(n)])
        while log.integrate_now():
            pass
        have = log.latest().size
    size = log.latest().size
    root = log.root_at(size)
    rng = random.Random(7)
    indices = [rng.randrange(size) for _ in range(2000)]
    cold = []
    for i in indices[:1000]:
        t = time.perf_counter()
        log.inclusion_proof(i, size)
        cold.append((time.perf_counter() - t) * 1e3)
    warm = []
    for i in indices[:1000]:
        t = time.perf_counter()
        log.inclusion_proof(i, size)
        warm.append((time.perf_counter() - t) * 1e3)
    leaf = log.leaf(indices[0])
    merkle.verify_inclusion(
        leaf_hash=merkle.leaf_hash(leaf),
        index=indices[0],
        tree_size=size,
        proof=log.inclusion_proof(indices[0], size),
        root=root,
    )
    from ledger.tables import LogEntry

    table = LogEntry.__table__  # type: ignore[attr-defined]
    with services.engine.connect() as conn:
        pk = []
        for i in indices[:1000]:
            t = time.perf_counter()
            conn.execute(select(table.c.leaf_input).where(table.c.idx == i)).scalar_one()
            pk.append((time.perf_counter() - t) * 1e3)
    services.engine.dispose()
    return [
        Result(
            "ledger",
            f"inclusion proof, {size:,} leaves, cold ({label})",
            median(cold),
            "ms",
            median(pk),
            "one primary-key SELECT",
            "<= 1 ms in-process",
        ),
        Result("ledger", f"inclusion proof, {size:,} leaves, p99 cold ({label})", percentile(cold, 99), "ms"),
        Result("ledger", f"inclusion proof, {size:,} leaves, warm ({label})", median(warm), "ms"),
    ]


def run(quick: bool = False, leaves: int | None = None) -> list[Result]:
    appends = 20_000 if quick else 200_000
    leaves = leaves or (50_000 if quick else 1_000_000)
    results: list[Result] = []
    with tempfile.TemporaryDirectory() as tmp:
        results += bench_appends("SQLite", None, Path(tmp) / "a", appends)
        results += bench_proofs("SQLite", None, Path(tmp) / "b", leaves)
        pg = _fresh_pg_schema()
        if pg:
            results += bench_appends("PostgreSQL", pg, Path(tmp) / "c", appends)
            pg2 = _fresh_pg_schema()
            results += bench_proofs("PostgreSQL", pg2, Path(tmp) / "d", leaves)
        else:
            print("PostgreSQL not reachable: SQLite only", file=sys.stderr)
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--leaves", type=int)
    args = parser.parse_args()
    print_table(run(args.quick, args.leaves))
