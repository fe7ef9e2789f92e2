"""``imi demo``: the whole story in one process on a temporary database, printing each step.

Each party still talks to the others over HTTP (here an in-process HTTP client): the wallet redeems the
counter's offer through OpenID4VCI, the kiosk reads the issuer's DID document and status lists like a kiosk
elsewhere would. The citizen's passkey comes from a software authenticator (``imi.soft_authenticator``).
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from imi.app import create_app
from imi.soft_authenticator import SoftAuthenticator
from kernel.accounts import Role, create_token
from kernel.settings import Settings
from ledger.note import NoteVerifier
from ledger.receipt import Receipt, verify_receipt
from verifier.fetch import CachingFetcher, DidWebResolver, HttpFetcher
from verifier.wiring import online_verifier

PERSON = {
    "kind": "person",
    "counter": "district-3/counter-7",
    "methods": ["id-card-chip", "face-match"],
    "document_number": "11010519491231002X",
    "name": "王小明",
    "birth_date": "1949-12-31",
    "sex": "F",
    "nationality": "CHN",
    "address": "北京市东城区景山前街4号",
    "face_match": {"score": 0.97, "threshold": 0.9},
}


def run_demo(say: Callable[[str], object]) -> int:
    """Run every step, print what happens, return the exit code (0 when every check passed)."""
    warnings.filterwarnings("ignore", message="Using `httpx`")
    from fastapi.testclient import TestClient

    with tempfile.TemporaryDirectory(prefix="imi-demo-") as tmp:
        settings = Settings(
            data_dir=Path(tmp), public_url="http://testserver", log_batch_interval=0.05, log_level="WARNING"
        )
        app = create_app(settings)
        with TestClient(app) as client:
            _wire_http(app, client)
            return _story(app, client, say)


def _wire_http(app: Any, client: Any) -> None:  # noqa: ANN401 - FastAPI app and TestClient
    services = app.state.services
    app.state.verifier = online_verifier(
        services.engine,
        settings := services.settings,
        services.verifier.trust,
        fetcher=CachingFetcher(HttpFetcher(client)),
    )
    del settings
    app.state.wallet.http = client
    app.state.wallet.resolver = DidWebResolver(CachingFetcher(HttpFetcher(client)))


def _ok(resp: Any, what: str) -> dict[str, Any]:  # noqa: ANN401
    if resp.status_code >= 400:
        raise RuntimeError(f"{what} failed: {resp.status_code} {resp.text[:300]}")
    body: dict[str, Any] = resp.json()
    return body


def _story(app: Any, client: Any, say: Callable[[str], object]) -> int:  # noqa: ANN401
    vkey = client.get("/log/vkey").text.strip()
    officer = {
        "Authorization": f"Bearer {create_token(app.state.engine, role=Role.OFFICER, name='officer-017')}"
    }
    say(f"1. A fresh IMI. Log key: {vkey}")
    check = _ok(client.post("/issuer/checks", json=PERSON, headers=officer), "check")
    say(
        f"2. Counter 7: officer-017 checks ID card {check['document_number_masked']} and the face in person -> "
        f"check {check['id'][:8]}, {check['result']}"
    )
    offer = _ok(client.post("/issuer/credentials", json={"check_id": check["id"]}, headers=officer), "offer")
    say(
        f"3. The counter screen shows a credential-offer QR ({len(offer['credential_offer_uri'])} chars) and PIN "
        f"{offer['tx_code']}"
    )
    phone = SoftAuthenticator("testserver", "http://testserver")
    start = _ok(
        client.post(
            "/wallet/enrol/start", json={"offer": offer["credential_offer_uri"], "pin": offer["tx_code"]}
        ),
        "enrol",
    )
    finish = _ok(
        client.post(
            "/wallet/enrol/finish",
            json={"ceremony_id": start["ceremony_id"], "credential": phone.create(start["publicKey"])},
        ),
        "passkey",
    )
    me = {"Authorization": f"Bearer {finish['session']}"}
    cred = _ok(client.get("/wallet/me/credentials", headers=me), "credentials")[0]  # type: ignore[index]
    say(
        f"4. The citizen's phone redeems it (OpenID4VCI + PIN), enrols a passkey; the wallet holds a "
        f"{cred['configuration_id']} with claims {sorted(cred['claims'])}"
    )
    receipt = Receipt.model_validate(cred["receipt"])
    verify_receipt(receipt, log_verifier=NoteVerifier.from_vkey(vkey))
    say(f"5. Its anchor receipt verifies offline: leaf {receipt.index} in a tree of {receipt.tree_size}")
    qr = _ok(
        client.post(
            f"/wallet/me/credentials/{cred['id']}/qr",
            headers=me,
            json={"claims": ["name", "birthDate"], "form": "compact"},
        ),
        "qr",
    )
    scan = _ok(client.post("/verifier/scan", json={"qr": qr["text"]}), "scan")
    say(
        f"6. Kiosk scans the phone's QR (version {qr['qr_version']}, offline-capable): verified={scan['verified']}, "
        f"shown {scan['disclosed']}"
    )
    req = _ok(
        client.post("/verifier/requests", json={"claims": ["name"], "verifier_id": "kiosk-12"}), "request"
    )
    _ok(
        client.post(
            "/wallet/me/vp/answer",
            headers=me,
            json={"qr": req["qr_text"], "credential_id": cred["id"], "claims": ["name"]},
        ),
        "answer",
    )
    result = _ok(client.get(f"/verifier/requests/{req['id']}", params={"wait": 5}), "result")
    say(
        f"7. Kiosk 12 shows an OpenID4VP QR; the wallet answers; the kiosk sees {result['status']}: "
        f"{result['result']['disclosed']}"
    )
    return _finish(_Story(app, client, say, officer, me, cred, vkey))


@dataclass
class _Story:
    app: Any
    client: Any
    say: Callable[[str], object]
    officer: dict[str, str]
    me: dict[str, str]
    cred: dict[str, Any]
    vkey: str


def _finish(story: _Story) -> int:
    app, client, say, officer, me, cred, vkey = (
        story.app,
        story.client,
        story.say,
        story.officer,
        story.me,
        story.cred,
        story.vkey,
    )
    issued_id = cred["credential_id"]
    _ok(
        client.post(
            f"/issuer/credentials/{issued_id}/status",
            json={"action": "suspend", "reason": "phone lost"},
            headers=officer,
        ),
        "suspend",
    )
    _wire_http(app, client)  # a kiosk with a fresh cache (kiosks re-read status lists after max-age)
    qr = _ok(
        client.post(
            f"/wallet/me/credentials/{cred['id']}/qr",
            headers=me,
            json={"claims": ["name"], "form": "compact"},
        ),
        "qr",
    )
    refused = client.post("/verifier/scan", json={"qr": qr["text"]}).json()
    say(
        f"8. Phone reported lost: the officer suspends the credential; the kiosk now refuses: {refused['type']}"
    )
    _ok(
        client.post(f"/issuer/credentials/{issued_id}/status", json={"action": "reinstate"}, headers=officer),
        "reinstate",
    )
    history = _ok(client.get("/wallet/me/history", headers=me), "history")
    kinds = sorted({str(h["kind"]) for h in history})  # type: ignore[index]
    say(
        f"   Phone found: reinstated. The citizen's access history: {len(history)} entries ({', '.join(kinds)})"
    )
    erased = _ok(client.delete("/wallet/me", headers=me), "erase")
    verify_receipt(Receipt.model_validate(erased["receipt"]), log_verifier=NoteVerifier.from_vkey(vkey))
    say(
        f"9. The citizen erases the data space: data key destroyed; signed statement anchored at leaf "
        f"{erased['receipt']['index']}"
    )
    notary = {
        "Authorization": f"Bearer {create_token(app.state.engine, role=Role.NOTARY, name='land registry')}"
    }
    digest = hashlib.sha256(b"land-registry-2026-001.pdf").hexdigest()
    note = _ok(
        client.post("/log/entries?wait=true", json={"object_hash": digest}, headers=notary), "notarize"
    )
    say(f"10. Another department notarizes a document hash: leaf {note['index']}; checkpoint:")
    say("    " + client.get("/log/checkpoint").text.replace("\n", "\n    ").rstrip())
    say(json.dumps({"demo": "ok"}))
    return 0
