"""Plain helpers for the issuer tests (HTTP calls of an officer and of a wallet, problem types, a fake clock).

Kept apart from ``issuer_fixtures`` (which holds the pytest fixtures) so that file is only ever appended to.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi.testclient import TestClient

from kernel.jose import public_jwk_dict
from tests.issuer.issuer_fixtures import RESIDENT_ID

PRE_AUTH_GRANT = "urn:ietf:params:oauth:grant-type:pre-authorized_code"
# GB 32100-2015 code with a correct check character (organisation code 60003734-1).
CREDIT_CODE = "91110000600037341L"
PERSON_SUBJECT = {
    "name": "王小明",
    "birthDate": "1949-12-31",
    "gender": "female",
    "nationality": "CHN",
    "address": "北京市东城区景山前街4号",
    "idNumber": RESIDENT_ID,
}


def company_check(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "kind": "company",
        "counter": "district-3/counter-2",
        "methods": ["document-inspection"],
        "credit_code": CREDIT_CODE,
        "name": "北京景山科技有限公司",
        "legal_representative": "李建国",
        "registered_address": "北京市东城区景山前街4号",
    }
    body.update(overrides)
    return body


def problem_slug(resp: httpx.Response) -> str:
    """The slug of an RFC 9457 problem response (``urn:imi:problem:<slug>``); fails on anything else."""
    assert resp.headers["content-type"].startswith("application/problem+json"), (resp.status_code, resp.text)
    body = resp.json()
    assert body["status"] == resp.status_code
    type_uri = str(body["type"])
    assert type_uri.startswith("urn:imi:problem:"), type_uri
    return type_uri.removeprefix("urn:imi:problem:")


def did_method(client: TestClient, kid_url: str) -> dict[str, Any]:
    """The verification method ``kid_url`` (a DID URL) of our DID document; it must be an assertion method."""
    doc = client.get("/.well-known/did.json").json()
    did, _, fragment = kid_url.partition("#")
    assert did == doc["id"], (kid_url, doc["id"])
    assert fragment
    assert kid_url in doc["assertionMethod"]
    (method,) = [m for m in doc["verificationMethod"] if m["id"] == kid_url]
    assert method["controller"] == doc["id"]
    found: dict[str, Any] = method
    return found


def record_check(client: TestClient, officer: dict[str, str], body: dict[str, Any]) -> str:
    resp = client.post("/issuer/checks", json=body, headers=officer)
    assert resp.status_code == 201, resp.text
    return str(resp.json()["id"])


def issue_direct(
    client: TestClient,
    officer: dict[str, str],
    check_id: str,
    key: ec.EllipticCurvePrivateKey,
    fmt: str = "vc+sd-jwt",
) -> dict[str, Any]:
    """POST /issuer/credentials bound to ``key``: the IssuedOut body."""
    resp = client.post(
        "/issuer/credentials",
        headers=officer,
        json={"check_id": check_id, "format": fmt, "holder_jwk": public_jwk_dict(key)},
    )
    assert resp.status_code == 201, resp.text
    body: dict[str, Any] = resp.json()
    return body


def make_offer(
    client: TestClient, officer: dict[str, str], check_id: str, fmt: str = "vc+sd-jwt"
) -> dict[str, Any]:
    """POST /issuer/credentials without a holder key: the OfferOut body (offer, PIN, QR)."""
    resp = client.post("/issuer/credentials", headers=officer, json={"check_id": check_id, "format": fmt})
    assert resp.status_code == 201, resp.text
    body: dict[str, Any] = resp.json()
    return body


def pre_authorized_code(offer: dict[str, Any]) -> str:
    return str(offer["credential_offer"]["grants"][PRE_AUTH_GRANT]["pre-authorized_code"])


def token_request(client: TestClient, code: str, pin: str | None) -> httpx.Response:
    form = {"grant_type": PRE_AUTH_GRANT, "pre-authorized_code": code}
    if pin is not None:
        form["tx_code"] = pin
    resp: httpx.Response = client.post("/oid4vci/token", data=form)
    return resp


def access_token(client: TestClient, offer: dict[str, Any]) -> str:
    resp = token_request(client, pre_authorized_code(offer), offer["tx_code"])
    assert resp.status_code == 200, resp.text
    return str(resp.json()["access_token"])


def c_nonce(client: TestClient) -> str:
    resp = client.post("/oid4vci/nonce")
    assert resp.status_code == 200, resp.text
    return str(resp.json()["c_nonce"])


def credential_request(
    client: TestClient, token: str | None, config: str, proofs: list[str] | None
) -> httpx.Response:
    body: dict[str, Any] = {"credential_configuration_id": config}
    if proofs is not None:
        body["proofs"] = {"jwt": proofs}
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    resp: httpx.Response = client.post("/oid4vci/credential", json=body, headers=headers)
    return resp


def wrong_pin(pin: str) -> str:
    return f"{(int(pin) + 1) % 1_000_000:06d}"


class FakeClock:
    """A clock for services that take ``clock=``: starts now (UTC) and moves only when told."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta

    def timestamp(self) -> int:
        return int(self.now.timestamp())
