"""W3C VC API ``POST /credentials/issue``: envelopes, status entries, anchoring, and refusal of invalid VCDM input."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from joserfc import jwt as jose_jwt
from joserfc.jwk import ECKey
from jwcrypto.jwk import JWK
from sd_jwt.verifier import SDJWTVerifier

from issuer.service import IssuerService
from kernel.accounts import Role
from kernel.jose import decode_jws_unverified
from kernel.statuslist import Bitstring, decode_list
from ledger import merkle
from ledger.commitment import commitment, encode_leaf
from tests.issuer.helpers import did_method, problem_slug

V2 = "https://www.w3.org/ns/credentials/v2"
EXAMPLES = "https://www.w3.org/ns/credentials/examples/v2"
HOLDER_DID = "did:example:ebfeb1f712ebc6f1c276e12ec21"


def example_credential(**overrides: Any) -> dict[str, Any]:
    vc: dict[str, Any] = {
        "@context": [V2, EXAMPLES],
        "id": "http://university.example/credentials/3732",
        "type": ["VerifiableCredential", "ExampleDegreeCredential"],
        "issuer": "did:web:testserver",
        "validFrom": "2025-01-01T00:00:00Z",
        "name": "Example University Degree",
        "credentialSubject": {
            "id": HOLDER_DID,
            "degree": {"type": "ExampleBachelorDegree", "name": "Bachelor of Science and Arts"},
        },
    }
    vc.update(overrides)
    return vc


def _envelope(resp: httpx.Response) -> tuple[str, str]:
    """(media type, secured credential) of a VC API answer, after checking its EnvelopedVerifiableCredential."""
    assert resp.status_code == 201, resp.text
    enveloped = resp.json()["verifiableCredential"]
    assert enveloped["@context"] == [V2]
    assert enveloped["type"] == ["EnvelopedVerifiableCredential"]
    media, _, secured = enveloped["id"].removeprefix("data:").partition(",")
    assert enveloped["id"].startswith("data:")
    return media, secured


def _issued_target(client: TestClient, token_for: Callable[[Role], dict[str, str]]) -> str:
    """The issuer's id of the newest credential, from the audit trail."""
    trail = client.get("/issuer/audit", headers=token_for(Role.AUDITOR)).json()
    return str(next(e["target"] for e in trail if e["action"] == "credential.issued"))


def _reference_claims(client: TestClient, secured: str, media: str) -> dict[str, Any]:
    """Verify with third-party libraries and the DID document's key only."""
    if media == "application/vc+sd-jwt":

        def key(_iss: str, header: dict[str, Any]) -> JWK:
            return JWK(**did_method(client, header["kid"])["publicKeyJwk"])

        payload: dict[str, Any] = SDJWTVerifier(secured, key).get_verified_payload()
        return payload
    method = did_method(client, decode_jws_unverified(secured).header["kid"])
    token = jose_jwt.decode(secured, ECKey.import_key(dict(method["publicKeyJwk"])), algorithms=["ES256"])
    return dict(token.claims)


# ------------------------------------------------------------------------------------------------ valid input


@pytest.mark.parametrize(
    ("fmt", "media"), [("vc+jwt", "application/vc+jwt"), ("vc+sd-jwt", "application/vc+sd-jwt")]
)
def test_issue_returns_an_enveloped_credential_that_verifies(
    client: TestClient, officer: dict[str, str], fmt: str, media: str
) -> None:
    resp = client.post(
        "/credentials/issue",
        json={"credential": example_credential(), "options": {"format": fmt}},
        headers=officer,
    )
    got_media, secured = _envelope(resp)
    assert got_media == media
    claims = _reference_claims(client, secured, media)
    assert claims["@context"] == [V2, EXAMPLES]
    assert claims["id"] == "http://university.example/credentials/3732"
    assert claims.get("jti", claims["id"]) == claims["id"]
    assert claims["type"] == ["VerifiableCredential", "ExampleDegreeCredential"]
    assert claims["issuer"] == claims["iss"] == "did:web:testserver"
    assert claims["name"] == "Example University Degree"
    assert claims["validFrom"] == "2025-01-01T00:00:00Z"
    assert claims["credentialSubject"] == example_credential()["credentialSubject"]
    assert "vc" not in claims
    statuses = claims["credentialStatus"]
    assert [s["statusPurpose"] for s in statuses] == ["revocation", "suspension"]
    for entry in statuses:
        assert entry["type"] == "BitstringStatusListEntry"
        assert entry["statusListCredential"].startswith("http://testserver/issuer/status/")
        assert int(entry["statusListIndex"]) >= 0
        where = f"{entry['statusListCredential']}#{entry['statusListIndex']}"
        assert entry.get("id", where) == where  # the entry id is optional; if present: <list URL>#<index>
    header = decode_jws_unverified(secured.split("~", 1)[0]).header
    assert header["typ"] == fmt
    if fmt == "vc+sd-jwt":
        signed = decode_jws_unverified(secured.split("~", 1)[0]).payload
        # the subject's claims are disclosable; its id stays in clear (it names the holder)
        assert signed["credentialSubject"]["id"] == HOLDER_DID
        assert "degree" not in signed["credentialSubject"]


