"""Faults under load: a process SIGKILLed, PostgreSQL restarted, a database that cannot be written.

What must hold: the surviving processes keep serving; every acknowledged write (a 2xx answer carrying an anchor
receipt) is in the final log, proven against the final checkpoint; a database outage is answered 503
problem+json, never 500, and the service recovers by itself; a read-only database is a 503, not a crash.
Short forms run in CI; ``IMI_FULL=1`` runs each load phase longer.
"""

from __future__ import annotations

import base64
import os
import secrets
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import event, func, select

from imi.app import build_services, create_app
from kernel.accounts import Role, create_token
from kernel.db import make_engine
from kernel.settings import Settings
from ledger.commitment import decode_leaf
from ledger.monitor import HttpTiles, check_growth
from ledger.note import Checkpoint, NoteVerifier, open_checkpoint
from ledger.receipt import Receipt, verify_receipt
from ledger.store import NodeReader
from ledger.tables import LogEntry
from tests.conftest import PG_URL
from tests.issuer.issuer_fixtures import person_check
from tests.system.cluster import (
    FULL,
    PROBLEM_JSON,
    Cluster,
    free_port,
    problem_type,
    server_env,
    spawn,
    wait_ready,
)

PHASE = 20.0 if FULL else 3.0  # seconds of load before and after each fault
PG_CLUSTER = os.environ.get("IMI_TEST_PG_CLUSTER", "15 main")


@dataclass
class Outcome:
    server: int
    at: float
    status: int  # 0: no HTTP answer (connection refused or reset)
    problem: str = ""
    receipt: Receipt | None = None


@dataclass
class NotaryLoad:
    """Threads posting ``POST /log/entries?wait=true`` to every server until stopped; records every outcome."""

    bases: list[str]
    headers: dict[str, str]
    per_server: int = 2
    outcomes: list[Outcome] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> None:
        for i in range(len(self.bases)):
            for _ in range(self.per_server):
                t = threading.Thread(target=self._run, args=(i,), daemon=True)
                t.start()
                self._threads.append(t)

    def _run(self, server: int) -> None:
        with httpx.Client(timeout=30) as client:
            while not self._stop.is_set():
                outcome = self._one(client, server)
                with self._lock:
                    self.outcomes.append(outcome)
                if outcome.status != 202:
                    time.sleep(0.05)  # a refused or failing server is not hammered in a tight loop

    def _one(self, client: httpx.Client, server: int) -> Outcome:
        at = time.monotonic()
        try:
            resp = client.post(
                f"{self.bases[server]}/log/entries",
                params={"wait": "true"},
                json={"event_type": "notarization", "object_hash": secrets.token_hex(32)},
                headers=self.headers,
            )
        except httpx.HTTPError:
            return Outcome(server, at, 0)
        if resp.status_code // 100 == 2:
            return Outcome(server, at, resp.status_code, receipt=Receipt.model_validate(resp.json()))
        return Outcome(server, at, resp.status_code, problem_type(resp) or resp.text[:200])

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=60)

    @property
    def acked(self) -> list[Receipt]:
        return [o.receipt for o in self.outcomes if o.receipt is not None]


def _final_checkpoint(http: httpx.Client, base: str, verifier: NoteVerifier) -> Checkpoint:
    checkpoint, _ = open_checkpoint(
        http.get(f"{base}/log/checkpoint").text, log_verifier=verifier, expected_origin=verifier.name
    )
    return checkpoint


def _prove_all_in_log(http: httpx.Client, bases: list[str], receipts: list[Receipt]) -> Checkpoint:
    """Every receipt verifies offline and its checkpoint grows into the final one (tiles from another server);
    the leaf at its index carries its commitment."""
    verifier = NoteVerifier.from_vkey(http.get(f"{bases[0]}/log/vkey").text.strip())
    final = _final_checkpoint(http, bases[0], verifier)
    reader = NodeReader(HttpTiles(http, f"{bases[-1]}/log", final.size))
    for k, receipt in enumerate(receipts):
        check_growth(verify_receipt(receipt, log_verifier=verifier), final, reader)
        if k % 7 == 0 or k == len(receipts) - 1:  # spot checks of the leaves themselves
            leaf = http.get(f"{bases[k % len(bases)]}/log/entries/{receipt.index}").json()
            assert leaf["commitment"] == receipt.commitment
            assert decode_leaf(base64.b64decode(leaf["leaf_input"])).commitment.hex() == receipt.commitment
    return final


def _wait_integrated(url: str, deadline: float) -> tuple[int, int]:
    """Wait until no pending entry is left (the survivors integrate what the dead appended); (pending, total)."""
    engine = make_engine(url)
    table = LogEntry.__table__  # type: ignore[attr-defined]
    try:
        while True:
            with engine.connect() as conn:
                pending = conn.execute(select(func.count()).where(table.c.idx.is_(None))).scalar_one()
                total = conn.execute(select(func.count()).select_from(table)).scalar_one()
            if pending == 0 or time.monotonic() > deadline:
                return int(pending), int(total)
            time.sleep(0.2)
    finally:
        engine.dispose()


