"""The citizen's wallet over HTTP: enrol with a passkey from a counter offer, present by QR and OpenID4VP,
see the history, export, erase; and every route refuses another citizen's things."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from typing import Any

import pytest
import zxingcpp
from fastapi import FastAPI
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import select

from kernel.accounts import Role
from tests.verifier.verifier_fixtures import fresh_verifier
from tests.wallet.wallet_fixtures import Citizen, new_offer
from wallet_api.tables import VaultItem

# (a large QR's modules can also read as a one-dimensional code, an EAN-13 say: look for QR codes only)
QR_ONLY = zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode)

pytestmark = pytest.mark.usefixtures("http_verifier")


def _slug(resp: Any) -> str:
    assert resp.headers["content-type"].startswith("application/problem+json"), resp.text
    return str(resp.json()["type"]).removeprefix("urn:imi:problem:")


def test_enrol_login_and_credentials(client: TestClient, enrol: Callable[..., Citizen]) -> None:
    citizen = enrol()
    creds = client.get("/wallet/me/credentials", headers=citizen.session).json()
    assert creds[0]["claims"]["name"] == "王小明"
    assert "credential" not in creds[0]
    start = client.post("/wallet/login/start").json()
    assertion = citizen.authenticator.get(start["publicKey"])
    login = client.post(
        "/wallet/login/finish", json={"ceremony_id": start["ceremony_id"], "credential": assertion}
    )
    assert login.status_code == 200, login.text
    assert (
        client.get(
            "/wallet/me/credentials", headers={"Authorization": f"Bearer {login.json()['session']}"}
        ).status_code
        == 200
    )


def test_user_verification_is_required(
    client: TestClient, token_for: Callable[[Role], dict[str, str]], wallet_http: None
) -> None:
    from tests.wallet.soft_authenticator import SoftAuthenticator

    offer = new_offer(client, token_for(Role.OFFICER))
    start = client.post(
        "/wallet/enrol/start", json={"offer": offer["credential_offer_uri"], "pin": offer["tx_code"]}
    ).json()
    no_uv = SoftAuthenticator("testserver", "http://testserver", user_verified=False)
    finish = client.post(
        "/wallet/enrol/finish",
        json={"ceremony_id": start["ceremony_id"], "credential": no_uv.create(start["publicKey"])},
    )
    assert _slug(finish) == "user-verification-required"


def test_wrong_pin_enrols_nothing(
    client: TestClient, token_for: Callable[[Role], dict[str, str]], wallet_http: None
) -> None:
    offer = new_offer(client, token_for(Role.OFFICER))
    wrong = "000000" if offer["tx_code"] != "000000" else "111111"
    resp = client.post("/wallet/enrol/start", json={"offer": offer["credential_offer_uri"], "pin": wrong})
    assert _slug(resp) == "pin-wrong"


def test_compact_and_reference_qr_verify_at_a_kiosk(
    client: TestClient, app: FastAPI, enrol: Callable[..., Citizen]
) -> None:
    citizen = enrol()
    for form in ("compact", "reference"):
        fresh_verifier(app, client)
        qr = client.post(
            f"/wallet/me/credentials/{citizen.credential_id}/qr",
            json={"claims": ["name", "birthDate", "nationality"], "form": form},
            headers=citizen.session,
        )
        assert qr.status_code == 200, qr.text
        body = qr.json()
        assert body["qr_version"] <= (25 if form == "compact" else 6)
        import base64

        scanned = zxingcpp.read_barcodes(
            Image.open(io.BytesIO(base64.b64decode(body["png"].split(",", 1)[1]))), formats=QR_ONLY
        )[0].text
        assert scanned == body["text"]
        result = client.post("/verifier/scan", json={"qr": scanned})
        assert result.status_code == 200, result.text
        assert result.json()["disclosed"] == {
            "name": "王小明",
            "birthDate": "1949-12-31",
            "nationality": "CHN",
        }
        if form == "reference":
            checks = {c["check"]: c["ok"] for c in result.json()["checks"]}
            assert checks["anchor"] is True
            again = client.post("/verifier/scan", json={"qr": scanned})
            assert _slug(again) == "reference-gone"


def test_answer_a_kiosk_request(client: TestClient, enrol: Callable[..., Citizen]) -> None:
    citizen = enrol()
    req = client.post("/verifier/requests", json={"claims": ["name"], "verifier_id": "kiosk-1"}).json()
    seen = client.post("/wallet/me/vp/read", json={"qr": req["qr_text"]}, headers=citizen.session)
    assert seen.status_code == 200, seen.text
    assert seen.json()["claims"] == ["name"]
    more = client.post(
        "/wallet/me/vp/answer",
        headers=citizen.session,
        json={"qr": req["qr_text"], "credential_id": citizen.credential_id, "claims": ["name", "idNumber"]},
    )
    assert _slug(more) == "claims-not-requested"
    ok = client.post(
        "/wallet/me/vp/answer",
        headers=citizen.session,
        json={"qr": req["qr_text"], "credential_id": citizen.credential_id, "claims": ["name"]},
    )
    assert ok.status_code == 200, ok.text
    status = client.get(f"/verifier/requests/{req['id']}").json()
    assert status["status"] == "verified"
    assert status["result"]["disclosed"] == {"name": "王小明"}
    history = client.get("/wallet/me/history", headers=citizen.session).json()
    entry = next(h for h in history if h["kind"] == "verification" and h.get("claims") == ["name"])
    # every release is anchored: the receipt proves a commitment to exactly what was shown is in the log
    from ledger.note import NoteVerifier
    from ledger.receipt import Receipt, verify_receipt

    receipt = Receipt.model_validate(entry["receipt"])
    assert receipt.event_type == "data.released"
    verify_receipt(receipt, log_verifier=NoteVerifier.from_vkey(client.get("/log/vkey").text.strip()))


def test_citizen_a_cannot_touch_citizen_b(client: TestClient, enrol: Callable[..., Citizen]) -> None:
    a, b = enrol(), enrol()
    b_item = b.credential_id
    assert (
        _slug(
            client.post(f"/wallet/me/credentials/{b_item}/qr", json={"claims": ["name"]}, headers=a.session)
        )
        == "vault-item-not-found"
    )
    b_passkeys = client.get("/wallet/me/passkeys", headers=b.session).json()
    assert _slug(client.delete(f"/wallet/me/passkeys/{b_passkeys[0]['id']}", headers=a.session)) in {
        "passkey-not-found"
    }
    req = client.post("/verifier/requests", json={"claims": ["name"]}).json()
    answer = client.post(
        "/wallet/me/vp/answer",
        headers=a.session,
        json={"qr": req["qr_text"], "credential_id": b_item, "claims": ["name"]},
    )
    assert _slug(answer) == "vault-item-not-found"
    assert all(c["id"] != b_item for c in client.get("/wallet/me/credentials", headers=a.session).json())
    assert client.get("/wallet/me/credentials").status_code == 401
    assert (
        _slug(client.get("/wallet/me/credentials", headers={"Authorization": "Bearer forged"}))
        == "session-invalid"
    )


def test_export_then_erase_leaves_nothing_decryptable(
    client: TestClient, app: FastAPI, enrol: Callable[..., Citizen]
) -> None:
    citizen = enrol()
    exported = client.get("/wallet/me/export", headers=citizen.session)
    assert exported.status_code == 200
    data = exported.json()
    assert data["credentials"][0]["claims"]["idNumber"] == "11010519491231002X"
    assert "pkcs8" not in json.dumps(data)
    erased = client.delete("/wallet/me", headers=citizen.session)
    assert erased.status_code == 200, erased.text
    receipt = erased.json()["receipt"]
    assert receipt["event_type"] == "erasure"
    from ledger.note import NoteVerifier
    from ledger.receipt import Receipt, verify_receipt

    verify_receipt(
        Receipt.model_validate(receipt),
        log_verifier=NoteVerifier.from_vkey(client.get("/log/vkey").text.strip()),
    )
    assert client.get("/wallet/me/credentials", headers=citizen.session).status_code == 401
    with app.state.engine.connect() as conn:
        assert conn.execute(select(VaultItem.id)).all() == []  # type: ignore[call-overload]


def test_kiosk_scans_of_my_qr_show_in_my_wallet(
    client: TestClient, app: FastAPI, enrol: Callable[..., Citizen]
) -> None:
    citizen = enrol()
    fresh_verifier(app, client)
    qr = client.post(
        f"/wallet/me/credentials/{citizen.credential_id}/qr",
        json={"claims": ["name", "nationality"], "form": "compact"},
        headers=citizen.session,
    ).json()
    assert (
        client.post(
            "/verifier/scan", json={"qr": qr["text"], "verifier_id": "district-3/counter-2"}
        ).status_code
        == 200
    )
    seen = client.get("/wallet/me/verifications", headers=citizen.session)
    assert seen.status_code == 200, seen.text
    records = [r for r in seen.json() if r.get("verifier_id") == "district-3/counter-2"]
    assert len(records) == 1
    assert records[0]["outcome"] == "verified"
    assert records[0]["claims"] == ["name", "nationality"]
    assert records[0]["credential_id"] == citizen.credential_id
    assert client.get("/wallet/me/verifications").status_code == 401
