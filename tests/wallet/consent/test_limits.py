"""Fair use and the release rules over HTTP: purpose limits, frequency, expiry, narrowing, items not granted,
withdrawal on the very next request, suspended purposes, erased data spaces."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from wallet_api.consent_wiring import ConsentParts

from .conftest import ADDRESS, BIRTH, ID_NUMBER, NAME, PURPOSE, Clock, ThirdParty, grant
from .helpers import disclosed_names, verify_release

DAY = 86_400


def _type(resp: Any) -> str:
    return str(resp.json()["type"]).removeprefix("urn:imi:problem:")


@pytest.mark.parametrize(
    ("override", "slug"),
    [
        ({"validity_days": 366}, "purpose-limit-validity"),
        ({"frequency": {"count": 101, "period": "day"}}, "purpose-limit-frequency"),
        ({"frequency": {"count": 5, "period": "hour"}}, "purpose-limit-frequency"),  # 120/day > 100/day
        ({"retention_days": 31}, "purpose-limit-retention"),
        ({"purpose": "dpv:Marketing"}, "purpose-not-allowed"),
    ],
)
def test_requests_must_fit_the_purpose(
    client: TestClient, bank: ThirdParty, override: dict[str, Any], slug: str
) -> None:
    body = {
        "purpose": PURPOSE,
        "items": [{"path": ["credentialSubject", "name"]}],
        "validity_days": 30,
        "frequency": {"count": 1, "period": "day"},
        "retention_days": 1,
        **override,
    }
    resp = client.post("/consent/requests", json=body, headers=bank.headers)
    assert resp.status_code == 403
    assert _type(resp) == slug


def test_items_not_granted_never_leave(
    app: FastAPI, client: TestClient, bank: ThirdParty, enrol: Any, http_verifier: None, clock: Clock
) -> None:
    citizen = enrol()
    cid = bank.request()["id"]
    assert grant(client, citizen.session, cid, items=[NAME, BIRTH], sensitive_confirmed=[]).status_code == 200
    body = bank.release(cid, nonce="n-123456789").json()
    assert disclosed_names(body["presentation"]) == {"name", "birthDate"}
    for secret in ("11010519491231002X", "景山前街"):
        assert secret not in str(body)
        assert secret not in body["presentation"]
    report = verify_release(app, body, client_id=bank.client_id, nonce="n-123456789", now=int(clock()))
    assert report.verified
    assert set(report.disclosed) == {"name", "birthDate"}
    for wanted in (ID_NUMBER, ADDRESS, f"{NAME},{ID_NUMBER}"):
        refused = bank.release(cid, claims=wanted)
        assert refused.status_code == 403
        assert _type(refused) == "consent-item-not-granted"
    subset = bank.release(cid, claims=NAME).json()
    assert subset["items"] == [NAME]
    assert disclosed_names(subset["presentation"]) == {"name"}
    # a grant may leave out optional items only; unknown items and items the bank never asked for are refused
    other = bank.request()["id"]
    assert (
        _type(grant(client, citizen.session, other, items=[NAME], sensitive_confirmed=[]))
        == "consent-required-item-missing"
    )
    bogus = grant(
        client,
        citizen.session,
        other,
        items=[NAME, BIRTH, "credentialSubject.gender"],
        sensitive_confirmed=[],
    )
    assert _type(bogus) == "consent-item-not-requested"


def test_withdrawal_stops_the_next_release(client: TestClient, bank: ThirdParty, enrol: Any) -> None:
    citizen = enrol()
    cid = bank.request()["id"]
    assert grant(client, citizen.session, cid).status_code == 200
    for _ in range(3):  # the presentation cache is warm
        assert bank.release(cid).status_code == 200
    assert client.post(f"/wallet/me/consents/{cid}/withdraw", headers=citizen.session).status_code == 200
    refused = bank.release(cid)
    assert refused.status_code == 409
    assert _type(refused) == "consent-withdrawn"


def test_frequency_limit_per_consent_and_purpose(
    client: TestClient, bank: ThirdParty, enrol: Any, clock: Clock, admin: dict[str, str]
) -> None:
    citizen = enrol()
    cid = bank.request(frequency={"count": 3, "period": "day"})["id"]
    assert grant(client, citizen.session, cid).status_code == 200
    assert [bank.release(cid).status_code for _ in range(3)] == [200, 200, 200]
    over = bank.release(cid)
    assert over.status_code == 429
    assert _type(over) == "consent-frequency-exceeded"
    assert 0 < over.json()["retry_after"] <= DAY
    assert over.headers["retry-after"] == "1"
    clock.advance(DAY)
    assert bank.release(cid).status_code == 200
    # the admin tightens the purpose: the stricter limit applies at once to consents already given
    limits = {
        "label": "Credit",
        "max_validity_days": 365,
        "max_frequency": {"count": 1, "period": "day"},
        "max_retention_days": 30,
    }
    assert client.put(f"/consent/admin/purposes/{PURPOSE}", json=limits, headers=admin).status_code == 200
    clock.advance(DAY)
    assert bank.release(cid).status_code == 200
    assert _type(bank.release(cid)) == "consent-frequency-exceeded"
    # a suspended purpose releases nothing
    suspended = {**limits, "active": False}
    assert client.put(f"/consent/admin/purposes/{PURPOSE}", json=suspended, headers=admin).status_code == 200
    clock.advance(DAY)
    stopped = bank.release(cid)
    assert stopped.status_code == 403
    assert _type(stopped) == "purpose-suspended"


def test_expiry(
    client: TestClient, consent: ConsentParts, bank: ThirdParty, enrol: Any, clock: Clock
) -> None:
    citizen = enrol()
    cid = bank.request(validity_days=2)["id"]
    swept = bank.request(validity_days=1)["id"]
    assert grant(client, citizen.session, cid).status_code == 200
    assert grant(client, citizen.session, swept).status_code == 200
    clock.advance(DAY + 1)
    assert consent.worker.run_once()["expired"] == 1  # the sweep records expiry without anyone asking
    assert client.get(f"/consent/consents/{swept}", headers=bank.headers).json()["state"] == "expired"
    assert bank.release(cid).status_code == 200
    clock.advance(DAY)
    late = bank.release(cid)
    assert late.status_code == 409
    assert _type(late) == "consent-expired"
    assert client.get(f"/consent/consents/{cid}", headers=bank.headers).json()["state"] == "expired"
    assert _type(bank.release(cid)) == "consent-expired"


def test_narrowing_rules(client: TestClient, bank: ThirdParty, enrol: Any, clock: Clock) -> None:
    citizen = enrol()
    cid = bank.request()["id"]
    assert grant(client, citizen.session, cid).status_code == 200
    url = f"/wallet/me/consents/{cid}/narrow"
    cases = [
        ({"items": [NAME, BIRTH, ID_NUMBER, ADDRESS]}, 400, "narrowing-widens"),
        ({"items": [NAME, ID_NUMBER]}, 400, "consent-required-item-missing"),
        ({"frequency_count": 11}, 400, "narrowing-widens"),
        ({"valid_until": int(clock()) + 400 * DAY}, 400, "narrowing-widens"),
        ({"items": [NAME, BIRTH, ID_NUMBER]}, 409, "narrowing-noop"),
    ]
    for body, status, slug in cases:
        resp = client.post(url, json=body, headers=citizen.session)
        assert (resp.status_code, _type(resp)) == (status, slug), body
    narrowed = client.post(
        url, json={"frequency_count": 1, "valid_until": int(clock()) + DAY}, headers=citizen.session
    )
    assert narrowed.status_code == 200
    assert narrowed.json()["version"] == 2
    assert narrowed.json()["frequency"]["count"] == 1
    assert bank.release(cid).status_code == 200
    assert _type(bank.release(cid)) == "consent-frequency-exceeded"
    clock.advance(DAY)
    assert _type(bank.release(cid)) == "consent-expired"


def test_erasing_the_data_space_revokes_consents(client: TestClient, bank: ThirdParty, enrol: Any) -> None:
    citizen = enrol()
    cid = bank.request()["id"]
    assert grant(client, citizen.session, cid).status_code == 200
    assert bank.release(cid).status_code == 200
    assert client.delete("/wallet/me", headers=citizen.session).status_code == 200
    gone = bank.release(cid)
    assert gone.status_code == 409
    assert _type(gone) == "consent-revoked"
    assert client.get(f"/consent/consents/{cid}", headers=bank.headers).json()["state"] == "revoked"
