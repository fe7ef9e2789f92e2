"""Real ``imi serve`` processes on loopback, sharing one database, master key and data dir (not collected).

``Cluster.start(url, data_dir, n)`` spawns ``python -m imi.cli serve --port P`` n times with the same settings, as a
deployment behind a load balancer would run them; ``IMI_PUBLIC_URL`` names the first process (the wallet and the
verifier of every process fetch public material from there, as from a load balancer's address).
"""

from __future__ import annotations

import base64
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from kernel.accounts import Role, create_token
from kernel.db import make_engine

ROOT = Path(__file__).resolve().parents[2]
FULL = os.environ.get("IMI_FULL", "") not in ("", "0")
START_TIMEOUT = 90.0
PROBLEM_JSON = "application/problem+json"


# Clients of these servers drop a pooled connection after 2 s idle: uvicorn closes one after 5 s, and a request
# sent on a connection the server is closing at that moment fails with "connection reset" (a POST is not retried).
CLIENT_LIMITS = httpx.Limits(keepalive_expiry=2.0)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    port: int
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def alive(self) -> bool:
        return self.proc.poll() is None

    def output(self, tail: int = 4000) -> str:
        try:
            return self.log.read_text(errors="replace")[-tail:]
        except OSError:
            return ""

    def kill(self) -> None:
        if self.alive():
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


def server_env(url: str, data_dir: Path, public_url: str, master_key: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMI_")}
    env.update(
        PYTHONPATH=str(ROOT),
        IMI_DATABASE_URL=url,
        IMI_DATA_DIR=str(data_dir),
        IMI_PUBLIC_URL=public_url,
        IMI_MASTER_KEY=master_key,
        IMI_LOG_BATCH_INTERVAL="0.1",
        IMI_LOG_LEVEL="WARNING",
        # these tests are about several processes, not about rate limits (tests/system/test_ratelimit.py):
        # every client here is on loopback (read once Settings has the field; ignored before)
        IMI_RATE_LIMIT_EXEMPT='["127.0.0.0/8", "::1/128"]',
    )
    env.update(extra)
    return env


def spawn(port: int, env: dict[str, str], log: Path, cwd: Path) -> Server:
    out = log.open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "imi.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
        stdout=out,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=cwd,
    )
    out.close()
    return Server(port, proc, log)


def wait_ready(servers: list[Server], timeout: float = START_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=5) as client:
        for server in servers:
            while True:
                if not server.alive():
                    raise RuntimeError(f"imi serve on {server.port} exited:\n{server.output()}")
                try:
                    if client.get(f"{server.base}/readyz").status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"imi serve on {server.port} not ready in {timeout} s:\n{server.output()}"
                    )
                time.sleep(0.1)


@dataclass
class Cluster:
    url: str
    data_dir: Path
    servers: list[Server]
    master_key: str
    public_url: str
    tokens: dict[Role, str] = field(default_factory=dict)

    @classmethod
    def start(cls, url: str, data_dir: Path, n: int, **extra_env: str) -> Cluster:
        ports = [free_port() for _ in range(n)]
        master = base64.b64encode(secrets.token_bytes(32)).decode()
        public = f"http://localhost:{ports[0]}"  # a host name: WebAuthn needs a domain as its RP id
        env = server_env(url, data_dir, public, master, **extra_env)
        data_dir.mkdir(parents=True, exist_ok=True)
        servers = [spawn(p, env, data_dir / f"server-{p}.log", data_dir) for p in ports]
        cluster = cls(url, data_dir, servers, master, public)
        try:
            wait_ready(servers)
        except BaseException:
            cluster.stop()
            raise
        return cluster

    def token(self, role: Role) -> dict[str, str]:
        """Authorization header of a service account (created directly in the shared database)."""
        if role not in self.tokens:
            engine = make_engine(self.url)
            try:
                self.tokens[role] = create_token(engine, role=role, name=f"system-{role.value}")
            finally:
                engine.dispose()
        return {"Authorization": f"Bearer {self.tokens[role]}"}

    def stop(self) -> None:
        for server in self.servers:
            server.stop()

    def __getitem__(self, i: int) -> Server:
        return self.servers[i]


@contextmanager
def running(url: str, data_dir: Path, n: int, **extra_env: str) -> Iterator[Cluster]:
    cluster = Cluster.start(url, data_dir, n, **extra_env)
    try:
        yield cluster
    finally:
        cluster.stop()


def problem_type(resp: httpx.Response) -> str:
    """The problem ``type`` slug of a problem+json answer ('' for anything else)."""
    if not resp.headers.get("content-type", "").startswith(PROBLEM_JSON):
        return ""
    body: Any = resp.json()
    return str(body.get("type", "")).removeprefix("urn:imi:problem:")
