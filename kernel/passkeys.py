"""Citizens' passkeys: WebAuthn registration and authentication ceremonies (W3C WebAuthn Level 3, §7).

py_webauthn performs the per-response checks of §7.1 (Registering a New Credential) and §7.2 (Verifying an
Authentication Assertion). This module adds what needs state: one-time challenges that expire (§13.4.3
Cryptographic Challenges), the credential records with §7.1's id length and uniqueness checks, §7.2's checks that
the credential was allowed and that the user handle is its own, and the signature counter (§6.1.1). Resident keys
and user verification are always *required* (§5.4.4 AuthenticatorSelectionCriteria): a passkey replaces both the
password and the second factor. ES256 and EdDSA only; no attestation asked for, since enrolment follows the
officer's in-person check. Every attempt to finish a ceremony uses it up. Errors (``kernel.errors``)::

    NotFound            ceremony-unknown, passkey-not-found
    Conflict            ceremony-used, ceremony-expired, passkey-exists, last-passkey
    Unauthenticated     passkey-unknown (no such credential: login refused)
    VerificationFailed  passkey-registration-failed, passkey-authentication-failed, user-verification-required
    MalformedInput      citizen-id-invalid, passkey-label-too-long
"""

from __future__ import annotations

import hmac
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, delete
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import base64url_to_bytes, bytes_to_base64url, parse_authentication_credential_json
from webauthn.helpers.cose import COSEAlgorithmIdentifier
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AuthenticationCredential,
    AuthenticatorSelectionCriteria,
    AuthenticatorTransport,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)
from webauthn.registration.verify_registration_response import VerifiedRegistration

from kernel.auth_tables import Passkey, WebauthnCeremony
from kernel.db import writer
from kernel.errors import Conflict, MalformedInput, NotFound, Unauthenticated, VerificationFailed

CEREMONY_TTL = timedelta(minutes=5)
ALGORITHMS = [COSEAlgorithmIdentifier.ECDSA_SHA_256, COSEAlgorithmIdentifier.EDDSA]
MAX_CREDENTIAL_ID = 1023  # bytes (§7.1)
MAX_LABEL = 100
# py_webauthn 3.x has one exception class per ceremony; a missing UV flag is told apart by its message only.
_UV_MISSING = "User verification is required"
# py_webauthn wraps most parse errors, but not all (CBOR and COSE decoding can raise these directly).
_BAD_RESPONSE = (WebAuthnException, ValueError, TypeError, KeyError, IndexError)


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class PasskeyInfo:
    """What a citizen sees of one of their passkeys (never the key or the credential id)."""

    id: str
    label: str
    created_at: datetime
    last_used_at: datetime | None
    transports: tuple[str, ...]


def _info(row: Passkey) -> PasskeyInfo:
    transports = tuple(t for t in row.transports.split(",") if t)
    return PasskeyInfo(row.id, row.label, row.created_at, row.last_used_at, transports)


def _uv_required() -> VerificationFailed:
    detail = (
        "The authenticator did not verify the user (PIN, pattern or biometric); this service requires it."
    )
    return VerificationFailed(detail, slug="user-verification-required")


def _failure(exc: Exception, *, slug: str, what: str) -> VerificationFailed:
    if str(exc).startswith(_UV_MISSING):
        return _uv_required()
    return VerificationFailed(f"{what}: {exc}", slug=slug)


def _transports(credential: dict[str, Any]) -> str:
    response = credential.get("response")
    listed = response.get("transports") if isinstance(response, dict) else None
    known = {t.value for t in AuthenticatorTransport}
    return ",".join(t for t in listed if t in known) if isinstance(listed, list) else ""


