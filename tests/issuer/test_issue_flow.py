"""From the in-person check to a credential in the holder's hands, over HTTP, anchored and revocable."""

from __future__ import annotations

import base64
import io
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import zxingcpp
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi.testclient import TestClient
from PIL import Image

from kernel.accounts import Role
from kernel.jose import decode_jws_unverified, public_key_from_jwk, verify_jws
from kernel.sdjwt_verify import verify_sd_jwt
from ledger.note import NoteVerifier
from ledger.receipt import Receipt, verify_receipt
from tests.issuer.issuer_fixtures import key_proof, person_check

# (a large QR's modules can also read as a one-dimensional code, an EAN-13 say: look for QR codes only)
QR_ONLY = zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode)


def _issuer_key(client: TestClient, kid_url: str) -> Any:
    doc = client.get("/.well-known/did.json").json()
    method = next(m for m in doc["verificationMethod"] if m["id"] == kid_url)
    return public_key_from_jwk(method["publicKeyJwk"])


def _redeem(
    client: TestClient, offer: dict[str, Any], pin: str, key: ec.EllipticCurvePrivateKey
) -> dict[str, Any]:
    grant = offer["grants"]["urn:ietf:params:oauth:grant-type:pre-authorized_code"]
    meta = client.get("/.well-known/openid-credential-issuer").json()
    token_url = client.get("/.well-known/oauth-authorization-server").json()["token_endpoint"]
    tok = client.post(
        token_url,
        data={
            "grant_type": "urn:ietf:params:oauth:grant-type:pre-authorized_code",
            "pre-authorized_code": grant["pre-authorized_code"],
            "tx_code": pin,
        },
    )
    assert tok.status_code == 200, tok.text
    assert tok.headers["cache-control"] == "no-store"
    nonce = client.post(meta["nonce_endpoint"]).json()["c_nonce"]
    resp = client.post(
        meta["credential_endpoint"],
        headers={"Authorization": f"Bearer {tok.json()['access_token']}"},
        json={
            "credential_configuration_id": offer["credential_configuration_ids"][0],
            "proofs": {"jwt": [key_proof(key, nonce=nonce)]},
        },
    )
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


def test_check_offer_qr_pin_redeem_verify(
    client: TestClient, officer: dict[str, str], passed_check: str, holder_key: ec.EllipticCurvePrivateKey
) -> None:
    resp = client.post("/issuer/credentials", json={"check_id": passed_check}, headers=officer)
    assert resp.status_code == 201, resp.text
    offer = resp.json()
    png = base64.b64decode(offer["qr_png"].split(",", 1)[1])
    decoded = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)), formats=QR_ONLY)
    assert decoded[0].text == offer["credential_offer_uri"]
    query = parse_qs(urlsplit(decoded[0].text).query)
    assert "credential_offer" in query
    body = _redeem(client, offer["credential_offer"], offer["tx_code"], holder_key)
    sd_jwt = body["credentials"][0]["credential"]
    header = decode_jws_unverified(sd_jwt.split("~")[0]).header
    assert header["typ"] == "vc+sd-jwt"
    key = _issuer_key(client, header["kid"])
    verified = verify_sd_jwt(
        sd_jwt,
        issuer_key=key,
        expected_typ={"vc+sd-jwt"},
        require_kb=False,
        expected_aud=None,
        expected_nonce=None,
        now=0,
    )
    subject = verified.claims["credentialSubject"]
    assert subject["name"] == "王小明"
    assert subject["idNumber"] == "11010519491231002X"
    assert verified.claims["type"] == ["VerifiableCredential", "RealNameIdentityCredential"]
    assert verified.claims["evidence"][0]["result"] == "passed"
    assert len(verified.claims["credentialStatus"]) == 2
    # every subject claim is hidden behind a digest in the signed part
    signed = decode_jws_unverified(sd_jwt.split("~")[0]).payload
    assert set(signed["credentialSubject"]) == {"_sd"}
    assert len(signed["credentialSubject"]["_sd"]) >= 6 + 1  # six claims and at least one decoy
    receipt = Receipt.model_validate(body["imi_anchor_receipt"])
    vkey = NoteVerifier.from_vkey(client.get("/log/vkey").text.strip())
    import hashlib

    verify_receipt(
        receipt,
        log_verifier=vkey,
        expected_object_hash=hashlib.sha256(sd_jwt.split("~")[0].encode()).digest(),
    )