def test_default_format_is_vc_jwt_and_admin_may_issue(
    client: TestClient, token_for: Callable[[Role], dict[str, str]]
) -> None:
    resp = client.post(
        "/credentials/issue", json={"credential": example_credential()}, headers=token_for(Role.ADMIN)
    )
    media, secured = _envelope(resp)
    assert media == "application/vc+jwt"
    assert secured.count(".") == 2


def test_issued_credential_is_anchored_and_revocable(
    app: FastAPI, client: TestClient, officer: dict[str, str], token_for: Callable[[Role], dict[str, str]]
) -> None:
    vc = example_credential()
    del vc["id"]  # the issuer names it
    _, secured = _envelope(client.post("/credentials/issue", json={"credential": vc}, headers=officer))
    claims = decode_jws_unverified(secured).payload
    target = _issued_target(client, token_for)
    assert target == claims["id"]
    issuer: IssuerService = app.state.issuer
    row = issuer.get_credential(target)
    object_hash = hashlib.sha256(secured.encode()).digest()
    assert row.object_hash == object_hash.hex()
    leaf = encode_leaf(
        "credential.issued", commitment("credential.issued", bytes.fromhex(row.log_salt), object_hash)
    )
    # The sequencer integrates within a second; then the leaf is in the tree under a signed checkpoint.
    deadline, index, size = time.monotonic() + 10, None, 0
    while index is None and time.monotonic() < deadline:
        size = int(client.get("/log/checkpoint").text.splitlines()[1])
        for i in range(size):
            if base64.b64decode(client.get(f"/log/entries/{i}").json()["leaf_input"]) == leaf:
                index = i
        if index is None:
            time.sleep(0.05)
    assert index is not None, "the credential's commitment never reached the log"
    note = client.get("/log/checkpoint").text.splitlines()
    tree_size, root = int(note[1]), base64.b64decode(note[2])
    proof = client.get("/log/proof/inclusion", params={"index": index, "tree_size": tree_size}).json()
    merkle.verify_inclusion(
        leaf_hash=merkle.leaf_hash(leaf),
        index=index,
        tree_size=tree_size,
        proof=[bytes.fromhex(h) for h in proof["proof"]],
        root=root,
    )

    revocation = claims["credentialStatus"][0]

    def revoked() -> bool:
        listed = client.get(revocation["statusListCredential"].removeprefix("http://testserver"))
        assert listed.status_code == 200
        encoded = decode_jws_unverified(listed.text).payload["credentialSubject"]["encodedList"]
        return Bitstring.from_bytes(decode_list(encoded)).get(int(revocation["statusListIndex"]))

    assert not revoked()
    changed = client.post(f"/issuer/credentials/{target}/status", json={"action": "revoke"}, headers=officer)
    assert changed.json()["status"] == "revoked"
    assert revoked()


def test_caller_status_is_replaced_and_type_string_accepted(
    client: TestClient, officer: dict[str, str], token_for: Callable[[Role], dict[str, str]]
) -> None:
    vc = example_credential(
        type="VerifiableCredential",
        credentialStatus={"id": "https://evil.example/status#1", "type": "BitstringStatusListEntry"},
    )
    _, secured = _envelope(client.post("/credentials/issue", json={"credential": vc}, headers=officer))
    claims = decode_jws_unverified(secured).payload
    assert claims["type"] == ["VerifiableCredential"]
    assert all(s["statusListCredential"].startswith("http://testserver/") for s in claims["credentialStatus"])
    state = client.get(f"/issuer/credentials/{_issued_target(client, token_for)}", headers=officer).json()
    assert state["credential_type"] == "VerifiableCredential"


