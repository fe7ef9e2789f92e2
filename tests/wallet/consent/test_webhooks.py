"""Signed notifications to the third party: one per transition, verified with joserfc, retried with backoff."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from wallet_api.consent_webhooks import MAX_ATTEMPTS, backoff
from wallet_api.consent_wiring import ConsentParts

from .conftest import Clock, Receiver, ThirdParty, grant
from .helpers import verify_jwt


def test_transitions_are_notified_with_signed_webhooks(
    client: TestClient, consent: ConsentParts, bank: ThirdParty, enrol: Any, receiver: Receiver
) -> None:
    citizen = enrol()
    cid = bank.request()["id"]
    assert grant(client, citizen.session, cid).status_code == 200
    assert bank.release(cid).status_code == 200  # a release is not a transition: no notification
    for action in ("pause", "resume", "withdraw"):
        assert client.post(f"/wallet/me/consents/{cid}/{action}", headers=citizen.session).status_code == 200
    assert consent.worker.run_once()["delivered"] == 4
    assert {str(r.url) for r in receiver.received} == {"https://bank.example/imi-hook"}
    assert all(r.headers["content-type"] == "application/jwt" for r in receiver.received)
    verified = [verify_jwt(client, body) for body in receiver.bodies()]
    assert {h["typ"] for h, _ in verified} == {"imi-consent-event+jwt"}
    claims = [c for _, c in verified]
    assert [c["event"] for c in claims] == ["given", "paused", "resumed", "withdrawn"]
    assert [c["state"] for c in claims] == ["given", "paused", "given", "withdrawn"]
    assert all(c["aud"] == f"imi-client:{bank.client_id}" and c["consent_id"] == cid for c in claims)
    sub = client.get(f"/consent/consents/{cid}", headers=bank.headers).json()["sub"]
    assert {c["sub"] for c in claims} == {sub}
    assert len({c["jti"] for c in claims}) == 4  # receivers deduplicate on jti
    assert consent.worker.run_once()["delivered"] == 0  # delivered once


def test_failed_deliveries_back_off_and_retry(
    client: TestClient, consent: ConsentParts, bank: ThirdParty, enrol: Any, receiver: Receiver, clock: Clock,
    admin: dict[str, str],
) -> None:  # fmt: skip
    citizen = enrol()
    cid = bank.request()["id"]
    receiver.statuses = [500, 503]
    assert grant(client, citizen.session, cid).status_code == 200
    assert consent.worker.run_once()["delivered"] == 0  # attempt 1: 500
    assert consent.worker.run_once()["delivered"] == 0  # not due yet: no attempt
    assert len(receiver.received) == 1
    clock.advance(backoff(1))
    assert consent.worker.run_once()["delivered"] == 0  # attempt 2: 503
    clock.advance(backoff(2) - 1)
    assert consent.worker.run_once()["delivered"] == 0
    assert len(receiver.received) == 2
    clock.advance(1)
    assert consent.worker.run_once()["delivered"] == 1  # attempt 3: 204
    assert receiver.bodies()[0] == receiver.bodies()[2]  # the same signed notification each time
    rows = client.get(f"/consent/admin/clients/{bank.client_id}/webhooks", headers=admin).json()
    assert rows[0]["attempts"] == 3
    assert rows[0]["delivered_at"] is not None
    assert rows[0]["last_error"] == ""


def test_backoff_schedule() -> None:
    waits = [backoff(n) for n in range(1, MAX_ATTEMPTS + 1)]
    assert waits[:4] == [30, 60, 120, 240]
    assert waits == sorted(waits)
    assert max(waits) <= 6 * 3600
    assert backoff(30) == 6 * 3600
