"""Consent API fixtures: the app with the consent routers on a controllable clock, a purpose, third parties that
authenticate with RFC 7523 client assertions, a webhook receiver, and citizens enrolled over HTTP."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from fastapi import FastAPI
from fastapi.testclient import TestClient

from kernel.accounts import Role
from kernel.jose import PrivateKey, public_jwk_dict, sign_jws
from kernel.sealing import derive_key, load_master_key
from wallet_api.consent_api import install
from wallet_api.consent_wiring import ConsentParts, build_consent

PURPOSE = "dpv:CreditChecking"
NAME, BIRTH, ID_NUMBER, ADDRESS = (
    f"credentialSubject.{c}" for c in ("name", "birthDate", "idNumber", "address")
)


class Clock:
    """Wall-clock time that tests move forward."""

    def __init__(self) -> None:
        self.now = float(
            int(time.time()) + 60
        )  # a minute ahead: credentials issued during the test are valid

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Receiver:
    """A third party's webhook endpoint: records each POST and answers with the next queued status."""

    statuses: list[int] = field(default_factory=list)
    received: list[httpx.Request] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.received.append(request)
        return httpx.Response(self.statuses.pop(0) if self.statuses else 204)

    def bodies(self) -> list[str]:
        return [r.content.decode() for r in self.received]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def receiver() -> Receiver:
    return Receiver()


@pytest.fixture
def consent(app: FastAPI, client: TestClient, clock: Clock, receiver: Receiver) -> ConsentParts:
    """The consent API on this app, with a test clock and the webhook receiver behind a mock transport."""
    services, settings = app.state.services, app.state.settings
    master = load_master_key(settings.data_dir, settings.master_key)
    parts = build_consent(
        services.engine,
        keystore=services.keystore,
        log=services.log,
        vault=app.state.wallet.vault,
        pairwise_key=derive_key(master, "pairwise"),
        public_url=settings.public_url,
        resolve_session=app.state.wallet.sessions.resolve,
        http=httpx.Client(transport=httpx.MockTransport(receiver)),
        clock=clock,
    )
    if hasattr(app.state, "consent"):  # mounted by the composition root: swap in the test clock's parts
        app.state.consent = parts
    else:
        install(app, parts)
    return parts


@pytest.fixture
def admin(token_for: Callable[..., dict[str, str]]) -> dict[str, str]:
    return token_for(Role.ADMIN, "registry-admin")


@pytest.fixture
def purpose(client: TestClient, admin: dict[str, str], consent: ConsentParts) -> str:
    body = {
        "label": "Credit checking before a loan",
        "legal_basis": "dpv:Consent",
        "max_validity_days": 365,
        "max_frequency": {"count": 100, "period": "day"},
        "max_retention_days": 30,
    }
    resp = client.put(f"/consent/admin/purposes/{PURPOSE}", json=body, headers=admin)
    assert resp.status_code == 200, resp.text
    return PURPOSE


@dataclass
class ThirdParty:
    client: TestClient
    client_id: str
    key: PrivateKey
    kid: str
    clock: Clock
    _token: str | None = None
    _token_until: float = 0.0

    def assertion(self, **overrides: Any) -> str:
        now = int(self.clock())
        claims: dict[str, Any] = {
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": "http://testserver/consent/token",
            "iat": now,
            "exp": now + 120,
            "jti": secrets.token_urlsafe(12),
        }
        claims.update(overrides)
        return sign_jws({k: v for k, v in claims.items() if v is not None}, self.key, typ="JWT", kid=self.kid)

    def token_response(self, assertion: str | None = None, **form: str) -> httpx.Response:
        data = {
            "grant_type": "client_credentials",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": assertion or self.assertion(),
            **form,
        }
        resp: httpx.Response = self.client.post("/consent/token", data=data)
        return resp

    @property
    def headers(self) -> dict[str, str]:
        if self._token is None or self.clock() >= self._token_until:  # tokens live 5 minutes
            resp = self.token_response()
            assert resp.status_code == 200, resp.text
            self._token, self._token_until = (
                resp.json()["access_token"],
                self.clock() + resp.json()["expires_in"],
            )
        return {"Authorization": f"Bearer {self._token}"}

    def request(self, **overrides: Any) -> dict[str, Any]:
        body: dict[str, Any] = {
            "purpose": PURPOSE,
            "items": [
                {"path": ["credentialSubject", "name"], "required": True},
                {"path": ["credentialSubject", "birthDate"], "required": True},
                {"path": ["credentialSubject", "idNumber"], "required": False},
                {"path": ["credentialSubject", "address"], "required": False},
            ],
            "recipients": ["Example Bank credit team"],
            "validity_days": 90,
            "frequency": {"count": 10, "period": "day"},
            "retention_days": 30,
            "notice": "We check your identity before granting a loan.",
        }
        body.update(overrides)
        resp = self.client.post("/consent/requests", json=body, headers=self.headers)
        assert resp.status_code == 201, resp.text
        data: dict[str, Any] = resp.json()
        return data

    def release(self, consent_id: str, nonce: str | None = None, **params: str) -> httpx.Response:
        query = {"nonce": nonce or secrets.token_urlsafe(12), **params}
        resp: httpx.Response = self.client.get(
            f"/consent/consents/{consent_id}/data", params=query, headers=self.headers
        )
        return resp


@pytest.fixture
def make_third_party(
    client: TestClient, admin: dict[str, str], clock: Clock, purpose: str
) -> Callable[..., ThirdParty]:
    def factory(
        name: str = "Example Bank",
        *,
        eddsa: bool = False,
        webhook_url: str | None = None,
        purposes: tuple[str, ...] = (PURPOSE,),
    ) -> ThirdParty:
        key: PrivateKey = (
            ed25519.Ed25519PrivateKey.generate() if eddsa else ec.generate_private_key(ec.SECP256R1())
        )
        kid = secrets.token_hex(4)
        body = {
            "name": name,
            "organisation_code": "91110000" + secrets.token_hex(5).upper(),
            "contact": "privacy@bank.example",
            "purposes": list(purposes),
            "jwks": {"keys": [{**public_jwk_dict(key), "kid": kid}]},
            "webhook_url": webhook_url,
        }
        resp = client.post("/consent/admin/clients", json=body, headers=admin)
        assert resp.status_code == 201, resp.text
        return ThirdParty(client, resp.json()["id"], key, kid, clock)

    return factory


@pytest.fixture
def bank(make_third_party: Callable[..., ThirdParty]) -> ThirdParty:
    return make_third_party("Example Bank", webhook_url="https://bank.example/imi-hook")


def grant(client: TestClient, session: dict[str, str], consent_id: str, **body: Any) -> httpx.Response:
    payload = {"items": [NAME, BIRTH, ID_NUMBER], "sensitive_confirmed": [ID_NUMBER], **body}
    resp: httpx.Response = client.post(
        f"/wallet/me/consents/{consent_id}/grant", json=payload, headers=session
    )
    return resp
