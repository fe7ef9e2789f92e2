"""Issuer benchmark: credentials issued and anchored per second in bulk, one issuance over HTTP, credential size.

Run: ``python -m bench.issue [--quick] [--count N] [--requests N] [--json FILE]``. SQLite always; PostgreSQL too
if it answers (``IMI_BENCH_PG_URL``, default ``postgresql://root@127.0.0.1:5432/test``, a fresh schema per run).

* bulk: ``IssuerService.issue_many`` in batches of 500 SD-JWT credentials, each bound to a holder key, with two
  status slots, anchored in the log, and its receipt (inclusion proof under a signed checkpoint) built: what the
  service does for every credential. Baseline in the same run: bare ES256 JWS signing of the same claims.
* HTTP: ``POST /issuer/credentials`` (officer token, ``holder_jwk``: sign + anchor + receipt) against
  ``imi serve``-equivalent uvicorn in a subprocess on 127.0.0.1, one request at a time; baseline ``GET /healthz``
  on the same connection.
* size: bytes of a typical ``RealNameIdentityCredential`` as the holder stores it, in both formats.
"""

from __future__ import annotations

import argparse
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import create_engine, text

from bench.common import PG_URL, Result, percentile, print_table, write_json
from imi.app import build_services
from issuer.credentials import PERSON_TYPE
from kernel.accounts import Role, create_token
from kernel.db import make_engine
from kernel.jose import public_jwk_dict, sign_jws
from kernel.settings import Settings
from schemas.issuer import CredentialFormat

BATCH = 500
SUBJECT = {
    "name": "王小明",
    "birthDate": "1949-12-31",
    "gender": "female",
    "nationality": "CHN",
    "address": "北京市东城区景山前街4号",
    "idNumber": "11010519491231002X",
}
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


