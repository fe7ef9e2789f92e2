"""The attack catalogue, over HTTP against real credentials from the issuer.

Each attack must be refused with ``application/problem+json``, a 4xx status (never 500) and its own problem
type, so that a kiosk can tell the citizen (or the officer) what went wrong. The holder is the attacker unless
said otherwise: they hold the credential and its key, and re-sign the Key Binding JWT after each forgery, so
that the forgery itself (not a stale ``sd_hash``) is what the verifier has to catch.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI
from fastapi.testclient import TestClient

from issuer.credentials import PERSON_TYPE, CredentialDraft, secure
from issuer.service import IssuerService
from kernel.accounts import Role
from kernel.did import make_did_jwk
from kernel.jose import (
    PrivateKey,
    b64url_decode,
    b64url_encode,
    decode_jws_unverified,
    dump_json,
    public_jwk_dict,
    sign_jws,
)
from kernel.qr_payload import encode_compact
from kernel.sdjwt import present, sd_hash
from ledger.note import NoteSigner, parse_note, sign_note
from schemas.issuer import CredentialFormat
from tests.issuer.issuer_fixtures import person_check
from tests.verifier.verifier_fixtures import Holder, fresh_verifier
from verifier.scanning import QR_AUDIENCE

pytestmark = pytest.mark.usefixtures("http_verifier")

SCAN = "/verifier/scan"
SUBJECT = {
    "name": "王小明",
    "birthDate": "1949-12-31",
    "gender": "female",
    "nationality": "CHN",
    "address": "北京市东城区景山前街4号",
    "idNumber": "11010519491231002X",
}


# ------------------------------------------------------------------------------------------------ helpers


def refused(resp: httpx.Response, slug: str) -> dict[str, Any]:
    """Assert a 4xx problem+json answer whose type is ``urn:imi:problem:<slug>``; return the body."""
    assert 400 <= resp.status_code < 500, (resp.status_code, resp.text)
    assert resp.headers["content-type"].startswith("application/problem+json"), resp.text
    body: dict[str, Any] = resp.json()
    assert body["type"] == f"urn:imi:problem:{slug}", body
    assert body["status"] == resp.status_code
    return body


def scan(client: TestClient, qr: str) -> httpx.Response:
    resp: httpx.Response = client.post(SCAN, json={"qr": qr})
    return resp


def parts(sd_jwt: str) -> tuple[str, list[str]]:
    """Issuer-signed JWT and disclosures of an SD-JWT (a trailing KB-JWT, if any, is dropped)."""
    jwt, *disclosures, _kb = sd_jwt.split("~")
    return jwt, disclosures


def named(disclosures: list[str], *names: str) -> list[str]:
    """The disclosures of the subject claims called ``names``, in the order given."""
    by_name = {json.loads(b64url_decode(d))[1]: d for d in disclosures}
    return [by_name[n] for n in names]


def bind(
    jwt: str,
    disclosures: list[str],
    key: PrivateKey,
    *,
    aud: str = QR_AUDIENCE,
    nonce: str | None = None,
    iat: int | None = None,
    extra: dict[str, Any] | None = None,
) -> str:
    """An SD-JWT+KB of ``jwt`` and ``disclosures`` with a KB-JWT signed by ``key`` (whoever that is)."""
    sd_jwt = "~".join([jwt, *disclosures]) + "~"
    claims = {
        **(extra or {}),
        "iat": int(time.time()) if iat is None else iat,
        "aud": aud,
        "nonce": nonce or secrets.token_urlsafe(12),
        "sd_hash": sd_hash(sd_jwt),
    }
    return sd_jwt + sign_jws(claims, key, typ="kb+jwt")


def signing_input(header: dict[str, Any], payload: dict[str, Any]) -> str:
    return f"{b64url_encode(dump_json(header))}.{b64url_encode(dump_json(payload))}"


def issuer_public_pem(app: FastAPI) -> bytes:
    issuer: IssuerService = app.state.issuer
    return (
        issuer.signing_key()
        .private_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


def sign_as_issuer(app: FastAPI, holder: Holder, *, valid_from: datetime, valid_until: datetime) -> str:
    """A credential signed with the real issuer key and real status slots, but with chosen validity dates."""
    issuer: IssuerService = app.state.issuer
    key = issuer.signing_key()
    draft = CredentialDraft(
        credential_id=f"urn:uuid:{secrets.token_hex(16)}",
        issuer_did=issuer.did,
        credential_type=PERSON_TYPE,
        subject=SUBJECT,
        evidence=None,
        status=issuer.status.entries(
            issuer.status.allocate("revocation"), issuer.status.allocate("suspension")
        ),
        valid_from=valid_from,
        valid_until=valid_until,
    )
    secured = secure(
        draft,
        CredentialFormat.SD_JWT,
        key=key.private_key,
        kid=issuer.kid_url(key),
        holder_jwk=public_jwk_dict(holder.key),
    )
    return secured.serialization


def open_request(client: TestClient, claims: list[str]) -> dict[str, Any]:
    """Start an OpenID4VP request the way a kiosk does and read its request object as a wallet does."""
    created = client.post("/verifier/requests", json={"claims": claims, "verifier_id": "kiosk-attack"})
    assert created.status_code == 201, created.text
    jwt = client.get(created.json()["request_uri"].removeprefix("http://testserver")).text
    return {**decode_jws_unverified(jwt).payload, "tx": created.json()["id"]}


def direct_post(client: TestClient, request: dict[str, Any], presentation: str) -> httpx.Response:
    query_id = request["dcql_query"]["credentials"][0]["id"]
    resp: httpx.Response = client.post(
        request["response_uri"].removeprefix("http://testserver"),
        data={"vp_token": json.dumps({query_id: [presentation]}), "state": request["state"]},
    )
    return resp


def kiosk_sees(client: TestClient, request: dict[str, Any], slug: str) -> None:
    result = client.get(f"/verifier/requests/{request['tx']}").json()
    assert result["status"] == "failed", result
    assert result["result"]["problem"]["type"] == f"urn:imi:problem:{slug}"
    assert result["result"]["disclosed"] == {}


# ---------------------------------------------------------------------------------- algorithm confusion


def test_alg_none(client: TestClient, make_holder: Callable[..., Holder]) -> None:
    holder = make_holder()
    jwt, disclosures = parts(holder.credential)
    token = decode_jws_unverified(jwt)
    unsigned = signing_input({**token.header, "alg": "none"}, token.payload) + "."
    body = refused(scan(client, bind(unsigned, named(disclosures, "name"), holder.key)), "alg-not-allowed")
    assert body["check"] == "algorithm"


def test_hs256_keyed_with_the_issuer_public_key(
    client: TestClient, app: FastAPI, make_holder: Callable[..., Holder]
) -> None:
    holder = make_holder()
    jwt, disclosures = parts(holder.credential)
    token = decode_jws_unverified(jwt)
    # the classic confusion: a verifier that took alg from the header would use the PEM as an HMAC secret
    forged_payload = {**token.payload, "validUntil": "2099-12-31T00:00:00Z", "exp": 4102358400}
    data = signing_input({**token.header, "alg": "HS256"}, forged_payload)
    mac = hmac.new(issuer_public_pem(app), data.encode(), hashlib.sha256).digest()
    forged = f"{data}.{b64url_encode(mac)}"
    refused(scan(client, bind(forged, named(disclosures, "name"), holder.key)), "alg-not-allowed")


def test_hs256_vc_jwt_at_the_vc_api(
    client: TestClient,
    app: FastAPI,
    token_for: Callable[[Role], dict[str, str]],
    make_holder: Callable[..., Holder],
) -> None:
    officer = token_for(Role.OFFICER)
    check = client.post("/issuer/checks", json=person_check(), headers=officer).json()["id"]
    holder = make_holder()
    issued = client.post(
        "/issuer/credentials",
        headers=officer,
        json={"check_id": check, "format": "vc+jwt", "holder_jwk": public_jwk_dict(holder.key)},
    ).json()
    token = decode_jws_unverified(issued["credential"])
    data = signing_input({**token.header, "alg": "HS256"}, token.payload)
    mac = hmac.new(issuer_public_pem(app), data.encode(), hashlib.sha256).digest()
    envelope = {
        "@context": ["https://www.w3.org/ns/credentials/v2"],
        "type": ["EnvelopedVerifiableCredential"],
        "id": f"data:application/vc+jwt,{data}.{b64url_encode(mac)}",
    }
    resp = client.post("/credentials/verify", json={"verifiableCredential": envelope})
    body = refused(resp, "alg-not-allowed")
    assert body["verified"] is False


# --------------------------------------------------------------------------------------- issuer and keys


def test_unknown_kid(client: TestClient, make_holder: Callable[..., Holder]) -> None:
    holder = make_holder()
    jwt, disclosures = parts(holder.credential)
    token = decode_jws_unverified(jwt)
    issuer = token.payload["issuer"]
    impostor = ec.generate_private_key(ec.SECP256R1())
    forged = sign_jws(token.payload, impostor, typ="vc+sd-jwt", kid=f"{issuer}#not-a-key-of-ours")
    body = refused(scan(client, bind(forged, named(disclosures, "name"), holder.key)), "unknown-kid")
    assert body["check"] == "signature"


def test_kid_of_another_did_under_the_trusted_issuer(
    client: TestClient, make_holder: Callable[..., Holder]
) -> None:
    holder = make_holder()
    jwt, disclosures = parts(holder.credential)
    token = decode_jws_unverified(jwt)
    impostor = ec.generate_private_key(ec.SECP256R1())
    kid = (
        make_did_jwk(public_jwk_dict(impostor)) + "#0"
    )  # a key that resolves by itself, but not the issuer's
    forged = sign_jws(token.payload, impostor, typ="vc+sd-jwt", kid=kid)
    refused(scan(client, bind(forged, named(disclosures, "name"), holder.key)), "unknown-kid")


@pytest.mark.parametrize("method", ["did:web", "did:jwk"])
def test_untrusted_issuer(client: TestClient, make_holder: Callable[..., Holder], method: str) -> None:
    holder = make_holder()
    jwt, disclosures = parts(holder.credential)
    token = decode_jws_unverified(jwt)
    evil_key = ec.generate_private_key(ec.SECP256R1())
    if method == "did:web":
        evil, kid = "did:web:evil.example", "did:web:evil.example#key-1"
    else:
        evil = make_did_jwk(public_jwk_dict(evil_key))
        kid = evil + "#0"
    payload = {**token.payload, "issuer": evil, "iss": evil}
    forged = sign_jws(payload, evil_key, typ="vc+sd-jwt", kid=kid)
    body = refused(scan(client, bind(forged, named(disclosures, "name"), holder.key)), "issuer-untrusted")
    assert body["check"] == "issuer-trusted"


def test_tampered_issuer_payload(client: TestClient, make_holder: Callable[..., Holder]) -> None:
    holder = make_holder()
    jwt, disclosures = parts(holder.credential)
    header_b64, _payload_b64, signature = jwt.split(".")
    payload = {**decode_jws_unverified(jwt).payload, "validUntil": "2099-12-31T00:00:00Z"}
    forged = f"{header_b64}.{b64url_encode(dump_json(payload))}.{signature}"
    refused(scan(client, bind(forged, named(disclosures, "name"), holder.key)), "signature-invalid")


# ------------------------------------------------------------------------------------ validity and status


def test_expired(client: TestClient, app: FastAPI, make_holder: Callable[..., Holder]) -> None:
    holder = make_holder()
    now = datetime.now(UTC).replace(microsecond=0)
    credential = sign_as_issuer(
        app, holder, valid_from=now - timedelta(days=3650), valid_until=now - timedelta(days=1)
    )
    old = dataclasses.replace(holder, credential=credential, receipt=None)
    body = refused(scan(client, old.present(["name"])), "credential-expired")
    assert body["check"] == "validity-period"


def test_not_yet_valid(client: TestClient, app: FastAPI, make_holder: Callable[..., Holder]) -> None:
    holder = make_holder()
    now = datetime.now(UTC).replace(microsecond=0)
    credential = sign_as_issuer(
        app, holder, valid_from=now + timedelta(days=1), valid_until=now + timedelta(days=3650)
    )
    early = dataclasses.replace(holder, credential=credential, receipt=None)
    refused(scan(client, early.present(["name"])), "credential-not-yet-valid")


@pytest.mark.parametrize(
    ("action", "slug"), [("revoke", "credential-revoked"), ("suspend", "credential-suspended")]
)
def test_revoked_and_suspended(
    client: TestClient,
    app: FastAPI,
    make_holder: Callable[..., Holder],
    token_for: Callable[[Role], dict[str, str]],
    action: str,
    slug: str,
) -> None:
    holder = make_holder()
    presentation = holder.present(["name"])  # made before the flip: the wallet does not know yet
    changed = client.post(
        f"/issuer/credentials/{holder.credential_id}/status",
        json={"action": action},
        headers=token_for(Role.OFFICER),
    )
    assert changed.status_code == 200, changed.text
    fresh_verifier(app, client)  # a kiosk whose cached list has expired
    body = refused(scan(client, presentation), slug)
    assert body["check"] == "status"


# ----------------------------------------------------------------------------------------------- anchoring


def test_receipt_for_another_leaf(client: TestClient, make_holder: Callable[..., Holder]) -> None:
    alice, bob = make_holder(), make_holder()
    assert alice.receipt is not None
    assert bob.receipt is not None
    assert alice.receipt["index"] != bob.receipt["index"]
    borrowed = dataclasses.replace(alice, receipt=bob.receipt)  # a genuine receipt, for Bob's credential
    body = refused(scan(client, borrowed.present(["name"])), "receipt-object-mismatch")
    assert body["check"] == "anchor"


def test_checkpoint_signed_by_an_unknown_key(client: TestClient, make_holder: Callable[..., Holder]) -> None:
    holder = make_holder()
    assert holder.receipt is not None
    note = parse_note(holder.receipt["checkpoint"])
    origin = note.signatures[0].name
    rogue = NoteSigner.from_ed25519(origin, Ed25519PrivateKey.generate())  # same log name, other key
    receipt = {**holder.receipt, "checkpoint": sign_note(note.text, [rogue])}
    forged = dataclasses.replace(holder, receipt=receipt)
    body = refused(scan(client, forged.present(["name"])), "checkpoint-unknown-key")
    assert body["check"] == "anchor"


def test_checkpoint_with_a_forged_signature_of_the_log_key(
    client: TestClient, make_holder: Callable[..., Holder]
) -> None:
    holder = make_holder()
    assert holder.receipt is not None
    checkpoint = holder.receipt["checkpoint"]
    text, _, sig_line = checkpoint.rstrip("\n").rpartition("\n")
    name, _, sig = sig_line.removeprefix("— ").partition(" ")
    raw = bytearray(base64.b64decode(sig))
    raw[-1] ^= 1  # the log's key ID, a signature that does not hold
    bad = f"{text}\n— {name} {base64.b64encode(bytes(raw)).decode()}\n"
    forged = dataclasses.replace(holder, receipt={**holder.receipt, "checkpoint": bad})
    refused(scan(client, forged.present(["name"])), "checkpoint-signature-invalid")


# -------------------------------------------------------------------------------------------- disclosures


def test_tampered_disclosure(client: TestClient, make_holder: Callable[..., Holder]) -> None:
    holder = make_holder()
    jwt, disclosures = parts(holder.credential)
    (birth,) = named(disclosures, "birthDate")
    salt, name, _value = json.loads(b64url_decode(birth))
    younger = b64url_encode(dump_json([salt, name, "2006-01-01"]))
    body = refused(scan(client, bind(jwt, [younger], holder.key)), "disclosure-unreferenced")
    assert body["check"] == "disclosures"


def test_duplicated_disclosure(client: TestClient, make_holder: Callable[..., Holder]) -> None:
    holder = make_holder()
    jwt, disclosures = parts(holder.credential)
    (name,) = named(disclosures, "name")
    refused(scan(client, bind(jwt, [name, name], holder.key)), "disclosure-duplicate")


# --------------------------------------------------------------------------------------- holder binding


def test_missing_kb_jwt(client: TestClient, make_holder: Callable[..., Holder]) -> None:
    holder = make_holder()
    unbound = present(holder.credential, disclose=[("credentialSubject", "name")], holder_key=None)
    assert unbound.endswith("~")
    body = refused(scan(client, unbound), "kb-missing")
    assert body["check"] == "holder-binding"
    # and the same at the compact QR form
    refused(scan(client, encode_compact(unbound)), "kb-missing")


def test_kb_jwt_by_another_key(client: TestClient, make_holder: Callable[..., Holder]) -> None:
    holder = make_holder()
    thief = ec.generate_private_key(ec.SECP256R1())  # a stolen credential, presented from another phone
    jwt, disclosures = parts(holder.credential)
    body = refused(scan(client, bind(jwt, named(disclosures, "name"), thief)), "kb-signature-invalid")
    assert body["check"] == "holder-binding"


def test_wrong_nonce_openid4vp(client: TestClient, make_holder: Callable[..., Holder]) -> None:
    holder = make_holder()
    request = open_request(client, ["name"])
    presentation = holder.present(["name"], aud=request["client_id"], nonce="a-nonce-of-another-request")
    refused(direct_post(client, request, presentation), "kb-nonce-mismatch")
    kiosk_sees(client, request, "kb-nonce-mismatch")


def test_wrong_audience_openid4vp(client: TestClient, make_holder: Callable[..., Holder]) -> None:
    holder = make_holder()
    request = open_request(client, ["name"])
    # relayed from another verifier's request (same nonce, their audience)
    presentation = holder.present(
        ["name"], aud="decentralized_identifier:did:web:bank.example", nonce=request["nonce"]
    )
    refused(direct_post(client, request, presentation), "kb-audience-mismatch")
    kiosk_sees(client, request, "kb-audience-mismatch")
    # a QR presentation (audience urn:imi:qr-presentation) is not an answer to a kiosk's request either
    again = open_request(client, ["name"])
    refused(
        direct_post(client, again, holder.present(["name"], nonce=again["nonce"])), "kb-audience-mismatch"
    )


@pytest.mark.parametrize(
    ("options", "slug"),
    [
        ({"challenge": "other-challenge", "domain": "https://bank.example"}, "kb-nonce-mismatch"),
        ({"challenge": "c-1", "domain": "https://other.example"}, "kb-audience-mismatch"),
    ],
)
def test_nonce_and_audience_at_the_vc_api(
    client: TestClient, make_holder: Callable[..., Holder], options: dict[str, str], slug: str
) -> None:
    holder = make_holder()
    presentation = holder.present(["name"], aud="https://bank.example", nonce="c-1")
    resp = client.post(
        "/presentations/verify", json={"verifiablePresentation": presentation, "options": options}
    )
    assert refused(resp, slug)["verified"] is False


# ------------------------------------------------------------------------------------ freshness and replay


def test_replayed_presentation(client: TestClient, make_holder: Callable[..., Holder]) -> None:
    holder = make_holder()
    presentation = holder.present(["name"])
    assert scan(client, presentation).status_code == 200
    body = refused(scan(client, presentation), "presentation-replayed")
    assert body["check"] == "freshness"
    # the same presentation in the other QR form is the same presentation
    refused(scan(client, encode_compact(presentation)), "presentation-replayed")


def test_a_presentation_scanned_at_once_by_many_kiosks_verifies_once(
    app: FastAPI, make_holder: Callable[..., Holder]
) -> None:
    """Scans are booked in shared transactions (group commit): a batch must not let a replay through."""
    from concurrent.futures import ThreadPoolExecutor

    from sqlmodel import Session, select

    from verifier.tables import VerificationEvent

    presentation = make_holder().present(["name"])
    verifier = app.state.verifier
    with ThreadPoolExecutor(8) as pool:
        reports = list(pool.map(lambda i: verifier.scan(presentation, verifier_id=f"kiosk-{i}"), range(16)))
    assert sum(r.verified for r in reports) == 1
    refusals = [r.failure for r in reports if not r.verified]
    assert all(f is not None and f.slug == "presentation-replayed" for f in refusals)
    assert all(not r.disclosed for r in reports if not r.verified)  # a replay discloses nothing
    with Session(app.state.engine) as s:
        events = s.exec(
            select(VerificationEvent).where(VerificationEvent.verifier_id.startswith("kiosk-"))
        ).all()
    assert sorted(e.outcome for e in events) == ["refused"] * 15 + ["verified"]
    assert {e.problem for e in events if e.outcome == "refused"} == {"presentation-replayed"}


def test_replayed_openid4vp_answer(client: TestClient, make_holder: Callable[..., Holder]) -> None:
    holder = make_holder()
    first = open_request(client, ["name"])
    presentation = holder.present(["name"], aud=first["client_id"], nonce=first["nonce"])
    assert direct_post(client, first, presentation).status_code == 200
    refused(direct_post(client, first, presentation), "nonce-used")
    second = open_request(client, ["name"])  # an eavesdropper answers the next kiosk request with it
    refused(direct_post(client, second, presentation), "kb-nonce-mismatch")


@pytest.mark.parametrize("offset", [-3600, -130, 130, 86400])
def test_stale_iat(client: TestClient, make_holder: Callable[..., Holder], offset: int) -> None:
    holder = make_holder()
    presentation = holder.present(["name"], iat=int(time.time()) + offset)
    body = refused(scan(client, presentation), "kb-stale")
    assert body["check"] == "holder-binding"


# -------------------------------------------------------------------------------------------- raw input


def test_input_over_64_kb(client: TestClient, make_holder: Callable[..., Holder]) -> None:
    holder = make_holder()
    jwt, disclosures = parts(holder.credential)
    padding = b64url_encode(dump_json([secrets.token_urlsafe(16), "pad", "x" * 50_000]))
    huge = bind(jwt, [*named(disclosures, "name"), padding], holder.key)
    assert len(huge) > 64 * 1024
    refused(scan(client, huge), "too-large")
    resp = client.post("/presentations/verify", json={"verifiablePresentation": huge})
    refused(resp, "too-large")
    request = open_request(client, ["name"])
    refused(direct_post(client, request, huge), "too-large")


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (SCAN, {"qr": "eyJ" + "A" * 70_000 + "~"}),
        ("/presentations/verify", {"verifiablePresentation": "eyJ" + "A" * 70_000 + "~"}),
    ],
)
def test_input_over_64_kb_without_content_length(client: TestClient, path: str, body: dict[str, str]) -> None:
    data = json.dumps(body).encode()
    resp = client.post(
        path,
        content=iter([data[:1000], data[1000:]]),  # chunked: no Content-Length to refuse early
        headers={"Content-Type": "application/json"},
    )
    refused(resp, "too-large")


@pytest.mark.parametrize(
    ("text", "slug"),
    [
        ("hello kiosk", "qr-not-a-presentation"),
        ("https://evil.example/phish", "qr-not-a-presentation"),
        ("WIFI:S:cafe;T:WPA;P:secret;;", "qr-not-a-presentation"),
        ("\x00\x01\x02\xff", "qr-not-a-presentation"),
        ("   ", "qr-malformed"),
        ("IMI1:", "qr-malformed"),
        ("IMI1:!!!!not base45", "qr-malformed"),
        ("IMI1:" + "0" * 300, "qr-malformed"),
        ("IMI2:ftp://evil.example/x", "qr-malformed"),
        ("IMI2:javascript:alert(1)", "qr-malformed"),
        ("eyJhbGciOiJFUzI1NiJ9~", "jws-malformed"),
        ("eyJ~~~", "sd-jwt-malformed"),
    ],
)
def test_garbage_qr_text(client: TestClient, text: str, slug: str) -> None:
    refused(scan(client, text), slug)


def test_garbage_qr_text_never_500(client: TestClient) -> None:
    rng = secrets.SystemRandom()
    alphabet = "eyJ~.IMI1:2 $%*+-/ABCXYZ0123456789abc_=\n\t{}\"'\\é中"
    for _ in range(200):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 120)))
        for qr in (text, "eyJ" + text, "IMI1:" + text, "IMI2:https://" + text):
            resp = scan(client, qr)
            assert 400 <= resp.status_code < 500, (qr, resp.status_code, resp.text)
            assert resp.headers["content-type"].startswith("application/problem+json")
