"""Mixed load on one ``imi serve`` over loopback: kiosk scans, issuances, notarizations, for N seconds.

Run: ``python -m bench.load [--quick] [--seconds S] [--database-url URL] [--json FILE]``.
SQLite always; PostgreSQL too (a fresh schema) if it answers and ``--database-url`` is not given.

* The server is ``python -m imi.cli serve`` (exactly what ``imi serve`` runs: one uvicorn worker) in a
  subprocess on 127.0.0.1, its verifier reading the issuer over HTTP (did:web, status lists) as deployed.
* The load is bounded and paced: closed-loop workers, each at most ``RATE`` requests per second
  (kiosks 4 x 8/s posting ``/verifier/scan`` with pre-made presentations, each used once: the replay cache
  refuses a second use; officers 2 x 4/s posting ``/issuer/credentials`` with a ``holder_jwk``, signed,
  anchored, with receipt; notaries 2 x 8/s posting ``/log/entries?wait=true``, answered with the receipt).
  Presentations are made ahead in batches by a producer thread, so that every KB-JWT is fresh (kiosks accept
  an ``iat`` within 120 s) and the signing cost stays out of the measured request.
* Reported: requests, errors (must be 0), p50 / p99 per operation (same-run baseline: ``GET /healthz``, sampled
  through the run by its own worker), and the server's resident memory (RSS, psutil or ``/proc/<pid>/status``)
  sampled every 0.5 s: median of the last third against the first third of the run (flat means no leak).
"""

from __future__ import annotations

import argparse
import os
import queue
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import create_engine, text

from bench.common import PG_URL, Result, percentile, print_table, write_json
from kernel.accounts import Role, create_token
from kernel.db import make_engine
from kernel.jose import public_jwk_dict
from kernel.sdjwt import present

ROOT = Path(__file__).resolve().parent.parent
QR_AUDIENCE = "urn:imi:qr-presentation"
CHECK = {
    "kind": "person",
    "counter": "district-3/counter-7",
    "methods": ["id-card-chip", "face-match"],
    "document_number": "11010519491231002X",
    "name": "王小明",
    "birth_date": "1949-12-31",
    "sex": "F",
    "address": "北京市东城区景山前街4号",
    "face_match": {"score": 0.97, "threshold": 0.9},
}
# operation -> (workers, requests per second per worker)
RATE: dict[str, tuple[int, float]] = {
    "scan": (4, 8.0),
    "issue": (2, 4.0),
    "notarize": (2, 8.0),
    "healthz": (1, 5.0),
}
FRESH_FOR = 60.0  # seconds a pre-made presentation may wait in the queue (kiosks accept 120 s)


# ------------------------------------------------------------------------------------------------- server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    base: str
    url: str
    log: Path

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


def start_server(url: str, data_dir: Path) -> Server:
    port = free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMI_")}
    env.update(
        PYTHONPATH=str(ROOT),
        IMI_DATABASE_URL=url,
        IMI_DATA_DIR=str(data_dir),
        IMI_PUBLIC_URL=f"http://127.0.0.1:{port}",
        IMI_LOG_LEVEL="WARNING",
        IMI_RATE_LIMIT_EXEMPT='["127.0.0.0/8"]',  # one load generator is not one abusive client
    )
    log = data_dir / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "imi.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            cwd=data_dir,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = Server(proc, f"http://127.0.0.1:{port}", url, log)
    deadline = time.monotonic() + 60
    with httpx.Client(timeout=5) as client:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"imi serve exited: {log.read_text(errors='replace')[-2000:]}")
            try:
                if client.get(f"{server.base}/readyz").status_code == 200:
                    return server
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                server.stop()
                raise RuntimeError("imi serve did not become ready in 60 s")
            time.sleep(0.1)


def rss_bytes(pid: int) -> int:
    """Resident set size of ``pid``: psutil if installed, else ``VmRSS`` from ``/proc``."""
    try:
        import psutil

        return int(psutil.Process(pid).memory_info().rss)
    except ImportError:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no RSS for the server process")


# --------------------------------------------------------------------------------------------------- load


