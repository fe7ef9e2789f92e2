"""Building and securing W3C VCDM 2.0 credentials (pure: data in, signed compact strings out).

Two types: ``RealNameIdentityCredential`` (a natural person checked in person) and ``LegalEntityCredential``
(a company). The in-person check goes into ``evidence`` (VCDM 2.0 section 5.6) without personal data. Secured
per W3C VC-JOSE-COSE: ``vc+sd-jwt`` (RFC 9901 SD-JWT; every subject claim selectively disclosable, with decoy
digests) or ``vc+jwt`` (the credential is the JWT claims set). Both bind a holder key through ``cnf.jwk``.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kernel.jose import public_jwk_dict, public_key_from_jwk, sign_jws
from kernel.keystore import PrivateKey
from kernel.sdjwt import issue_sd_jwt
from schemas.issuer import CompanyCheckIn, CredentialFormat, PersonCheckIn

VCDM_V2_CONTEXT = "https://www.w3.org/ns/credentials/v2"
PERSON_TYPE = "RealNameIdentityCredential"
COMPANY_TYPE = "LegalEntityCredential"
SD_JWT_TYP = "vc+sd-jwt"
JWT_TYP = "vc+jwt"
EVIDENCE_TYPE = "InPersonRealNameCheck"
# One decoy digest per _sd array (RFC 9901 section 4.2.5): it hides how many claims a credential has, while
# keeping a 3-claim presentation inside a version-25 QR code (each digest is 43 incompressible characters).
DECOYS = 1


def xsd_datetime(moment: datetime) -> str:
    """VCDM 2.0 dateTimeStamp: UTC, second precision, ``Z``."""
    return moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def person_subject(check: PersonCheckIn) -> dict[str, Any]:
    """Subject claims of a ``RealNameIdentityCredential`` (all selectively disclosable when SD-JWT)."""
    return {
        "name": check.name,
        "birthDate": check.birth_date.isoformat(),
        "gender": {"M": "male", "F": "female"}[check.sex],
        "nationality": check.nationality,
        "address": check.address,
        "idNumber": check.document_number,
    }


def company_subject(check: CompanyCheckIn) -> dict[str, Any]:
    return {
        "creditCode": check.credit_code,
        "name": check.name,
        "legalRepresentative": check.legal_representative,
        "registeredAddress": check.registered_address,
    }


def evidence_of(
    check: PersonCheckIn | CompanyCheckIn, *, check_id: str, officer: str, checked_at: datetime
) -> dict[str, Any]:
    """The ``evidence`` entry: who checked, where, when, how, and the outcome; never the person's data."""
    # No evidence id: the check's id would be one more correlation handle in every presentation.
    del check_id
    entry: dict[str, Any] = {
        "type": ["Evidence", EVIDENCE_TYPE],
        "verifier": officer,
        "location": check.counter,
        "time": xsd_datetime(checked_at),
        "method": [m.value for m in check.methods],
        "documentType": check.document_type,
        "result": check.result.value,
    }
    if isinstance(check, PersonCheckIn) and check.face_match is not None:
        entry["faceMatch"] = {"score": check.face_match.score, "threshold": check.face_match.threshold}
    return entry


@dataclass(frozen=True)
class CredentialDraft:
    """Everything needed to sign one credential."""

    credential_id: str
    issuer_did: str
    credential_type: str
    subject: Mapping[str, Any]
    evidence: Mapping[str, Any] | None
    status: tuple[Mapping[str, Any], ...]
    valid_from: datetime
    valid_until: datetime
    extra: Mapping[str, Any] | None = (
        None  # a caller-supplied credential (VC API) whose other members are kept
    )


def unsecured_credential(draft: CredentialDraft) -> dict[str, Any]:
    """The VCDM 2.0 credential as JSON (the claims set of the JWT)."""
    extra = dict(draft.extra or {})
    contexts = [VCDM_V2_CONTEXT] + [c for c in extra.pop("@context", []) if c != VCDM_V2_CONTEXT]
    types = extra.pop("type", ["VerifiableCredential", draft.credential_type])
    vc: dict[str, Any] = {
        "@context": contexts,
        "id": extra.pop("id", draft.credential_id),
        "type": [types] if isinstance(types, str) else list(types),
        "issuer": extra.pop("issuer", draft.issuer_did),
        "validFrom": extra.pop("validFrom", xsd_datetime(draft.valid_from)),
        "validUntil": extra.pop("validUntil", xsd_datetime(draft.valid_until)),
        # a caller's subject may be a list of subjects (VCDM 2.0 4.8): never coerce it into one object
        "credentialSubject": extra.pop("credentialSubject")
        if "credentialSubject" in extra
        else dict(draft.subject),
    }
    vc.update(extra)
    if draft.status:
        vc["credentialStatus"] = [dict(s) for s in draft.status]
    if draft.evidence is not None:
        vc["evidence"] = [dict(draft.evidence)]
    return vc


def _jwt_claims(vc: dict[str, Any], draft: CredentialDraft) -> dict[str, Any]:
    # VC-JOSE-COSE 3.1.1: registered claims may sit beside the credential and must agree with it; iat/exp
    # describe the signature; nbf is NOT RECOMMENDED, so validFrom alone says when the data becomes valid, and
    # iat is left out as it would equal validFrom (every byte counts in a QR code).
    return {
        **vc,
        "iss": draft.issuer_did,
        "exp": int(draft.valid_until.timestamp()),
    }


def _subject_paths(subject: object) -> list[tuple[str | int, ...]]:
    """Every claim of the subject (object, or list of objects) except its ``id`` is selectively disclosable."""
    if isinstance(subject, list):
        return [
            ("credentialSubject", i, k)
            for i, s in enumerate(subject)
            if isinstance(s, dict)
            for k in s
            if k != "id"
        ]
    if isinstance(subject, dict):
        return [("credentialSubject", k) for k in subject if k != "id"]
    return []


@dataclass(frozen=True)
class SecuredCredential:
    format: CredentialFormat
    issuer_jwt: str  # compact JWS, without disclosures: what the log's object_hash covers
    serialization: str  # what the holder stores: the JWT, or the SD-JWT with all disclosures


def secure(
    draft: CredentialDraft,
    fmt: CredentialFormat,
    *,
    key: PrivateKey,
    kid: str,
    holder_jwk: Mapping[str, Any] | None,
    rng: Callable[[int], bytes] = secrets.token_bytes,
) -> SecuredCredential:
    """Sign ``draft`` as ``vc+sd-jwt`` (all subject claims disclosable) or ``vc+jwt``."""
    claims = _jwt_claims(unsecured_credential(draft), draft)
    if fmt is CredentialFormat.SD_JWT:
        issued = issue_sd_jwt(
            claims,
            sd_paths=_subject_paths(claims["credentialSubject"]),
            key=key,
            typ=SD_JWT_TYP,
            kid=kid,
            holder_jwk=holder_jwk,
            rng=rng,
            decoys=DECOYS,
        )
        return SecuredCredential(fmt, issued.jwt, issued.serialize())
    if holder_jwk is not None:
        claims["cnf"] = {"jwk": public_jwk_dict(public_key_from_jwk(holder_jwk))}
    jwt = sign_jws(claims, key, typ=JWT_TYP, kid=kid, extra_headers={"cty": "vc"})
    return SecuredCredential(fmt, jwt, jwt)