def test_several_subjects_as_sd_jwt(client: TestClient, officer: dict[str, str]) -> None:
    subjects = [{"id": HOLDER_DID, "role": "student"}, {"id": "did:example:2", "role": "teacher", "year": 3}]
    vc = example_credential(credentialSubject=subjects)
    resp = client.post(
        "/credentials/issue", json={"credential": vc, "options": {"format": "vc+sd-jwt"}}, headers=officer
    )
    media, secured = _envelope(resp)
    assert _reference_claims(client, secured, media)["credentialSubject"] == subjects
    signed = decode_jws_unverified(secured.split("~", 1)[0]).payload["credentialSubject"]
    assert [s["id"] for s in signed] == [HOLDER_DID, "did:example:2"]
    assert all(set(s) == {"id", "_sd"} for s in signed)


def _seconds(value: str) -> int:
    return int(datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC).timestamp())


def test_validity_stays_consistent_with_caller_dates(client: TestClient, officer: dict[str, str]) -> None:
    future = example_credential(validFrom="2040-01-01T00:00:00Z")
    _, secured = _envelope(client.post("/credentials/issue", json={"credential": future}, headers=officer))
    claims = decode_jws_unverified(secured).payload
    assert claims["validFrom"] == "2040-01-01T00:00:00Z"
    assert _seconds(claims["validUntil"]) >= _seconds(claims["validFrom"])
    assert claims["exp"] == _seconds(claims["validUntil"])
    assert claims.get("iat", 0) <= int(time.time()) + 5  # iat says when it was signed, not when it is valid
    bounded = example_credential(validUntil="2030-06-30T12:00:00+08:00")
    _, secured = _envelope(client.post("/credentials/issue", json={"credential": bounded}, headers=officer))
    claims = decode_jws_unverified(secured).payload
    assert claims["validUntil"] == "2030-06-30T12:00:00+08:00"
    assert claims["exp"] == _seconds("2030-06-30T04:00:00Z")


# ---------------------------------------------------------------------------------------------- invalid input


