"""``IMI_VERIFIER_CHECK_PROCESSES``: scans checked in processes beside the web worker, on a real ``imi serve``.

The check processes read the issuer's public material over HTTP like any verifier; the worker books replay and
record. Same answers as checks in the worker (tests/verifier), and a check process killed mid-service costs at
most the scans it had: answered 503 with their own problem type, never a 500, and the next scans work again.
"""

from __future__ import annotations

import os
import secrets
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from kernel.accounts import Role
from kernel.jose import public_jwk_dict
from kernel.qr_payload import encode_compact
from kernel.sdjwt import present
from tests.issuer.issuer_fixtures import person_check
from tests.system.cluster import Cluster, problem_type
from verifier.scanning import QR_AUDIENCE


@pytest.fixture(scope="module")
def server(module_database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    started = Cluster.start(
        module_database_url, tmp_path_factory.mktemp("checks"), 1, IMI_VERIFIER_CHECK_PROCESSES="2"
    )
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture(scope="module")
def holder(server: Cluster) -> tuple[ec.EllipticCurvePrivateKey, dict[str, Any]]:
    key = ec.generate_private_key(ec.SECP256R1())
    with httpx.Client(base_url=server[0].base, timeout=60, headers=server.token(Role.OFFICER)) as http:
        check = http.post("/issuer/checks", json=person_check())
        assert check.status_code == 201, check.text
        issued = http.post(
            "/issuer/credentials", json={"check_id": check.json()["id"], "holder_jwk": public_jwk_dict(key)}
        )
    assert issued.status_code == 201, issued.text
    body: dict[str, Any] = issued.json()
    return key, body


def _qr(holder: tuple[ec.EllipticCurvePrivateKey, dict[str, Any]], **overrides: Any) -> str:
    key, issued = holder
    options: dict[str, Any] = {
        "disclose": [("credentialSubject", "name")],
        "holder_key": key,
        "aud": QR_AUDIENCE,
        "nonce": secrets.token_urlsafe(12),
        "iat": int(time.time()),
        "extra_kb_claims": {"imi_receipt": issued["receipt"]},
    }
    options.update(overrides)
    return present(issued["credential"], **options)


def _scan(server: Cluster, text: str) -> httpx.Response:
    return httpx.post(f"{server[0].base}/verifier/scan", json={"qr": text}, timeout=60)


def test_a_scan_checked_in_a_check_process_is_verified_once(server: Cluster, holder: Any) -> None:
    text = _qr(holder)
    first = _scan(server, text)
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["verified"] is True
    assert body["disclosed"] == {"name": person_check()["name"]}
    assert {c["check"]: c["ok"] for c in body["checks"]}["anchor"] is True
    replay = _scan(server, text)
    assert problem_type(replay) == "presentation-replayed", replay.text


def test_refusals_from_a_check_process_keep_their_problem_types(server: Cluster, holder: Any) -> None:
    assert problem_type(_scan(server, "not a QR of ours")) == "qr-not-a-presentation"
    stale = _scan(server, _qr(holder, iat=int(time.time()) - 3600))
    assert problem_type(stale) == "kb-stale", stale.text
    elsewhere = _scan(server, _qr(holder, aud="https://bank.example"))
    assert problem_type(elsewhere) == "kb-audience-mismatch", elsewhere.text
    compact = _scan(server, encode_compact(_qr(holder, extra_kb_claims=None)))
    assert compact.status_code == 200, compact.text
    assert compact.json()["verified"] is True


def _check_processes(server_pid: int) -> list[int]:
    children: list[int] = []
    for task in Path(f"/proc/{server_pid}/task").iterdir():
        children += [int(pid) for pid in (task / "children").read_text().split()]
    return children


def test_a_killed_check_process_fails_only_its_scans_and_is_replaced(server: Cluster, holder: Any) -> None:
    assert _scan(server, _qr(holder)).status_code == 200
    before = _check_processes(server[0].proc.pid)
    assert before, "no check process runs beside the web worker"
    for pid in before:
        os.kill(pid, signal.SIGKILL)
    answers = [_scan(server, _qr(holder)) for _ in range(4)]
    assert all(a.status_code in (200, 503) for a in answers), [a.text[:200] for a in answers]
    assert {problem_type(a) for a in answers if a.status_code == 503} <= {"verifier-checks-unavailable"}
    assert answers[-1].status_code == 200, answers[-1].text
    assert set(_check_processes(server[0].proc.pid)).isdisjoint(before)
