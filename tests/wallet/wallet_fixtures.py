"""A citizen enrolled in the wallet over HTTP: counter check, offer QR + PIN, passkey (software authenticator)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from kernel.accounts import Role
from tests.issuer.issuer_fixtures import person_check
from tests.wallet.soft_authenticator import SoftAuthenticator
from verifier.fetch import CachingFetcher, DidWebResolver, HttpFetcher


@dataclass
class Citizen:
    session: dict[str, str]
    authenticator: SoftAuthenticator
    credential_id: str  # the wallet's item id of the first credential


@pytest.fixture
def wallet_http(app: FastAPI, client: TestClient) -> None:
    """The wallet reaches issuer and verifier over HTTP: here through the test client."""
    wallet = app.state.wallet
    wallet.http = client
    wallet.resolver = DidWebResolver(CachingFetcher(HttpFetcher(client)))


def new_offer(client: TestClient, officer: dict[str, str], **check: Any) -> dict[str, Any]:
    check_id = client.post("/issuer/checks", json=person_check(**check), headers=officer).json()["id"]
    offer: dict[str, Any] = client.post(
        "/issuer/credentials", json={"check_id": check_id}, headers=officer
    ).json()
    return offer


@pytest.fixture
def enrol(
    client: TestClient, token_for: Callable[[Role], dict[str, str]], wallet_http: None
) -> Callable[..., Citizen]:
    officer = token_for(Role.OFFICER)

    def factory(*, user_verified: bool = True, **check: Any) -> Citizen:
        offer = new_offer(client, officer, **check)
        start = client.post(
            "/wallet/enrol/start", json={"offer": offer["credential_offer_uri"], "pin": offer["tx_code"]}
        )
        assert start.status_code == 200, start.text
        authenticator = SoftAuthenticator("testserver", "http://testserver", user_verified=user_verified)
        attestation = authenticator.create(start.json()["publicKey"])
        finish = client.post(
            "/wallet/enrol/finish",
            json={"ceremony_id": start.json()["ceremony_id"], "credential": attestation},
        )
        assert finish.status_code == 200, finish.text
        session = {"Authorization": f"Bearer {finish.json()['session']}"}
        client.cookies.clear()  # each citizen proves itself with its own bearer session in these tests
        creds = client.get("/wallet/me/credentials", headers=session).json()
        return Citizen(session, authenticator, creds[0]["id"])

    return factory
