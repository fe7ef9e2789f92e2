"""Key rotation (old credentials keep verifying), who may call what, the audit trail, and personal data at rest.

Personal data: the issuer keeps the in-person check sealed (AES-256-GCM) and never stores a credential, so after
a check and several issuances no table holds the ID number, the name or the address in plain text; nor do the
logs. The raw SQLite file (and its WAL) is searched too, byte for byte.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import FastAPI
from fastapi.testclient import TestClient
from jwcrypto.jwk import JWK
from sd_jwt.verifier import SDJWTVerifier
from sqlalchemy import inspect, select, table, text

from issuer.service import IssuerService
from issuer.status import PublishedList, StatusRegistry
from kernel.accounts import Role, create_token
from kernel.errors import VerificationFailed
from kernel.jose import decode_jws_unverified, public_key_from_jwk, verify_jws
from kernel.sdjwt_verify import verify_sd_jwt
from schemas.issuer import PersonCheckIn
from tests.issuer.helpers import (
    CREDIT_CODE,
    FakeClock,
    access_token,
    c_nonce,
    company_check,
    credential_request,
    did_method,
    issue_direct,
    make_offer,
    problem_slug,
    record_check,
)
from tests.issuer.issuer_fixtures import RESIDENT_ID, key_proof, person_check

PERSONAL = {
    "ID number": RESIDENT_ID,
    "name": "王小明",
    "address": "北京市东城区景山前街4号",
    "credit code": CREDIT_CODE,
    "legal representative": "李建国",
}


def _named(app: FastAPI, role: Role, name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {create_token(app.state.engine, role=role, name=name)}"}


def _verify(client: TestClient, credential: str) -> dict[str, Any]:
    """Verify a vc+jwt or vc+sd-jwt with the DID-document key its header names; return the claims."""
    header = decode_jws_unverified(credential.split("~", 1)[0]).header
    key = public_key_from_jwk(did_method(client, header["kid"])["publicKeyJwk"])
    if "~" in credential:
        return verify_sd_jwt(
            credential,
            issuer_key=key,
            expected_typ="vc+sd-jwt",
            require_kb=False,
            expected_aud=None,
            expected_nonce=None,
            now=0,
        ).claims
    return verify_jws(credential, key, expected_typ="vc+jwt").payload


# ------------------------------------------------------------------------------------------------ key rotation


def test_rotation_is_for_admins_only(client: TestClient, token_for: Callable[[Role], dict[str, str]]) -> None:
    for role in (Role.OFFICER, Role.AUDITOR, Role.NOTARY, Role.CITIZEN):
        resp = client.post("/issuer/keys/rotate", headers=token_for(role))
        assert resp.status_code == 403, role
        assert problem_slug(resp) == "role-forbidden"
    anonymous = client.post("/issuer/keys/rotate")
    assert anonymous.status_code == 401
    assert problem_slug(anonymous) == "token-missing"
    assert len(client.get("/.well-known/did.json").json()["verificationMethod"]) == 1  # nothing rotated


def test_credentials_signed_before_a_rotation_keep_verifying(
    client: TestClient,
    officer: dict[str, str],
    passed_check: str,
    holder_key: ec.EllipticCurvePrivateKey,
    token_for: Callable[[Role], dict[str, str]],
) -> None:
    old_sd = issue_direct(client, officer, passed_check, holder_key)["credential"]
    old_jwt = issue_direct(client, officer, passed_check, holder_key, fmt="vc+jwt")["credential"]
    old_kid = decode_jws_unverified(old_jwt).header["kid"]
    rotated = client.post("/issuer/keys/rotate", headers=token_for(Role.ADMIN))
    assert rotated.status_code == 200, rotated.text
    new_kid = rotated.json()["kid"]
    assert rotated.json()["alg"] == "ES256"
    assert new_kid != old_kid
    assert new_kid.startswith("did:web:testserver#")
    doc = client.get("/.well-known/did.json").json()
    assert [m["id"] for m in doc["verificationMethod"]] == [old_kid, new_kid]
    assert doc["assertionMethod"] == [old_kid, new_kid]
    # Old credentials verify with the old key, resolved through the (new) DID document.
    assert _verify(client, old_sd)["credentialSubject"]["idNumber"] == RESIDENT_ID
    assert _verify(client, old_jwt)["credentialSubject"]["name"] == "王小明"
    # New credentials are signed with the new key, and only it verifies them.
    new_jwt = issue_direct(client, officer, passed_check, holder_key, fmt="vc+jwt")["credential"]
    assert decode_jws_unverified(new_jwt).header["kid"] == new_kid
    _verify(client, new_jwt)
    old_key = public_key_from_jwk(did_method(client, old_kid)["publicKeyJwk"])
    with pytest.raises(VerificationFailed):
        verify_jws(new_jwt, old_key, expected_typ="vc+jwt")


def test_rotation_to_ed25519(
    client: TestClient,
    officer: dict[str, str],
    passed_check: str,
    holder_key: ec.EllipticCurvePrivateKey,
    token_for: Callable[[Role], dict[str, str]],
) -> None:
    rotated = client.post("/issuer/keys/rotate", params={"alg": "EdDSA"}, headers=token_for(Role.ADMIN))
    assert rotated.json()["alg"] == "EdDSA"
    method = did_method(client, rotated.json()["kid"])
    assert method["publicKeyJwk"]["kty"] == "OKP"
    assert method["publicKeyJwk"]["crv"] == "Ed25519"
    assert "d" not in method["publicKeyJwk"]
    sd_jwt = issue_direct(client, officer, passed_check, holder_key)["credential"]
    assert decode_jws_unverified(sd_jwt.split("~", 1)[0]).header["alg"] == "EdDSA"
    payload = SDJWTVerifier(sd_jwt, lambda _iss, _h: JWK(**method["publicKeyJwk"])).get_verified_payload()
    assert payload["credentialSubject"]["idNumber"] == RESIDENT_ID


def test_rotation_is_anchored_and_status_lists_follow_the_new_key(
    client: TestClient,
    officer: dict[str, str],
    passed_check: str,
    holder_key: ec.EllipticCurvePrivateKey,
    token_for: Callable[[Role], dict[str, str]],
) -> None:
    jwt = issue_direct(client, officer, passed_check, holder_key, fmt="vc+jwt")["credential"]
    status_url = decode_jws_unverified(jwt).payload["credentialStatus"][0]["statusListCredential"]
    path = status_url.removeprefix("http://testserver")
    before = client.get(path)
    new_kid = client.post("/issuer/keys/rotate", headers=token_for(Role.ADMIN)).json()["kid"]
    after = client.get(path)
    assert decode_jws_unverified(before.text).header["kid"] != new_kid
    assert decode_jws_unverified(after.text).header["kid"] == new_kid
    assert after.headers["etag"] != before.headers["etag"]
    verify_jws(
        after.text, public_key_from_jwk(did_method(client, new_kid)["publicKeyJwk"]), expected_typ="vc+jwt"
    )
    # The rotation is in the log (as a commitment to the new public key).
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        size = int(client.get("/log/checkpoint").text.splitlines()[1])
        events = [client.get(f"/log/entries/{i}").json()["event_type"] for i in range(size)]
        if "key.rotated" in events:
            break
        time.sleep(0.05)
    assert "key.rotated" in events


def test_status_list_credential_is_re_signed_before_it_expires(app: FastAPI, client: TestClient) -> None:
    clock = FakeClock()
    issuer: IssuerService = app.state.issuer
    registry = StatusRegistry(
        app.state.engine, list_url=lambda i: f"http://testserver/issuer/status/{i}", clock=clock
    )
    slot = registry.allocate("revocation")
    key = issuer.signing_key()

    def publish() -> PublishedList:
        return registry.publish(slot.list_id, issuer_did=issuer.did, key=key, kid=issuer.kid_url(key))

    first = publish()
    clock.advance(timedelta(hours=11))
    assert publish() is first  # cached while fresh
    clock.advance(timedelta(hours=2))
    renewed = publish()
    assert renewed.jwt != first.jwt
    assert renewed.etag != first.etag
    claims = decode_jws_unverified(renewed.jwt).payload
    assert claims["exp"] > clock.timestamp() + 20 * 3600
    clock.advance(timedelta(days=3))
    assert decode_jws_unverified(publish().jwt).payload["exp"] > clock.timestamp()


# ---------------------------------------------------------------------------------------------- access control


OFFICER_ENDPOINTS = [
    ("POST", "/issuer/checks", {"json": person_check()}),
    ("POST", "/issuer/credentials", {"json": {"check_id": "0" * 32}}),
    ("GET", "/issuer/credentials/urn:uuid:00000000-0000-0000-0000-000000000000", {}),
    ("POST", "/issuer/credentials/urn:uuid:0/status", {"json": {"action": "revoke"}}),
    ("POST", "/credentials/issue", {"json": {"credential": {}}}),
]


@pytest.mark.parametrize(
    ("method", "path", "kwargs"), OFFICER_ENDPOINTS, ids=[p for _, p, _ in OFFICER_ENDPOINTS]
)
def test_citizens_cannot_call_officer_endpoints(
    client: TestClient,
    token_for: Callable[[Role], dict[str, str]],
    method: str,
    path: str,
    kwargs: dict[str, Any],
) -> None:
    resp = client.request(method, path, headers=token_for(Role.CITIZEN), **kwargs)
    assert resp.status_code == 403, resp.text
    assert problem_slug(resp) == "role-forbidden"
    anonymous = client.request(method, path, **kwargs)
    assert anonymous.status_code == 401
    assert problem_slug(anonymous) == "token-missing"


def test_audit_trail_is_for_auditors_and_admins(
    client: TestClient, token_for: Callable[[Role], dict[str, str]]
) -> None:
    for role in (Role.OFFICER, Role.CITIZEN, Role.NOTARY):
        resp = client.get("/issuer/audit", headers=token_for(role))
        assert resp.status_code == 403
        assert problem_slug(resp) == "role-forbidden"
    assert client.get("/issuer/audit").status_code == 401
    for role in (Role.AUDITOR, Role.ADMIN):
        assert client.get("/issuer/audit", headers=token_for(role)).status_code == 200


# -------------------------------------------------------------------------------------------------- audit trail


def test_every_issuer_action_is_audited(
    app: FastAPI, client: TestClient, holder_key: ec.EllipticCurvePrivateKey
) -> None:
    officer, admin = _named(app, Role.OFFICER, "officer-li"), _named(app, Role.ADMIN, "admin-wang")
    auditor = _named(app, Role.AUDITOR, "auditor-zhao")
    check_id = record_check(client, officer, person_check())
    failed_id = record_check(client, officer, person_check(result="failed"))
    direct = issue_direct(client, officer, check_id, holder_key, fmt="vc+jwt")["credential_id"]
    offer = make_offer(client, officer, check_id)
    resp = credential_request(
        client,
        access_token(client, offer),
        "RealNameIdentityCredential_sd_jwt",
        [key_proof(holder_key, nonce=c_nonce(client))],
    )
    wallet_id = _verify(client, resp.json()["credentials"][0]["credential"])["id"]
    for action in ("suspend", "reinstate", "revoke"):
        changed = client.post(
            f"/issuer/credentials/{direct}/status", json={"action": action, "reason": "test"}, headers=officer
        )
        assert changed.status_code == 200, changed.text
    kid = client.post("/issuer/keys/rotate", headers=admin).json()["kid"]

    trail = client.get("/issuer/audit", headers=auditor).json()
    seen = [(e["actor"], e["action"], e["target"]) for e in reversed(trail)]  # oldest first
    assert seen == [
        ("officer-li", "check.recorded", check_id),
        ("officer-li", "check.recorded", failed_id),
        ("officer-li", "credential.issued", direct),
        ("officer-li", "offer.created", check_id),
        ("oid4vci", "credential.issued", wallet_id),
        ("officer-li", "status.suspend", direct),
        ("officer-li", "status.reinstate", direct),
        ("officer-li", "status.revoke", direct),
        ("admin-wang", "key.rotated", kid.split("#", 1)[1]),
    ]
    assert [e["at"] for e in trail] == sorted((e["at"] for e in trail), reverse=True)
    by_target = client.get("/issuer/audit", params={"target": direct}, headers=auditor).json()
    assert [e["action"] for e in by_target] == [
        "status.revoke",
        "status.reinstate",
        "status.suspend",
        "credential.issued",
    ]
    assert len(client.get("/issuer/audit", params={"limit": 2}, headers=auditor).json()) == 2
    dump = repr(trail)
    for label, value in PERSONAL.items():
        assert value not in dump, label


# ------------------------------------------------------------------------------------------ personal data at rest


def _everything_in_the_database(app: FastAPI) -> Iterator[tuple[str, str, object]]:
    engine = app.state.engine
    names = inspect(engine).get_table_names()
    assert {"real_name_check", "issued_credential", "credential_offer", "issuer_audit", "status_list"} <= set(
        names
    )
    with engine.connect() as conn:
        for name in names:
            columns = [c["name"] for c in inspect(engine).get_columns(name)]
            for row in conn.execute(select(*(text(f'"{c}"') for c in columns)).select_from(table(name))):
                for column, value in zip(columns, row, strict=True):
                    yield name, column, value


def _holds(value: object, needle: str) -> bool:
    if isinstance(value, bytes | bytearray | memoryview):
        return needle.encode() in bytes(value)
    return needle in str(value)


@pytest.fixture
def issued_everything(
    app: FastAPI, client: TestClient, officer: dict[str, str], holder_key: ec.EllipticCurvePrivateKey
) -> list[str]:
    """A person check and a company check, each issued directly, by offer and redeemed, in both formats."""
    checks = [record_check(client, officer, person_check()), record_check(client, officer, company_check())]
    for check_id in checks:
        for fmt in ("vc+sd-jwt", "vc+jwt"):
            issue_direct(client, officer, check_id, holder_key, fmt=fmt)
        offer = make_offer(client, officer, check_id)
        config = offer["credential_offer"]["credential_configuration_ids"][0]
        resp = credential_request(
            client, access_token(client, offer), config, [key_proof(holder_key, nonce=c_nonce(client))]
        )
        assert resp.status_code == 200, resp.text
    return checks


def test_no_plain_personal_data_in_any_table(app: FastAPI, issued_everything: list[str]) -> None:
    rows = 0
    for table_name, column, value in _everything_in_the_database(app):
        rows += 1
        for label, needle in PERSONAL.items():
            assert not _holds(value, needle), f"{label} in plain text in {table_name}.{column}"
    assert rows > 50
    # ... but the check itself is kept: sealed, and readable by the issuer.
    issuer: IssuerService = app.state.issuer
    row, check = issuer.get_check(issued_everything[0])
    assert isinstance(check, PersonCheckIn)
    assert check.document_number == RESIDENT_ID
    assert row.document_masked == "1101**********002X"
    assert check.face_match is not None
    assert check.face_match.score == 0.97


def test_no_plain_personal_data_in_the_sqlite_file(app: FastAPI, issued_everything: list[str]) -> None:
    url = app.state.settings.resolved_database_url
    if not url.startswith("sqlite:///"):
        pytest.skip("a file-level search needs the SQLite database")
    path = Path(url.removeprefix("sqlite:///"))
    files = [p for p in (path, path.with_name(path.name + "-wal")) if p.exists()]
    data = b"".join(p.read_bytes() for p in files)
    assert b"real_name_check" in data  # we are reading the right file
    for label, needle in PERSONAL.items():
        assert needle.encode() not in data, label
        assert needle.encode("utf-16-le") not in data, label


def test_no_personal_data_in_logs(
    app: FastAPI, client: TestClient, officer: dict[str, str], holder_key: ec.EllipticCurvePrivateKey
) -> None:
    records: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(self.format(record) + repr(record.args) + repr(record.__dict__.get("exc_text")))

    handler = Collect(level=logging.DEBUG)
    loggers = [logging.getLogger(), logging.getLogger("imi")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.addHandler(handler)
        lg.setLevel(logging.DEBUG)
    try:
        check_id = record_check(client, officer, person_check())
        issue_direct(client, officer, check_id, holder_key)
        # refusals and failures with personal data in the request
        client.post("/issuer/checks", json=person_check(birth_date="1950-01-01"), headers=officer)
        client.post(
            "/issuer/checks", json=person_check(document_number="110105194912310021"), headers=officer
        )
        client.post("/issuer/checks", json=person_check(nationality="china"), headers=officer)
        client.post(
            "/credentials/issue",
            json={"credential": {"credentialSubject": {"idNumber": RESIDENT_ID}}},
            headers=officer,
        )
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.removeHandler(handler)
            lg.setLevel(level)
    text_logged = "\n".join(records)
    for label, needle in PERSONAL.items():
        assert needle not in text_logged, label
