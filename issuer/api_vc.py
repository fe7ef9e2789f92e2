"""W3C VC API ``POST /credentials/issue``: sign a caller-supplied VCDM 2.0 credential, with status and anchor."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from issuer.api import IssuerDep, OfficerDep
from issuer.vc_input import validate_credential
from schemas.issuer import CredentialFormat

router = APIRouter(tags=["vc-api"])


class IssueOptions(BaseModel):
    model_config = ConfigDict(frozen=True, extra="allow")
    credentialId: str | None = Field(default=None, max_length=200)  # noqa: N815 - VC API field name
    format: CredentialFormat = CredentialFormat.JWT


class IssueCredentialRequest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    credential: dict[str, Any]
    options: IssueOptions = IssueOptions()


@router.post("/credentials/issue", status_code=201, summary="W3C VC API: issue (officer or admin token)")
def issue_credential(body: IssueCredentialRequest, who: OfficerDep, issuer: IssuerDep) -> JSONResponse:
    vc = validate_credential(body.credential, issuer_did=issuer.did)
    types = [vc["type"]] if isinstance(vc["type"], str) else vc["type"]
    # The stored type is a label (64 characters at most in the database); the credential keeps every type.
    ctype = next((t for t in types if t != "VerifiableCredential"), "VerifiableCredential")[:64]
    issued = issuer.issue_many(
        [(ctype, vc["credentialSubject"], None, None)],
        body.options.format,
        holder_jwks=[None],
        valid_days=365,
        actor=who.name,
        wait_for_receipt=False,
        extra=[vc],
    )[0]
    media = (
        "application/vc+sd-jwt" if body.options.format is CredentialFormat.SD_JWT else "application/vc+jwt"
    )
    enveloped = {
        "@context": ["https://www.w3.org/ns/credentials/v2"],
        "type": ["EnvelopedVerifiableCredential"],
        "id": f"data:{media},{issued.credential}",
    }
    return JSONResponse({"verifiableCredential": enveloped}, status_code=201)
