"""HTTP face of the consent API for third parties (``/consent/...``), admins (``/consent/admin/...``) and counters.

Third parties authenticate with a 5-minute access token from ``POST /consent/token`` (RFC 7523 client
assertion); admins and officers with service-account bearer tokens (``kernel.accounts``). A client only ever sees
its own consents: other ids answer 404, like ids that do not exist. Thin: logic lives in the services.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Form, Header, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from kernel import hotpath
from kernel.accounts import Principal, Role, require_role
from kernel.qr import qr_svg
from kernel.ratelimit import RateLimit
from kernel.web import PrincipalDep
from wallet_api.consent_grants import Assisted
from wallet_api.consent_models import (
    NONCE_PATTERN,
    ClientIn,
    CounterGrantIn,
    PurposeIn,
    ReleaseOut,
    RequestIn,
    Term,
    TokenOut,
)
from wallet_api.consent_queries import client_may
from wallet_api.consent_wiring import ConsentParts

router = APIRouter(prefix="/consent", tags=["consent"])
admin_router = APIRouter(prefix="/consent/admin", tags=["consent admin"])
NO_STORE = {"Cache-Control": "no-store"}


async def get_consent(request: Request) -> ConsentParts:
    parts: ConsentParts = request.app.state.consent
    return parts


ConsentDep = Annotated[ConsentParts, Depends(get_consent)]


def current_client(consent: ConsentDep, authorization: Annotated[str | None, Header()] = None) -> str:
    return consent.clients.authenticate(authorization)


def admin(principal: PrincipalDep) -> Principal:
    return require_role(principal, Role.ADMIN)


def officer(principal: PrincipalDep) -> Principal:
    return require_role(principal, Role.OFFICER, Role.ADMIN)


ClientDep = Annotated[str, Depends(current_client)]
AdminDep = Annotated[Principal, Depends(admin)]
OfficerDep = Annotated[Principal, Depends(officer)]


# -- third parties -------------------------------------------------------------------------------------------
@router.post(
    "/token",
    response_model=TokenOut,
    summary="Access token (client credentials, RFC 7523 private_key_jwt)",
    dependencies=[Depends(RateLimit(60, 60, scope="consent-token"))],
)
def token(
    consent: ConsentDep,
    grant_type: Annotated[str, Form(max_length=64)],
    client_assertion_type: Annotated[str, Form(max_length=128)],
    client_assertion: Annotated[str, Form(max_length=8192)],
) -> JSONResponse:
    access, ttl = consent.clients.issue_token(
        grant_type=grant_type, assertion_type=client_assertion_type, assertion=client_assertion
    )
    body = TokenOut(access_token=access, expires_in=ttl).model_dump()
    return JSONResponse(body, headers={**NO_STORE, "Pragma": "no-cache"})


@router.get("/jwks.json", summary="Keys that sign consent receipts and webhook notifications (RFC 7517)")
def jwks(consent: ConsentDep) -> JSONResponse:
    return JSONResponse(consent.keys.jwks(), headers={"Cache-Control": "public, max-age=300"})


@router.get("/purposes", summary="The purpose registry: DPV terms and their fair-use limits")
def purposes(consent: ConsentDep) -> list[dict[str, Any]]:
    return consent.purposes.all()


@router.post(
    "/requests", status_code=201, summary="File a consent request; the citizen opens the link in the wallet"
)
def file_request(body: RequestIn, client: ClientDep, consent: ConsentDep) -> dict[str, Any]:
    consent_id = consent.service.file_request(client, body.terms())
    view = consent.queries.get(consent_id, client_may(client), for_citizen=False)
    return {**view, "qr_svg": qr_svg(view["qr_text"])}


@router.get("/consents", summary="My consents (as a third party)")
def my_consents(
    client: ClientDep,
    consent: ConsentDep,
    state: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[dict[str, Any]]:
    return consent.queries.for_client(client, state=state, limit=limit)


@router.get("/consents/{consent_id}", summary="One of my consents")
def one_consent(consent_id: str, client: ClientDep, consent: ConsentDep) -> dict[str, Any]:
    return consent.queries.get(consent_id, client_may(client), for_citizen=False)


@router.get(
    "/consents/{consent_id}/data",
    response_model=ReleaseOut,
    summary="The granted claims as an SD-JWT presentation bound to this consent (every call is checked and logged)",
)
async def release(
    consent_id: str,
    consent: ConsentDep,
    nonce: Annotated[
        str, Query(pattern=NONCE_PATTERN, description="Your fresh nonce (8-128 base64url chars)")
    ],
    claims: Annotated[
        str | None, Query(max_length=2000, description="Comma-separated subset of granted items")
    ] = None,
    authorization: Annotated[str | None, Header()] = None,
) -> JSONResponse:
    return await _release(consent, consent_id, ReleaseQuery(nonce=nonce, claims=claims), authorization)


class ReleaseQuery(BaseModel):
    """The release's query parameters, for the hot route (the same constraints as the FastAPI route's)."""

    model_config = ConfigDict(frozen=True, extra="ignore")
    nonce: str = Field(pattern=NONCE_PATTERN)
    claims: str | None = Field(default=None, max_length=2000)


async def release_hot(request: Request) -> Response:
    """``GET /consent/consents/{consent_id}/data`` as a hot route (``kernel.hotpath``): what third parties poll."""
    consent: ConsentParts = request.app.state.consent
    params = hotpath.query(request, ReleaseQuery)
    consent_id = request.path_params["consent_id"]
    return await _release(consent, consent_id, params, request.headers.get("authorization"))


async def _release(
    consent: ConsentParts, consent_id: str, params: ReleaseQuery, authorization: str | None
) -> JSONResponse:
    wanted = [c for c in params.claims.split(",") if c] if params.claims else None
    out = await consent.releaser.release_async(authorization, consent_id, nonce=params.nonce, items=wanted)
    body = {
        "sub": out.sub,
        "consent_id": out.consent_id,
        "version": out.version,
        "presentation": out.presentation,
        "items": list(out.items),
        "released_at": out.released_at,
        "retain_until": out.retain_until,
    }
    return JSONResponse(body, headers=NO_STORE)


HOT_ROUTES = [("GET", "/consent/consents/{consent_id}/data", release_hot)]


@router.get("/consents/{consent_id}/receipt", summary="The signed consent receipt and its anchor in the log")
def receipt(
    consent_id: str,
    client: ClientDep,
    consent: ConsentDep,
    version: Annotated[int | None, Query(ge=1)] = None,
) -> dict[str, Any]:
    return consent.queries.receipt(consent_id, client_may(client), version=version)


@router.get("/consents/{consent_id}/events", summary="The consent's hash-chained events")
def events(consent_id: str, client: ClientDep, consent: ConsentDep) -> list[dict[str, Any]]:
    return consent.queries.events(consent_id, client_may(client), for_citizen=False)


@router.post("/consents/{consent_id}/revoke", summary="Give up this request or consent")
def revoke(consent_id: str, client: ClientDep, consent: ConsentDep) -> dict[str, Any]:
    consent.service.revoke(consent_id, client_id=client)
    return consent.queries.get(consent_id, client_may(client), for_citizen=False)


# -- a counter: assisted consent ---------------------------------------------------------------------------
@router.post("/counter/consents/{consent_id}/grant", summary="Assisted grant at a counter (officer token)")
def counter_grant(
    consent_id: str, body: CounterGrantIn, who: OfficerDep, consent: ConsentDep
) -> dict[str, Any]:
    citizen = consent.resolve_session(body.citizen_session)
    guardian = body.guardian
    assisted = Assisted(
        who.name, guardian.name if guardian else None, guardian.relationship if guardian else None
    )
    consent.grants.grant(
        consent_id,
        citizen,
        items=body.items,
        sensitive_confirmed=body.sensitive_confirmed,
        credential_id=body.credential_id,
        assisted=assisted,
    )
    view = consent.queries.get(consent_id, lambda r: r.citizen_id == citizen, for_citizen=True)
    return {**view, "receipt": consent.queries.receipt(consent_id, lambda r: True, wait=0)["receipt"]}


# -- admins ---------------------------------------------------------------------------------------------------
@admin_router.post("/clients", status_code=201, summary="Register a third party")
def register_client(body: ClientIn, _who: AdminDep, consent: ConsentDep) -> dict[str, Any]:
    client = consent.clients.register(
        name=body.name,
        organisation_code=body.organisation_code,
        contact=body.contact,
        purposes=body.purposes,
        jwks=body.jwks,
        webhook_url=body.webhook_url,
    )
    return {**client.public(), "token_endpoint": consent.clients.token_endpoint}


@admin_router.get("/clients", summary="Registered third parties")
def clients(_who: AdminDep, consent: ConsentDep) -> list[dict[str, Any]]:
    return [c.public() for c in consent.clients.all()]


@admin_router.post(
    "/clients/{client_id}/disable", summary="Disable a client: tokens die, its consents are revoked"
)
def disable_client(client_id: str, who: AdminDep, consent: ConsentDep) -> dict[str, Any]:
    client = consent.clients.disable(client_id)
    revoked = consent.service.revoke_all(client_id, actor=f"admin:{who.name}")
    return {**client.public(), "revoked_consents": revoked}


@admin_router.get("/clients/{client_id}/webhooks", summary="A client's notifications and their delivery")
def client_webhooks(client_id: str, _who: AdminDep, consent: ConsentDep) -> list[dict[str, Any]]:
    consent.clients.get(client_id)
    return consent.webhooks.outbox(client_id)


@admin_router.put("/purposes/{term}", summary="Register or change a purpose and its fair-use limits")
def put_purpose(term: Term, body: PurposeIn, _who: AdminDep, consent: ConsentDep) -> dict[str, Any]:
    return consent.purposes.put(body.limits(term), label=body.label)


def install(app: FastAPI, parts: ConsentParts) -> None:
    """Mount the consent API (third party, admin, counter and the citizen's ``/wallet/me/consents``) on ``app``."""
    from wallet_api.consent_wallet_api import router as wallet_router

    app.state.consent = parts
    hotpath.install(app, HOT_ROUTES)
    app.include_router(router)
    app.include_router(admin_router)
    app.include_router(wallet_router)
