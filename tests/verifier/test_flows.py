"""The two kiosk flows with real credentials from the issuer: the citizen's QR, and the kiosk's OpenID4VP QR."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import zxingcpp
from fastapi import FastAPI
from fastapi.testclient import TestClient
from PIL import Image

from kernel.accounts import Role
from kernel.did import resolve_key
from kernel.jose import verify_jws
from kernel.qr import qr_png, qr_version
from kernel.qr_payload import encode_compact
from tests.verifier.verifier_fixtures import Holder, fresh_verifier
from verifier.fetch import DidWebResolver, HttpFetcher

# (a large QR's modules can also read as a one-dimensional code, an EAN-13 say: look for QR codes only)
QR_ONLY = zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode)

pytestmark = pytest.mark.usefixtures("http_verifier")


def _problem(resp: Any) -> str:
    assert resp.headers["content-type"].startswith("application/problem+json"), resp.text
    return str(resp.json()["type"]).removeprefix("urn:imi:problem:")


def test_citizen_qr_compact_decoded_by_zxing_and_verified(
    client: TestClient, make_holder: Callable[..., Holder]
) -> None:
    holder = make_holder()
    presentation = holder.present(["name", "birthDate", "nationality"], with_receipt=False)
    compact = encode_compact(presentation)
    assert qr_version(compact, "M") <= 25, (len(presentation), len(compact), qr_version(compact, "M"))
    image = Image.open(io.BytesIO(qr_png(compact)))
    scanned = zxingcpp.read_barcodes(image, formats=QR_ONLY)[0].text
    resp = client.post("/verifier/scan", json={"qr": scanned})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["verified"] is True
    assert body["disclosed"] == {"name": "王小明", "birthDate": "1949-12-31", "nationality": "CHN"}
    assert "idNumber" not in json.dumps(body)
    replay = client.post("/verifier/scan", json={"qr": scanned})
    assert _problem(replay) == "presentation-replayed"


def test_plain_presentation_with_receipt_checks_the_anchor(
    client: TestClient, make_holder: Callable[..., Holder]
) -> None:
    holder = make_holder()
    resp = client.post("/verifier/scan", json={"qr": holder.present(["name"])})
    assert resp.status_code == 200, resp.text
    checks = {c["check"]: c["ok"] for c in resp.json()["checks"]}
    assert checks["anchor"] is True
    assert checks["status"] is True
    assert checks["holder-binding"] is True


def test_kiosk_request_wallet_answers_kiosk_reads(
    client: TestClient, make_holder: Callable[..., Holder]
) -> None:
    holder = make_holder()
    created = client.post(
        "/verifier/requests", json={"claims": ["name", "birthDate"], "verifier_id": "kiosk-12"}
    )
    assert created.status_code == 201, created.text
    req = created.json()
    qr_text = zxingcpp.read_barcodes(Image.open(io.BytesIO(qr_png(req["qr_text"]))), formats=QR_ONLY)[0].text
    params = {k: v[0] for k, v in parse_qs(urlsplit(qr_text).query).items()}
    assert qr_text.startswith("openid4vp://")
    jwt = client.get(params["request_uri"].removeprefix("http://testserver")).text
    kid = jwt and json.loads(__import__("base64").urlsafe_b64decode(jwt.split(".")[0] + "==")).get("kid")
    key = resolve_key(kid, DidWebResolver(HttpFetcher(client)))
    request = verify_jws(jwt, key, expected_typ="oauth-authz-req+jwt").payload
    assert request["client_id"] == params["client_id"]
    assert request["response_mode"] == "direct_post"
    wanted = [c["path"][1] for c in request["dcql_query"]["credentials"][0]["claims"]]
    presentation = holder.present(wanted, aud=request["client_id"], nonce=request["nonce"])
    vp_token = json.dumps({request["dcql_query"]["credentials"][0]["id"]: [presentation]})
    answered = client.post(
        request["response_uri"].removeprefix("http://testserver"),
        data={"vp_token": vp_token, "state": request["state"]},
    )
    assert answered.status_code == 200, answered.text
    result = client.get(f"/verifier/requests/{req['id']}", params={"wait": 1}).json()
    assert result["status"] == "verified"
    assert result["result"]["disclosed"] == {"name": "王小明", "birthDate": "1949-12-31"}
    again = client.post(
        request["response_uri"].removeprefix("http://testserver"),
        data={"vp_token": vp_token, "state": request["state"]},
    )
    assert _problem(again) == "nonce-used"


def test_revoked_and_suspended_are_refused(
    client: TestClient,
    app: FastAPI,
    make_holder: Callable[..., Holder],
    token_for: Callable[[Role], dict[str, str]],
) -> None:
    officer = token_for(Role.OFFICER)
    for action, slug in (("suspend", "credential-suspended"), ("revoke", "credential-revoked")):
        holder = make_holder()
        client.post(
            f"/issuer/credentials/{holder.credential_id}/status", json={"action": action}, headers=officer
        )
        # kiosks cache lists for max-age (60 s); a kiosk with an empty cache sees the flip at once
        fresh_verifier(app, client)
        resp = client.post("/verifier/scan", json={"qr": holder.present(["name"])})
        assert _problem(resp) == slug
