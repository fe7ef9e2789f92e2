"""People at the counter sign in with passkeys; a citizen's session never carries an officer's powers."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient

from imi.soft_authenticator import SoftAuthenticator
from kernel.accounts import Role
from tests.issuer.issuer_fixtures import person_check
from tests.wallet.wallet_fixtures import Citizen


def test_officer_adds_a_passkey_then_signs_in_with_it(
    client: TestClient, token_for: Callable[[Role], dict[str, str]]
) -> None:
    bearer = token_for(Role.OFFICER)
    key = SoftAuthenticator("testserver", "http://testserver")
    start = client.post("/staff/passkeys/start", headers=bearer).json()
    finish = client.post(
        "/staff/passkeys/finish",
        headers=bearer,
        json={"ceremony_id": start["ceremony_id"], "credential": key.create(start["publicKey"])},
    )
    assert finish.status_code == 200, finish.text
    login = client.post("/staff/login/start").json()
    signed_in = client.post(
        "/staff/login/finish",
        json={"ceremony_id": login["ceremony_id"], "credential": key.get(login["publicKey"])},
    )
    assert signed_in.status_code == 200, signed_in.text
    assert signed_in.json()["role"] == "officer"
    session = {"Authorization": f"Bearer {signed_in.json()['session']}"}
    client.cookies.clear()
    assert client.post("/issuer/checks", json=person_check(), headers=session).status_code == 201
    # the cookie alone (what the counter page uses) works too
    client.cookies.set("imi_staff", signed_in.json()["session"])
    assert client.post("/issuer/checks", json=person_check()).status_code == 201
    client.cookies.clear()


def test_citizen_session_cannot_act_as_officer(client: TestClient, enrol: Callable[..., Citizen]) -> None:
    citizen = enrol()
    resp = client.post("/issuer/checks", json=person_check(), headers=citizen.session)
    assert resp.status_code == 403
    assert resp.json()["type"] == "urn:imi:problem:role-forbidden"
    login = client.post("/staff/login/start").json()
    refused = client.post(
        "/staff/login/finish",
        json={
            "ceremony_id": login["ceremony_id"],
            "credential": citizen.authenticator.get(login["publicKey"]),
        },
    )
    assert refused.json()["type"] == "urn:imi:problem:not-staff"


def test_counter_finds_the_credentials_of_a_check(
    client: TestClient, token_for: Callable[[Role], dict[str, str]]
) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    from kernel.jose import public_jwk_dict

    officer = token_for(Role.OFFICER)
    check_id = client.post("/issuer/checks", json=person_check(), headers=officer).json()["id"]
    assert client.get(f"/issuer/checks/{check_id}/credentials", headers=officer).json() == []
    jwk = public_jwk_dict(ec.generate_private_key(ec.SECP256R1()))
    issued = client.post(
        "/issuer/credentials", headers=officer, json={"check_id": check_id, "holder_jwk": jwk}
    ).json()
    found = client.get(f"/issuer/checks/{check_id}/credentials", headers=officer).json()
    assert [c["credential_id"] for c in found] == [issued["credential_id"]]
    assert client.get(f"/issuer/checks/{check_id}/credentials").status_code == 401
