"""HTTP face of the verifier: QR scan, OpenID4VP cross-device flow, its DID document. Thin."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from kernel.errors import VerificationFailed
from kernel.hotpath import json_body
from kernel.jose import sign_jws
from kernel.keystore import KeyAlg, KeyStore
from kernel.qr import png_data_url, qr_png, qr_svg
from kernel.ratelimit import RateLimit
from kernel.web import SettingsDep
from verifier.bundle import build_bundle
from verifier.core import VerificationReport
from verifier.oid4vp import REQUEST_TYP, dcql_query, request_object, request_qr_text
from verifier.service import VerifierService, report_json

router = APIRouter(prefix="/verifier", tags=["verifier"])
REQUEST_LIMIT = Depends(RateLimit(120, 60, scope="vp-requests"))
HISTORY_LIMIT = Depends(RateLimit(60, 60, scope="verifier-history"))
VERIFIER_KEY_PURPOSE = "verifier"


class VerifierIdentity:
    """The verifier's own did:web (``<public url>/verifier``) and request-signing key."""

    def __init__(self, keystore: KeyStore, *, did: str, public_url: str) -> None:
        self.keystore = keystore
        self.did = did
        self.client_id = "decentralized_identifier:" + did
        self.public_url = public_url.rstrip("/")

    def sign(self, claims: dict[str, Any]) -> str:
        key = self.keystore.active(VERIFIER_KEY_PURPOSE, KeyAlg.ES256)
        return sign_jws(claims, key.private_key, typ=REQUEST_TYP, kid=f"{self.did}#{key.kid}")

    def did_document(self) -> dict[str, Any]:
        from kernel.did_document import (
            did_document,  # the same pydid builder; a shared helper, not issuer state
        )

        self.keystore.active(VERIFIER_KEY_PURPOSE, KeyAlg.ES256)
        return did_document(self.did, [k.public_jwk for k in self.keystore.all(VERIFIER_KEY_PURPOSE)])


async def get_verifier(request: Request) -> VerifierService:
    service: VerifierService = request.app.state.verifier
    return service


async def get_identity(request: Request) -> VerifierIdentity:
    identity: VerifierIdentity = request.app.state.verifier_identity
    return identity


VerifierDep = Annotated[VerifierService, Depends(get_verifier)]
IdentityDep = Annotated[VerifierIdentity, Depends(get_identity)]


