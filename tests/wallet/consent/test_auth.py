"""Client registration by admins and OAuth 2.0 client credentials with private_key_jwt (RFC 7523)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi.testclient import TestClient

from kernel.accounts import Role
from kernel.jose import b64url_encode, sign_jws

from .conftest import Clock, ThirdParty, grant


def _type(resp: Any) -> str:
    return str(resp.json()["type"]).removeprefix("urn:imi:problem:")


def test_token_endpoint_happy_path(bank: ThirdParty, make_third_party: Callable[..., ThirdParty]) -> None:
    resp = bank.token_response()
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 300
    assert body["access_token"].startswith("imic_")
    assert resp.headers["cache-control"] == "no-store"
    eddsa = make_third_party("EdDSA Bank", eddsa=True)
    assert eddsa.token_response().status_code == 200
    # the issuer identifier is an accepted audience too (RFC 7523 section 3, item 3)
    assert bank.token_response(bank.assertion(aud=["http://testserver/consent", "other"])).status_code == 200


@pytest.mark.parametrize(
    ("overrides", "slug"),
    [
        ({"aud": "http://testserver/other"}, "client-assertion-invalid"),
        ({"aud": [{"not": "a string"}, 7]}, "client-assertion-invalid"),
        ({"exp": None}, "client-assertion-invalid"),
        ({"exp": -10}, "client-assertion-invalid"),  # relative to now: already expired
        ({"exp": 301}, "client-assertion-invalid"),  # more than five minutes ahead
        ({"iat": 120}, "client-assertion-invalid"),  # issued in the future
        ({"jti": None}, "client-assertion-invalid"),
        ({"sub": "someone-else"}, "client-assertion-invalid"),
        ({"iss": "cl_unknown", "sub": "cl_unknown"}, "client-assertion-invalid"),
    ],
)
def test_bad_assertions(bank: ThirdParty, clock: Clock, overrides: dict[str, Any], slug: str) -> None:
    now = int(clock())
    fixed = {k: (now + v if k in ("exp", "iat") and isinstance(v, int) else v) for k, v in overrides.items()}
    resp = bank.token_response(bank.assertion(**fixed))
    assert resp.status_code == 401
    assert _type(resp) == slug
    assert resp.json()["error"] == "invalid_client"


def test_jti_is_single_use(bank: ThirdParty) -> None:
    assertion = bank.assertion()
    assert bank.token_response(assertion).status_code == 200
    again = bank.token_response(assertion)
    assert again.status_code == 401
    assert _type(again) == "client-assertion-replayed"


def test_only_es256_and_eddsa_and_only_the_registered_key(bank: ThirdParty, clock: Clock) -> None:
    claims = json.loads(
        json.dumps({"iss": bank.client_id, "sub": bank.client_id, "aud": "http://testserver/consent/token"})
    )
    claims.update(exp=int(clock()) + 60, jti="j-1")
    header = b64url_encode(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    unsigned = f"{header}.{b64url_encode(json.dumps(claims).encode())}."
    hs256 = f"{b64url_encode(json.dumps({'alg': 'HS256'}).encode())}.{b64url_encode(json.dumps(claims).encode())}.c2ln"
    stranger = sign_jws(
        {**claims, "jti": "j-2"}, ec.generate_private_key(ec.SECP256R1()), typ="JWT", kid=bank.kid
    )
    for assertion in (unsigned, hs256, stranger, "not-a-jwt"):
        resp = bank.token_response(assertion)
        assert resp.status_code == 401, assertion
        assert resp.json()["error"] == "invalid_client", assertion
    assert _type(bank.token_response(grant_type="password")) == "grant-type-unsupported"
    wrong_type = bank.token_response(
        client_assertion_type="urn:ietf:params:oauth:client-assertion-type:saml2-bearer"
    )
    assert wrong_type.status_code == 401


def test_access_tokens_expire_after_five_minutes(client: TestClient, bank: ThirdParty, clock: Clock) -> None:
    headers = bank.headers
    assert client.get("/consent/consents", headers=headers).status_code == 200
    clock.advance(301)
    resp = client.get("/consent/consents", headers=headers)
    assert resp.status_code == 401
    assert _type(resp) == "client-token-expired"


def test_admin_routes_need_an_admin(
    client: TestClient, token_for: Callable[..., dict[str, str]], bank: ThirdParty, admin: dict[str, str]
) -> None:
    body = {
        "name": "X",
        "organisation_code": "1",
        "contact": "x@y",
        "purposes": ["dpv:CreditChecking"],
        "jwks": {"keys": []},
    }
    assert client.post("/consent/admin/clients", json=body).status_code == 401
    assert (
        client.post("/consent/admin/clients", json=body, headers=token_for(Role.OFFICER)).status_code == 403
    )
    assert client.post("/consent/admin/clients", json=body, headers=bank.headers).status_code == 401
    bad_keys = client.post("/consent/admin/clients", json=body, headers=admin)
    assert bad_keys.status_code == 400
    assert _type(bad_keys) == "client-jwks-invalid"
    private = {**body, "jwks": {"keys": [{"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA", "d": "AA"}]}}
    assert _type(client.post("/consent/admin/clients", json=private, headers=admin)) == "client-jwks-invalid"
    purpose = {
        "label": "x",
        "max_validity_days": 1,
        "max_frequency": {"count": 1, "period": "day"},
        "max_retention_days": 1,
    }
    assert (
        client.put(
            "/consent/admin/purposes/dpv:Marketing", json=purpose, headers=token_for(Role.OFFICER)
        ).status_code
        == 403
    )
    assert client.put("/consent/admin/purposes/not a term", json=purpose, headers=admin).status_code == 422
    listed = client.get("/consent/admin/clients", headers=admin).json()
    assert bank.client_id in {c["id"] for c in listed}
    assert any(p["term"] == "dpv:CreditChecking" for p in client.get("/consent/purposes").json())


def test_disabling_a_client_kills_tokens_and_revokes_consents(
    client: TestClient, bank: ThirdParty, enrol: Any, admin: dict[str, str]
) -> None:
    citizen = enrol()
    cid = bank.request()["id"]
    assert grant(client, citizen.session, cid).status_code == 200
    headers = bank.headers
    resp = client.post(f"/consent/admin/clients/{bank.client_id}/disable", json={}, headers=admin)
    assert resp.status_code == 200
    assert resp.json()["revoked_consents"] == 1
    assert resp.json()["disabled"] is True
    assert client.get("/consent/consents", headers=headers).status_code == 401
    assert bank.token_response().status_code == 401
    assert client.get(f"/wallet/me/consents/{cid}", headers=citizen.session).json()["state"] == "revoked"
