"""``kernel.ratelimit``: a fixed window per (scope, client) in the database, shared by every process on it."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, func, select

from imi import migrate
from kernel import problems, ratelimit
from kernel.db import make_engine
from kernel.ratelimit import RATE_LIMIT, FixedWindowLimiter, RateLimit
from tests.system.cluster import PROBLEM_JSON, ROOT, problem_type


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _app(engine: Engine, clock: Clock, *, limit: int = 3, per: int = 60) -> FastAPI:
    app = FastAPI()
    app.state.engine = engine
    problems.install(app, max_body_bytes=1024)
    ratelimit.install(app)
    login = RateLimit(limit, per, scope="login", clock=clock)

    @app.post("/login/start", dependencies=[Depends(login)])
    def start() -> dict[str, bool]:
        return {"ok": True}

    @app.post("/login/finish", dependencies=[Depends(login)])
    def finish() -> dict[str, bool]:
        return {"ok": True}

    @app.post("/token", dependencies=[Depends(RateLimit(limit, per, clock=clock))])
    def token() -> dict[str, bool]:
        return {"ok": True}

    return app


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    eng = make_engine(database_url)
    migrate.upgrade(eng)
    yield eng
    eng.dispose()


def test_over_the_limit_is_429_problem_with_retry_after(engine: Engine) -> None:
    clock = Clock(1_000_040.0)  # 20 s into a 60 s window (windows start at multiples of 60)
    client = TestClient(_app(engine, clock))
    assert [client.post("/token").status_code for _ in range(3)] == [200, 200, 200]
    refused = client.post("/token")
    assert refused.status_code == 429
    assert refused.headers["content-type"].startswith(PROBLEM_JSON)
    assert problem_type(refused) == "rate-limited"
    assert refused.headers["retry-after"] == "40"
    assert refused.json()["retry_after"] == 40
    clock.now += 40  # the next window
    assert client.post("/token").status_code == 200


def test_buckets_are_per_client_and_per_scope(engine: Engine) -> None:
    clock = Clock()
    app = _app(engine, clock, limit=2)
    alice = TestClient(app, client=("192.0.2.1", 5000))
    bob = TestClient(app, client=("192.0.2.2", 5000))
    assert [alice.post(p).status_code for p in ("/login/start", "/login/finish", "/login/start")] == [
        200,
        200,
        429,
    ]
    assert bob.post("/login/start").status_code == 200  # another client address, another bucket
    assert alice.post("/token").status_code == 200  # another scope (the route's path), another bucket


def test_parallel_hits_never_pass_more_than_the_limit(engine: Engine) -> None:
    limiter = FixedWindowLimiter(engine, limit=25, per_seconds=3600, clock=Clock())
    with ThreadPoolExecutor(8) as pool:
        waits = list(pool.map(lambda _: limiter.hit("s", "c"), range(80)))
    assert waits.count(0) == 25


def test_the_count_is_shared_by_processes_on_one_database(engine: Engine, database_url: str) -> None:
    """Two other processes hit the same bucket: together with this one, still exactly ``limit`` pass."""
    code = (
        "import sys; from kernel.db import make_engine; from kernel.ratelimit import FixedWindowLimiter\n"
        "lim = FixedWindowLimiter(make_engine(sys.argv[1]), limit=30, per_seconds=3600, clock=lambda: 7200.0)\n"
        "print(sum(1 for _ in range(20) if lim.hit('shared', '198.51.100.7') == 0))\n"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, database_url], stdout=subprocess.PIPE, text=True, cwd=ROOT
        )
        for _ in range(2)
    ]
    mine = FixedWindowLimiter(engine, limit=30, per_seconds=3600, clock=lambda: 7200.0)
    passed_here = sum(1 for _ in range(20) if mine.hit("shared", "198.51.100.7") == 0)
    passed = [int(p.communicate(timeout=120)[0].strip()) for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert passed_here + sum(passed) == 30


def test_finished_windows_are_purged(engine: Engine) -> None:
    clock = Clock(3600.0)
    limiter = FixedWindowLimiter(engine, limit=5, per_seconds=60, clock=clock)
    for client in ("a", "b", "c"):
        limiter.hit("s", client)
    clock.now += 61
    limiter.hit("s", "a")
    assert limiter.purge() == 3
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(RATE_LIMIT)).scalar_one() == 1


def test_client_addresses_are_not_stored_in_clear(engine: Engine) -> None:
    FixedWindowLimiter(engine, limit=5, per_seconds=60).hit("wallet-login", "203.0.113.9")
    with engine.connect() as conn:
        rows = conn.execute(select(RATE_LIMIT)).all()
    assert rows
    assert all("203.0.113.9" not in str(tuple(r)) for r in rows)


def test_a_database_failure_is_503_not_500(tmp_path: Path) -> None:
    # (not make_engine: it would mkdir "file:<dir>" under the working directory, see the report)
    engine = create_engine(f"sqlite:///file:{tmp_path / 'none.sqlite3'}?mode=ro&uri=true")
    try:
        client = TestClient(_app(engine, Clock()), raise_server_exceptions=False)
        resp = client.post("/token")
        assert resp.status_code == 503
        assert problem_type(resp) == "database-unavailable"
    finally:
        engine.dispose()


def test_limits_must_be_positive() -> None:
    with pytest.raises(ValueError):
        RateLimit(0, 60)
    with pytest.raises(ValueError):
        RateLimit(5, 0)


def test_install_is_idempotent_and_creates_the_table_concurrently(database_url: str) -> None:
    engines = [make_engine(database_url) for _ in range(4)]
    errors: list[Any] = []

    def create(e: Engine) -> None:
        try:
            ratelimit.ensure_table(e)
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=create, args=(e,)) for e in engines]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    app = FastAPI()
    app.state.engine = engines[0]
    ratelimit.install(app)
    ratelimit.install(app)
    for e in engines:
        e.dispose()


def test_exempt_networks_and_the_off_switch(engine: Engine) -> None:
    clock = Clock()
    app = _app(engine, clock, limit=1)
    ratelimit.install(app, exempt=["10.0.0.0/8", "::1"])
    inside = TestClient(app, client=("10.1.2.3", 5000))
    outside = TestClient(app, client=("192.0.2.9", 5000))
    assert [inside.post("/token").status_code for _ in range(3)] == [200, 200, 200]
    assert [outside.post("/token").status_code for _ in range(2)] == [200, 429]
    ratelimit.install(app, enabled=False)
    assert outside.post("/token").status_code == 200
