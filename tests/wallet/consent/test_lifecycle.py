"""The whole consent story over HTTP: request, grant with a sensitive toggle, release, receipt, pause, resume,
narrow, withdraw; events chained and anchored; history; assisted consent; refusal; one-time consents."""

from __future__ import annotations

import hashlib
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient

from kernel.accounts import Role
from wallet_api.consent_rules import verify_chain
from wallet_api.consent_wiring import ConsentParts

from .conftest import ADDRESS, BIRTH, ID_NUMBER, NAME, Clock, ThirdParty, grant
from .helpers import disclosed_names, kb_claims, verify_anchor, verify_jwt, verify_release


def _events(client: TestClient, path: str, headers: dict[str, str]) -> list[dict[str, Any]]:
    resp = client.get(path, headers=headers)
    assert resp.status_code == 200, resp.text
    events: list[dict[str, Any]] = resp.json()
    return events


def test_full_lifecycle(
    app: FastAPI, client: TestClient, consent: ConsentParts, bank: ThirdParty, enrol: Any,
    http_verifier: None, clock: Clock,
) -> None:  # fmt: skip
    citizen = enrol()
    filed = bank.request()
    cid = filed["id"]
    assert filed["state"] == "requested"
    assert filed["qr_text"] == f"imi-consent:{cid}"
    assert filed["sub"] is None
    assert filed["link"].endswith(f"/wallet/consents/{cid}")
    assert filed["qr_svg"].startswith("<svg")
    # the citizen opens the link: who asks, for what, why; ID number flagged sensitive whatever the bank said
    seen = client.get(f"/wallet/me/consents/{cid}", headers=citizen.session).json()
    assert seen["client"]["name"] == "Example Bank"
    assert seen["notice"].startswith("We check")
    assert {i["key"]: i["sensitive"] for i in seen["items"]}[ID_NUMBER] is True
    # sensitive item without its own toggle: refused (PIPL art. 29)
    bad = grant(client, citizen.session, cid, sensitive_confirmed=[])
    assert bad.status_code == 400
    assert bad.json()["type"] == "urn:imi:problem:sensitive-item-unconfirmed"
    given = grant(client, citizen.session, cid)
    assert given.status_code == 200, given.text
    assert given.json()["state"] == "given"
    assert given.json()["granted"] == [NAME, BIRTH, ID_NUMBER]
    # the bank sees the state and a pairwise pseudonym, never the ID number
    view = client.get(f"/consent/consents/{cid}", headers=bank.headers).json()
    assert view["state"] == "given"
    assert len(view["sub"]) == 22
    assert "11010519491231002X" not in str(view)
    # receipt: JWS verified with joserfc, ISO/IEC TS 27560 fields, anchored in the log
    rec = client.get(f"/consent/consents/{cid}/receipt", headers=bank.headers).json()
    header, claims = verify_jwt(client, rec["receipt"])
    assert header["typ"] == "imi-consent-receipt+jwt"
    assert claims["record_id"] == cid
    assert claims["pii_principal_id"] == view["sub"]
    assert claims["consent_status"] == "dpv:ConsentGiven"
    assert claims["purposes"][0]["purpose"] == "dpv:CreditChecking"
    info = {p["claim"]: p for p in claims["purposes"][0]["pii_information"]}
    assert info[ID_NUMBER]["sensitive"]
    assert info[ID_NUMBER]["explicit_consent"]
    assert ADDRESS not in info
    verify_anchor(client, rec["anchor"], rec["receipt"])
    assert (
        client.get(f"/wallet/me/consents/{cid}/receipt", headers=citizen.session).json()["receipt"]
        == rec["receipt"]
    )
    # release: verifies with the verifier core, bound to the bank and to this consent version
    released = bank.release(cid, nonce="bank-nonce-0001")
    assert released.status_code == 200, released.text
    body = released.json()
    assert body["sub"] == view["sub"]
    assert body["version"] == 1
    assert released.headers["cache-control"] == "no-store"
    report = verify_release(app, body, client_id=bank.client_id, nonce="bank-nonce-0001", now=int(clock()))
    assert report.verified, report.failure
    assert set(report.disclosed) == {"name", "birthDate", "idNumber"}
    # pause: refused; resume: released again
    assert (
        client.post(f"/wallet/me/consents/{cid}/pause", headers=citizen.session).json()["state"] == "paused"
    )
    paused = bank.release(cid)
    assert paused.status_code == 409
    assert paused.json()["type"] == "urn:imi:problem:consent-paused"
    assert (
        client.post(f"/wallet/me/consents/{cid}/resume", headers=citizen.session).json()["state"] == "given"
    )
    assert bank.release(cid).status_code == 200
    # narrow: version 2 drops the ID number; version 1 is superseded
    narrowed = client.post(
        f"/wallet/me/consents/{cid}/narrow", json={"items": [NAME, BIRTH]}, headers=citizen.session
    )
    assert narrowed.status_code == 200, narrowed.text
    assert narrowed.json()["version"] == 2
    assert narrowed.json()["granted"] == [NAME, BIRTH]
    v2 = bank.release(cid, nonce="bank-nonce-0002").json()
    assert v2["version"] == 2
    assert disclosed_names(v2["presentation"]) == {"name", "birthDate"}
    assert kb_claims(v2["presentation"])["nonce"] == f"{cid}.2.bank-nonce-0002"
    old = client.get(f"/consent/consents/{cid}/receipt?version=1", headers=bank.headers).json()
    assert old["superseded"] is True
    _, v2_claims = verify_jwt(
        client, client.get(f"/consent/consents/{cid}/receipt", headers=bank.headers).json()["receipt"]
    )
    assert v2_claims["record_version"] == 2
    # withdraw: one call, and the very next request is refused
    assert (
        client.post(f"/wallet/me/consents/{cid}/withdraw", headers=citizen.session).json()["state"]
        == "withdrawn"
    )
    gone = bank.release(cid)
    assert gone.status_code == 409
    assert gone.json()["type"] == "urn:imi:problem:consent-withdrawn"
    assert client.post(f"/wallet/me/consents/{cid}/resume", headers=citizen.session).status_code == 409
    # every step is a chained event, with its commitment in the log
    events = _events(client, f"/wallet/me/consents/{cid}/events", citizen.session)
    kinds = [e["body"]["kind"] for e in events]
    assert kinds == [
        "requested",
        "given",
        "released",
        "paused",
        "resumed",
        "released",
        "narrowed",
        "released",
        "withdrawn",
    ]
    assert verify_chain([(e["body"], e["hash"]) for e in events]) == events[-1]["hash"]
    bank_events = _events(client, f"/consent/consents/{cid}/events", bank.headers)
    assert verify_chain([(e["body"], e["hash"]) for e in bank_events]) == events[-1]["hash"]
    assert "detail" not in bank_events[1]
    assert events[1]["detail"]["sensitive_confirmed"] == [ID_NUMBER]
    types = [e["log_event_type"] for e in events]
    assert types[1:3] == ["consent.given", "data.released"]
    assert types[-1] == "consent.withdrawn"
    first_release = events[2]
    assert (
        first_release["detail"]["presentation_sha256"]
        == hashlib.sha256(body["presentation"].encode()).hexdigest()
    )
    # the citizen's access history shows every release and every transition
    consent.worker.run_once()
    history = client.get("/wallet/me/history", headers=citizen.session).json()
    releases = [h for h in history if h["kind"] == "release" and h["consent_id"] == cid]
    assert sum(h["count"] for h in releases) == 3
    assert all(h["party"] == "Example Bank" for h in releases)
    transitions = {h["event"] for h in history if h["kind"] == "consent"}
    assert {"given", "paused", "resumed", "narrowed", "withdrawn"} <= transitions


