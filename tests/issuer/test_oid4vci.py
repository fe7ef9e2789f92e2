"""OpenID4VCI 1.0 pre-authorized code flow over HTTP: metadata, token and credential endpoints, every refusal.

Each refusal has its own problem type (``urn:imi:problem:<slug>``) and carries the OpenID error code in ``error``.
Time-dependent rules (offer, token and nonce lifetimes) run against a fake clock: the ``clock`` fixture installs
an ``Oid4vciService`` built with ``clock=`` on the app (``app.state.oid4vci``, which the routes read per request).
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from fastapi import FastAPI
from fastapi.testclient import TestClient

from issuer.oid4vci import MAX_PIN_ATTEMPTS, Oid4vciService
from kernel.errors import ImiError
from kernel.jose import (
    PublicKey,
    b64url_encode,
    decode_jws_unverified,
    public_jwk_dict,
    public_key_from_jwk,
    sign_jws,
    verify_jws,
)
from kernel.sdjwt_verify import verify_sd_jwt
from ledger.note import NoteVerifier
from ledger.receipt import Receipt, verify_receipt
from tests.issuer.helpers import (
    CREDIT_CODE,
    PERSON_SUBJECT,
    PRE_AUTH_GRANT,
    FakeClock,
    access_token,
    c_nonce,
    company_check,
    credential_request,
    did_method,
    make_offer,
    pre_authorized_code,
    problem_slug,
    record_check,
    token_request,
    wrong_pin,
)
from tests.issuer.issuer_fixtures import key_proof, person_check

PERSON_SD = "RealNameIdentityCredential_sd_jwt"
PERSON_JWT = "RealNameIdentityCredential_jwt"
COMPANY_SD = "LegalEntityCredential_sd_jwt"


@pytest.fixture
def clock(app: FastAPI, client: TestClient) -> FakeClock:
    """A fake clock behind the OpenID4VCI endpoints (a fresh service built through its ``clock=`` parameter)."""
    fake = FakeClock()
    app.state.oid4vci = Oid4vciService(
        app.state.engine, app.state.issuer, hmac_key=secrets.token_bytes(32), clock=fake
    )
    return fake


# ----------------------------------------------------------------------------------------------------- metadata


def test_credential_issuer_metadata_shape(client: TestClient) -> None:
    resp = client.get("/.well-known/openid-credential-issuer")
    assert resp.status_code == 200
    meta = resp.json()
    assert meta["credential_issuer"] == "http://testserver"
    assert meta["credential_endpoint"] == "http://testserver/oid4vci/credential"
    assert meta["nonce_endpoint"] == "http://testserver/oid4vci/nonce"
    configs = meta["credential_configurations_supported"]
    assert set(configs) == {PERSON_SD, PERSON_JWT, COMPANY_SD, "LegalEntityCredential_jwt"}
    for config_id, config in configs.items():
        ctype = config_id.rsplit("_", 2)[0] if config_id.endswith("_sd_jwt") else config_id.rsplit("_", 1)[0]
        assert config["format"] == ("vc+sd-jwt" if config_id.endswith("_sd_jwt") else "vc+jwt")
        assert config["credential_definition"]["type"] == ["VerifiableCredential", ctype]
        assert config["cryptographic_binding_methods_supported"] == ["jwk"]
        algs = config["proof_types_supported"]["jwt"]["proof_signing_alg_values_supported"]
        assert set(algs) == {"ES256", "EdDSA"}
        assert set(config["credential_signing_alg_values_supported"]) == {"ES256", "EdDSA"}
    # The endpoints the metadata names exist and answer.
    nonce = client.post(meta["nonce_endpoint"].removeprefix("http://testserver"))
    assert nonce.status_code == 200
    assert nonce.headers["cache-control"] == "no-store"
    assert len(nonce.json()["c_nonce"]) >= 22


def test_authorization_server_metadata_shape(client: TestClient) -> None:
    meta = client.get("/.well-known/oauth-authorization-server").json()
    assert meta["issuer"] == "http://testserver"
    assert meta["token_endpoint"] == "http://testserver/oid4vci/token"
    assert meta["grant_types_supported"] == [PRE_AUTH_GRANT]
    assert meta["pre-authorized_grant_anonymous_access_supported"] is True


def test_offer_shape(client: TestClient, officer: dict[str, str], passed_check: str) -> None:
    offer = make_offer(client, officer, passed_check, fmt="vc+jwt")
    body = offer["credential_offer"]
    assert body["credential_issuer"] == "http://testserver"
    assert body["credential_configuration_ids"] == [PERSON_JWT]
    grant = body["grants"][PRE_AUTH_GRANT]
    assert grant["tx_code"]["input_mode"] == "numeric"
    assert grant["tx_code"]["length"] == 6
    assert len(offer["tx_code"]) == 6
    assert offer["tx_code"].isdigit()
    assert len(grant["pre-authorized_code"]) >= 43  # 256 bits
    assert offer["credential_offer_uri"].startswith("openid-credential-offer://?credential_offer=")
    # The offer is single-use material: the PIN is never inside it.
    assert offer["tx_code"] not in json.dumps(body).replace(grant["pre-authorized_code"], "")


# -------------------------------------------------------------------------------------------- token endpoint


def test_wrong_pin_five_times_locks_the_offer_even_for_the_right_pin(
    client: TestClient, officer: dict[str, str], passed_check: str
) -> None:
    offer = make_offer(client, officer, passed_check)
    code, bad = pre_authorized_code(offer), wrong_pin(offer["tx_code"])
    for _ in range(MAX_PIN_ATTEMPTS):
        resp = token_request(client, code, bad)
        assert resp.status_code == 400
        assert problem_slug(resp) == "pin-wrong"
        assert resp.json()["error"] == "invalid_grant"
    locked = token_request(client, code, offer["tx_code"])
    assert locked.status_code == 400
    assert problem_slug(locked) == "pin-locked"
    assert locked.json()["error"] == "invalid_grant"


def test_four_wrong_pins_still_leave_the_right_one(
    client: TestClient, officer: dict[str, str], passed_check: str
) -> None:
    offer = make_offer(client, officer, passed_check)
    code = pre_authorized_code(offer)
    for _ in range(MAX_PIN_ATTEMPTS - 1):
        assert problem_slug(token_request(client, code, wrong_pin(offer["tx_code"]))) == "pin-wrong"
    ok = token_request(client, code, offer["tx_code"])
    assert ok.status_code == 200, ok.text


def test_parallel_pin_guesses_cannot_exceed_the_limit(
    app: FastAPI, client: TestClient, officer: dict[str, str], passed_check: str
) -> None:
    offer = make_offer(client, officer, passed_check)
    code, bad = pre_authorized_code(offer), wrong_pin(offer["tx_code"])
    service: Oid4vciService = app.state.oid4vci

    def guess(_: int) -> str:
        try:
            service.token(grant_type=PRE_AUTH_GRANT, code=code, tx_code=bad)
        except ImiError as exc:
            return exc.slug
        return "granted"

    with ThreadPoolExecutor(12) as pool:
        outcomes = Counter(pool.map(guess, range(36)))
    assert outcomes == {"pin-wrong": MAX_PIN_ATTEMPTS, "pin-locked": 36 - MAX_PIN_ATTEMPTS}


def test_replayed_code_is_refused(client: TestClient, officer: dict[str, str], passed_check: str) -> None:
    offer = make_offer(client, officer, passed_check)
    first = token_request(client, pre_authorized_code(offer), offer["tx_code"])
    assert first.status_code == 200, first.text
    token = first.json()
    assert token["token_type"] == "Bearer"
    assert token["expires_in"] == 300
    assert first.headers["cache-control"] == "no-store"
    assert token["authorization_details"] == [
        {"type": "openid_credential", "credential_configuration_id": PERSON_SD}
    ]
    replay = token_request(client, pre_authorized_code(offer), offer["tx_code"])
    assert replay.status_code == 400  # RFC 6749 section 5.2: invalid_grant is a 400
    assert problem_slug(replay) == "code-used"
    assert replay.json()["error"] == "invalid_grant"


def test_expired_offer_is_refused(
    client: TestClient, officer: dict[str, str], passed_check: str, clock: FakeClock
) -> None:
    in_time, late = make_offer(client, officer, passed_check), make_offer(client, officer, passed_check)
    clock.advance(timedelta(minutes=14, seconds=59))
    assert token_request(client, pre_authorized_code(in_time), in_time["tx_code"]).status_code == 200
    clock.advance(timedelta(seconds=2))
    resp = token_request(client, pre_authorized_code(late), late["tx_code"])
    assert resp.status_code == 400
    assert problem_slug(resp) == "offer-expired"
    assert resp.json()["error"] == "invalid_grant"


def test_unknown_code_is_refused(client: TestClient) -> None:
    resp = token_request(client, secrets.token_urlsafe(32), "123456")
    assert resp.status_code == 400
    assert problem_slug(resp) == "code-invalid"
    assert resp.json()["error"] == "invalid_grant"


def test_missing_pin_is_refused_and_not_counted(
    client: TestClient, officer: dict[str, str], passed_check: str
) -> None:
    offer = make_offer(client, officer, passed_check)
    for _ in range(MAX_PIN_ATTEMPTS + 1):
        resp = token_request(client, pre_authorized_code(offer), None)
        assert resp.status_code == 400
        assert problem_slug(resp) == "pin-missing"
        assert resp.json()["error"] == "invalid_request"
    assert token_request(client, pre_authorized_code(offer), offer["tx_code"]).status_code == 200


def test_other_grant_types_are_refused(
    client: TestClient, officer: dict[str, str], passed_check: str
) -> None:
    offer = make_offer(client, officer, passed_check)
    resp = client.post(
        "/oid4vci/token",
        data={
            "grant_type": "authorization_code",
            "pre-authorized_code": pre_authorized_code(offer),
            "tx_code": offer["tx_code"],
        },
    )
    assert resp.status_code == 400
    assert problem_slug(resp) == "grant-unsupported"
    assert resp.json()["error"] == "unsupported_grant_type"
    # The refused request consumed nothing.
    assert token_request(client, pre_authorized_code(offer), offer["tx_code"]).status_code == 200


# --------------------------------------------------------------------------------------- credential endpoint


@pytest.fixture
def token(client: TestClient, officer: dict[str, str], passed_check: str) -> str:
    """An access token for an SD-JWT RealNameIdentityCredential offer."""
    return access_token(client, make_offer(client, officer, passed_check))


def test_credential_needs_a_valid_access_token(
    client: TestClient, holder_key: ec.EllipticCurvePrivateKey, token: str
) -> None:
    proof = [key_proof(holder_key, nonce=c_nonce(client))]
    missing = credential_request(client, None, PERSON_SD, proof)
    assert missing.status_code == 401
    assert problem_slug(missing) == "access-token-missing"
    assert missing.json()["error"] == "invalid_token"
    basic = client.post(
        "/oid4vci/credential",
        json={"credential_configuration_id": PERSON_SD, "proofs": {"jwt": proof}},
        headers={"Authorization": f"Basic {token}"},
    )
    assert problem_slug(basic) == "access-token-missing"
    invalid = credential_request(client, secrets.token_urlsafe(32), PERSON_SD, proof)
    assert invalid.status_code == 401
    assert problem_slug(invalid) == "access-token-invalid"
    assert invalid.json()["error"] == "invalid_token"
    # The real token still works with the very same (unconsumed) nonce.
    assert credential_request(client, token, PERSON_SD, proof).status_code == 200


def _unsigned(header: dict[str, Any], claims: dict[str, Any]) -> str:
    def part(value: dict[str, Any]) -> str:
        return b64url_encode(json.dumps(value).encode())

    return f"{part(header)}.{part(claims)}.{b64url_encode(b'x' * 64)}"


def test_bad_key_proofs_are_refused_each_with_its_own_type(
    client: TestClient, holder_key: ec.EllipticCurvePrivateKey, token: str
) -> None:
    now = int(time.time())
    public = public_jwk_dict(holder_key)
    private = {**public, "d": b64url_encode(holder_key.private_numbers().private_value.to_bytes(32, "big"))}
    other = ec.generate_private_key(ec.SECP256R1())

    def refused(proofs: list[str] | None, slug: str, error: str = "invalid_proof") -> None:
        resp = credential_request(client, token, PERSON_SD, proofs)
        assert resp.status_code == 400, resp.text
        assert problem_slug(resp) == slug
        assert resp.json()["error"] == error

    refused(
        [key_proof(holder_key, nonce=c_nonce(client), aud="https://other.example")], "proof-audience-mismatch"
    )
    refused([key_proof(holder_key, nonce=c_nonce(client), typ="JWT")], "proof-typ-mismatch")
    refused([key_proof(holder_key, nonce=c_nonce(client), iat=now - 600)], "proof-stale")
    refused([key_proof(holder_key, nonce=c_nonce(client), iat=now + 600)], "proof-stale")
    refused([key_proof(holder_key, nonce=None)], "proof-nonce-missing")
    refused([key_proof(holder_key, nonce="never-issued")], "proof-nonce-invalid", "invalid_nonce")
    claims = {"aud": "http://testserver", "iat": now, "nonce": c_nonce(client)}
    with_private_key = sign_jws(
        claims, holder_key, typ="openid4vci-proof+jwt", extra_headers={"jwk": private}
    )
    refused([with_private_key], "proof-jwk-invalid")
    with_kid = sign_jws(
        claims, holder_key, typ="openid4vci-proof+jwt", kid="k1", extra_headers={"jwk": public}
    )
    refused([with_kid], "proof-key-missing")
    refused([sign_jws(claims, holder_key, typ="openid4vci-proof+jwt")], "proof-key-missing")
    # Signed by another key than the one it names.
    refused(
        [sign_jws(claims, other, typ="openid4vci-proof+jwt", extra_headers={"jwk": public})],
        "proof-signature-invalid",
    )
    refused(
        [_unsigned({"alg": "none", "typ": "openid4vci-proof+jwt", "jwk": public}, claims)],
        "proof-alg-not-allowed",
    )
    refused(
        [_unsigned({"alg": "HS256", "typ": "openid4vci-proof+jwt", "jwk": public}, claims)],
        "proof-alg-not-allowed",
    )
    refused(["not.a.jwt"], "proof-jws-malformed")
    refused(None, "proof-missing")
    refused([], "proof-missing")
    two = [key_proof(holder_key, nonce=c_nonce(client)), key_proof(holder_key, nonce=c_nonce(client))]
    refused(two, "proof-missing")
    wrong_config = credential_request(
        client, token, PERSON_JWT, [key_proof(holder_key, nonce=c_nonce(client))]
    )
    assert problem_slug(wrong_config) == "credential-configuration-unknown"
    assert wrong_config.json()["error"] == "unknown_credential_configuration"
    empty = client.post("/oid4vci/credential", json={}, headers={"Authorization": f"Bearer {token}"})
    assert problem_slug(empty) == "credential-request-malformed"
    # None of these burned the token: a good proof still gets the credential.
    ok = credential_request(client, token, PERSON_SD, [key_proof(holder_key, nonce=c_nonce(client))])
    assert ok.status_code == 200, ok.text


def test_a_nonce_works_once(
    client: TestClient, officer: dict[str, str], passed_check: str, holder_key: ec.EllipticCurvePrivateKey
) -> None:
    first, second = (access_token(client, make_offer(client, officer, passed_check)) for _ in range(2))
    nonce = c_nonce(client)
    assert (
        credential_request(client, first, PERSON_SD, [key_proof(holder_key, nonce=nonce)]).status_code == 200
    )
    reused = credential_request(client, second, PERSON_SD, [key_proof(holder_key, nonce=nonce)])
    assert reused.status_code == 400
    assert problem_slug(reused) == "proof-nonce-invalid"
    assert reused.json()["error"] == "invalid_nonce"
    fresh = credential_request(client, second, PERSON_SD, [key_proof(holder_key, nonce=c_nonce(client))])
    assert fresh.status_code == 200, fresh.text


def test_an_access_token_gets_one_credential(
    client: TestClient, holder_key: ec.EllipticCurvePrivateKey, token: str
) -> None:
    assert (
        credential_request(
            client, token, PERSON_SD, [key_proof(holder_key, nonce=c_nonce(client))]
        ).status_code
        == 200
    )
    again = credential_request(client, token, PERSON_SD, [key_proof(holder_key, nonce=c_nonce(client))])
    assert again.status_code == 401  # RFC 6750 section 3.1: invalid_token is a 401
    assert problem_slug(again) == "token-used"
    assert again.json()["error"] == "invalid_token"


def test_access_token_expires(
    client: TestClient,
    officer: dict[str, str],
    passed_check: str,
    holder_key: ec.EllipticCurvePrivateKey,
    clock: FakeClock,
) -> None:
    token = access_token(client, make_offer(client, officer, passed_check))
    clock.advance(timedelta(minutes=5, seconds=1))
    resp = credential_request(
        client, token, PERSON_SD, [key_proof(holder_key, nonce=c_nonce(client), iat=clock.timestamp())]
    )
    assert resp.status_code == 401
    assert problem_slug(resp) == "access-token-invalid"


def test_nonce_expires(
    client: TestClient,
    officer: dict[str, str],
    passed_check: str,
    holder_key: ec.EllipticCurvePrivateKey,
    clock: FakeClock,
) -> None:
    old_nonce = c_nonce(client)
    clock.advance(timedelta(minutes=5, seconds=1))
    token = access_token(client, make_offer(client, officer, passed_check))
    stale = credential_request(
        client, token, PERSON_SD, [key_proof(holder_key, nonce=old_nonce, iat=clock.timestamp())]
    )
    assert problem_slug(stale) == "proof-nonce-invalid"
    fresh = credential_request(
        client, token, PERSON_SD, [key_proof(holder_key, nonce=c_nonce(client), iat=clock.timestamp())]
    )
    assert fresh.status_code == 200, fresh.text


# ---------------------------------------------------------------------------------------------- success paths


def _issuer_key(client: TestClient, credential: str) -> PublicKey:
    kid = decode_jws_unverified(credential.split("~", 1)[0]).header["kid"]
    return public_key_from_jwk(did_method(client, kid)["publicKeyJwk"])


def _check_receipt(client: TestClient, body: dict[str, Any], credential: str) -> None:
    receipt = Receipt.model_validate(body["imi_anchor_receipt"])
    assert receipt.event_type == "credential.issued"
    verify_receipt(
        receipt,
        log_verifier=NoteVerifier.from_vkey(client.get("/log/vkey").text.strip()),
        expected_object_hash=hashlib.sha256(credential.split("~", 1)[0].encode()).digest(),
    )


@pytest.mark.parametrize(("fmt", "config"), [("vc+sd-jwt", PERSON_SD), ("vc+jwt", PERSON_JWT)])
def test_full_flow_person(
    client: TestClient,
    officer: dict[str, str],
    passed_check: str,
    holder_key: ec.EllipticCurvePrivateKey,
    fmt: str,
    config: str,
) -> None:
    offer = make_offer(client, officer, passed_check, fmt=fmt)
    assert offer["credential_offer"]["credential_configuration_ids"] == [config]
    token = access_token(client, offer)
    resp = credential_request(client, token, config, [key_proof(holder_key, nonce=c_nonce(client))])
    assert resp.status_code == 200, resp.text
    assert resp.headers["cache-control"] == "no-store"
    body = resp.json()
    credential = body["credentials"][0]["credential"]
    key = _issuer_key(client, credential)
    if fmt == "vc+sd-jwt":
        claims = verify_sd_jwt(
            credential,
            issuer_key=key,
            expected_typ="vc+sd-jwt",
            require_kb=False,
            expected_aud=None,
            expected_nonce=None,
            now=0,
        ).claims
    else:
        assert "~" not in credential
        claims = verify_jws(credential, key, expected_typ="vc+jwt").payload
    assert claims["credentialSubject"] == PERSON_SUBJECT
    assert claims["cnf"]["jwk"] == public_jwk_dict(holder_key)
    assert claims["evidence"][0]["result"] == "passed"
    assert claims["evidence"][0]["location"] == "district-3/counter-7"
    _check_receipt(client, body, credential)
    state = client.get(f"/issuer/credentials/{claims['id']}", headers=officer).json()
    assert (state["status"], state["format"], state["credential_type"]) == (
        "active",
        fmt,
        "RealNameIdentityCredential",
    )


def test_full_flow_company_legal_entity_credential(
    client: TestClient, officer: dict[str, str], holder_key: ec.EllipticCurvePrivateKey
) -> None:
    check_id = record_check(client, officer, company_check())
    offer = make_offer(client, officer, check_id)
    assert offer["credential_offer"]["credential_configuration_ids"] == [COMPANY_SD]
    token_resp = token_request(client, pre_authorized_code(offer), offer["tx_code"])
    assert token_resp.json()["authorization_details"][0]["credential_configuration_id"] == COMPANY_SD
    token = token_resp.json()["access_token"]
    # The token is for the company configuration only.
    person = credential_request(client, token, PERSON_SD, [key_proof(holder_key, nonce=c_nonce(client))])
    assert problem_slug(person) == "credential-configuration-unknown"
    resp = credential_request(client, token, COMPANY_SD, [key_proof(holder_key, nonce=c_nonce(client))])
    assert resp.status_code == 200, resp.text
    credential = resp.json()["credentials"][0]["credential"]
    claims = verify_sd_jwt(
        credential,
        issuer_key=_issuer_key(client, credential),
        expected_typ="vc+sd-jwt",
        require_kb=False,
        expected_aud=None,
        expected_nonce=None,
        now=0,
    ).claims
    assert claims["type"] == ["VerifiableCredential", "LegalEntityCredential"]
    assert claims["credentialSubject"] == {
        "creditCode": CREDIT_CODE,
        "name": "北京景山科技有限公司",
        "legalRepresentative": "李建国",
        "registeredAddress": "北京市东城区景山前街4号",
    }
    assert claims["evidence"][0]["method"] == ["document-inspection"]
    assert "faceMatch" not in claims["evidence"][0]
    _check_receipt(client, resp.json(), credential)


def test_ed25519_holder_key_is_accepted(
    client: TestClient, officer: dict[str, str], passed_check: str
) -> None:
    holder = ed25519.Ed25519PrivateKey.generate()
    token = access_token(client, make_offer(client, officer, passed_check))
    claims = {"aud": "http://testserver", "iat": int(time.time()), "nonce": c_nonce(client)}
    proof = sign_jws(
        claims, holder, typ="openid4vci-proof+jwt", extra_headers={"jwk": public_jwk_dict(holder)}
    )
    resp = credential_request(client, token, PERSON_SD, [proof])
    assert resp.status_code == 200, resp.text
    signed = decode_jws_unverified(resp.json()["credentials"][0]["credential"].split("~", 1)[0]).payload
    assert signed["cnf"]["jwk"] == {"kty": "OKP", "crv": "Ed25519", "x": public_jwk_dict(holder)["x"]}


# ---------------------------------------------------------------------------------- officer without a passed check


def test_no_offer_and_no_credential_without_a_passed_check(
    client: TestClient, officer: dict[str, str], holder_key: ec.EllipticCurvePrivateKey
) -> None:
    failed = record_check(client, officer, person_check(result="failed"))
    for body in ({"check_id": failed}, {"check_id": failed, "holder_jwk": public_jwk_dict(holder_key)}):
        resp = client.post("/issuer/credentials", json=body, headers=officer)
        assert resp.status_code == 409
        assert problem_slug(resp) == "check-not-passed"
    unknown = client.post("/issuer/credentials", json={"check_id": secrets.token_hex(16)}, headers=officer)
    assert unknown.status_code == 404
    assert problem_slug(unknown) == "check-not-found"
