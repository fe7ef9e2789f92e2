"""OpenID for Verifiable Credential Issuance 1.0, pre-authorized code flow with a ``tx_code`` PIN.

Metadata (section 12.2), credential offer (4.1), token endpoint (6), nonce endpoint (7), credential endpoint
(8) with ``openid4vci-proof+jwt`` proofs (Appendix F.1). Codes, PINs, tokens and nonces are stored only as
keyed hashes; a code works once, a PIN has a few attempts, everything expires. OpenID error codes travel in
the ``error`` member of our problem+json bodies, so conformant wallets find them where they look.

Format identifiers: 1.0 final has none for VCDM 2.0 secured with VC-JOSE-COSE; we use ``vc+sd-jwt`` and
``vc+jwt`` with ``credential_definition.type`` as the 1.1 drafts do.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from sqlalchemy import Engine, update
from sqlmodel import Session, col, select

from issuer.credentials import COMPANY_TYPE, PERSON_TYPE
from issuer.service import Issued, IssuerService
from issuer.tables import CredentialOffer, IssuerNonce
from kernel.db import writer
from kernel.errors import Conflict, MalformedInput, Unauthenticated, VerificationFailed
from kernel.jose import ALLOWED_ALGS, decode_jws_unverified, public_key_from_jwk, verify_jws
from schemas.issuer import CredentialFormat

PRE_AUTH_GRANT = "urn:ietf:params:oauth:grant-type:pre-authorized_code"
PROOF_TYP = "openid4vci-proof+jwt"
OFFER_TTL = timedelta(minutes=15)
TOKEN_TTL = timedelta(minutes=5)
NONCE_TTL = timedelta(minutes=5)
PROOF_IAT_WINDOW = timedelta(minutes=5)
MAX_PIN_ATTEMPTS = 5
PIN_LENGTH = 6


def configuration_id(credential_type: str, fmt: CredentialFormat) -> str:
    return f"{credential_type}_{'sd_jwt' if fmt is CredentialFormat.SD_JWT else 'jwt'}"


CONFIGURATIONS: dict[str, tuple[str, CredentialFormat]] = {
    configuration_id(t, f): (t, f) for t in (PERSON_TYPE, COMPANY_TYPE) for f in CredentialFormat
}


def issuer_metadata(public_url: str) -> dict[str, Any]:
    """Credential Issuer Metadata (OpenID4VCI 1.0 section 12.2.4)."""
    configs = {
        cid: {
            "format": fmt.value,
            "scope": ctype,
            "cryptographic_binding_methods_supported": ["jwk"],
            "credential_signing_alg_values_supported": sorted(ALLOWED_ALGS),
            "proof_types_supported": {"jwt": {"proof_signing_alg_values_supported": sorted(ALLOWED_ALGS)}},
            "credential_definition": {"type": ["VerifiableCredential", ctype]},
            "credential_metadata": {"display": [{"name": ctype, "locale": "en"}]},
        }
        for cid, (ctype, fmt) in CONFIGURATIONS.items()
    }
    return {
        "credential_issuer": public_url,
        "credential_endpoint": f"{public_url}/oid4vci/credential",
        "nonce_endpoint": f"{public_url}/oid4vci/nonce",
        "credential_configurations_supported": configs,
        "display": [
            {"name": "IMI district issuer", "locale": "en"},
            {"name": "IMI 区身份签发机构", "locale": "zh-CN"},
        ],
    }


def authorization_server_metadata(public_url: str) -> dict[str, Any]:
    """RFC 8414 metadata of the (built-in) authorization server: only the pre-authorized grant."""
    return {
        "issuer": public_url,
        "token_endpoint": f"{public_url}/oid4vci/token",
        "grant_types_supported": [PRE_AUTH_GRANT],
        "pre-authorized_grant_anonymous_access_supported": True,
        "response_types_supported": [],
    }


@dataclass(frozen=True)
class Offer:
    offer_id: str
    offer: dict[str, Any]
    uri: str
    pin: str
    expires_at: datetime


class Oid4vciService:
    def __init__(
        self,
        engine: Engine,
        issuer: IssuerService,
        *,
        hmac_key: bytes,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._engine = writer(engine)
        self._issuer = issuer
        self._key = hmac_key
        self._clock = clock

    def _h(self, value: str) -> str:
        return hmac.new(self._key, value.encode(), hashlib.sha256).hexdigest()

    def create_offer(self, check_id: str, fmt: CredentialFormat, *, valid_days: int, actor: str) -> Offer:
        """A pre-authorized credential offer for a passed check; the PIN is shown to the citizen only."""
        row, _ = self._issuer.get_check(check_id)
        if row.result != "passed":
            raise Conflict("This check did not pass; nothing can be offered.", slug="check-not-passed")
        ctype = PERSON_TYPE if row.kind == "person" else COMPANY_TYPE
        code, pin = secrets.token_urlsafe(32), f"{secrets.randbelow(10**PIN_LENGTH):0{PIN_LENGTH}d}"
        offer_id = uuid.uuid4().hex
        expires = self._clock() + OFFER_TTL
        config = configuration_id(ctype, fmt)
        with Session(self._engine, expire_on_commit=False) as s:
            s.add(
                CredentialOffer(
                    id=offer_id,
                    code_hash=self._h(code),
                    pin_hash=self._h(f"{offer_id}:{pin}"),
                    check_id=check_id,
                    configuration_id=config,
                    valid_days=valid_days,
                    expires_at=expires,
                )
            )
            s.commit()
        self._issuer.audit(actor, "offer.created", check_id, {"offer": offer_id, "configuration": config})
        offer = {
            "credential_issuer": self._issuer.public_url,
            "credential_configuration_ids": [config],
            "grants": {
                PRE_AUTH_GRANT: {
                    "pre-authorized_code": code,
                    "tx_code": {
                        "input_mode": "numeric",
                        "length": PIN_LENGTH,
                        "description": "The PIN shown on the counter screen / 柜台屏幕上显示的PIN码",
                    },
                }
            },
        }
        uri = "openid-credential-offer://?credential_offer=" + quote(
            json.dumps(offer, separators=(",", ":")), safe=""
        )
        return Offer(offer_id, offer, uri, pin, expires)

    def token(self, *, grant_type: str, code: str, tx_code: str | None) -> dict[str, Any]:
        """Token endpoint: exchange the pre-authorized code (+ PIN) for a short-lived access token."""
        if grant_type != PRE_AUTH_GRANT:
            raise MalformedInput(
                "Only the pre-authorized code grant is supported.",
                slug="grant-unsupported",
                error="unsupported_grant_type",
            )
        now = self._clock()
        with Session(self._engine, expire_on_commit=False) as s:
            # FOR UPDATE (PostgreSQL; SQLite's BEGIN IMMEDIATE already serializes): parallel guesses of one
            # offer's PIN queue up here, so no more than MAX_PIN_ATTEMPTS of them are ever compared.
            offer = s.exec(
                select(CredentialOffer).where(CredentialOffer.code_hash == self._h(code)).with_for_update()
            ).first()
            if offer is None:
                raise VerificationFailed(
                    "Unknown pre-authorized code.", slug="code-invalid", error="invalid_grant"
                )
            if offer.redeemed_at is not None:
                raise VerificationFailed(
                    "This code was already used.", slug="code-used", error="invalid_grant"
                )
            if _aware(offer.expires_at) < now:
                raise VerificationFailed(
                    "This offer has expired.", slug="offer-expired", error="invalid_grant"
                )
            if offer.attempts >= MAX_PIN_ATTEMPTS:
                raise VerificationFailed(
                    "Too many wrong PINs; ask the counter for a new offer.",
                    slug="pin-locked",
                    error="invalid_grant",
                )
            if not tx_code:
                raise MalformedInput(
                    "The PIN (tx_code) is required.", slug="pin-missing", error="invalid_request"
                )
            if not hmac.compare_digest(offer.pin_hash, self._h(f"{offer.id}:{tx_code}")):
                # Count the failure atomically, so parallel guesses cannot exceed the limit.
                s.exec(
                    update(CredentialOffer)
                    .where(col(CredentialOffer.id) == offer.id)
                    .values(attempts=col(CredentialOffer.attempts) + 1)
                )
                s.commit()
                raise VerificationFailed("Wrong PIN.", slug="pin-wrong", error="invalid_grant")
            token = secrets.token_urlsafe(32)
            claimed = s.exec(
                update(CredentialOffer)
                .where(col(CredentialOffer.id) == offer.id, col(CredentialOffer.redeemed_at).is_(None))
                .values(redeemed_at=now, token_hash=self._h(token), token_expires_at=now + TOKEN_TTL)
            )
            s.commit()
            if claimed.rowcount != 1:
                raise VerificationFailed(
                    "This code was already used.", slug="code-used", error="invalid_grant"
                )
        return {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": int(TOKEN_TTL.total_seconds()),
            "authorization_details": [
                {
                    "type": "openid_credential",
                    "credential_configuration_id": offer.configuration_id,
                }
            ],
        }

    def nonce(self) -> str:
        value = secrets.token_urlsafe(24)
        with Session(self._engine, expire_on_commit=False) as s:
            s.add(IssuerNonce(value_hash=self._h(value), expires_at=self._clock() + NONCE_TTL))
            s.commit()
        return value

    def credential(self, *, authorization: str | None, body: dict[str, Any]) -> Issued:
        """Credential endpoint: check the token and the key proof, then issue bound to the proven key."""
        offer = self._offer_for_token(authorization)
        config = body.get("credential_configuration_id") or body.get("credential_identifier")
        if config != offer.configuration_id:
            raise MalformedInput(
                "Unknown credential configuration for this token.",
                slug="credential-configuration-unknown",
                error="unknown_credential_configuration",
            )
        proofs = body.get("proofs")
        jwts = proofs.get("jwt") if isinstance(proofs, dict) else None
        if not isinstance(jwts, list) or len(jwts) != 1 or not isinstance(jwts[0], str):
            raise MalformedInput(
                "Send exactly one proof in proofs.jwt.", slug="proof-missing", error="invalid_proof"
            )
        holder_jwk = self._check_proof(jwts[0])
        _, fmt = CONFIGURATIONS[offer.configuration_id]
        with Session(self._engine, expire_on_commit=False) as s:
            claimed = s.exec(
                update(CredentialOffer)
                .where(col(CredentialOffer.id) == offer.id, col(CredentialOffer.credential_id).is_(None))
                .values(credential_id="pending")
            )
            s.commit()
        if claimed.rowcount != 1:
            raise Unauthenticated("This token was already used.", slug="token-used", error="invalid_token")
        issued = self._issuer.issue_from_check(
            offer.check_id, fmt, holder_jwk=holder_jwk, valid_days=offer.valid_days, actor="oid4vci"
        )
        with Session(self._engine, expire_on_commit=False) as s:
            s.exec(
                update(CredentialOffer)
                .where(col(CredentialOffer.id) == offer.id)
                .values(credential_id=issued.credential_id)
            )
            s.commit()
        return issued

    def _offer_for_token(self, authorization: str | None) -> CredentialOffer:
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() not in ("bearer", "dpop") or not token:
            raise Unauthenticated(
                "An access token is required.", slug="access-token-missing", error="invalid_token"
            )
        with Session(self._engine, expire_on_commit=False) as s:
            offer = s.exec(
                select(CredentialOffer).where(CredentialOffer.token_hash == self._h(token.strip()))
            ).first()
        if offer is None or offer.token_expires_at is None or _aware(offer.token_expires_at) < self._clock():
            raise Unauthenticated(
                "The access token is invalid or expired.", slug="access-token-invalid", error="invalid_token"
            )
        return offer

    def _check_proof(self, proof: str) -> dict[str, Any]:
        """Verify an ``openid4vci-proof+jwt`` (Appendix F.1) and return the holder's public JWK."""
        try:
            header = decode_jws_unverified(proof).header
            jwk = header.get("jwk")
            if not isinstance(jwk, dict) or "kid" in header or "x5c" in header:
                raise MalformedInput(
                    "The proof must carry the holder key as 'jwk' (and no kid/x5c).", slug="key-missing"
                )
            decoded = verify_jws(proof, public_key_from_jwk(jwk), expected_typ=PROOF_TYP)
        except (MalformedInput, VerificationFailed) as exc:
            # A malformed proof or a bad 'jwk' (say, one with private members) is an invalid proof too
            # (OpenID4VCI 1.0 section 8.3.1.2): wallets look for error=invalid_proof.
            raise type(exc)(
                f"Key proof refused: {exc.detail}", slug=f"proof-{exc.slug}", error="invalid_proof"
            ) from exc
        claims = decoded.payload
        if claims.get("aud") != self._issuer.public_url:
            raise VerificationFailed(
                "The proof is for another issuer (aud).",
                slug="proof-audience-mismatch",
                error="invalid_proof",
            )
        iat = claims.get("iat")
        now = self._clock()
        if not isinstance(iat, int | float) or abs(now.timestamp() - iat) > PROOF_IAT_WINDOW.total_seconds():
            raise VerificationFailed(
                "The proof's iat is missing or not recent.", slug="proof-stale", error="invalid_proof"
            )
        self._consume_nonce(claims.get("nonce"))
        return {k: v for k, v in jwk.items() if k in ("kty", "crv", "x", "y")}

    def _consume_nonce(self, nonce: object) -> None:
        if not isinstance(nonce, str) or not nonce:
            # Section 8.3.1.2: a proof without c_nonce is invalid_proof; invalid_nonce is for a bad c_nonce.
            raise VerificationFailed(
                "The proof has no c_nonce.", slug="proof-nonce-missing", error="invalid_proof"
            )
        now = self._clock()
        with Session(self._engine, expire_on_commit=False) as s:
            used = s.exec(
                update(IssuerNonce)
                .where(
                    col(IssuerNonce.value_hash) == self._h(nonce),
                    col(IssuerNonce.used_at).is_(None),
                    col(IssuerNonce.expires_at) >= now,
                )
                .values(used_at=now)
            )
            s.commit()
        if used.rowcount != 1:
            raise VerificationFailed(
                "The proof's nonce is unknown, used or expired.",
                slug="proof-nonce-invalid",
                error="invalid_nonce",
            )


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
