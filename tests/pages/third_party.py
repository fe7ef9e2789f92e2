"""A third party of the consent API (a bank) talking to the live server over HTTP: registered by an admin,
authenticated with RFC 7523 ``private_key_jwt`` client assertions, filing requests and fetching releases."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric import ec

from kernel.jose import public_jwk_dict, sign_jws
from tests.pages.live import LiveServer

PURPOSE = "dpv:CreditChecking"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def item(claim: str, *, required: bool) -> dict[str, Any]:
    return {"path": ["credentialSubject", claim], "required": required}


@dataclass
class ThirdParty:
    http: httpx.Client
    base_url: str
    client_id: str
    key: ec.EllipticCurvePrivateKey
    kid: str

    @classmethod
    def register(cls, server: LiveServer, name: str = "Example Bank") -> ThirdParty:
        http = httpx.Client(base_url=server.base_url, timeout=20)
        admin = {"Authorization": f"Bearer {server.admin_token()}"}
        purpose = {
            "label": "Credit checking before a loan",
            "legal_basis": "dpv:Consent",
            "max_validity_days": 365,
            "max_frequency": {"count": 100, "period": "day"},
            "max_retention_days": 30,
        }
        resp = http.put(f"/consent/admin/purposes/{PURPOSE}", json=purpose, headers=admin)
        assert resp.status_code == 200, resp.text
        key = ec.generate_private_key(ec.SECP256R1())
        kid = secrets.token_hex(4)
        client = {
            "name": name,
            "organisation_code": "91110000" + secrets.token_hex(5).upper(),
            "contact": "privacy@bank.example",
            "purposes": [PURPOSE],
            "jwks": {"keys": [{**public_jwk_dict(key), "kid": kid}]},
        }
        resp = http.post("/consent/admin/clients", json=client, headers=admin)
        assert resp.status_code == 201, resp.text
        return cls(http, server.base_url, str(resp.json()["id"]), key, kid)

    def _headers(self) -> dict[str, str]:
        now = int(time.time())
        claims = {
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": f"{self.base_url}/consent/token",
            "iat": now,
            "exp": now + 120,
            "jti": secrets.token_urlsafe(12),
        }
        form = {
            "grant_type": "client_credentials",
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": sign_jws(claims, self.key, typ="JWT", kid=self.kid),
        }
        resp = self.http.post("/consent/token", data=form)
        assert resp.status_code == 200, resp.text
        return {"Authorization": f"Bearer {resp.json()['access_token']}"}

    def request(self) -> dict[str, Any]:
        """Name and date of birth required; the ID number (sensitive) and the address optional."""
        body = {
            "purpose": PURPOSE,
            "items": [
                item("name", required=True),
                item("birthDate", required=True),
                item("idNumber", required=False),
                item("address", required=False),
            ],
            "recipients": ["Example Bank credit team"],
            "validity_days": 90,
            "frequency": {"count": 10, "period": "day"},
            "retention_days": 30,
            "notice": "We check your identity before granting a loan.",
        }
        resp = self.http.post("/consent/requests", json=body, headers=self._headers())
        assert resp.status_code == 201, resp.text
        data: dict[str, Any] = resp.json()
        return data

    def release(self, consent_id: str) -> httpx.Response:
        query = {"nonce": secrets.token_urlsafe(12)}
        return self.http.get(f"/consent/consents/{consent_id}/data", params=query, headers=self._headers())