# ---------------------------------------------------------------------------------------------- (a) SIGKILL


def test_sigkill_of_one_process_during_notarizations_loses_no_acknowledged_receipt(
    system_database_url: str, tmp_path: Path
) -> None:
    cluster = Cluster.start(system_database_url, tmp_path / "cluster", 3)
    try:
        bases = [s.base for s in cluster.servers]
        load = NotaryLoad(bases, cluster.token(Role.NOTARY))
        load.start()
        time.sleep(PHASE)
        cluster[2].kill()
        killed_at = time.monotonic()
        time.sleep(PHASE)
        load.stop()
        survivors = bases[:2]
        after = Counter(o.server for o in load.outcomes if o.at > killed_at + 0.5 and o.receipt is not None)
        assert after[0] > 0, f"process 1 stopped serving: {after}"
        assert after[1] > 0, f"process 2 stopped serving: {after}"
        failures = [o for o in load.outcomes if o.receipt is None and not (o.server == 2 and o.status == 0)]
        assert not failures, f"survivors failed requests: {failures[:5]}"
        pending, total = _wait_integrated(system_database_url, time.monotonic() + 30)
        assert pending == 0, "entries the killed process appended were never integrated"
        with httpx.Client(timeout=30) as http:
            final = _prove_all_in_log(http, survivors, load.acked)
        assert final.size == total  # no gap: every appended entry got an index under the final checkpoint
        print(
            f"\nSIGKILL: {len(load.acked)} acknowledged receipts "
            f"({sum(1 for r in load.outcomes if r.server == 2 and r.receipt)} from the killed process), "
            f"all in the final log of {final.size}"
        )
    finally:
        cluster.stop()


# ------------------------------------------------------------------------------------- (b) PostgreSQL restart


