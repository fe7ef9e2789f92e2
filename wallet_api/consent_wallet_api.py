"""The citizen's side of the consent API (``/wallet/me/consents``): see requests, grant, narrow, refuse, pause,
resume, withdraw, and fetch receipts and the event chain. Only the signed-in citizen's own consents (and any
unanswered request whose link they hold) are visible; everything else answers 404."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from wallet_api.api import CitizenDep
from wallet_api.consent_api import ConsentDep
from wallet_api.consent_models import GrantIn, NarrowIn
from wallet_api.consent_queries import citizen_may
from wallet_api.consent_wiring import ConsentParts

router = APIRouter(prefix="/wallet/me/consents", tags=["wallet consents"])


@router.get("", summary="My consents")
def my_consents(citizen: CitizenDep, consent: ConsentDep) -> list[dict[str, Any]]:
    return consent.queries.for_citizen(citizen)


@router.get("/{consent_id}", summary="A consent, or a request I opened from its link or QR code")
def one(consent_id: str, citizen: CitizenDep, consent: ConsentDep) -> dict[str, Any]:
    return consent.queries.get(consent_id, citizen_may(citizen), for_citizen=True)


@router.post("/{consent_id}/grant", summary="Grant all or part (sensitive items need their own toggle)")
def grant(consent_id: str, body: GrantIn, citizen: CitizenDep, consent: ConsentDep) -> dict[str, Any]:
    consent.grants.grant(
        consent_id,
        citizen,
        items=body.items,
        sensitive_confirmed=body.sensitive_confirmed,
        credential_id=body.credential_id,
    )
    return _with_receipt(consent_id, citizen, consent)


@router.post("/{consent_id}/refuse", summary="Refuse the request")
def refuse(consent_id: str, citizen: CitizenDep, consent: ConsentDep) -> dict[str, Any]:
    consent.service.refuse(consent_id, citizen)
    return consent.queries.get(consent_id, citizen_may(citizen), for_citizen=True)


@router.post("/{consent_id}/narrow", summary="Narrow: fewer optional items, an earlier end, fewer releases")
def narrow(consent_id: str, body: NarrowIn, citizen: CitizenDep, consent: ConsentDep) -> dict[str, Any]:
    consent.grants.narrow(
        consent_id,
        citizen,
        items=body.items,
        valid_until=body.valid_until,
        frequency_count=body.frequency_count,
    )
    return _with_receipt(consent_id, citizen, consent)


@router.post("/{consent_id}/pause", summary="Pause: no release until resumed")
def pause(consent_id: str, citizen: CitizenDep, consent: ConsentDep) -> dict[str, Any]:
    consent.service.pause(consent_id, citizen)
    return consent.queries.get(consent_id, citizen_may(citizen), for_citizen=True)


@router.post("/{consent_id}/resume", summary="Resume a paused consent")
def resume(consent_id: str, citizen: CitizenDep, consent: ConsentDep) -> dict[str, Any]:
    consent.service.resume(consent_id, citizen)
    return consent.queries.get(consent_id, citizen_may(citizen), for_citizen=True)


@router.post("/{consent_id}/withdraw", summary="Withdraw: the very next request for data is refused")
def withdraw(consent_id: str, citizen: CitizenDep, consent: ConsentDep) -> dict[str, Any]:
    consent.service.withdraw(consent_id, citizen)
    return consent.queries.get(consent_id, citizen_may(citizen), for_citizen=True)


@router.get("/{consent_id}/receipt", summary="My signed consent receipt and its anchor in the log")
def receipt(
    consent_id: str, citizen: CitizenDep, consent: ConsentDep, version: int | None = None
) -> dict[str, Any]:
    return consent.queries.receipt(consent_id, lambda r: r.citizen_id == citizen, version=version)


@router.get("/{consent_id}/events", summary="Every event of this consent, hash-chained, with details")
def events(consent_id: str, citizen: CitizenDep, consent: ConsentDep) -> list[dict[str, Any]]:
    return consent.queries.events(consent_id, lambda r: r.citizen_id == citizen, for_citizen=True)


def _with_receipt(consent_id: str, citizen: str, consent: ConsentParts) -> dict[str, Any]:
    view: dict[str, Any] = consent.queries.get(consent_id, citizen_may(citizen), for_citizen=True)
    view["receipt"] = consent.queries.receipt(consent_id, lambda r: r.citizen_id == citizen, wait=0)[
        "receipt"
    ]
    return view