@dataclass
class PgSchema:
    url: str
    schema: str

    def drop(self) -> None:
        engine = create_engine(_psycopg(PG_URL), isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE'))
        engine.dispose()


def _psycopg(url: str) -> str:
    return url.replace("postgresql://", "postgresql+psycopg://", 1)


def _fresh_pg_schema() -> PgSchema | None:
    try:
        engine = create_engine(_psycopg(PG_URL), isolation_level="AUTOCOMMIT")
        schema = f"bench_issue_{secrets.token_hex(4)}"
        with engine.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        engine.dispose()
    except Exception:
        return None
    return PgSchema(f"{PG_URL}?options=-csearch_path%3D{schema}", schema)


# ----------------------------------------------------------------------------------------------------- bulk


def bench_bulk(label: str, url: str | None, tmp: Path, count: int) -> list[Result]:
    services = build_services(Settings(data_dir=tmp, database_url=url, public_url="http://bench"))
    issuer = services.issuer
    holder = public_jwk_dict(ec.generate_private_key(ec.SECP256R1()))
    items = [(PERSON_TYPE, SUBJECT, None, None)] * BATCH
    issuer.issue_many(
        items[:10], CredentialFormat.SD_JWT, holder_jwks=[holder] * 10, valid_days=3650, actor="b"
    )
    done, receipts = 0, 0
    start = time.perf_counter()
    while done < count:
        n = min(BATCH, count - done)
        issued = issuer.issue_many(
            items[:n], CredentialFormat.SD_JWT, holder_jwks=[holder] * n, valid_days=3650, actor="bench"
        )
        receipts += sum(1 for i in issued if i.receipt is not None)
        done += n
    elapsed = time.perf_counter() - start
    assert receipts == count, "every credential must come back anchored, with its receipt"
    # The same work without building receipts: sign, store, append, then integrate until all are in the tree.
    start = time.perf_counter()
    before = services.log.latest().size
    done = 0
    while done < count:
        n = min(BATCH, count - done)
        issuer.issue_many(
            items[:n],
            CredentialFormat.SD_JWT,
            holder_jwks=[holder] * n,
            valid_days=3650,
            actor="bench",
            wait_for_receipt=False,
        )
        done += n
    while services.log.latest().size < before + count:
        if services.log.integrate_now() == 0:
            time.sleep(0.005)
    integrated = time.perf_counter() - start
    # Baseline: one bare ES256 signature over the same JSON claims, as many times.
    key = issuer.signing_key().private_key
    claims = {"credentialSubject": SUBJECT, "iss": issuer.did, "cnf": {"jwk": holder}, "exp": 2_000_000_000}
    start = time.perf_counter()
    for _ in range(count):
        sign_jws(claims, key, typ="vc+jwt")
    signing = time.perf_counter() - start
    services.engine.dispose()
    target = ">= 2,000/s on SQLite" if label == "SQLite" else ">= 1,000/s on PostgreSQL"
    return [
        Result(
            "issue",
            f"issued+anchored+receipt/s ({label}, {count:,})",
            count / elapsed,
            "/s",
            count / signing,
            "bare ES256 JWS signing of the same claims",
            target,
        ),
        Result("issue", f"issued+anchored, receipts on demand/s ({label})", count / integrated, "/s"),
    ]


# ----------------------------------------------------------------------------------------------------- HTTP


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _start_server(url: str | None, tmp: Path, port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "IMI_DATA_DIR": str(tmp),
        "IMI_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "IMI_LOG_LEVEL": "WARNING",
    }
    if url:
        env["IMI_DATABASE_URL"] = url
    else:
        env.pop("IMI_DATABASE_URL", None)
    cmd = [sys.executable, "-m", "uvicorn", "imi.app:create_app", "--factory", "--host", "127.0.0.1"]
    cmd += ["--port", str(port), "--log-level", "warning", "--no-access-log"]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _wait_ready(client: httpx.Client, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = proc.stderr.read().decode() if proc.stderr else ""
            raise RuntimeError(f"the server exited: {err[-2000:]}")
        try:
            if client.get("/readyz").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError("the server did not become ready in 30 s")


def bench_http(label: str, url: str | None, tmp: Path, requests: int) -> list[Result]:
    port = _free_port()
    proc = _start_server(url, tmp, port)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            _wait_ready(client, proc)
            engine = make_engine(url or f"sqlite:///{(tmp / 'imi.sqlite3').as_posix()}")
            officer = {"Authorization": f"Bearer {create_token(engine, role=Role.OFFICER, name='bench')}"}
            engine.dispose()
            check = client.post("/issuer/checks", json=CHECK, headers=officer)
            check.raise_for_status()
            body: dict[str, Any] = {
                "check_id": check.json()["id"],
                "format": "vc+sd-jwt",
                "holder_jwk": public_jwk_dict(ec.generate_private_key(ec.SECP256R1())),
            }
            sizes: dict[str, int] = {}
            for fmt in ("vc+sd-jwt", "vc+jwt"):
                resp = client.post("/issuer/credentials", json={**body, "format": fmt}, headers=officer)
                resp.raise_for_status()
                sizes[fmt] = len(resp.json()["credential"].encode())
            for _ in range(10):  # warm-up
                client.post("/issuer/credentials", json=body, headers=officer).raise_for_status()
                client.get("/healthz").raise_for_status()
            issue_ms, health_ms = [], []
            for _ in range(requests):
                t = time.perf_counter()
                resp = client.post("/issuer/credentials", json=body, headers=officer)
                issue_ms.append((time.perf_counter() - t) * 1e3)
                assert resp.status_code == 201, resp.text
                assert resp.json()["receipt"] is not None, "issued over HTTP means anchored, with a receipt"
                t = time.perf_counter()
                client.get("/healthz").raise_for_status()
                health_ms.append((time.perf_counter() - t) * 1e3)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
    out = [
        Result(
            "issue",
            f"HTTP issue p50 ({label}, {requests} sequential)",
            percentile(issue_ms, 50),
            "ms",
            percentile(health_ms, 50),
            "GET /healthz p50, same connection",
        ),
        Result(
            "issue",
            f"HTTP issue p99 ({label}, {requests} sequential)",
            percentile(issue_ms, 99),
            "ms",
            percentile(health_ms, 99),
            "GET /healthz p99, same connection",
            "<= 50 ms",
        ),
    ]
    if label == "SQLite":
        out += [
            Result("issue", "credential size, vc+sd-jwt (all disclosures)", sizes["vc+sd-jwt"], "bytes"),
            Result("issue", "credential size, vc+jwt", sizes["vc+jwt"], "bytes"),
        ]
    return out


def run(quick: bool = False, count: int | None = None, requests: int | None = None) -> list[Result]:
    count = count or (1_000 if quick else 20_000)
    requests = requests or (100 if quick else 1_000)
    results: list[Result] = []
    with tempfile.TemporaryDirectory() as tmp:
        results += bench_bulk("SQLite", None, Path(tmp) / "a", count)
        results += bench_http("SQLite", None, Path(tmp) / "b", requests)
        for step in ("bulk", "http"):
            pg = _fresh_pg_schema()
            if pg is None:
                print("PostgreSQL not reachable: SQLite only", file=sys.stderr)
                break
            try:
                if step == "bulk":
                    results += bench_bulk("PostgreSQL", pg.url, Path(tmp) / "c", count)
                else:
                    results += bench_http("PostgreSQL", pg.url, Path(tmp) / "d", requests)
            finally:
                pg.drop()
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="a short run (under a minute)")
    parser.add_argument("--count", type=int, help="credentials per bulk run")
    parser.add_argument("--requests", type=int, help="sequential HTTP issuances")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    found = run(args.quick, args.count, args.requests)
    print_table(found)
    if args.json:
        write_json(found, args.json)
