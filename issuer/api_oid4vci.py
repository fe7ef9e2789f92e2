"""OpenID4VCI 1.0 endpoints: token (form-encoded), nonce, credential."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Header, Request
from fastapi.responses import JSONResponse

from issuer.api import Oid4vciDep
from kernel.errors import MalformedInput
from kernel.jose import load_json_object
from kernel.ratelimit import RateLimit
from kernel.web import read_body

router = APIRouter(prefix="/oid4vci", tags=["openid4vci"])
# The wallet service calls these from its own address, and each offer locks after 5 wrong PINs anyway.
TOKEN_LIMIT = Depends(RateLimit(60, 60, scope="oid4vci-token"))
NONCE_LIMIT = Depends(RateLimit(120, 60, scope="oid4vci-nonce"))
CREDENTIAL_LIMIT = Depends(RateLimit(60, 60, scope="oid4vci-credential"))
NO_STORE = {"Cache-Control": "no-store"}


@router.post(
    "/token",
    summary="Token endpoint (pre-authorized code grant, RFC 6749 + OpenID4VCI section 6)",
    dependencies=[TOKEN_LIMIT],
)
def token(
    vci: Oid4vciDep,
    grant_type: Annotated[str, Form(max_length=100)],
    pre_authorized_code: Annotated[str, Form(alias="pre-authorized_code", max_length=200)],
    tx_code: Annotated[str | None, Form(max_length=20)] = None,
) -> JSONResponse:
    body = vci.token(grant_type=grant_type, code=pre_authorized_code, tx_code=tx_code)
    return JSONResponse(body, headers=NO_STORE)


@router.post("/nonce", summary="Nonce endpoint (section 7)", dependencies=[NONCE_LIMIT])
def nonce(vci: Oid4vciDep) -> JSONResponse:
    return JSONResponse({"c_nonce": vci.nonce()}, headers=NO_STORE)


@router.post("/credential", summary="Credential endpoint (section 8)", dependencies=[CREDENTIAL_LIMIT])
async def credential(
    request: Request, vci: Oid4vciDep, authorization: Annotated[str | None, Header()] = None
) -> JSONResponse:
    raw = await read_body(request, 64 * 1024)
    body: dict[str, Any] = load_json_object(raw, slug="credential-request-malformed") if raw else {}
    if not body:
        raise MalformedInput(
            "The credential request is empty.",
            slug="credential-request-malformed",
            error="invalid_credential_request",
        )
    issued = vci.credential(authorization=authorization, body=body)
    payload: dict[str, Any] = {"credentials": [{"credential": issued.credential}]}
    if issued.receipt is not None:
        payload["imi_anchor_receipt"] = issued.receipt.model_dump()  # extension: the holder keeps the receipt
    return JSONResponse(payload, headers=NO_STORE)
