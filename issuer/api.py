"""HTTP face of the issuer: officer API, public identity and status lists. Thin; logic in ``issuer.service``."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Header, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict

from issuer.oid4vci import Oid4vciService, authorization_server_metadata, issuer_metadata
from issuer.service import Issued, IssuerService
from kernel.accounts import Principal, Role, require_role
from kernel.keystore import KeyAlg
from kernel.qr import png_data_url, qr_png, qr_svg
from kernel.web import PrincipalDep
from ledger.receipt import Receipt
from schemas.issuer import CheckIn, CheckOut, IssueRequest, StatusChange

router = APIRouter(tags=["issuer"])


def get_issuer(request: Request) -> IssuerService:
    service: IssuerService = request.app.state.issuer
    return service


def get_oid4vci(request: Request) -> Oid4vciService:
    service: Oid4vciService = request.app.state.oid4vci
    return service


IssuerDep = Annotated[IssuerService, Depends(get_issuer)]
Oid4vciDep = Annotated[Oid4vciService, Depends(get_oid4vci)]


def officer(principal: PrincipalDep) -> Principal:
    return require_role(principal, Role.OFFICER, Role.ADMIN)


def admin(principal: PrincipalDep) -> Principal:
    return require_role(principal, Role.ADMIN)


def auditor(principal: PrincipalDep) -> Principal:
    return require_role(principal, Role.ADMIN, Role.AUDITOR)


OfficerDep = Annotated[Principal, Depends(officer)]
AdminDep = Annotated[Principal, Depends(admin)]
AuditorDep = Annotated[Principal, Depends(auditor)]


class IssuedOut(BaseModel):
    model_config = ConfigDict(frozen=True)
    credential_id: str
    format: str
    credential: str
    receipt: Receipt | None


class OfferOut(BaseModel):
    model_config = ConfigDict(frozen=True)
    offer_id: str
    credential_offer: dict[str, Any]
    credential_offer_uri: str
    tx_code: str
    expires_at: datetime
    qr_png: str
    qr_svg: str


class CredentialState(BaseModel):
    model_config = ConfigDict(frozen=True)
    credential_id: str
    credential_type: str
    format: str
    status: str
    issued_at: datetime
    valid_until: datetime
    revocation: str
    suspension: str
    receipt: Receipt | None


class AuditOut(BaseModel):
    model_config = ConfigDict(frozen=True)
    at: datetime
    actor: str
    action: str
    target: str
    detail: str


def issued_out(issued: Issued) -> IssuedOut:
    return IssuedOut(
        credential_id=issued.credential_id,
        format=issued.format.value,
        credential=issued.credential,
        receipt=issued.receipt,
    )


@router.get("/.well-known/did.json", summary="The issuer's did:web document")
def did_json(issuer: IssuerDep) -> JSONResponse:
    return JSONResponse(
        issuer.did_document(),
        media_type="application/did+json",
        headers={"Cache-Control": "public, max-age=300"},
    )


@router.get("/.well-known/openid-credential-issuer", summary="OpenID4VCI 1.0 Credential Issuer Metadata")
def vci_metadata(issuer: IssuerDep) -> dict[str, Any]:
    return issuer_metadata(issuer.public_url)


@router.get(
    "/.well-known/oauth-authorization-server", summary="RFC 8414 metadata (pre-authorized code grant)"
)
def as_metadata(issuer: IssuerDep) -> dict[str, Any]:
    return authorization_server_metadata(issuer.public_url)


@router.post("/issuer/checks", status_code=201, response_model=CheckOut, summary="Record an in-person check")
def record_check(check: Annotated[CheckIn, Body()], who: OfficerDep, issuer: IssuerDep) -> CheckOut:
    return issuer.record_check(check, who.name)


@router.post(
    "/issuer/credentials",
    status_code=201,
    response_model=IssuedOut | OfferOut,
    summary="Issue from a passed check: to a holder key, or as an OpenID4VCI offer (QR + PIN)",
)
def issue(body: IssueRequest, who: OfficerDep, issuer: IssuerDep, vci: Oid4vciDep) -> IssuedOut | OfferOut:
    if body.holder_jwk is not None:
        return issued_out(
            issuer.issue_from_check(
                body.check_id,
                body.format,
                holder_jwk=body.holder_jwk,
                valid_days=body.valid_days,
                actor=who.name,
            )
        )
    offer = vci.create_offer(body.check_id, body.format, valid_days=body.valid_days, actor=who.name)
    return OfferOut(
        offer_id=offer.offer_id,
        credential_offer=offer.offer,
        credential_offer_uri=offer.uri,
        tx_code=offer.pin,
        expires_at=offer.expires_at,
        qr_png=png_data_url(qr_png(offer.uri)),
        qr_svg=qr_svg(offer.uri),
    )


def _state(issuer: IssuerService, credential_id: str) -> CredentialState:
    row = issuer.get_credential(credential_id)
    return CredentialState(
        credential_id=row.id,
        credential_type=row.credential_type,
        format=row.format,
        status=row.status,
        issued_at=row.issued_at,
        valid_until=row.valid_until,
        revocation=f"{row.revocation_list}#{row.revocation_index}",
        suspension=f"{row.suspension_list}#{row.suspension_index}",
        receipt=Receipt.model_validate_json(row.receipt) if row.receipt else None,
    )


@router.get(
    "/issuer/checks/{check_id}/credentials",
    response_model=list[CredentialState],
    summary="The credentials issued from one check",
)
def credentials_of_check(check_id: str, _who: OfficerDep, issuer: IssuerDep) -> list[CredentialState]:
    return [_state(issuer, row.id) for row in issuer.credentials_of_check(check_id)]


@router.get(
    "/issuer/credentials/{credential_id}", response_model=CredentialState, summary="A credential's state"
)
def credential_state(credential_id: str, _who: OfficerDep, issuer: IssuerDep) -> CredentialState:
    return _state(issuer, credential_id)


@router.post(
    "/issuer/credentials/{credential_id}/status",
    response_model=CredentialState,
    summary="Revoke, suspend or reinstate",
)
def change_status(
    credential_id: str, body: StatusChange, who: OfficerDep, issuer: IssuerDep
) -> CredentialState:
    issuer.change_status(credential_id, body.action, actor=who.name, reason=body.reason)
    return _state(issuer, credential_id)


@router.get("/issuer/status", summary="The URLs of every status list (for offline verifier bundles)")
def status_lists(issuer: IssuerDep) -> JSONResponse:
    return JSONResponse(
        {"lists": issuer.status.list_urls()}, headers={"Cache-Control": "public, max-age=300"}
    )


@router.get("/issuer/status/{list_id}", summary="Bitstring Status List credential (vc+jwt), cacheable")
def status_list(
    list_id: str, issuer: IssuerDep, if_none_match: Annotated[str | None, Header()] = None
) -> Response:
    key = issuer.signing_key()
    published = issuer.status.publish(list_id[:32], issuer_did=issuer.did, key=key, kid=issuer.kid_url(key))
    headers = {"ETag": published.etag, "Cache-Control": "public, max-age=60"}
    if if_none_match == published.etag:
        return Response(status_code=304, headers=headers)
    return Response(published.jwt, media_type="application/vc+jwt", headers=headers)


@router.post("/issuer/keys/rotate", summary="Rotate the issuer signing key (admin)")
def rotate(who: AdminDep, issuer: IssuerDep, alg: KeyAlg | None = None) -> dict[str, str]:
    key = issuer.rotate_key(who.name, alg)
    return {"kid": issuer.kid_url(key), "alg": key.alg.value}


@router.get("/issuer/audit", response_model=list[AuditOut], summary="Audit trail (admin, auditor)")
def audit(_who: AuditorDep, issuer: IssuerDep, target: str | None = None, limit: int = 100) -> list[AuditOut]:
    rows = issuer.audit_trail(limit=max(1, min(limit, 1000)), target=target)
    return [AuditOut(at=r.at, actor=r.actor, action=r.action, target=r.target, detail=r.detail) for r in rows]
