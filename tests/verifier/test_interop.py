"""Interoperability of the verifier with what others make, over HTTP, with real credentials from the issuer.

* presentations made by the reference SD-JWT library (``sd-jwt`` on PyPI, its ``SDJWTHolder``) from our issued
  SD-JWT and our holder key: at ``POST /verifier/scan`` (plain and compact) and at the W3C VC API
  ``POST /presentations/verify`` (``options.challenge`` = nonce, ``options.domain`` = audience);
* a ``vc+jwt`` from ``POST /issuer/credentials`` at ``POST /credentials/verify`` as an
  ``EnvelopedVerifiableCredential``;
* the reference QR form (``IMI2:<url>``): fetched once from an allowed origin, refused from any other.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import PlainTextResponse
from fastapi.testclient import TestClient
from jwcrypto.jwk import JWK
from sd_jwt.holder import SDJWTHolder

from kernel.accounts import Role
from kernel.jose import b64url_encode, decode_jws_unverified, dump_json, public_jwk_dict
from kernel.qr_payload import encode_compact, encode_reference
from tests.issuer.issuer_fixtures import person_check
from tests.verifier.verifier_fixtures import Holder
from verifier.fetch import HttpFetcher
from verifier.scanning import QR_AUDIENCE
from verifier.service import VerifierService

pytestmark = pytest.mark.usefixtures("http_verifier")

WALLET_ORIGIN = "https://id.example.gov.cn"


def refused(resp: httpx.Response, slug: str) -> dict[str, Any]:
    assert 400 <= resp.status_code < 500, (resp.status_code, resp.text)
    assert resp.headers["content-type"].startswith("application/problem+json"), resp.text
    body: dict[str, Any] = resp.json()
    assert body["type"] == f"urn:imi:problem:{slug}", body
    return body


def reference_presentation(
    holder: Holder, claims: list[str], *, aud: str = QR_AUDIENCE, nonce: str | None = None
) -> str:
    """A presentation made by the reference library's holder, bound with our holder's key."""
    ref = SDJWTHolder(holder.credential)
    ref.create_presentation(
        {"credentialSubject": dict.fromkeys(claims, True)},
        nonce=nonce or secrets.token_urlsafe(12),
        aud=aud,
        holder_key=JWK.from_pyca(holder.key),
        sign_alg="ES256",
    )
    presentation: str = ref.sd_jwt_presentation
    return presentation


def ok(resp: httpx.Response) -> dict[str, Any]:
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    assert body["verified"] is True, body
    return body


# --------------------------------------------------------------------------------- reference SD-JWT library


def test_reference_library_presentation_at_the_kiosk(
    client: TestClient, make_holder: Callable[..., Holder]
) -> None:
    holder = make_holder()
    presentation = reference_presentation(holder, ["name", "nationality"])
    kb = decode_jws_unverified(presentation.rsplit("~", 1)[1])
    assert kb.header == {"alg": "ES256", "typ": "kb+jwt"}  # made by jwcrypto, not by our codec
    assert kb.payload["aud"] == QR_AUDIENCE
    body = ok(client.post("/verifier/scan", json={"qr": presentation}))
    assert body["disclosed"] == {"name": "王小明", "nationality": "CHN"}
    checks = {c["check"]: c["ok"] for c in body["checks"]}
    assert checks["holder-binding"] is True
    assert checks["status"] is True
    # the same presentation, compacted for a smaller QR code, is the same presentation: already used
    refused(client.post("/verifier/scan", json={"qr": encode_compact(presentation)}), "presentation-replayed")


def test_reference_library_presentation_compact_form(
    client: TestClient, make_holder: Callable[..., Holder]
) -> None:
    holder = make_holder()
    presentation = reference_presentation(holder, ["name", "birthDate", "nationality"])
    body = ok(client.post("/verifier/scan", json={"qr": encode_compact(presentation)}))
    assert body["disclosed"] == {"name": "王小明", "birthDate": "1949-12-31", "nationality": "CHN"}


def test_reference_library_presentation_at_the_vc_api(
    client: TestClient, make_holder: Callable[..., Holder]
) -> None:
    holder = make_holder()
    domain, challenge = "https://bank.example/verifier", secrets.token_urlsafe(16)
    presentation = reference_presentation(holder, ["name", "birthDate"], aud=domain, nonce=challenge)
    options = {"challenge": challenge, "domain": domain}
    body = ok(
        client.post(
            "/presentations/verify", json={"verifiablePresentation": presentation, "options": options}
        )
    )
    assert body["errors"] == []
    assert body["disclosed"] == {"name": "王小明", "birthDate": "1949-12-31"}
    # the enveloped form of another one, as the W3C test suites send it
    other = reference_presentation(holder, ["name"], aud=domain, nonce=challenge)
    enveloped = {
        "@context": ["https://www.w3.org/ns/credentials/v2"],
        "type": ["EnvelopedVerifiablePresentation"],
        "id": f"data:application/vp+sd-jwt,{other}",
    }
    body = ok(
        client.post("/presentations/verify", json={"verifiablePresentation": enveloped, "options": options})
    )
    assert body["disclosed"] == {"name": "王小明"}
    # the challenge is the nonce: another challenge is refused
    wrong = {"challenge": "not-it", "domain": domain}
    third = reference_presentation(holder, ["name"], aud=domain, nonce=challenge)
    resp = client.post("/presentations/verify", json={"verifiablePresentation": third, "options": wrong})
    assert refused(resp, "kb-nonce-mismatch")["verified"] is False


# ------------------------------------------------------------------------------------------ vc+jwt, VC API


def test_vc_jwt_from_the_issuer_at_credentials_verify(
    client: TestClient, make_holder: Callable[..., Holder], token_for: Callable[[Role], dict[str, str]]
) -> None:
    officer = token_for(Role.OFFICER)
    holder = make_holder()
    check_id = client.post("/issuer/checks", json=person_check(), headers=officer).json()["id"]
    issued = client.post(
        "/issuer/credentials",
        headers=officer,
        json={"check_id": check_id, "format": "vc+jwt", "holder_jwk": public_jwk_dict(holder.key)},
    )
    assert issued.status_code == 201, issued.text
    token = issued.json()["credential"]
    assert decode_jws_unverified(token).header["typ"] == "vc+jwt"
    envelope = {
        "@context": ["https://www.w3.org/ns/credentials/v2"],
        "type": ["EnvelopedVerifiableCredential"],
        "id": f"data:application/vc+jwt,{token}",
    }
    body = ok(client.post("/credentials/verify", json={"verifiableCredential": envelope}))
    assert body["errors"] == []
    assert body["credential_type"] == "RealNameIdentityCredential"
    assert body["disclosed"]["name"] == "王小明"
    checks = {c["check"]: c["ok"] for c in body["checks"]}
    assert checks == {
        "format": True,
        "algorithm": True,
        "issuer-trusted": True,
        "signature": True,
        "validity-period": True,
        "status": True,
    }
    # a changed claim and it no longer verifies
    header, _payload, signature = token.split(".")
    claims = decode_jws_unverified(token).payload
    claims["credentialSubject"]["name"] = "李四"
    envelope["id"] = f"data:application/vc+jwt,{header}.{b64url_encode(dump_json(claims))}.{signature}"
    resp = client.post("/credentials/verify", json={"verifiableCredential": envelope})
    assert refused(resp, "signature-invalid")["verified"] is False


# ------------------------------------------------------------------------------------- reference QR form


class OneTimeStore:
    """A wallet backend behind ``WALLET_ORIGIN``: each presentation can be fetched once (MockTransport)."""

    def __init__(self) -> None:
        self.items: dict[str, str] = {}
        self.requests: list[str] = []

    def put(self, presentation: str) -> str:
        token = secrets.token_urlsafe(16)  # 22 characters
        self.items[token] = presentation
        return f"{WALLET_ORIGIN}/w/p/{token}"

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(str(request.url))
        body = self.items.pop(request.url.path.removeprefix("/w/p/"), None)
        if body is None:
            return httpx.Response(404)
        return httpx.Response(200, text=body, headers={"Cache-Control": "no-store"})


@pytest.fixture
def wallet_store(app: FastAPI) -> OneTimeStore:
    """Re-point the app's verifier so that ``IMI2:`` references resolve against the wallet store only."""
    store = OneTimeStore()
    current: VerifierService = app.state.verifier
    app.state.verifier = VerifierService(
        app.state.engine,
        trust=current.trust,
        keys=current.keys,
        status=current.status,
        fetcher=HttpFetcher(httpx.Client(transport=httpx.MockTransport(store))),
        reference_origins=(WALLET_ORIGIN,),
    )
    return store