def test_refuse_revoke_and_request_expiry(
    client: TestClient, bank: ThirdParty, enrol: Any, clock: Clock
) -> None:
    citizen = enrol()
    refused = bank.request()["id"]
    assert (
        client.post(f"/wallet/me/consents/{refused}/refuse", headers=citizen.session).json()["state"]
        == "refused"
    )
    assert grant(client, citizen.session, refused).status_code == 409
    assert bank.release(refused).json()["type"] == "urn:imi:problem:consent-refused"
    revoked = bank.request()["id"]
    assert grant(client, citizen.session, revoked).status_code == 200
    assert (
        client.post(f"/consent/consents/{revoked}/revoke", headers=bank.headers).json()["state"] == "revoked"
    )
    assert bank.release(revoked).json()["type"] == "urn:imi:problem:consent-revoked"
    unanswered = bank.request()["id"]
    clock.advance(8 * 86_400)
    late = grant(client, citizen.session, unanswered)
    assert late.status_code == 409
    assert late.json()["type"] == "urn:imi:problem:consent-expired"
    assert client.get(f"/consent/consents/{unanswered}", headers=bank.headers).json()["state"] == "expired"


def test_one_time_consent_is_consumed(client: TestClient, bank: ThirdParty, enrol: Any) -> None:
    citizen = enrol()
    cid = bank.request(one_time=True, frequency={"count": 1, "period": "day"})["id"]
    assert grant(client, citizen.session, cid).status_code == 200
    assert bank.release(cid).status_code == 200
    again = bank.release(cid)
    assert again.status_code == 409
    assert again.json()["type"] == "urn:imi:problem:consent-consumed"
    assert client.get(f"/consent/consents/{cid}", headers=bank.headers).json()["state"] == "consumed"


def test_assisted_consent_records_officer_and_guardian(
    client: TestClient, consent: ConsentParts, bank: ThirdParty, enrol: Any, token_for: Any
) -> None:
    citizen = enrol()
    cid = bank.request()["id"]
    session = citizen.session["Authorization"].split(" ", 1)[1]
    body = {
        "citizen_session": session,
        "items": [NAME, BIRTH],
        "guardian": {"name": "李四", "relationship": "son"},
    }
    officer = token_for(Role.OFFICER, "officer-7")
    assert (
        client.post(f"/consent/counter/consents/{cid}/grant", json=body, headers=bank.headers).status_code
        == 401
    )
    resp = client.post(f"/consent/counter/consents/{cid}/grant", json=body, headers=officer)
    assert resp.status_code == 200, resp.text
    assert resp.json()["collection_method"] == "assisted"
    _, claims = verify_jwt(client, resp.json()["receipt"])
    assert claims["collection_method"] == "assisted"
    given = _events(client, f"/wallet/me/consents/{cid}/events", citizen.session)[1]
    assert given["actor"] == "officer:officer-7"
    assert given["detail"]["guardian"] == {"name": "李四", "relationship": "son"}
    bank_view = _events(client, f"/consent/consents/{cid}/events", bank.headers)[1]
    assert "actor" not in bank_view
    assert "李四" not in str(bank_view)
    wrong = client.post(
        f"/consent/counter/consents/{cid}/grant", json={**body, "citizen_session": "nope"}, headers=officer
    )
    assert wrong.status_code == 401
