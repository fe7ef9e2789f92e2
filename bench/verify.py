"""Verifier benchmark: presentations verified per second, in-process and over HTTP, with a same-run baseline.

Run: ``python -m bench.verify [--quick] [--seconds S] [--clients N] [--json FILE]`` (SQLite).

* in-process: ``verify_presentation`` on fresh SD-JWT+KB presentations of 2,500 real credentials (issued and
  anchored by the real issuer, each held by its own holder key, taken in turn so that no memo of a decoded JWS
  helps), every check on: issuer key from the issuer's DID document, both status lists (revocation,
  suspension) read from the issuer's signed status list credentials, and the anchor receipt checked against the
  log key (``require_anchor``). Keys and lists sit in memory (what a kiosk holds once its cache is warm);
  replay memory is in memory too. Single thread, so the rate is per core. A second line runs
  ``VerifierService.scan`` (QR parsing, the SQLite replay insert and the verification record) in-process, one
  scan after the other. Baseline: the two bare ES256 signature checks every presentation needs.
* HTTP: ``uvicorn imi.app:create_app`` (one worker, SQLite) in a subprocess on 127.0.0.1, its verifier
  reading the issuer over HTTP as deployed (did:web, status lists, HTTP cache warmed by a few scans); the same
  2,500 distinct credentials (issued in bulk into its database before it starts, plus one through the
  counter's HTTP flow). Loaded with ``--clients`` concurrent keep-alive connections posting ``/verifier/scan``
  with a fresh presentation each (the replay cache refuses a second use), for ``--seconds``. Baseline in the
  same run: a bare FastAPI app in another uvicorn subprocess with one POST endpoint of the same shape
  (pydantic body, sync ``def``, JSON answer), loaded with the same request bodies. The load generator is a
  minimal HTTP/1.1 client on asyncio streams (far cheaper per request than an HTTP library, so that it is not
  the bottleneck). The HTTP part runs twice, each with its own baseline: checks on the worker's committer thread
  (the default), then with ``--check-processes`` check processes beside the worker
  (``IMI_VERIFIER_CHECK_PROCESSES``, ``verifier.check_pool``); the worker is the one uvicorn worker either way.
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
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from bench.common import Result, percentile, print_table, write_json

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
DISCLOSE = ("name", "birthDate", "nationality")
QR_AUDIENCE = "urn:imi:qr-presentation"


# ------------------------------------------------------------------------------------------- presentations


@dataclass(frozen=True)
class Wallet:
    key: ec.EllipticCurvePrivateKey
    credential: str
    receipt: Mapping[str, Any] | None


def presentations(wallets: list[Wallet], count: int) -> list[tuple[str, str]]:
    """``count`` fresh (presentation, nonce) pairs: 3 claims, KB-JWT for the QR audience, receipt inside; taking
    the wallets in turn, so that each credential comes back only after all the others (as at a real kiosk)."""
    from kernel.sdjwt import present

    out = []
    now = int(time.time())
    for i in range(count):
        wallet = wallets[i % len(wallets)]
        extra = {"imi_receipt": dict(wallet.receipt)} if wallet.receipt else None
        nonce = secrets.token_urlsafe(12)
        text = present(
            wallet.credential,
            disclose=[("credentialSubject", c) for c in DISCLOSE],
            holder_key=wallet.key,
            aud=QR_AUDIENCE,
            nonce=nonce,
            iat=now,
            extra_kb_claims=extra,
        )
        out.append((text, nonce))
    return out


# Distinct credentials in a pool, more than the 2,048 JWS decodings ``kernel.jose`` memoises: a kiosk meets a
# citizen's credential again only long after, so no measured verification may profit from a warm memo.
DISTINCT_CREDENTIALS = 2_500


def issue_wallets(issuer: Any, count: int) -> list[Wallet]:  # noqa: ANN401 - issuer.service.IssuerService
    """``count`` holders, each with a real credential signed and anchored by the issuer (its bulk path)."""
    from issuer.credentials import PERSON_TYPE
    from kernel.jose import public_jwk_dict
    from schemas.issuer import CredentialFormat

    keys = [ec.generate_private_key(ec.SECP256R1()) for _ in range(count)]
    wallets = []
    for start in range(0, count, 500):
        chunk = keys[start : start + 500]
        issued = issuer.issue_many(
            [(PERSON_TYPE, SUBJECT, None, None)] * len(chunk),
            CredentialFormat.SD_JWT,
            holder_jwks=[public_jwk_dict(k) for k in chunk],
            valid_days=3650,
            actor="bench",
        )
        for key, one in zip(chunk, issued, strict=True):
            assert one.receipt is not None
            wallets.append(Wallet(key, one.credential, one.receipt.model_dump()))
    return wallets


# ----------------------------------------------------------------------------------------------- in-process


class MemoryKeys:
    """``IssuerKeys`` from a DID document read once (a kiosk with a warm cache)."""

    def __init__(self, did: str, doc: dict[str, Any]) -> None:
        from kernel.did import key_from_document

        refs = [r if isinstance(r, str) else r["id"] for r in doc.get("assertionMethod", [])]
        refs = [did + r if r.startswith("#") else r for r in refs]
        self._keys = {ref: key_from_document(doc, ref) for ref in refs}

    def key_for(self, kid: str) -> Any:  # noqa: ANN401 - kernel.jose.PublicKey
        from kernel.errors import VerificationFailed

        try:
            return self._keys[kid]
        except KeyError:
            raise VerificationFailed(f"{kid} is not a key of the issuer", slug="unknown-kid") from None


class MemoryFetcher:
    """A ``Fetcher`` over fixed documents (the issuer's signed status list credentials)."""

    def __init__(self, documents: Mapping[str, str]) -> None:
        self._docs = dict(documents)

    def get(self, url: str, headers: Mapping[str, str] | None = None) -> Any:  # noqa: ANN401 - Fetched
        from verifier.fetch import Fetched

        body = self._docs.get(url)
        return Fetched(200, body.encode(), {}) if body is not None else Fetched(404, b"", {})


class MemoryReplay:
    def __init__(self) -> None:
        self.seen: set[str] = set()

    def first_use(self, key: str, *, expires_at: int) -> bool:
        if key in self.seen:
            return False
        self.seen.add(key)
        return True


def bench_in_process(tmp: Path, seconds: float) -> tuple[list[Result], float]:
    from imi.app import build_services
    from kernel.jose import verify_jws
    from kernel.settings import Settings
    from verifier.core import CheckName, verify_presentation
    from verifier.service import VerifierService
    from verifier.sources import ListStatusSource

    services = build_services(Settings(data_dir=tmp, public_url="http://bench.example"))
    issuer = services.issuer
    wallets = issue_wallets(issuer, DISTINCT_CREDENTIALS)
    signing = issuer.signing_key()
    lists = {
        url: issuer.status.publish(
            url.rsplit("/", 1)[1], issuer_did=issuer.did, key=signing, kid=issuer.kid_url(signing)
        ).jwt
        for url in issuer.status.list_urls()
    }
    keys = MemoryKeys(issuer.did, issuer.did_document())
    status = ListStatusSource(MemoryFetcher(lists), keys, clock=time.time)
    trust = replace(services.verifier.trust, require_anchor=True)
    assert trust.log_verifier is not None

    # size the pool from a short trial, so that the run never runs dry
    trial = presentations(wallets, 200)
    t = time.perf_counter()
    for text, nonce in trial:
        report = verify_presentation(
            text,
            expected_nonce=nonce,
            expected_audience=QR_AUDIENCE,
            trust=trust,
            keys=keys,
            status=status,
            replay=MemoryReplay(),
            now=int(time.time()),
        )
        assert report.verified, report.failure
        checks = {c.name: c.ok for c in report.checks}
        assert checks[CheckName.STATUS] is True and checks[CheckName.ANCHOR] is True, checks
    trial_rate = len(trial) / (time.perf_counter() - t)
    pool = presentations(wallets, int(trial_rate * seconds * 1.3) + 100)

    replay = MemoryReplay()
    done = 0
    start = time.perf_counter()
    deadline = start + seconds
    for text, nonce in pool:
        report = verify_presentation(
            text,
            expected_nonce=nonce,
            expected_audience=QR_AUDIENCE,
            trust=trust,
            keys=keys,
            status=status,
            replay=replay,
            now=int(time.time()),
        )
        if not report.verified:
            raise AssertionError(report.failure)
        done += 1
        if time.perf_counter() >= deadline:
            break
    core_rate = done / (time.perf_counter() - start)

    # baseline: the two bare ES256 verifications (issuer JWT, KB-JWT) of the same presentations
    issuer_key = keys.key_for(issuer.kid_url(signing))
    sample = [
        (text.split("~", 1)[0], text.rsplit("~", 1)[1], wallets[i % len(wallets)].key.public_key())
        for i, (text, _) in enumerate(pool[:2000])
    ]
    t = time.perf_counter()
    for issuer_jwt, kb, holder_key in sample:
        verify_jws(issuer_jwt, issuer_key, expected_typ="vc+sd-jwt")
        verify_jws(kb, holder_key, expected_typ="kb+jwt")
    bare_rate = len(sample) / (time.perf_counter() - t)

    # the service's scan in-process: QR parsing, SQLite replay insert and verification record included
    service = VerifierService(
        services.engine, trust=trust, keys=keys, status=status, fetcher=MemoryFetcher(lists)
    )
    pool2 = presentations(wallets, int(core_rate * seconds * 0.8) + 100)
    done = 0
    start = time.perf_counter()
    deadline = start + seconds
    for text, _ in pool2:
        if not service.scan(text, verifier_id="bench").verified:
            raise AssertionError("a fresh presentation was refused")
        done += 1
        if time.perf_counter() >= deadline:
            break
    scan_rate = done / (time.perf_counter() - start)
    services.engine.dispose()
    results = [
        Result(
            "verify",
            "in-process verify_presentation/s (status+anchor)",
            core_rate,
            "/s",
            bare_rate,
            "2 bare ES256 verifications (issuer JWT + KB-JWT)",
            ">= 2,000/s per core",
        ),
        Result("verify", "in-process VerifierService.scan/s (+SQLite)", scan_rate, "/s"),
    ]
    return results, scan_rate


# ----------------------------------------------------------------------------------------------------- HTTP


class _ScanIn(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    qr: str = Field(max_length=8192)
    verifier_id: str = Field(default="kiosk", max_length=200)


def baseline_app() -> FastAPI:
    """The baseline: a bare FastAPI app with one POST endpoint shaped like ``/verifier/scan``, no work."""
    app = FastAPI()

    @app.post("/verifier/scan")
    def scan(body: _ScanIn) -> JSONResponse:
        return JSONResponse({"verified": True, "length": len(body.qr)})

    return app


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _serve(target: str, port: int, env: Mapping[str, str]) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "uvicorn", target, "--factory", "--host", "127.0.0.1", "--port", str(port)]
    cmd += ["--log-level", "warning", "--no-access-log", "--workers", "1"]
    return subprocess.Popen(
        cmd,
        env={**os.environ, **env},
        cwd=Path(__file__).resolve().parent.parent,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _wait_ready(base: str, proc: subprocess.Popen[bytes], path: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = proc.stderr.read().decode() if proc.stderr else ""
            raise RuntimeError(f"the server exited: {err[-2000:]}")
        try:
            if httpx.get(base + path, timeout=2).status_code < 500:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError("the server did not become ready in 30 s")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


@dataclass
class Load:
    ok: int
    failed: int
    elapsed: float
    latencies_ms: list[float]
    statuses: dict[int, int]

    @property
    def rate(self) -> float:
        return self.ok / self.elapsed


async def _connection(
    port: int, bodies: list[bytes], next_index: list[int], deadline: float, load: Load
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while time.perf_counter() < deadline and next_index[0] < len(bodies):
            body = bodies[next_index[0]]
            next_index[0] += 1
            head = (
                f"POST /verifier/scan HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
            ).encode()
            t = time.perf_counter()
            writer.write(head + body)
            await writer.drain()
            header = await reader.readuntil(b"\r\n\r\n")
            lines = header.decode("latin-1").split("\r\n")
            status = int(lines[0].split(" ", 2)[1])
            length = next(
                int(v) for k, _, v in (h.partition(":") for h in lines[1:]) if k.lower() == "content-length"
            )
            await reader.readexactly(length)
            load.latencies_ms.append((time.perf_counter() - t) * 1e3)
            load.statuses[status] = load.statuses.get(status, 0) + 1
            if status == 200:
                load.ok += 1
            else:
                load.failed += 1
    finally:
        writer.close()


async def _load(port: int, bodies: list[bytes], clients: int, seconds: float) -> Load:
    load = Load(0, 0, 0.0, [], {})
    next_index = [0]
    start = time.perf_counter()
    deadline = start + seconds
    await asyncio.gather(*(_connection(port, bodies, next_index, deadline, load) for _ in range(clients)))
    load.elapsed = time.perf_counter() - start
    return load


def _issue_over_http(base: str, data_dir: Path) -> Wallet:
    from kernel.accounts import Role, create_token
    from kernel.db import make_engine
    from kernel.jose import public_jwk_dict

    engine = make_engine(f"sqlite:///{(data_dir / 'imi.sqlite3').as_posix()}")
    officer = {"Authorization": f"Bearer {create_token(engine, role=Role.OFFICER, name='bench')}"}
    engine.dispose()
    key = ec.generate_private_key(ec.SECP256R1())
    with httpx.Client(base_url=base, timeout=30) as client:
        check = client.post("/issuer/checks", json=CHECK, headers=officer)
        check.raise_for_status()
        issued = client.post(
            "/issuer/credentials",
            json={"check_id": check.json()["id"], "holder_jwk": public_jwk_dict(key)},
            headers=officer,
        )
        issued.raise_for_status()
    body = issued.json()
    assert body["receipt"] is not None
    return Wallet(key, body["credential"], body["receipt"])


def _issue_before_start(data_dir: Path, public_url: str, count: int) -> list[Wallet]:
    """Credentials issued in bulk into the server's database before it starts (its own issuer, its own keys)."""
    from imi.app import build_services
    from kernel.settings import Settings

    services = build_services(Settings(data_dir=data_dir, public_url=public_url, database_url=None))
    try:
        return issue_wallets(services.issuer, count)
    finally:
        services.engine.dispose()


def bench_http(
    tmp: Path, seconds: float, clients: int, expected_rate: float, check_processes: int = 0
) -> list[Result]:
    imi_port, base_port = _free_port(), _free_port()
    data_dir = tmp / f"http-{check_processes}"
    wallets = _issue_before_start(data_dir, f"http://127.0.0.1:{imi_port}", DISTINCT_CREDENTIALS - 1)
    imi = _serve(
        "imi.app:create_app",
        imi_port,
        {
            "IMI_DATA_DIR": str(data_dir),
            "IMI_PUBLIC_URL": f"http://127.0.0.1:{imi_port}",
            "IMI_LOG_LEVEL": "WARNING",
            "IMI_DATABASE_URL": "",
            "IMI_VERIFIER_CHECK_PROCESSES": str(check_processes),
        },
    )
    baseline = _serve("bench.verify:baseline_app", base_port, {})
    try:
        imi_base = f"http://127.0.0.1:{imi_port}"
        _wait_ready(imi_base, imi, "/readyz")
        _wait_ready(f"http://127.0.0.1:{base_port}", baseline, "/docs")
        wallets.append(_issue_over_http(imi_base, data_dir))  # and one through the counter's HTTP flow
        # every scan needs a fresh presentation (replay cache): a pool the server cannot use up in time
        count = int(min(max(expected_rate, 2_500), 5_000) * seconds) + 500
        pool = presentations(wallets[::-1], count + 20)
        with httpx.Client(base_url=imi_base, timeout=30) as client:  # warm the verifier's HTTP cache
            for text, _ in pool[:20]:
                resp = client.post("/verifier/scan", json={"qr": text})
                assert resp.status_code == 200 and resp.json()["verified"], resp.text
                checks = {c["check"]: c["ok"] for c in resp.json()["checks"]}
                assert checks["status"] is True and checks["anchor"] is True, checks
        bodies = [json.dumps({"qr": text}).encode() for text, _ in pool[20:]]
        base_load = asyncio.run(_load(base_port, bodies, clients, seconds))
        imi_load = asyncio.run(_load(imi_port, bodies, clients, seconds))
    finally:
        _stop(imi)
        _stop(baseline)
    if imi_load.failed:
        print(f"warning: {imi_load.failed} scans failed: {imi_load.statuses}", file=sys.stderr)
    if imi_load.ok + imi_load.failed >= len(bodies):
        print("warning: the presentation pool ran dry before the deadline", file=sys.stderr)
    label = f"{clients} clients, {seconds:g} s"
    if check_processes:
        label += f"; + {check_processes} check process{'es' if check_processes > 1 else ''}"
    return [
        Result(
            "verify",
            f"HTTP POST /verifier/scan req/s ({label})",
            imi_load.rate,
            "/s",
            base_load.rate,
            "bare FastAPI POST endpoint, same bodies, same load",
            ">= 0.5x baseline",
        ),
        Result(
            "verify",
            "HTTP scan p50",
            percentile(imi_load.latencies_ms, 50),
            "ms",
            percentile(base_load.latencies_ms, 50),
            "bare FastAPI endpoint p50",
        ),
        Result(
            "verify",
            "HTTP scan p99",
            percentile(imi_load.latencies_ms, 99),
            "ms",
            percentile(base_load.latencies_ms, 99),
            "bare FastAPI endpoint p99",
        ),
    ]


def run(
    quick: bool = False, seconds: float | None = None, clients: int = 64, check_processes: int = 2
) -> list[Result]:
    """In-process, then over HTTP twice, each time with its own same-run baseline: checks on the worker's committer
    thread (``IMI_VERIFIER_CHECK_PROCESSES=0``, the default), then in ``check_processes`` check processes."""
    seconds = seconds or (3.0 if quick else 10.0)
    results: list[Result] = []
    with tempfile.TemporaryDirectory() as tmp:
        found, scan_rate = bench_in_process(Path(tmp) / "a", seconds)
        results += found
        results += bench_http(Path(tmp) / "b", seconds, clients, expected_rate=scan_rate)
        if check_processes:
            results += bench_http(
                Path(tmp) / "b", seconds, clients, expected_rate=scan_rate, check_processes=check_processes
            )
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="a short run (under 90 s)")
    parser.add_argument("--seconds", type=float, help="duration of each measured run")
    parser.add_argument("--clients", type=int, default=64, help="concurrent HTTP clients")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument(
        "--check-processes",
        type=int,
        default=2,
        help="check processes of the second HTTP run (0: no second run)",
    )
    args = parser.parse_args()
    started = time.perf_counter()
    found = run(args.quick, args.seconds, args.clients, args.check_processes)
    print_table(found)
    print(f"(total {time.perf_counter() - started:.1f} s, {os.cpu_count()} CPUs, one uvicorn worker each)")
    if args.json:
        write_json(found, args.json)
