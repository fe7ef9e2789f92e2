"""A holder with a real credential from the issuer (over HTTP) and a verifier that reads the issuer over HTTP."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import FastAPI
from fastapi.testclient import TestClient

from kernel.accounts import Role
from kernel.jose import public_jwk_dict
from kernel.sdjwt import present
from tests.issuer.issuer_fixtures import person_check
from verifier.fetch import CachingFetcher, HttpFetcher
from verifier.scanning import QR_AUDIENCE
from verifier.wiring import online_verifier


@dataclass
class Holder:
    key: ec.EllipticCurvePrivateKey
    credential: str  # SD-JWT with every disclosure
    credential_id: str
    receipt: dict[str, Any] | None

    def present(
        self,
        claims: list[str],
        *,
        aud: str = QR_AUDIENCE,
        nonce: str | None = None,
        iat: int | None = None,
        with_receipt: bool = True,
        key: ec.EllipticCurvePrivateKey | None = None,
    ) -> str:
        extra = {"imi_receipt": self.receipt} if with_receipt and self.receipt else None
        return present(
            self.credential,
            disclose=[("credentialSubject", c) for c in claims],
            holder_key=key or self.key,
            aud=aud,
            nonce=nonce or secrets.token_urlsafe(12),
            iat=iat if iat is not None else int(time.time()),
            extra_kb_claims=extra,
        )


def fresh_verifier(app: FastAPI, client: TestClient) -> None:
    """Point the app's verifier at the issuer through HTTP (the TestClient), as a separate party would,
    with an empty HTTP cache (a kiosk that has not fetched any status list yet)."""
    services = app.state.services
    app.state.verifier = online_verifier(
        services.engine,
        services.settings,
        services.verifier.trust,
        fetcher=CachingFetcher(HttpFetcher(client)),
    )


@pytest.fixture
def http_verifier(app: FastAPI, client: TestClient) -> None:
    fresh_verifier(app, client)


@pytest.fixture
def make_holder(client: TestClient, token_for: Callable[[Role], dict[str, str]]) -> Callable[..., Holder]:
    officer = token_for(Role.OFFICER)

    def factory(**check: Any) -> Holder:
        key = ec.generate_private_key(ec.SECP256R1())
        check_id = client.post("/issuer/checks", json=person_check(**check), headers=officer).json()["id"]
        issued = client.post(
            "/issuer/credentials",
            headers=officer,
            json={"check_id": check_id, "holder_jwk": public_jwk_dict(key)},
        ).json()
        return Holder(key, issued["credential"], issued["credential_id"], issued["receipt"])

    return factory