def _pg_ready(timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if subprocess.run(["pg_isready", "-q", "-h", "127.0.0.1", "-p", "5432"], check=False).returncode == 0:
            return True
        time.sleep(0.3)
    return False


@pytest.mark.skipif(not PG_URL, reason="restarts PostgreSQL: runs when IMI_TEST_DATABASE_URL names one")
def test_postgres_restart_during_load_gives_503_then_recovers_without_restarting_the_service(
    system_database_url: str, tmp_path: Path
) -> None:
    cluster = Cluster.start(system_database_url, tmp_path / "cluster", 2)
    try:
        bases = [s.base for s in cluster.servers]
        load = NotaryLoad(bases, cluster.token(Role.NOTARY))
        readers = _Readers(bases)
        load.start()
        readers.start()
        time.sleep(PHASE)
        began = time.monotonic()
        restart = subprocess.run(
            ["pg_ctlcluster", "--skip-systemctl-redirect", *PG_CLUSTER.split(), "restart"],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert restart.returncode == 0, restart.stderr
        assert _pg_ready(), "PostgreSQL did not come back"
        back = time.monotonic()
        deadline = back + 30 + PHASE
        while time.monotonic() < deadline:  # recovery is bounded: both processes must acknowledge again
            recovered = Counter(
                o.server for o in list(load.outcomes) if o.at > back and o.receipt is not None
            )
            if all(recovered[i] >= 5 for i in range(len(bases))) and time.monotonic() > back + PHASE:
                break
            time.sleep(0.2)
        load.stop()
        readers.stop()
        assert all(s.alive() for s in cluster.servers), "a process died with the database"
        recovered = Counter(o.server for o in load.outcomes if o.at > back and o.receipt is not None)
        assert all(recovered[i] >= 5 for i in range(len(bases))), f"no recovery within 30 s: {recovered}"
        answers = [(o.status, o.problem) for o in load.outcomes if o.receipt is None] + readers.failures
        assert all(status == 503 for status, _ in answers), Counter(answers)
        assert answers, "the restart produced no failed request at all: the outage was not exercised"
        assert readers.non_problem == 0, "a 503 without problem+json"
        with httpx.Client(timeout=30) as http:
            _prove_all_in_log(http, bases, load.acked)
        print(
            f"\nPostgreSQL restart: outage {back - began:.1f} s, answers during it {Counter(answers)}, "
            f"{len(load.acked)} acknowledged receipts all in the final log"
        )
    finally:
        _pg_ready()
        cluster.stop()


class _Readers:
    """Readers hitting /readyz and /log/checkpoint during the outage: 200 or 503 problem+json, nothing else."""

    def __init__(self, bases: list[str]) -> None:
        self.bases = bases
        self.failures: list[tuple[int, str]] = []
        self.non_problem = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        with httpx.Client(timeout=30) as client:
            while not self._stop.is_set():
                for base in self.bases:
                    for path in ("/readyz", "/log/checkpoint"):
                        resp = client.get(base + path)
                        if resp.status_code != 200:
                            self.failures.append((resp.status_code, problem_type(resp)))
                            if not resp.headers.get("content-type", "").startswith(PROBLEM_JSON):
                                self.non_problem += 1
                time.sleep(0.05)


# ----------------------------------------------------------------------------------- (c) read-only database


def _migrated_sqlite(data_dir: Path, master: str) -> tuple[Path, dict[Role, str]]:
    services = build_services(
        Settings(data_dir=data_dir, public_url="http://localhost", master_key=master, log_batch_interval=0.1)
    )
    tokens = {
        role: create_token(services.engine, role=role, name="ro") for role in (Role.NOTARY, Role.OFFICER)
    }
    services.engine.dispose()
    return data_dir / "imi.sqlite3", tokens


WRITES: list[tuple[str, str, dict[str, Any], Role | None]] = [
    ("post", "/log/entries?wait=true", {"object_hash": "ab" * 32}, Role.NOTARY),
    ("post", "/issuer/checks", person_check(), Role.OFFICER),
    ("post", "/verifier/requests", {"claims": ["name"]}, None),
    ("post", "/oid4vci/nonce", {}, None),
    ("post", "/wallet/login/start", {}, None),
]


def test_read_only_sqlite_database_answers_503_problem_not_a_crash(tmp_path: Path) -> None:
    master = base64.b64encode(secrets.token_bytes(32)).decode()
    data_dir = tmp_path / "data"
    db, tokens = _migrated_sqlite(data_dir, master)
    port = free_port()
    url = f"sqlite:///file:{db}?mode=ro&uri=true"
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    env = server_env(url, data_dir, f"http://localhost:{port}", master)
    server = spawn(port, env, tmp_path / "server.log", cwd)
    try:
        wait_ready([server])
        with httpx.Client(timeout=30, base_url=server.base) as http:
            assert http.get("/log/checkpoint").status_code == 200  # reads still work
            for method, path, body, role in WRITES:
                headers = {"Authorization": f"Bearer {tokens[role]}"} if role else {}
                resp = http.request(method, path, json=body, headers=headers)
                assert resp.status_code == 503, (path, resp.status_code, resp.text)
                assert resp.headers["content-type"].startswith(PROBLEM_JSON)
                assert resp.headers.get("retry-after")
                assert problem_type(resp) == "database-unavailable", resp.text
            assert server.alive()
            assert http.get("/healthz").status_code == 200
    finally:
        server.stop()


class _ReadOnlySwitch:
    """Flip a SQLite engine to ``PRAGMA query_only`` at runtime: what a disk remounted read-only looks like to
    SQLite (SQLITE_READONLY on every write), on the connections the pool already holds."""

    def __init__(self, app: FastAPI) -> None:
        self.on = False
        event.listen(app.state.engine, "checkout", self._checkout)

    def _checkout(self, dbapi_conn: Any, _record: Any, _proxy: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA query_only={'ON' if self.on else 'OFF'}")
        cur.close()


@pytest.fixture
def sqlite_app(tmp_path: Path) -> Iterator[FastAPI]:
    app = create_app(
        Settings(data_dir=tmp_path / "data", public_url="http://testserver", log_batch_interval=0.05)
    )
    yield app
    app.state.engine.dispose()


def test_database_turning_read_only_at_runtime_gives_503_then_recovers(sqlite_app: FastAPI) -> None:
    switch = _ReadOnlySwitch(sqlite_app)
    notary = {"Authorization": f"Bearer {create_token(sqlite_app.state.engine, role=Role.NOTARY, name='ro')}"}
    body = {"event_type": "notarization", "object_hash": secrets.token_hex(32)}
    with TestClient(sqlite_app) as client:
        assert client.post("/log/entries?wait=true", json=body, headers=notary).status_code == 202
        switch.on = True
        for _ in range(3):
            resp = client.post(
                "/log/entries?wait=true",
                json={**body, "object_hash": secrets.token_hex(32)},
                headers=notary,
            )
            assert resp.status_code == 503, resp.text
            assert problem_type(resp) == "database-unavailable"
            assert client.post("/verifier/requests", json={"claims": ["name"]}).status_code == 503
            assert client.get("/log/checkpoint").status_code == 200
        switch.on = False  # the disk is writable again: no restart needed
        again = client.post(
            "/log/entries?wait=true", json={**body, "object_hash": secrets.token_hex(32)}, headers=notary
        )
        assert again.status_code == 202, again.text
        assert Receipt.model_validate(again.json()).index == 1