class ScanIn(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    qr: str = Field(
        max_length=8192, description="The scanned text: plain SD-JWT+KB, IMI1: compact or IMI2: reference"
    )
    verifier_id: str = Field(default="kiosk", max_length=200)


class RequestIn(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    claims: list[str] = Field(min_length=1, max_length=20)
    credential_type: str = Field(default="RealNameIdentityCredential", max_length=64)
    verifier_id: str = Field(default="kiosk", max_length=200)


def _outcome(report: VerificationReport) -> JSONResponse:
    body = report_json(report)
    report.raise_for_failure(checks=body["checks"])
    return JSONResponse(body)


@router.get("/did.json", summary="The verifier's did:web document (keys that sign request objects)")
def verifier_did(identity: IdentityDep) -> JSONResponse:
    return JSONResponse(identity.did_document(), media_type="application/did+json")


@router.get("/bundle", summary="A signed offline trust bundle (what `imi verifier sync` downloads)")
def bundle(
    verifier: VerifierDep, identity: IdentityDep, settings: SettingsDep, max_age: int | None = None
) -> Response:
    age = min(max_age or settings.verifier_bundle_max_age, settings.verifier_bundle_max_age)
    key = identity.keystore.active(VERIFIER_KEY_PURPOSE, KeyAlg.ES256)
    token = build_bundle(
        verifier.fetcher,
        trusted_issuers=tuple(sorted(verifier.trust.trusted_issuers)),
        log_url=f"{identity.public_url}/log",
        witnesses=settings.log_witnesses,
        witness_threshold=settings.log_witness_threshold,
        max_age=max(60, age),
        now=verifier.now(),
        key=key.private_key,
        kid=f"{identity.did}#{key.kid}",
    )
    return Response(token, media_type="application/jwt", headers={"Cache-Control": "no-store"})


@router.post("/scan", summary="Verify a QR code shown by a citizen's wallet (works for offline kiosks too)")
async def scan(body: ScanIn, verifier: VerifierDep) -> JSONResponse:
    return await _scan(body, verifier)


async def _scan(body: ScanIn, verifier: VerifierService) -> JSONResponse:
    return _outcome(await verifier.scan_async(body.qr, verifier_id=body.verifier_id))


async def scan_hot(request: Request) -> Response:
    """``POST /verifier/scan`` as a hot route (``kernel.hotpath``): what a busy kiosk fleet calls most."""
    return await _scan(await json_body(request, ScanIn), request.app.state.verifier)


HOT_ROUTES = [("POST", "/verifier/scan", scan_hot)]


class HistoryIn(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    presentation: str = Field(
        max_length=65536,
        description="The credential presented with a KB-JWT for aud urn:imi:verifier-history (no claims needed)",
    )


@router.post(
    "/history",
    summary="For a holder: what this verifier recorded about their credential (proof of possession required)",
    dependencies=[HISTORY_LIMIT],
)
def holder_history(body: HistoryIn, verifier: VerifierDep) -> JSONResponse:
    credential_id, records = verifier.records_for_holder(body.presentation)
    return JSONResponse(
        {"credential_id": credential_id, "records": records}, headers={"Cache-Control": "no-store"}
    )


@router.post(
    "/requests",
    status_code=201,
    summary="Start an OpenID4VP request; show its QR on the kiosk",
    dependencies=[REQUEST_LIMIT],
)
def create_request(body: RequestIn, verifier: VerifierDep, identity: IdentityDep) -> JSONResponse:
    dcql = dcql_query(body.claims, body.credential_type)
    tx = verifier.create_transaction(verifier_id=body.verifier_id, dcql_query=dcql)
    request_uri = f"{identity.public_url}/verifier/requests/{tx.id}/request"
    text = request_qr_text(client_id=identity.client_id, request_uri=request_uri)
    return JSONResponse(
        {
            "id": tx.id,
            "request_uri": request_uri,
            "qr_text": text,
            "qr_svg": qr_svg(text),
            "qr_png": png_data_url(qr_png(text)),
            "expires_at": tx.expires_at.isoformat(),
            "dcql_query": dcql,
        },
        status_code=201,
    )


# GET by default; POST for wallets that use request_uri_method=post (OpenID4VP 1.0 section 5.10). Two routes so
# each method has its own OpenAPI operation id.
@router.get(
    "/requests/{tx_id}/request", summary="The signed request object", operation_id="get_request_object"
)
@router.post(
    "/requests/{tx_id}/request", summary="The signed request object", operation_id="post_request_object"
)
def get_request_object(tx_id: str, verifier: VerifierDep, identity: IdentityDep) -> Response:
    tx = verifier.transaction(tx_id)
    if tx.status != "pending":
        raise VerificationFailed("This request is no longer open.", slug="vp-request-closed")
    claims = request_object(
        client_id=identity.client_id,
        response_uri=f"{identity.public_url}/verifier/requests/{tx.id}/response",
        nonce=tx.nonce,
        state=tx.state,
        dcql=json.loads(tx.dcql_query),
        iat=int(time.time()),
    )
    return Response(identity.sign(claims), media_type="application/oauth-authz-req+jwt")


@router.post("/requests/{tx_id}/response", summary="The wallet's direct_post answer (vp_token, state)")
def direct_post(
    tx_id: str,
    verifier: VerifierDep,
    identity: IdentityDep,
    vp_token: Annotated[str, Form(max_length=65536)],
    state: Annotated[str | None, Form(max_length=200)] = None,
) -> JSONResponse:
    report = verifier.answer(tx_id, vp_token=vp_token, state=state, audience=identity.client_id)
    # A refused presentation is an error to the wallet too: problem+json with its own type (the transaction
    # already records the outcome for the kiosk). ``error`` keeps the OAuth 2.0 error code for wallets.
    report.raise_for_failure(error="access_denied")
    return JSONResponse({})


@router.get(
    "/requests/{tx_id}", summary="The kiosk reads the outcome (long-poll with ?wait=seconds, up to 25)"
)
async def request_status(tx_id: str, verifier: VerifierDep, wait: float = 0) -> JSONResponse:
    deadline = time.monotonic() + max(0.0, min(wait, 25.0))
    while True:
        tx = await run_in_threadpool(verifier.transaction, tx_id)
        if tx.status != "pending" or time.monotonic() >= deadline:
            break
        await asyncio.sleep(0.2)
    body: dict[str, Any] = {"id": tx.id, "status": tx.status}
    result = verifier.result_of(tx)
    if result is not None:
        body["result"] = result
    return JSONResponse(body, headers={"Cache-Control": "no-store"})