class PasskeyService:
    """Enrol and log in citizens with passkeys; several per citizen, each removable but never the last."""

    def __init__(
        self,
        engine: Engine,
        *,
        rp_id: str,
        rp_name: str,
        origin: str,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self._engine, self._writer, self._clock = engine, writer(engine), clock
        self._rp_id, self._rp_name, self._origin = rp_id, rp_name, origin

    # -- registration (§5.1.3 create(), §7.1) ------------------------------------------------------------------

    def registration_options(
        self, *, citizen_id: str, user_name: str, display_name: str
    ) -> tuple[str, dict[str, Any]]:
        """Start enrolling a passkey: returns the ceremony id and ``PublicKeyCredentialCreationOptionsJSON``
        (WebAuthn L3 §5.4) for ``navigator.credentials.create``. The citizen's existing credentials are excluded
        (§5.4.3 excludeCredentials); all their passkeys share one random user handle (§5.4.3 user.id, §14.6.1)."""
        _check_citizen_id(citizen_id)
        existing = self._rows(citizen_id)
        user_handle = existing[0].user_handle if existing else secrets.token_bytes(32)
        challenge = secrets.token_bytes(32)
        options = generate_registration_options(
            rp_id=self._rp_id,
            rp_name=self._rp_name,
            user_name=user_name or citizen_id,
            user_id=user_handle,
            user_display_name=display_name or user_name or citizen_id,
            challenge=challenge,
            timeout=int(CEREMONY_TTL.total_seconds() * 1000),
            authenticator_selection=AuthenticatorSelectionCriteria(
                resident_key=ResidentKeyRequirement.REQUIRED,
                user_verification=UserVerificationRequirement.REQUIRED,
            ),
            exclude_credentials=[_descriptor(row) for row in existing],
            supported_pub_key_algs=ALGORITHMS,
        )
        ceremony_id = self._begin("register", challenge, citizen_id=citizen_id, user_handle=user_handle)
        return ceremony_id, json.loads(options_to_json(options))

    def finish_registration(
        self,
        *,
        ceremony_id: str,
        credential: dict[str, Any],
        label: str = "",
        expected_citizen_id: str | None = None,
    ) -> PasskeyInfo:
        """Verify the ``create()`` response (§7.1, user verification required) and store the credential record
        for the citizen the ceremony was started for. With ``expected_citizen_id`` (a signed-in citizen adding a
        passkey), a ceremony started for anyone else is "ceremony-unknown"."""
        label = label.strip()
        if len(label) > MAX_LABEL:
            raise MalformedInput(
                f"A label has at most {MAX_LABEL} characters.", slug="passkey-label-too-long"
            )
        ceremony = self._claim(ceremony_id, "register", citizen_id=expected_citizen_id)
        verified = self._verify_registration(ceremony, credential)
        row = Passkey(
            id=secrets.token_urlsafe(16),
            citizen_id=ceremony.citizen_id or "",
            credential_id=bytes_to_base64url(verified.credential_id),
            user_handle=ceremony.user_handle or b"",
            public_key=verified.credential_public_key,
            sign_count=verified.sign_count,
            transports=_transports(credential),
            label=label,
            created_at=self._clock(),
        )
        return self._store(row)

    def _verify_registration(
        self, ceremony: WebauthnCeremony, credential: dict[str, Any]
    ) -> VerifiedRegistration:
        try:
            verified = verify_registration_response(
                credential=credential,
                expected_challenge=ceremony.challenge,
                expected_rp_id=self._rp_id,
                expected_origin=self._origin,
                require_user_verification=True,
                supported_pub_key_algs=ALGORITHMS,
            )
        except _BAD_RESPONSE as exc:
            raise _failure(
                exc, slug="passkey-registration-failed", what="The passkey was not accepted"
            ) from exc
        if not verified.user_verified:  # defence in depth; py_webauthn already refused it
            raise _uv_required()
        if len(verified.credential_id) > MAX_CREDENTIAL_ID:
            raise VerificationFailed("The credential id is too long.", slug="passkey-registration-failed")
        return verified

    # -- authentication (§5.1.4 get(), §7.2) -------------------------------------------------------------------

    def authentication_options(self, *, citizen_id: str | None = None) -> tuple[str, dict[str, Any]]:
        """Start a login: ceremony id and ``PublicKeyCredentialRequestOptionsJSON`` (§5.5). With no citizen the
        list of allowed credentials is empty, so the authenticator offers its discoverable passkeys (§5.5)."""
        rows = self._rows(citizen_id) if citizen_id else []
        challenge = secrets.token_bytes(32)
        options = generate_authentication_options(
            rp_id=self._rp_id,
            challenge=challenge,
            timeout=int(CEREMONY_TTL.total_seconds() * 1000),
            allow_credentials=[_descriptor(row) for row in rows],
            user_verification=UserVerificationRequirement.REQUIRED,
        )
        ceremony_id = self._begin("login", challenge, citizen_id=citizen_id)
        return ceremony_id, json.loads(options_to_json(options))

    def finish_authentication(self, *, ceremony_id: str, credential: dict[str, Any]) -> str:
        """Verify the ``get()`` response (§7.2, user verification required) and return the citizen id."""
        ceremony = self._claim(ceremony_id, "login")
        try:
            parsed = parse_authentication_credential_json(credential)
        except _BAD_RESPONSE as exc:
            raise _failure(exc, slug="passkey-authentication-failed", what="Unreadable assertion") from exc
        with Session(self._engine) as s:
            row = s.exec(
                select(Passkey).where(Passkey.credential_id == bytes_to_base64url(parsed.raw_id))
            ).first()
        if row is None:
            raise Unauthenticated("This passkey is not registered here.", slug="passkey-unknown")
        _check_account(ceremony, row, parsed)
        try:
            verified = verify_authentication_response(
                credential=parsed,
                expected_challenge=ceremony.challenge,
                expected_rp_id=self._rp_id,
                expected_origin=self._origin,
                credential_public_key=row.public_key,
                credential_current_sign_count=row.sign_count,
                require_user_verification=True,
            )
        except _BAD_RESPONSE as exc:
            raise _failure(exc, slug="passkey-authentication-failed", what="The login was refused") from exc
        self._record_use(row.id, verified.new_sign_count)
        return row.citizen_id

    # -- management ----------------------------------------------------------------------------------------------

    def list_passkeys(self, citizen_id: str) -> list[PasskeyInfo]:
        """The citizen's passkeys, oldest first."""
        return [_info(row) for row in self._rows(citizen_id)]

    def remove_passkey(self, citizen_id: str, passkey_id: str) -> None:
        """Remove one passkey. Raises ``NotFound`` ("passkey-not-found") unless it is this citizen's, and
        ``Conflict`` ("last-passkey") for the last one: recovery is a new in-person check at the counter."""
        with Session(self._writer) as s:
            rows = s.exec(select(Passkey).where(Passkey.citizen_id == citizen_id).with_for_update()).all()
            target = next((row for row in rows if row.id == passkey_id), None)
            if target is None:
                raise NotFound("You have no passkey with this id.", slug="passkey-not-found")
            if len(rows) == 1:
                raise Conflict(
                    "This is your last passkey; add another one first, or ask at the counter to start again.",
                    slug="last-passkey",
                )
            s.delete(target)
            s.commit()

    def remove_all(self, citizen_id: str) -> int:
        """Erase every passkey and pending ceremony of the citizen (right to erasure); returns how many passkeys."""
        with Session(self._writer) as s:
            gone = s.exec(delete(Passkey).where(col(Passkey.citizen_id) == citizen_id))
            s.exec(delete(WebauthnCeremony).where(col(WebauthnCeremony.citizen_id) == citizen_id))
            s.commit()
        return int(gone.rowcount)

    # -- storage -------------------------------------------------------------------------------------------------

    def _rows(self, citizen_id: str) -> list[Passkey]:
        with Session(self._engine) as s:
            query = select(Passkey).where(Passkey.citizen_id == citizen_id)
            return list(s.exec(query.order_by(col(Passkey.created_at), col(Passkey.id))).all())

    def _begin(
        self, purpose: str, challenge: bytes, *, citizen_id: str | None, user_handle: bytes | None = None
    ) -> str:
        now = self._clock()
        ceremony = WebauthnCeremony(
            id=secrets.token_urlsafe(24),
            purpose=purpose,
            challenge=challenge,
            citizen_id=citizen_id,
            user_handle=user_handle,
            expires_at=now + CEREMONY_TTL,
        )
        with Session(self._writer, expire_on_commit=False) as s:
            s.exec(delete(WebauthnCeremony).where(col(WebauthnCeremony.expires_at) < now - CEREMONY_TTL))
            s.add(ceremony)
            s.commit()
        return ceremony.id

    def _claim(self, ceremony_id: str, purpose: str, *, citizen_id: str | None = None) -> WebauthnCeremony:
        """Use the ceremony up (its challenge works once, §13.4.3) and return it."""
        now = self._clock()
        with Session(self._writer, expire_on_commit=False) as s:
            query = select(WebauthnCeremony).where(WebauthnCeremony.id == ceremony_id[:64])
            ceremony = s.exec(query.with_for_update()).first()
            if (
                ceremony is None
                or ceremony.purpose != purpose
                or citizen_id not in (None, ceremony.citizen_id)
            ):
                raise NotFound("No such passkey ceremony; start again.", slug="ceremony-unknown")
            if ceremony.used_at is not None:
                raise Conflict("This passkey ceremony was already used; start again.", slug="ceremony-used")
            if ceremony.expires_at <= now:  # sqlmodel's UTCDateTime reads back aware datetimes
                raise Conflict("This passkey ceremony has expired; start again.", slug="ceremony-expired")
            ceremony.used_at = now
            s.add(ceremony)
            s.commit()
        return ceremony

    def _store(self, row: Passkey) -> PasskeyInfo:
        exists = Conflict("This passkey is already registered.", slug="passkey-exists")
        with Session(self._writer, expire_on_commit=False) as s:
            taken = s.exec(select(Passkey.id).where(Passkey.credential_id == row.credential_id)).first()
            if taken is not None:  # §7.1: a credential id belongs to one account only
                raise exists
            s.add(row)
            try:
                s.commit()
            except IntegrityError as exc:  # a parallel registration of the same credential id won
                raise exists from exc
        return _info(row)

    def _record_use(self, passkey_id: str, new_count: int) -> None:
        """Store the new signature counter (§6.1.1, §7.2) unless a parallel login already went past it."""
        with Session(self._writer) as s:
            row = s.exec(select(Passkey).where(Passkey.id == passkey_id).with_for_update()).first()
            if row is None:
                raise Unauthenticated("This passkey was removed.", slug="passkey-unknown")
            if (new_count or row.sign_count) and new_count <= row.sign_count:
                raise VerificationFailed(
                    f"Signature counter {new_count} is not above {row.sign_count}: the passkey may be cloned.",
                    slug="passkey-authentication-failed",
                )
            row.sign_count = new_count
            row.last_used_at = self._clock()
            s.add(row)
            s.commit()


def _descriptor(row: Passkey) -> PublicKeyCredentialDescriptor:
    transports = [AuthenticatorTransport(t) for t in row.transports.split(",") if t]
    return PublicKeyCredentialDescriptor(
        id=base64url_to_bytes(row.credential_id), transports=transports or None
    )


def _check_citizen_id(citizen_id: str) -> None:
    if not citizen_id or len(citizen_id) > 64:
        raise MalformedInput("A citizen id has 1 to 64 characters.", slug="citizen-id-invalid")


def _check_account(ceremony: WebauthnCeremony, row: Passkey, parsed: AuthenticationCredential) -> None:
    """§7.2: the credential must be one the ceremony allowed, and the user handle must be its own."""
    handle = parsed.response.user_handle
    if ceremony.citizen_id is not None and row.citizen_id != ceremony.citizen_id:
        problem = "This passkey was not one of those asked for."
    elif handle is None and ceremony.citizen_id is None:
        problem = "A passkey login must return its user handle."
    elif handle is not None and not hmac.compare_digest(handle, row.user_handle):
        problem = "The user handle does not match the passkey."
    else:
        return
    raise VerificationFailed(problem, slug="passkey-authentication-failed")