def test_reference_form_from_an_allowed_origin(
    client: TestClient, make_holder: Callable[..., Holder], wallet_store: OneTimeStore
) -> None:
    holder = make_holder()
    url = wallet_store.put(holder.present(["name", "birthDate"]))
    qr = encode_reference(url)
    body = ok(client.post("/verifier/scan", json={"qr": qr}))
    assert body["disclosed"] == {"name": "王小明", "birthDate": "1949-12-31"}
    checks = {c["check"]: c["ok"] for c in body["checks"]}
    assert checks["anchor"] is True  # the fetched presentation carried the receipt
    assert wallet_store.requests == [url]
    # one use: the wallet has dropped it
    refused(client.post("/verifier/scan", json={"qr": qr}), "reference-gone")
    # and a reference-form presentation from the reference library works the same way
    url = wallet_store.put(reference_presentation(holder, ["nationality"]))
    assert ok(client.post("/verifier/scan", json={"qr": encode_reference(url)}))["disclosed"] == {
        "nationality": "CHN"
    }


@pytest.mark.parametrize(
    "url",
    [
        "https://evil.example/w/p/AAAAAAAAAAAAAAAAAAAAAA",
        "https://id.example.gov.cn.evil.example/w/p/AAAAAAAAAAAAAAAAAAAAAA",
        "https://id.example.gov.cn@evil.example/w/p/AAAAAAAAAAAAAAAAAAAAAA",
        "http://id.example.gov.cn/w/p/AAAAAAAAAAAAAAAAAAAAAA",
        "https://id.example.gov.cn:8443/w/p/AAAAAAAAAAAAAAAAAAAAAA",
        "http://169.254.169.254/latest/meta-data/",
        "http://testserver/issuer/status/rev-1",
    ],
)
def test_reference_form_from_another_origin_is_refused(
    client: TestClient, wallet_store: OneTimeStore, url: str
) -> None:
    refused(client.post("/verifier/scan", json={"qr": encode_reference(url)}), "reference-untrusted")
    assert wallet_store.requests == []  # nothing was fetched (no SSRF)


def test_reference_form_with_the_default_origin(
    client: TestClient, app: FastAPI, make_holder: Callable[..., Holder]
) -> None:
    """Default wiring: references under the deployment's own public URL, here a small route on the app."""
    holder = make_holder()
    parked: dict[str, str] = {}

    def fetch_once(token: str) -> PlainTextResponse:
        body = parked.pop(token, None)
        return PlainTextResponse(body or "", status_code=200 if body else 404)

    app.add_api_route("/test-wallet/p/{token}", fetch_once, methods=["GET"])
    token = secrets.token_urlsafe(16)
    parked[token] = holder.present(["name"])
    qr = encode_reference(f"http://testserver/test-wallet/p/{token}")
    assert ok(client.post("/verifier/scan", json={"qr": qr}))["disclosed"] == {"name": "王小明"}
    refused(client.post("/verifier/scan", json={"qr": qr}), "reference-gone")
    refused(
        client.post("/verifier/scan", json={"qr": "IMI2:https://elsewhere.example/test-wallet/p/x"}),
        "reference-untrusted",
    )
