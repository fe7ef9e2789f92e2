"""Consent benchmark: consent-checked data releases per second over HTTP, one uvicorn worker.

Run: ``python -m bench.consent [--quick] [--seconds S] [--clients N] [--consents K] [--h11] [--sqlite-only]
[--json FILE]`` (defaults: 64 connections, 50 consents, 20 s). SQLite always; PostgreSQL too if it answers
(``IMI_BENCH_PG_URL``, a fresh schema per run). uvicorn picks httptools/uvloop when installed
(``uvicorn[standard]``); ``--h11`` forces the pure-Python stack.

Set-up (over HTTP against the server, except the citizen's wallet, which runs in this process on the same
database, as the wallet service would): an admin registers a purpose and a bank (RFC 7523 client), the bank
files K requests, one citizen holding a real credential (counter check -> OpenID4VCI offer -> wallet) grants
them. Load: N keep-alive HTTP/1.1 connections for S seconds, each sending
``GET /consent/consents/{id}/data?nonce=...`` round-robin over the K consents. Every release is the whole thing:
token check, consent row read under lock, state / expiry / purpose / frequency checks, an ES256 KB-JWT, the
``released`` event chained and anchored in the log, commit. The citizen's access history is written by the
consent worker in the same server process while the load runs. Afterwards one release is verified with
``verifier.core.verify_presentation`` and the log is checked to hold one ``data.released`` leaf per release.

Baselines in the same run, same server, same connections: ``GET /healthz`` (the framework floor) and
``GET /consent/consents/{id}`` (an authenticated read of the same consent: token check + one SELECT + JSON).
Until the composition root mounts the consent API itself, :func:`make_app` mounts it, before the other parties'
routers as docs/consent.md recommends, and starts the consent worker.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import FastAPI
from sqlalchemy import func, select

from bench.common import Result, percentile, print_table, write_json
from bench.issue import CHECK, _fresh_pg_schema
from imi.app import build_services, create_app
from kernel.accounts import Role, create_token
from kernel.jose import public_jwk_dict, sign_jws
from kernel.settings import Settings

PURPOSE = "dpv:CreditChecking"
ITEMS = ["name", "birthDate", "nationality"]


def make_app() -> FastAPI:
    """``uvicorn bench.consent:make_app --factory``: the IMI app with the consent API and its worker running."""
    from kernel.sealing import derive_key, load_master_key
    from wallet_api.consent_api import install
    from wallet_api.consent_wiring import build_consent

    settings = Settings()
    app = create_app(settings)
    if not hasattr(app.state, "consent"):
        services = app.state.services
        master = load_master_key(settings.data_dir, settings.master_key)
        parts = build_consent(
            services.engine,
            keystore=services.keystore,
            log=services.log,
            vault=app.state.wallet.vault,
            pairwise_key=derive_key(master, "pairwise"),
            public_url=settings.public_url,
            resolve_session=app.state.wallet.sessions.resolve,
        )
        install(app, parts)
        parts.worker.start()
        # FastAPI matches routes in order: the recommended wiring mounts the consent API before the other
        # parties' routers (see docs/consent.md); do the same here.
        mounted = app.router.routes[-3:]
        del app.router.routes[-3:]
        app.router.routes[6:6] = mounted
    return app


# ------------------------------------------------------------------------------------------------ server


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _start_server(url: str | None, tmp: Path, port: int, *, h11: bool = False) -> subprocess.Popen[bytes]:
    env = {**os.environ, "IMI_DATA_DIR": str(tmp), "IMI_PUBLIC_URL": f"http://127.0.0.1:{port}"}
    env["IMI_LOG_LEVEL"] = "WARNING"
    if url:
        env["IMI_DATABASE_URL"] = url
    else:
        env.pop("IMI_DATABASE_URL", None)
    cmd = [sys.executable, "-m", "uvicorn", "bench.consent:make_app", "--factory", "--host", "127.0.0.1"]
    cmd += ["--port", str(port), "--workers", "1", "--log-level", "warning", "--no-access-log"]
    if h11:  # uvicorn's pure-Python protocol stack (what a plain `pip install uvicorn` gives)
        cmd += ["--http", "h11", "--loop", "asyncio"]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _wait_ready(client: httpx.Client, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = proc.stderr.read().decode() if proc.stderr else ""
            raise RuntimeError(f"the server exited: {err[-3000:]}")
        try:
            if client.get("/readyz").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError("the server did not become ready in 60 s")


# ------------------------------------------------------------------------------------------------ set-up


@dataclass
class Setup:
    token: str
    consents: list[str]
    client_id: str
    services: Any = field(repr=False)


def _bank_token(client: httpx.Client, admin: dict[str, str], base: str) -> tuple[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    body = {
        "name": "Bench Bank",
        "organisation_code": "911100000000BENCH",
        "contact": "ops@bank.example",
        "purposes": [PURPOSE],
        "jwks": {"keys": [public_jwk_dict(key)]},
    }
    resp = client.post("/consent/admin/clients", json=body, headers=admin)
    resp.raise_for_status()
    client_id = resp.json()["id"]
    now = int(time.time())
    claims = {"iss": client_id, "sub": client_id, "aud": f"{base}/consent/token", "exp": now + 120}
    assertion = sign_jws({**claims, "jti": secrets.token_urlsafe(12)}, key, typ="JWT")
    form = {
        "grant_type": "client_credentials",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": assertion,
    }
    resp = client.post("/consent/token", data=form)
    resp.raise_for_status()
    return client_id, resp.json()["access_token"]


def _setup(client: httpx.Client, url: str | None, tmp: Path, base: str, consents: int) -> Setup:
    services = build_services(Settings(data_dir=tmp, database_url=url, public_url=base))
    engine = services.engine
    admin = {"Authorization": f"Bearer {create_token(engine, role=Role.ADMIN, name='bench')}"}
    officer = {"Authorization": f"Bearer {create_token(engine, role=Role.OFFICER, name='bench')}"}
    limits = {"label": "Credit checks", "max_validity_days": 365, "max_retention_days": 30}
    limits["max_frequency"] = {"count": 100_000, "period": "hour"}
    client.put(f"/consent/admin/purposes/{PURPOSE}", json=limits, headers=admin).raise_for_status()
    client_id, token = _bank_token(client, admin, base)
    check_id = client.post("/issuer/checks", json=CHECK, headers=officer).json()["id"]
    offer = client.post("/issuer/credentials", json={"check_id": check_id}, headers=officer).json()
    wallet = services.wallet
    wallet.http = client
    citizen = wallet.vault.create_citizen()
    wallet.vault.set_status(citizen, "active")
    wallet.add_offer(citizen, offer["credential_offer_uri"], offer["tx_code"])
    session = {"Authorization": f"Bearer {wallet.sessions.create(citizen)}"}
    bank = {"Authorization": f"Bearer {token}"}
    request = {
        "purpose": PURPOSE,
        "items": [{"path": ["credentialSubject", c]} for c in ITEMS],
        "validity_days": 30,
        "frequency": {"count": 100_000, "period": "hour"},
        "retention_days": 7,
    }
    ids = []
    for _ in range(consents):
        consent_id = client.post("/consent/requests", json=request, headers=bank).json()["id"]
        grant = {"items": [f"credentialSubject.{c}" for c in ITEMS]}
        client.post(f"/wallet/me/consents/{consent_id}/grant", json=grant, headers=session).raise_for_status()
        ids.append(consent_id)
    return Setup(token, ids, client_id, services)


# -------------------------------------------------------------------------------------------------- load


@dataclass
class Load:
    ok: int = 0
    failed: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    latencies_ms: list[float] = field(default_factory=list)
    sample: bytes = b""


async def _connection(
    port: int, paths: list[str], token: str, deadline: float, load: Load, offset: int
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    i = offset
    try:
        while time.perf_counter() < deadline:
            path = paths[i % len(paths)].replace("NONCE", secrets.token_urlsafe(12))
            i += 1
            request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\r\n"
            started = time.perf_counter()
            writer.write(request.encode())
            status, body = await _response(reader)
            load.latencies_ms.append((time.perf_counter() - started) * 1e3)
            load.statuses[status] = load.statuses.get(status, 0) + 1
            if status == 200:
                load.ok += 1
                if not load.sample:
                    load.sample = body
            else:
                load.failed += 1
    finally:
        writer.close()


async def _response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    status = int((await reader.readline()).split(b" ", 2)[1])
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.partition(b":")
        if name.lower() == b"content-length":
            length = int(value)
    return status, await reader.readexactly(length)


def run_load(port: int, paths: list[str], token: str, *, clients: int, seconds: float) -> tuple[Load, float]:
    load = Load()

    async def main() -> float:
        deadline = time.perf_counter() + seconds
        started = time.perf_counter()
        await asyncio.gather(*(_connection(port, paths, token, deadline, load, i) for i in range(clients)))
        return time.perf_counter() - started

    elapsed = asyncio.run(main())
    return load, elapsed


# ---------------------------------------------------------------------------------------------- checks


def _verify_sample(setup: Setup, body: bytes) -> None:
    """One released presentation verifies with the verifier core (issuer over HTTP), aud and nonce bound."""
    from verifier.core import verify_presentation

    data = json.loads(body)
    nonce = data["presentation"].rsplit("~", 1)[1]
    from kernel.jose import decode_jws_unverified

    kb = decode_jws_unverified(nonce).payload
    verifier = setup.services.verifier
    report = verify_presentation(
        data["presentation"],
        expected_audience=f"imi-client:{setup.client_id}",
        expected_nonce=kb["nonce"],
        trust=verifier.trust,
        keys=verifier.keys,
        status=verifier.status,
        now=kb["iat"],
    )
    assert report.verified, report.failure
    assert kb["nonce"].startswith(f"{data['consent_id']}.{data['version']}.")
    assert set(report.disclosed) == set(ITEMS)


def _released_leaves(setup: Setup) -> int:
    from ledger.tables import LogEntry

    table = LogEntry.__table__  # type: ignore[attr-defined]
    with setup.services.engine.connect() as conn:
        return int(
            conn.execute(select(func.count()).where(table.c.event_type == "data.released")).scalar_one()
        )


@dataclass(frozen=True)
class Options:
    clients: int = 64
    seconds: float = 20.0
    consents: int = 50
    h11: bool = False


def _measure(port: int, setup: Setup, opts: Options) -> tuple[Load, float, Load, float, Load, float]:
    data = [f"/consent/consents/{c}/data?nonce=NONCE" for c in setup.consents]
    reads = [f"/consent/consents/{c}" for c in setup.consents]
    run_load(port, data, setup.token, clients=opts.clients, seconds=min(2.0, opts.seconds))  # warm-up
    health = run_load(port, ["/healthz"], setup.token, clients=opts.clients, seconds=opts.seconds)
    read = run_load(port, reads, setup.token, clients=opts.clients, seconds=opts.seconds)
    before = _released_leaves(setup)
    released = run_load(port, data, setup.token, clients=opts.clients, seconds=opts.seconds)
    assert released[0].failed == 0, f"failed releases: {released[0].statuses}"
    _verify_sample(setup, released[0].sample)
    assert _released_leaves(setup) - before == released[0].ok, "one data.released leaf per release"
    return (*released, *read, *health)


def bench_releases(label: str, url: str | None, tmp: Path, opts: Options) -> list[Result]:
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    proc = _start_server(url, tmp, port, h11=opts.h11)
    try:
        with httpx.Client(base_url=base, timeout=60) as client:
            _wait_ready(client, proc)
            setup = _setup(client, url, tmp, base, opts.consents)
        rel, rel_s, read, read_s, health, health_s = _measure(port, setup, opts)
        setup.services.engine.dispose()
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
    label += ", h11" if opts.h11 else ""
    target = ">= 1,000/s on one worker" if label == "SQLite" else ""
    where = f"{label}, {opts.clients} conns, {opts.consents} consents, {opts.seconds:.0f} s"
    return [
        Result("consent", f"releases/s ({where})", rel.ok / rel_s, "/s",
               read.ok / read_s, "authenticated GET of the same consent", target),
        Result("consent", f"release p50 ({label})", percentile(rel.latencies_ms, 50), "ms",
               percentile(read.latencies_ms, 50), "authenticated GET p50"),
        Result("consent", f"release p99 ({label})", percentile(rel.latencies_ms, 99), "ms",
               percentile(read.latencies_ms, 99), "authenticated GET p99"),
        Result("consent", f"GET /healthz/s ({label}, framework floor)", health.ok / health_s, "/s"),
    ]  # fmt: skip


def run(opts: Options, *, postgres: bool = True) -> list[Result]:
    results: list[Result] = []
    with tempfile.TemporaryDirectory() as tmp:
        results += bench_releases("SQLite", None, Path(tmp) / "a", opts)
        pg = _fresh_pg_schema() if postgres else None
        if pg is None:
            print("PostgreSQL not used: SQLite only", file=sys.stderr)
            return results
        try:
            results += bench_releases("PostgreSQL", pg.url, Path(tmp) / "b", opts)
        finally:
            pg.drop()
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="5 s of load per measurement")
    parser.add_argument("--seconds", type=float, default=20.0, help="seconds of load per measurement")
    parser.add_argument("--clients", type=int, default=64, help="concurrent keep-alive connections")
    parser.add_argument("--consents", type=int, default=50, help="consents the releases rotate over")
    parser.add_argument("--h11", action="store_true", help="uvicorn's pure-Python HTTP stack (no httptools)")
    parser.add_argument("--sqlite-only", action="store_true")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    options = Options(args.clients, 5.0 if args.quick else args.seconds, args.consents, args.h11)
    found = run(options, postgres=not args.sqlite_only)
    print_table(found)
    if args.json:
        write_json(found, args.json)