def _without(name: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def mutate(vc: dict[str, Any]) -> dict[str, Any]:
        vc.pop(name)
        return vc

    return mutate


def _with(**members: Any) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def mutate(vc: dict[str, Any]) -> dict[str, Any]:
        vc.update(copy.deepcopy(members))
        return vc

    return mutate


INVALID: list[tuple[str, Callable[[dict[str, Any]], dict[str, Any]], int, str]] = [
    ("missing @context", _without("@context"), 400, "vc-context-invalid"),
    ("@context a string", _with(**{"@context": V2}), 400, "vc-context-invalid"),
    (
        "v1 context first",
        _with(**{"@context": ["https://www.w3.org/2018/credentials/v1", V2]}),
        400,
        "vc-context-invalid",
    ),
    ("v2 context not first", _with(**{"@context": [EXAMPLES, V2]}), 400, "vc-context-invalid"),
    ("context entry a number", _with(**{"@context": [V2, 7]}), 400, "vc-context-invalid"),
    ("missing type", _without("type"), 400, "vc-type-invalid"),
    ("no VerifiableCredential type", _with(type=["ExampleDegreeCredential"]), 400, "vc-type-invalid"),
    ("type not strings", _with(type=["VerifiableCredential", 3]), 400, "vc-type-invalid"),
    ("missing credentialSubject", _without("credentialSubject"), 400, "vc-subject-invalid"),
    ("empty credentialSubject", _with(credentialSubject={}), 400, "vc-subject-invalid"),
    ("empty subject list", _with(credentialSubject=[]), 400, "vc-subject-invalid"),
    ("subject a string", _with(credentialSubject="Alice"), 400, "vc-subject-invalid"),
    (
        "subject id not a URL",
        _with(credentialSubject={"id": "Alice Smith", "a": 1}),
        400,
        "vc-subject-invalid",
    ),
    ("validFrom a date", _with(validFrom="2025-01-01"), 400, "vc-validity-invalid"),
    ("validFrom without zone", _with(validFrom="2025-01-01T00:00:00"), 400, "vc-validity-invalid"),
    ("validFrom not a real day", _with(validFrom="2025-02-30T00:00:00Z"), 400, "vc-validity-invalid"),
    ("validUntil a number", _with(validUntil=1767225600), 400, "vc-validity-invalid"),
    ("validUntil before validFrom", _with(validUntil="2024-12-31T23:59:59Z"), 400, "vc-validity-invalid"),
    ("issuer not ours", _with(issuer="did:web:university.example"), 403, "vc-issuer-mismatch"),
    (
        "issuer object not ours",
        _with(issuer={"id": "did:web:other.example", "name": "x"}),
        403,
        "vc-issuer-mismatch",
    ),
    ("issuer not a URL", _with(issuer="our district"), 400, "vc-issuer-invalid"),
    ("id not a URL", _with(id="credential 3732"), 400, "vc-id-invalid"),
    ("id a number", _with(id=3732), 400, "vc-id-invalid"),
    ("already has a proof", _with(proof={"type": "DataIntegrityProof"}), 400, "vc-already-secured"),
    ("a vc claim", _with(vc={"type": ["VerifiableCredential"]}), 400, "vc-reserved-name"),
    (
        "an SD-JWT digest name",
        _with(credentialSubject={"id": HOLDER_DID, "_sd": ["x"]}),
        400,
        "vc-reserved-name",
    ),
    ("evidence without type", _with(evidence=[{"id": "urn:x"}]), 400, "vc-property-invalid"),
    ("name a number", _with(name=42), 400, "vc-property-invalid"),
    ("too large", _with(description="x" * 40_000), 413, "vc-too-large"),
]


@pytest.mark.parametrize(("label", "mutate", "status", "slug"), INVALID, ids=[c[0] for c in INVALID])
@pytest.mark.parametrize("fmt", ["vc+jwt", "vc+sd-jwt"])
def test_invalid_credentials_are_refused(
    client: TestClient,
    officer: dict[str, str],
    token_for: Callable[[Role], dict[str, str]],
    label: str,
    mutate: Callable[[dict[str, Any]], dict[str, Any]],
    status: int,
    slug: str,
    fmt: str,
) -> None:
    vc = mutate(example_credential())
    resp = client.post(
        "/credentials/issue", json={"credential": vc, "options": {"format": fmt}}, headers=officer
    )
    assert resp.status_code == status, (label, resp.text)
    assert problem_slug(resp) == slug
    trail = client.get("/issuer/audit", headers=token_for(Role.AUDITOR)).json()
    assert not [e for e in trail if e["action"] == "credential.issued"]  # nothing was signed or anchored


@pytest.mark.parametrize(
    "body",
    [
        {"credential": [example_credential()]},
        {"credential": "eyJhbGciOiJFUzI1NiJ9.e30.sig"},
        {"credential": example_credential(), "options": {"format": "ldp_vc"}},
        {"credential": example_credential(), "extra": True},
        {"options": {}},
    ],
    ids=["list", "string", "unknown format", "unknown member", "no credential"],
)
def test_malformed_requests_are_refused(
    client: TestClient, officer: dict[str, str], body: dict[str, Any]
) -> None:
    resp = client.post("/credentials/issue", json=body, headers=officer)
    assert resp.status_code == 422
    assert problem_slug(resp) == "request-invalid"


def test_nan_is_refused(client: TestClient, officer: dict[str, str]) -> None:
    raw = json.dumps({"credential": example_credential(credentialSubject={"id": HOLDER_DID, "gpa": 1.0})})
    resp = client.post(
        "/credentials/issue",
        content=raw.replace("1.0", "NaN"),
        headers={**officer, "Content-Type": "application/json"},
    )
    assert resp.status_code == 400
    assert problem_slug(resp) == "vc-number-invalid"


# ---------------------------------------------------------------------------------------------- who may issue


def test_issue_needs_a_token(client: TestClient) -> None:
    resp = client.post("/credentials/issue", json={"credential": example_credential()})
    assert resp.status_code == 401
    assert problem_slug(resp) == "token-missing"
    bad = client.post(
        "/credentials/issue",
        json={"credential": example_credential()},
        headers={"Authorization": "Bearer imi_nope"},
    )
    assert bad.status_code == 401
    assert problem_slug(bad) == "token-invalid"


@pytest.mark.parametrize("role", [Role.CITIZEN, Role.AUDITOR, Role.NOTARY])
def test_issue_refuses_other_roles(
    client: TestClient, token_for: Callable[[Role], dict[str, str]], role: Role
) -> None:
    resp = client.post(
        "/credentials/issue", json={"credential": example_credential()}, headers=token_for(role)
    )
    assert resp.status_code == 403
    assert problem_slug(resp) == "role-forbidden"
