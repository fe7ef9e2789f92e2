"""``verify_presentation``: every rule a kiosk or counter applies to an SD-JWT VC presentation (pure).

Inputs are bytes and objects; keys, status bits and replay memory arrive through the interfaces of
``verifier.policy``; time is a parameter. The result lists every check with its outcome, so that a kiosk can
show what failed and an auditor can see what was checked. Order: format and algorithm, issuer trust,
signature and disclosures, holder binding, freshness and replay, validity period, status, anchoring.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from kernel.errors import ImiError, InfrastructureFailure, MalformedInput, VerificationFailed
from kernel.jose import ALLOWED_ALGS, decode_jws_unverified, verify_jws
from kernel.sdjwt import ParsedSdJwt, parse_sd_jwt
from kernel.sdjwt_verify import AnyNonce, VerifiedSdJwt, verify_sd_jwt
from ledger.commitment import EventType
from ledger.receipt import Receipt, verify_receipt
from verifier.policy import IssuerKeys, ReplayGuard, StatusSource, TrustPolicy

MAX_PRESENTATION = 64 * 1024
CREDENTIAL_TYPS = frozenset({"vc+sd-jwt"})
RECEIPT_CLAIM = (
    "imi_receipt"  # KB-JWT claim carrying the anchor receipt (holder-signed, bound to this presentation)
)


class CheckName(StrEnum):
    FORMAT = "format"
    ALGORITHM = "algorithm"
    ISSUER = "issuer-trusted"
    SIGNATURE = "signature"
    DISCLOSURES = "disclosures"
    HOLDER_BINDING = "holder-binding"
    FRESHNESS = "freshness"
    VALIDITY = "validity-period"
    STATUS = "status"
    ANCHOR = "anchor"


@dataclass(frozen=True)
class Check:
    name: CheckName
    ok: bool | None  # None: not performed (explained in detail)
    slug: str = ""
    detail: str = ""


@dataclass(frozen=True)
class VerificationReport:
    checks: tuple[Check, ...]
    issuer: str | None = None
    credential_type: str | None = None
    credential_id: str | None = None
    disclosed: dict[str, Any] = field(default_factory=dict)

    @property
    def verified(self) -> bool:
        return all(c.ok is not False for c in self.checks) and any(
            c.name is CheckName.SIGNATURE and c.ok for c in self.checks
        )

    @property
    def failure(self) -> Check | None:
        return next((c for c in self.checks if c.ok is False), None)

    def raise_for_failure(self, **extra: Any) -> None:  # noqa: ANN401
        """Raise the first failure as ``VerificationFailed`` (or ``InfrastructureFailure``) with its slug."""
        bad = self.failure
        if bad is None:
            return
        cls = InfrastructureFailure if bad.slug in _INFRA_SLUGS else VerificationFailed
        raise cls(bad.detail, slug=bad.slug, check=bad.name.value, **extra)


_INFRA_SLUGS = frozenset(
    {"status-unavailable", "remote-unreachable", "remote-too-large", "did-resolution-failed"}
)
_KIOSK_WORDS = {
    "credential-revoked": "This credential has been revoked by its issuer.",
    "credential-suspended": "This credential is suspended (for example a lost phone was reported).",
    "credential-expired": "This credential has expired.",
    "credential-not-yet-valid": "This credential is not valid yet.",
    "issuer-untrusted": "The credential comes from an issuer this kiosk does not trust.",
    "kb-nonce-mismatch": "The phone answered another request; please scan again.",
    "kb-stale": "The code on the phone is too old; please refresh it and scan again.",
    "presentation-replayed": "This code was already used; please show a fresh one.",
}


class _Failed(Exception):
    def __init__(self, check: Check) -> None:
        super().__init__(check.slug)
        self.check = check


def _fail(name: CheckName, slug: str, detail: str) -> _Failed:
    return _Failed(Check(name, False, slug, _KIOSK_WORDS.get(slug, detail)))


def _phase_for(exc: ImiError) -> CheckName:
    slug = exc.slug
    if slug.startswith("kb-"):
        return CheckName.HOLDER_BINDING
    if slug.startswith(("disclosure", "claim-name", "sd-alg")):
        return CheckName.DISCLOSURES
    if slug in ("alg-not-allowed", "alg-key-mismatch", "crit-unsupported", "typ-mismatch"):
        return CheckName.ALGORITHM
    if slug in ("signature-invalid",):
        return CheckName.SIGNATURE
    return CheckName.FORMAT


def verify_presentation(
    presentation: str,
    *,
    expected_nonce: str | AnyNonce | None,
    expected_audience: str | None,
    trust: TrustPolicy,
    keys: IssuerKeys,
    status: StatusSource | None,
    replay: ReplayGuard | None = None,
    now: int,
) -> VerificationReport:
    """Verify an SD-JWT(+KB) VC presentation against ``trust``. Never raises for a bad presentation.

    ``expected_nonce=ANY_NONCE`` (``kernel.sdjwt_verify``) accepts the wallet's own nonce, for a QR shown to any
    kiosk: then freshness rests on the KB-JWT's ``iat`` window and a replay cache (``replay``, or the caller's
    own through :func:`replay_key` and :func:`with_replay_outcome`).
    """
    checks: list[Check] = []
    context: dict[str, Any] = {}
    try:
        _run(
            presentation,
            checks,
            context,
            expected_nonce=expected_nonce,
            expected_audience=expected_audience,
            trust=trust,
            keys=keys,
            status=status,
            replay=replay,
            now=now,
        )
    except _Failed as failed:
        checks.append(failed.check)
    return VerificationReport(tuple(checks), **context)


def _run(
    presentation: str,
    checks: list[Check],
    context: dict[str, Any],
    *,
    expected_nonce: str | AnyNonce | None,
    expected_audience: str | None,
    trust: TrustPolicy,
    keys: IssuerKeys,
    status: StatusSource | None,
    replay: ReplayGuard | None,
    now: int,
) -> None:
    parsed, header, payload = _check_format(presentation)
    checks.append(Check(CheckName.FORMAT, True))
    _check_algorithm(header)
    checks.append(Check(CheckName.ALGORITHM, True))
    issuer = _check_issuer(header, payload, trust)
    context.update(
        issuer=issuer, credential_type=_credential_type(payload, trust), credential_id=payload.get("id")
    )
    checks.append(Check(CheckName.ISSUER, True))
    verified = _check_signature_and_binding(
        parsed,
        header=header,
        keys=keys,
        trust=trust,
        nonce=expected_nonce,
        audience=expected_audience,
        now=now,
    )
    checks.append(Check(CheckName.SIGNATURE, True))
    checks.append(Check(CheckName.DISCLOSURES, True))
    if verified.kb_payload is None:
        checks.append(Check(CheckName.HOLDER_BINDING, None, detail="no key binding requested"))
    else:
        checks.append(Check(CheckName.HOLDER_BINDING, True))
    checks.append(_check_freshness(presentation, verified, replay, trust, now))
    checks.append(_check_validity(verified.claims, now))
    checks.append(_check_status(verified.claims, issuer, status))
    checks.append(_check_anchor(presentation, verified, trust))
    subject = verified.claims.get("credentialSubject")
    context["disclosed"] = (
        {k: v for k, v in subject.items() if k != "id"} if isinstance(subject, dict) else {}
    )


def verify_credential(
    token: str, *, trust: TrustPolicy, keys: IssuerKeys, status: StatusSource | None, now: int
) -> VerificationReport:
    """Verify a credential alone (VC API ``/credentials/verify``): a ``vc+jwt``, or a ``vc+sd-jwt`` without KB.

    Same rules as :func:`verify_presentation` except holder binding, which a bare credential cannot show.
    """
    checks: list[Check] = []
    context: dict[str, Any] = {}
    try:
        if len(token) > MAX_PRESENTATION:
            raise _fail(CheckName.FORMAT, "too-large", "The credential is larger than 64 KB.")
        jwt = token.split("~", 1)[0]
        try:
            header = decode_jws_unverified(jwt).header
        except ImiError as exc:
            raise _fail(CheckName.FORMAT, exc.slug, f"Not a JWT credential: {exc.detail}") from None
        checks.append(Check(CheckName.FORMAT, True))
        if header.get("typ") == "vc+jwt":
            claims = _verify_plain_jwt(jwt, header, checks, context, trust=trust, keys=keys)
        else:
            if "~" not in token:
                token += "~"
            trust = replace(trust, require_holder_binding=False)
            _run_sd(token, checks, context, trust=trust, keys=keys)
            claims = context.pop("_claims")
        checks.append(_check_validity(claims, now))
        checks.append(_check_status(claims, context["issuer"], status))
    except _Failed as failed:
        checks.append(failed.check)
    context.pop("_claims", None)
    return VerificationReport(tuple(checks), **context)


def _verify_plain_jwt(
    jwt: str,
    header: dict[str, Any],
    checks: list[Check],
    context: dict[str, Any],
    *,
    trust: TrustPolicy,
    keys: IssuerKeys,
) -> dict[str, Any]:
    alg = header.get("alg")
    if alg not in ALLOWED_ALGS:
        raise _fail(CheckName.ALGORITHM, "alg-not-allowed", f"Signature algorithm {alg!r} is not accepted.")
    checks.append(Check(CheckName.ALGORITHM, True))
    payload = decode_jws_unverified(jwt).payload
    if "vc" in payload or "vp" in payload:
        raise _fail(CheckName.FORMAT, "vc-claim-forbidden", "VC-JOSE-COSE forbids the vc/vp claims.")
    issuer = _check_issuer(header, payload, trust)
    context.update(
        issuer=issuer, credential_type=_credential_type(payload, trust), credential_id=payload.get("id")
    )
    checks.append(Check(CheckName.ISSUER, True))
    try:
        verify_jws(jwt, keys.key_for(str(header["kid"])), expected_typ="vc+jwt")
    except ImiError as exc:
        raise _fail(
            _phase_for(exc) if exc.slug != "unknown-kid" else CheckName.SIGNATURE, exc.slug, exc.detail
        ) from None
    checks.append(Check(CheckName.SIGNATURE, True))
    subject = payload.get("credentialSubject")
    context["disclosed"] = (
        {k: v for k, v in subject.items() if k != "id"} if isinstance(subject, dict) else {}
    )
    return payload


def _run_sd(
    token: str, checks: list[Check], context: dict[str, Any], *, trust: TrustPolicy, keys: IssuerKeys
) -> None:
    parsed, header, payload = _check_format(token)
    _check_algorithm(header)
    checks.append(Check(CheckName.ALGORITHM, True))
    issuer = _check_issuer(header, payload, trust)
    context.update(
        issuer=issuer, credential_type=_credential_type(payload, trust), credential_id=payload.get("id")
    )
    checks.append(Check(CheckName.ISSUER, True))
    verified = _check_signature_and_binding(
        parsed, header=header, keys=keys, trust=trust, nonce=None, audience=None, now=0
    )
    checks.append(Check(CheckName.SIGNATURE, True))
    checks.append(Check(CheckName.DISCLOSURES, True))
    subject = verified.claims.get("credentialSubject")
    context["disclosed"] = (
        {k: v for k, v in subject.items() if k != "id"} if isinstance(subject, dict) else {}
    )
    context["_claims"] = verified.claims


def _check_format(presentation: str) -> tuple[ParsedSdJwt, dict[str, Any], dict[str, Any]]:
    if not isinstance(presentation, str) or len(presentation) > MAX_PRESENTATION:
        raise _fail(CheckName.FORMAT, "too-large", "The presentation is larger than 64 KB.")
    try:
        parsed = parse_sd_jwt(presentation)
        decoded = decode_jws_unverified(parsed.jwt)
    except ImiError as exc:
        raise _fail(CheckName.FORMAT, exc.slug, f"Not an SD-JWT presentation: {exc.detail}") from None
    return parsed, decoded.header, decoded.payload


def _check_algorithm(header: dict[str, Any]) -> None:
    alg = header.get("alg")
    if alg not in ALLOWED_ALGS:
        raise _fail(CheckName.ALGORITHM, "alg-not-allowed", f"Signature algorithm {alg!r} is not accepted.")
    if header.get("typ") not in CREDENTIAL_TYPS:
        raise _fail(
            CheckName.ALGORITHM,
            "typ-mismatch",
            f"Credential type header {header.get('typ')!r} is not vc+sd-jwt.",
        )


def _check_issuer(header: dict[str, Any], payload: dict[str, Any], trust: TrustPolicy) -> str:
    issuer = payload.get("issuer")
    issuer = issuer.get("id") if isinstance(issuer, dict) else issuer
    if not isinstance(issuer, str) or issuer not in trust.trusted_issuers:
        raise _fail(CheckName.ISSUER, "issuer-untrusted", f"Issuer {issuer!r} is not on the trust list.")
    if payload.get("iss", issuer) != issuer:
        raise _fail(CheckName.ISSUER, "issuer-untrusted", "iss and issuer disagree.")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid.startswith(issuer + "#"):
        raise _fail(CheckName.ISSUER, "unknown-kid", "The signing key is not one of the issuer's keys.")
    return issuer


def _credential_type(payload: dict[str, Any], trust: TrustPolicy) -> str:
    types = payload.get("type")
    names = [t for t in types if t in trust.accepted_types] if isinstance(types, list) else []
    if not names:
        raise _fail(
            CheckName.FORMAT, "credential-type-unaccepted", "This kind of credential is not accepted here."
        )
    return str(names[0])


def _check_signature_and_binding(
    presentation: ParsedSdJwt,
    *,
    header: dict[str, Any],
    keys: IssuerKeys,
    trust: TrustPolicy,
    nonce: str | AnyNonce | None,
    audience: str | None,
    now: int,
) -> VerifiedSdJwt:
    try:
        key = keys.key_for(str(header["kid"]))
    except ImiError as exc:
        slug = "unknown-kid" if isinstance(exc, VerificationFailed | MalformedInput) else exc.slug
        raise _fail(CheckName.SIGNATURE, slug, f"The issuer's key could not be found: {exc.detail}") from None
    require_kb = trust.require_holder_binding
    try:
        return verify_sd_jwt(
            presentation,
            issuer_key=key,
            expected_typ=CREDENTIAL_TYPS,
            require_kb=require_kb,
            expected_aud=audience if require_kb else None,
            expected_nonce=nonce if require_kb else None,
            now=now,
            iat_window=trust.iat_window,
        )
    except ValueError:
        raise _fail(
            CheckName.HOLDER_BINDING, "kb-expectations-missing", "No nonce or audience to bind to."
        ) from None
    except ImiError as exc:
        raise _fail(_phase_for(exc), exc.slug, exc.detail) from None


def _check_freshness(
    presentation: str, verified: VerifiedSdJwt, replay: ReplayGuard | None, trust: TrustPolicy, now: int
) -> Check:
    if verified.kb_payload is None:
        return Check(CheckName.FRESHNESS, None, detail="no key binding JWT")
    if replay is None:
        return Check(CheckName.FRESHNESS, True, detail="iat within window; nonce single-use by the caller")
    if not replay.first_use(_kb_digest(presentation), expires_at=now + 2 * trust.iat_window):
        raise _replayed()
    return Check(CheckName.FRESHNESS, True)


def _kb_digest(presentation: str) -> str:
    # The KB-JWT's signature is unique to this presentation: its digest is the replay key.
    return hashlib.sha256(presentation.rsplit("~", 1)[1].encode()).hexdigest()


def _replayed() -> _Failed:
    return _fail(CheckName.FRESHNESS, "presentation-replayed", "This presentation was already used.")


_POSSESSION = (
    CheckName.FORMAT,
    CheckName.ALGORITHM,
    CheckName.ISSUER,
    CheckName.SIGNATURE,
    CheckName.DISCLOSURES,
    CheckName.HOLDER_BINDING,
    CheckName.FRESHNESS,
)


def possession_failure(report: VerificationReport) -> Check | None:
    """Whether ``report`` proves that the presenter holds the credential: the first check that falls short, or
    None. For a holder reading what was recorded about their credential: validity period, status and anchoring
    do not matter there (the holder of a revoked credential still sees who verified it), a KB-JWT does."""
    for name in _POSSESSION:
        check = next((c for c in report.checks if c.name is name), None)
        if check is None:
            return report.failure or Check(name, False, "kb-missing", "A Key Binding JWT is required.")
        if check.ok is not True:
            return check if check.ok is False else Check(name, False, "kb-missing", check.detail)
    return None


def replay_key(presentation: str, report: VerificationReport) -> str | None:
    """What a replay cache keeps of a presentation verified with ``replay=None``: the digest of its KB-JWT.

    ``None`` when the report never reached the freshness check (or had no KB-JWT): a presentation whose holder
    binding did not verify must not use up a key. For callers that consult their replay cache after the
    verification (a group-committed cache); ``with_replay_outcome`` then folds the answer into the report.
    """
    fresh = next((c for c in report.checks if c.name is CheckName.FRESHNESS), None)
    return _kb_digest(presentation) if fresh is not None and fresh.ok else None


def with_replay_outcome(report: VerificationReport, *, first_use: bool) -> VerificationReport:
    """``report`` once the replay cache has answered: a second use fails freshness and discloses nothing."""
    if first_use:
        checks = tuple(
            Check(CheckName.FRESHNESS, True) if c.name is CheckName.FRESHNESS else c for c in report.checks
        )
        return replace(report, checks=checks)
    failed = _replayed().check
    cut = [c for c in report.checks if c.name is not CheckName.FRESHNESS]
    at = next((i for i, c in enumerate(report.checks) if c.name is CheckName.FRESHNESS), len(cut))
    return replace(report, checks=(*cut[:at], failed), disclosed={})


def _timestamp(value: object) -> float | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _check_validity(claims: dict[str, Any], now: int) -> Check:
    start, end = _timestamp(claims.get("validFrom")), _timestamp(claims.get("validUntil"))
    if start is None:
        raise _fail(CheckName.VALIDITY, "validity-invalid", "The credential has no valid validFrom.")
    if now < start:
        raise _fail(CheckName.VALIDITY, "credential-not-yet-valid", "Not valid yet.")
    exp = claims.get("exp")
    if (end is not None and now > end) or (isinstance(exp, int | float) and now > exp):
        raise _fail(CheckName.VALIDITY, "credential-expired", "Expired.")
    return Check(CheckName.VALIDITY, True)


def _check_status(claims: dict[str, Any], issuer: str, status: StatusSource | None) -> Check:
    entries = claims.get("credentialStatus", [])
    entries = [entries] if isinstance(entries, dict) else entries
    if not entries:
        return Check(CheckName.STATUS, None, detail="the credential has no status entry")
    if status is None:
        return Check(CheckName.STATUS, None, detail="status not checked (no status source)")
    for entry in entries:
        if not isinstance(entry, dict) or entry.get("type") != "BitstringStatusListEntry":
            raise _fail(CheckName.STATUS, "status-entry-invalid", "Unknown credentialStatus entry.")
        purpose = entry.get("statusPurpose")
        try:
            index = int(entry.get("statusListIndex", ""))
            is_set = status.bit(
                str(entry.get("statusListCredential")), index, issuer=issuer, purpose=str(purpose)
            )
        except (ValueError, TypeError):
            raise _fail(
                CheckName.STATUS, "status-entry-invalid", "statusListIndex is not a number."
            ) from None
        except InfrastructureFailure as exc:
            raise _fail(
                CheckName.STATUS, "status-unavailable", f"The status list is unavailable: {exc.detail}"
            ) from None
        except ImiError as exc:
            raise _fail(
                CheckName.STATUS, exc.slug, f"The status list does not verify: {exc.detail}"
            ) from None
        if is_set and purpose == "revocation":
            raise _fail(CheckName.STATUS, "credential-revoked", "Revoked.")
        if is_set and purpose == "suspension":
            raise _fail(CheckName.STATUS, "credential-suspended", "Suspended.")
    return Check(CheckName.STATUS, True)


def _check_anchor(presentation: str, verified: VerifiedSdJwt, trust: TrustPolicy) -> Check:
    raw = (verified.kb_payload or {}).get(RECEIPT_CLAIM)
    if raw is None:
        if trust.require_anchor:
            raise _fail(CheckName.ANCHOR, "anchor-missing", "No anchor receipt came with the presentation.")
        return Check(CheckName.ANCHOR, None, detail="no receipt presented (offline QR)")
    if trust.log_verifier is None:
        return Check(CheckName.ANCHOR, None, detail="no trusted log key configured")
    try:
        receipt = Receipt.model_validate(raw)
        if receipt.event_type != EventType.CREDENTIAL_ISSUED.value:
            raise VerificationFailed("The receipt is not for an issuance.", slug="receipt-event-mismatch")
        issuer_jwt = presentation.split("~", 1)[0]
        verify_receipt(
            receipt,
            log_verifier=trust.log_verifier,
            expected_object_hash=hashlib.sha256(issuer_jwt.encode()).digest(),
            witnesses=trust.witnesses,
            witness_threshold=trust.witness_threshold,
        )
    except ImiError as exc:
        raise _fail(CheckName.ANCHOR, exc.slug, f"The anchor receipt does not hold: {exc.detail}") from None
    except ValueError:
        raise _fail(CheckName.ANCHOR, "receipt-malformed", "The anchor receipt is malformed.") from None
    return Check(CheckName.ANCHOR, True)