@dataclass
class Stats:
    latencies_ms: dict[str, list[float]] = field(default_factory=dict)
    errors: dict[str, list[str]] = field(default_factory=dict)
    rss: list[tuple[float, int]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def ok(self, op: str, ms: float) -> None:
        with self.lock:
            self.latencies_ms.setdefault(op, []).append(ms)

    def error(self, op: str, what: str) -> None:
        with self.lock:
            self.errors.setdefault(op, []).append(what[:300])


@dataclass
class Fixture:
    officer: dict[str, str]
    notary: dict[str, str]
    check_ids: list[str]
    holder_key: ec.EllipticCurvePrivateKey
    credential: str
    receipt: dict[str, Any] | None


def prepare(server: Server) -> Fixture:
    engine = make_engine(server.url)
    try:
        officer = {"Authorization": f"Bearer {create_token(engine, role=Role.OFFICER, name='load')}"}
        notary = {"Authorization": f"Bearer {create_token(engine, role=Role.NOTARY, name='load')}"}
    finally:
        engine.dispose()
    key = ec.generate_private_key(ec.SECP256R1())
    with httpx.Client(base_url=server.base, timeout=30) as client:
        check_ids = []
        for _ in range(8):
            resp = client.post("/issuer/checks", json=CHECK, headers=officer)
            resp.raise_for_status()
            check_ids.append(str(resp.json()["id"]))
        issued = client.post(
            "/issuer/credentials",
            json={"check_id": check_ids[0], "holder_jwk": public_jwk_dict(key)},
            headers=officer,
        )
        issued.raise_for_status()
    body = issued.json()
    return Fixture(officer, notary, check_ids, key, body["credential"], body["receipt"])


def _presentation(fx: Fixture) -> str:
    extra = {"imi_receipt": fx.receipt} if fx.receipt else None
    return present(
        fx.credential,
        disclose=[("credentialSubject", c) for c in ("name", "birthDate", "nationality")],
        holder_key=fx.holder_key,
        aud=QR_AUDIENCE,
        nonce=secrets.token_urlsafe(12),
        iat=int(time.time()),
        extra_kb_claims=extra,
    )


def _producer(fx: Fixture, out: queue.Queue[tuple[float, str]], stop: threading.Event, depth: int) -> None:
    while not stop.is_set():
        if out.qsize() < depth:
            out.put((time.monotonic(), _presentation(fx)))
        else:
            stop.wait(0.01)


def _paced(
    op: str, rate: float, stop: threading.Event, stats: Stats, call: Callable[[], httpx.Response], ok: int
) -> None:
    period = 1.0 / rate
    next_at = time.monotonic()
    while not stop.is_set():
        t = time.perf_counter()
        try:
            resp = call()
        except (httpx.HTTPError, queue.Empty) as exc:
            stats.error(op, f"{type(exc).__name__}: {exc}")
        else:
            if resp.status_code == ok:
                stats.ok(op, (time.perf_counter() - t) * 1e3)
            else:
                stats.error(op, f"{resp.status_code} {resp.text}")
        next_at += period
        stop.wait(max(0.0, next_at - time.monotonic()))


def run_load(server: Server, fx: Fixture, seconds: float) -> Stats:
    stats = Stats()
    stop = threading.Event()
    pool: queue.Queue[tuple[float, str]] = queue.Queue()
    scans = RATE["scan"][0] * RATE["scan"][1]
    producer = threading.Thread(target=_producer, args=(fx, pool, stop, int(scans * 3) + 10), daemon=True)
    producer.start()
    clients: list[httpx.Client] = []
    threads: list[threading.Thread] = []

    def client() -> httpx.Client:
        c = httpx.Client(base_url=server.base, timeout=60)
        clients.append(c)
        return c

    def scan(c: httpx.Client) -> Callable[[], httpx.Response]:
        def call() -> httpx.Response:
            while True:
                made, text_ = pool.get(timeout=10)
                if time.monotonic() - made < FRESH_FOR:
                    return c.post("/verifier/scan", json={"qr": text_, "verifier_id": "load-kiosk"})

        return call

    def issue(c: httpx.Client, i: int) -> Callable[[], httpx.Response]:
        holder = public_jwk_dict(ec.generate_private_key(ec.SECP256R1()))
        counter = [i]

        def call() -> httpx.Response:
            counter[0] += 1
            check_id = fx.check_ids[counter[0] % len(fx.check_ids)]
            return c.post(
                "/issuer/credentials", json={"check_id": check_id, "holder_jwk": holder}, headers=fx.officer
            )

        return call

    def notarize(c: httpx.Client) -> Callable[[], httpx.Response]:
        def call() -> httpx.Response:
            return c.post(
                "/log/entries",
                params={"wait": "true"},
                json={"event_type": "notarization", "object_hash": secrets.token_hex(32)},
                headers=fx.notary,
            )

        return call

    def healthz(c: httpx.Client) -> Callable[[], httpx.Response]:
        return lambda: c.get("/healthz")

    plan: list[tuple[str, Callable[[], httpx.Response], int]] = []
    for _ in range(RATE["scan"][0]):
        plan.append(("scan", scan(client()), 200))
    for i in range(RATE["issue"][0]):
        plan.append(("issue", issue(client(), i), 201))
    for _ in range(RATE["notarize"][0]):
        plan.append(("notarize", notarize(client()), 202))
    plan.append(("healthz", healthz(client()), 200))
    started = time.monotonic()
    for op, call, ok in plan:
        t = threading.Thread(target=_paced, args=(op, RATE[op][1], stop, stats, call, ok), daemon=True)
        t.start()
        threads.append(t)
    deadline = started + seconds
    while time.monotonic() < deadline:
        stats.rss.append((time.monotonic() - started, rss_bytes(server.proc.pid)))
        if server.proc.poll() is not None:
            stats.error("server", f"the server exited with {server.proc.returncode}")
            break
        time.sleep(min(0.5, max(0.0, deadline - time.monotonic())))
    stop.set()
    for t in [*threads, producer]:
        t.join(timeout=70)
    for c in clients:
        c.close()
    return stats


# ------------------------------------------------------------------------------------------------ results


def _third_medians(samples: list[tuple[float, int]]) -> tuple[float, float]:
    values = [v for _, v in samples]
    third = max(1, len(values) // 3)
    return statistics.median(values[:third]), statistics.median(values[-third:])


def results_of(label: str, stats: Stats, seconds: float) -> list[Result]:
    out: list[Result] = []
    errors = sum(len(v) for v in stats.errors.values())
    total = sum(len(v) for v in stats.latencies_ms.values())
    out.append(
        Result("load", f"requests ok ({label}, {seconds:g} s, mixed)", total, "req", target="no errors")
    )
    out.append(Result("load", f"errors ({label})", errors, "req", target="0"))
    health = stats.latencies_ms.get("healthz", [])
    names = {
        "scan": "POST /verifier/scan",
        "issue": "POST /issuer/credentials",
        "notarize": "POST /log/entries?wait",
    }
    for op, name in names.items():
        lat = stats.latencies_ms.get(op, [])
        if not lat:
            continue
        out.append(
            Result(
                "load",
                f"{name} p50 ({label}, {len(lat) / seconds:.1f}/s)",
                percentile(lat, 50),
                "ms",
                percentile(health, 50) if health else None,
                "GET /healthz p50, same run" if health else "",
            )
        )
        out.append(
            Result(
                "load",
                f"{name} p99 ({label})",
                percentile(lat, 99),
                "ms",
                percentile(health, 99) if health else None,
                "GET /healthz p99, same run" if health else "",
            )
        )
    if len(stats.rss) >= 3:
        first, last = _third_medians(stats.rss)
        out.append(
            Result(
                "load",
                f"server RSS, last third of the run ({label})",
                last / 2**20,
                "MiB",
                first / 2**20,
                "server RSS, first third of the same run",
                "flat: ratio <= 1.10",
            )
        )
    return out


def _fresh_pg_schema() -> tuple[str, Callable[[], None]] | None:
    try:
        engine = create_engine(
            PG_URL.replace("postgresql://", "postgresql+psycopg://", 1), isolation_level="AUTOCOMMIT"
        )
        schema = f"bench_load_{secrets.token_hex(4)}"
        with engine.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception:
        return None

    def drop() -> None:
        with engine.connect() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        engine.dispose()

    return f"{PG_URL}?options=-csearch_path%3D{schema}", drop


def bench_one(label: str, url: str, data_dir: Path, seconds: float) -> list[Result]:
    server = start_server(url, data_dir)
    try:
        fx = prepare(server)
        stats = run_load(server, fx, seconds)
    finally:
        server.stop()
    for op, errs in stats.errors.items():
        print(f"warning: {len(errs)} {op} errors ({label}), first: {errs[0]}", file=sys.stderr)
    return results_of(label, stats, seconds)


def run(quick: bool = False, seconds: float | None = None, database_url: str | None = None) -> list[Result]:
    seconds = seconds or (15.0 if quick else 120.0)
    results: list[Result] = []
    with tempfile.TemporaryDirectory() as tmp:
        if database_url:
            return bench_one("given DB", database_url, Path(tmp) / "x", seconds)
        results += bench_one(
            "SQLite", f"sqlite:///{Path(tmp) / 'a' / 'imi.sqlite3'}", Path(tmp) / "a", seconds
        )
        pg = _fresh_pg_schema()
        if pg is None:
            print("PostgreSQL not reachable: SQLite only", file=sys.stderr)
            return results
        url, drop = pg
        try:
            results += bench_one("PostgreSQL", url, Path(tmp) / "b", seconds)
        finally:
            drop()
    return results


def errors_in(results: list[Result]) -> int:
    return int(sum(r.value for r in results if r.bench == "load" and r.metric.startswith("errors")))


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="15 s per database instead of 120 s")
    parser.add_argument("--seconds", type=float, help="duration of the load on each database")
    parser.add_argument("--database-url", help="one database only (default: SQLite, then PostgreSQL if up)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    found = run(args.quick, args.seconds, args.database_url)
    print_table(found)
    if args.json:
        write_json(found, args.json)
    sys.exit(1 if errors_in(found) else 0)
