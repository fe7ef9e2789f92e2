"""Issuer fixtures: an officer, a passed check, a holder key, and an OpenID4VCI wallet made of plain HTTP calls."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi.testclient import TestClient

from kernel.accounts import Role
from kernel.jose import public_jwk_dict, sign_jws

# GB 11643-1999 Appendix A example number: born 1949-12-31, 17th digit even -> female.
RESIDENT_ID = "11010519491231002X"


def person_check(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "kind": "person",
        "counter": "district-3/counter-7",
        "methods": ["id-card-chip", "face-match"],
        "document_number": RESIDENT_ID,
        "name": "王小明",
        "birth_date": "1949-12-31",
        "sex": "F",
        "nationality": "CHN",
        "address": "北京市东城区景山前街4号",
        "face_match": {"score": 0.97, "threshold": 0.9},
    }
    body.update(overrides)
    return body


@pytest.fixture
def officer(token_for: Callable[[Role], dict[str, str]]) -> dict[str, str]:
    return token_for(Role.OFFICER)


@pytest.fixture
def passed_check(client: TestClient, officer: dict[str, str]) -> str:
    resp = client.post("/issuer/checks", json=person_check(), headers=officer)
    assert resp.status_code == 201, resp.text
    return str(resp.json()["id"])


@pytest.fixture
def holder_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def key_proof(
    key: ec.EllipticCurvePrivateKey,
    *,
    nonce: str | None,
    aud: str = "http://testserver",
    iat: int | None = None,
    typ: str = "openid4vci-proof+jwt",
) -> str:
    claims: dict[str, Any] = {"aud": aud, "iat": iat if iat is not None else int(time.time())}
    if nonce is not None:
        claims["nonce"] = nonce
    return sign_jws(claims, key, typ=typ, extra_headers={"jwk": public_jwk_dict(key)})