def test_status_list_flips_on_revoke_suspend_reinstate(
    client: TestClient, officer: dict[str, str], passed_check: str, holder_key: ec.EllipticCurvePrivateKey
) -> None:
    from kernel.jose import public_jwk_dict
    from kernel.statuslist import Bitstring, decode_list

    issued = client.post(
        "/issuer/credentials",
        headers=officer,
        json={"check_id": passed_check, "format": "vc+jwt", "holder_jwk": public_jwk_dict(holder_key)},
    ).json()
    jwt = issued["credential"]
    payload = decode_jws_unverified(jwt).payload
    verify_jws(jwt, _issuer_key(client, decode_jws_unverified(jwt).header["kid"]), expected_typ="vc+jwt")

    def bit(entry: dict[str, Any]) -> bool:
        url = entry["statusListCredential"].removeprefix("http://testserver")
        resp = client.get(url)
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("application/vc+jwt")
        assert "max-age" in resp.headers["cache-control"]
        again = client.get(url, headers={"If-None-Match": resp.headers["etag"]})
        assert again.status_code == 304
        listed = decode_jws_unverified(resp.text).payload
        bits = Bitstring.from_bytes(decode_list(listed["credentialSubject"]["encodedList"]))
        assert len(bits) >= 131_072
        return bits.get(int(entry["statusListIndex"]))

    rev, sus = payload["credentialStatus"]
    assert (rev["statusPurpose"], sus["statusPurpose"]) == ("revocation", "suspension")
    assert not bit(rev)
    assert not bit(sus)
    cid = issued["credential_id"]
    assert (
        client.post(f"/issuer/credentials/{cid}/status", json={"action": "suspend"}, headers=officer).json()[
            "status"
        ]
        == "suspended"
    )
    assert bit(sus)
    assert not bit(rev)
    assert (
        client.post(
            f"/issuer/credentials/{cid}/status", json={"action": "reinstate"}, headers=officer
        ).json()["status"]
        == "active"
    )
    assert not bit(sus)
    assert (
        client.post(f"/issuer/credentials/{cid}/status", json={"action": "revoke"}, headers=officer).json()[
            "status"
        ]
        == "revoked"
    )
    assert bit(rev)
    again = client.post(f"/issuer/credentials/{cid}/status", json={"action": "reinstate"}, headers=officer)
    assert again.status_code == 409
    assert again.json()["type"] == "urn:imi:problem:credential-revoked"


def test_refusals_have_their_own_problem_types(
    client: TestClient,
    officer: dict[str, str],
    passed_check: str,
    holder_key: ec.EllipticCurvePrivateKey,
    token_for: Callable[[Role], dict[str, str]],
) -> None:
    def problem(resp: Any) -> str:
        assert resp.headers["content-type"].startswith("application/problem+json"), resp.text
        return str(resp.json()["type"]).removeprefix("urn:imi:problem:")

    bad_id = person_check(document_number="110105194912310021")
    assert problem(client.post("/issuer/checks", json=bad_id, headers=officer)) == "resident-id-checksum"
    failed = client.post("/issuer/checks", json=person_check(result="failed"), headers=officer).json()["id"]
    assert (
        problem(client.post("/issuer/credentials", json={"check_id": failed}, headers=officer))
        == "check-not-passed"
    )
    citizen = token_for(Role.CITIZEN)
    assert problem(client.post("/issuer/checks", json=person_check(), headers=citizen)) == "role-forbidden"
    offer = client.post("/issuer/credentials", json={"check_id": passed_check}, headers=officer).json()
    code = offer["credential_offer"]["grants"]["urn:ietf:params:oauth:grant-type:pre-authorized_code"][
        "pre-authorized_code"
    ]
    form = {"grant_type": "urn:ietf:params:oauth:grant-type:pre-authorized_code", "pre-authorized_code": code}
    wrong = client.post(
        "/oid4vci/token", data={**form, "tx_code": "000000" if offer["tx_code"] != "000000" else "111111"}
    )
    assert problem(wrong) == "pin-wrong"
    assert wrong.json()["error"] == "invalid_grant"
    ok = client.post("/oid4vci/token", data={**form, "tx_code": offer["tx_code"]})
    assert ok.status_code == 200
    assert problem(client.post("/oid4vci/token", data={**form, "tx_code": offer["tx_code"]})) == "code-used"
    token = ok.json()["access_token"]
    req = {
        "credential_configuration_id": "RealNameIdentityCredential_sd_jwt",
        "proofs": {"jwt": [key_proof(holder_key, nonce="not-a-nonce")]},
    }
    bad_nonce = client.post("/oid4vci/credential", json=req, headers={"Authorization": f"Bearer {token}"})
    assert problem(bad_nonce) == "proof-nonce-invalid"
    assert bad_nonce.json()["error"] == "invalid_nonce"
