"""What the consent API signs (pure): the ISO/IEC TS 27560 consent receipt and the webhook notification.

The receipt is a compact JWS (``typ: imi-consent-receipt+jwt``) signed with the wallet service key, given to
the citizen and to the third party, and anchored in the log (``object_hash = SHA-256(JWS)``). Its members follow
the consent record information structure of ISO/IEC TS 27560:2023 (clause 6, record and receipt fields), written
in snake_case, with DPV terms as values where DPV has them (the DPVCG "Consent Records and Receipts as per
ISO/IEC TS 27560 using DPV" guide):

==========================  ==========================================================================
27560 field                 here
==========================  ==========================================================================
schema version              ``schema_version``
record identifier           ``record_id`` (the consent id) and ``record_version``
PII principal identifier    ``pii_principal_id``: the pairwise pseudonym, never the ID number
PII controller(s)           ``pii_controllers``: the third party (id, name, organisation code, contact)
presented by / notice       ``presented_by`` (this service), ``notice`` (the requester's text)
purpose(s)                  ``purposes[]``: ``purpose`` (DPV term), ``lawful_basis`` (DPV), ``pii_information``
                            (claims with ``sensitive``/``explicit_consent``), ``recipient_third_parties``,
                            ``retention_period`` (ISO 8601), ``processing_frequency``, ``one_time``,
                            ``withdrawal_method``, ``privacy_rights``
collection method           ``collection_method``: ``wallet`` or ``assisted`` (at a counter; officer recorded)
event                       ``event``: ``event_time``, ``validity_duration``, ``event_type``, ``event_state``
consent status              ``consent_status`` (DPV ``ConsentStatus``; IMI terms where DPV has none)
==========================  ==========================================================================
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final

from wallet_api.consent_rules import ConsentState, client_audience
from wallet_api.consent_terms import Terms

RECEIPT_TYP: Final = "imi-consent-receipt+jwt"
WEBHOOK_TYP: Final = "imi-consent-event+jwt"
SCHEMA_VERSION: Final = "ISO/IEC TS 27560:2023;imi-consent-receipt-1"
DPV_STATUS: Final[Mapping[ConsentState, str]] = MappingProxyType(
    {
        ConsentState.REQUESTED: "dpv:ConsentRequested",
        ConsentState.GIVEN: "dpv:ConsentGiven",
        ConsentState.REFUSED: "dpv:ConsentRefused",
        ConsentState.WITHDRAWN: "dpv:ConsentWithdrawn",
        ConsentState.REVOKED: "dpv:ConsentRevoked",
        ConsentState.EXPIRED: "dpv:ConsentExpired",
        ConsentState.PAUSED: "imi:ConsentPaused",
        ConsentState.CONSUMED: "imi:ConsentConsumed",
        ConsentState.SUPERSEDED: "imi:ConsentSuperseded",
    }
)
PRIVACY_RIGHTS: Final = ("withdraw", "pause", "narrow", "access-history", "receipt")


@dataclass(frozen=True)
class Controller:
    id: str
    name: str
    organisation_code: str
    contact: str


@dataclass(frozen=True)
class ReceiptInput:
    issuer: str  # the consent service, e.g. https://imi.example/consent
    consent_id: str
    version: int
    subject: str
    controller: Controller
    terms: Terms
    legal_basis: str
    granted: Sequence[str]
    sensitive_confirmed: Sequence[str]
    state: ConsentState
    at: int
    valid_until: int
    frequency_count: int
    collection_method: str
    withdrawal_url: str


def _pii_information(data: ReceiptInput) -> list[dict[str, Any]]:
    out = []
    for key in data.granted:
        item = data.terms.item(key)
        sensitive = bool(item and item.sensitive)
        out.append(
            {
                "claim": key,
                "required": bool(item and item.required),
                "sensitive": sensitive,
                "explicit_consent": sensitive and key in data.sensitive_confirmed,
            }
        )
    return out


def _purpose(data: ReceiptInput) -> dict[str, Any]:
    terms = data.terms
    return {
        "purpose": terms.purpose,
        "lawful_basis": data.legal_basis,
        "pii_information": _pii_information(data),
        "recipient_third_parties": list(terms.recipients),
        "retention_period": f"P{terms.retention_days}D",
        "processing_frequency": {"count": data.frequency_count, "period": terms.frequency.period.value},
        "one_time": terms.one_time,
        "withdrawal_method": data.withdrawal_url,
        "privacy_rights": list(PRIVACY_RIGHTS),
    }


def receipt_claims(data: ReceiptInput) -> dict[str, Any]:
    """The JWT claims of a consent receipt (one per version of a consent)."""
    return {
        "iss": data.issuer,
        "sub": data.subject,
        "iat": data.at,
        "nbf": data.at,
        "exp": data.valid_until,
        "jti": f"{data.consent_id}.{data.version}",
        "schema_version": SCHEMA_VERSION,
        "record_id": data.consent_id,
        "record_version": data.version,
        "pii_principal_id": data.subject,
        "pii_controllers": [data.controller.__dict__],
        "presented_by": data.issuer,
        "notice": data.terms.notice,
        "collection_method": data.collection_method,
        "purposes": [_purpose(data)],
        "event": [
            {
                "event_time": data.at,
                "validity_duration": f"PT{max(0, data.valid_until - data.at)}S",
                "event_type": "dpv:ExplicitlyExpressedConsent"
                if data.sensitive_confirmed
                else "dpv:ExpressedConsent",
                "event_state": DPV_STATUS[data.state],
            }
        ],
        "consent_status": DPV_STATUS[data.state],
    }


def webhook_claims(
    *,
    issuer: str,
    client_id: str,
    consent_id: str,
    version: int,
    seq: int,
    kind: str,
    state: ConsentState,
    at: int,
    event_hash: str,
    subject: str | None,
) -> dict[str, Any]:
    """The JWT claims of a notification to the third party (one per transition)."""
    claims = {
        "iss": issuer,
        "aud": client_audience(client_id),
        "iat": at,
        "jti": f"{consent_id}.{seq}",
        "consent_id": consent_id,
        "version": version,
        "event": kind,
        "state": state.value,
        "consent_status": DPV_STATUS[state],
        "event_hash": event_hash,
        "sub": subject,
    }
    return {k: v for k, v in claims.items() if v is not None}
