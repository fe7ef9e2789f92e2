"""Third-party clients: registration by an admin, and OAuth 2.0 client credentials with ``private_key_jwt``.

A client is registered with its name, organisation code, contact, the DPV purposes it may ask for, an optional
webhook URL, and the public keys (a JWK Set, P-256 or Ed25519 only) of its client assertions. It then obtains
access tokens at ``POST /consent/token`` (RFC 6749 section 4.4 client credentials grant) authenticating with a
JWT assertion (RFC 7523 section 2.2, ``client_assertion_type =
urn:ietf:params:oauth:client-assertion-type:jwt-bearer``; OpenID Connect Core section 9 ``private_key_jwt``).
RFC 7523 section 3 checks, in this order:

1. the JWS verifies under one of the client's registered keys, ``alg`` ES256 or EdDSA only (``kernel.jose``);
2. ``iss`` = ``sub`` = the client id, a client that exists and is not disabled;
3. ``aud`` names this token endpoint (its URL) or the consent service's issuer URL;
4. ``exp`` is in the future and at most 5 minutes ahead; ``iat``/``nbf``, if present, not in the future;
5. ``jti`` is new: a primary key over ``SHA-256(client_id 0x00 jti)`` makes it single-use (kept until ``exp``).

Access tokens are 32 random bytes, valid 5 minutes, kept only as their SHA-256. Errors (``kernel.errors``; the
OAuth ``error`` code rides along in the problem)::

    Unauthenticated  client-assertion-invalid (invalid_client), client-assertion-replayed, client-token-missing,
                     client-token-invalid, client-token-expired
    MalformedInput   grant-type-unsupported (unsupported_grant_type), client-jwks-invalid, webhook-url-invalid
    NotFound         client-not-found
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import Connection, Engine, Row, bindparam, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from kernel.errors import ImiError, MalformedInput, NotFound, Unauthenticated
from kernel.jose import PublicKey, decode_jws_unverified, public_key_from_jwk, verify_jws
from wallet_api.consent_tables import ConsentAccessToken, ConsentClient, ConsentClientAssertion

ASSERTION_TYPE: Final = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_MAX_LIFETIME: Final = 300
CLOCK_SKEW: Final = 30
TOKEN_TTL: Final = 300
TOKEN_PREFIX: Final = "imic_"  # noqa: S105 - a prefix, not a secret
MAX_KEYS: Final = 5
_CLIENT = ConsentClient.__table__  # type: ignore[attr-defined]
_TOKEN = ConsentAccessToken.__table__  # type: ignore[attr-defined]
_JTI = ConsentClientAssertion.__table__  # type: ignore[attr-defined]
_TOKEN_LOOKUP = (
    select(_TOKEN.c.client_id, _TOKEN.c.expires_at, _CLIENT.c.disabled_at)
    .join(_CLIENT, _CLIENT.c.id == _TOKEN.c.client_id)
    .where(_TOKEN.c.token_hash == bindparam("token_hash"))
)


@dataclass(frozen=True)
class ClientInfo:
    id: str
    name: str
    organisation_code: str
    contact: str
    purposes: frozenset[str]
    webhook_url: str | None
    disabled: bool
    jwks: dict[str, Any]

    @classmethod
    def of(cls, row: Row[Any]) -> ClientInfo:
        return cls(
            row.id,
            row.name,
            row.organisation_code,
            row.contact,
            frozenset(json.loads(row.purposes)),
            row.webhook_url,
            row.disabled_at is not None,
            json.loads(row.jwks),
        )

    def public(self) -> dict[str, Any]:
        data = {k: v for k, v in self.__dict__.items() if k != "purposes"}
        return {**data, "purposes": sorted(self.purposes)}


def _invalid(detail: str, slug: str = "client-assertion-invalid") -> Unauthenticated:
    return Unauthenticated(detail, slug=slug, error="invalid_client")


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _check_keys(jwks: Mapping[str, Any]) -> list[dict[str, Any]]:
    keys = jwks.get("keys") if isinstance(jwks, Mapping) else None
    if not isinstance(keys, list) or not 1 <= len(keys) <= MAX_KEYS:
        raise MalformedInput(f"jwks must hold 1 to {MAX_KEYS} keys.", slug="client-jwks-invalid")
    for key in keys:
        try:
            public_key_from_jwk(key)
        except ImiError as exc:
            raise MalformedInput(f"A key is not usable: {exc.detail}", slug="client-jwks-invalid") from None
    return [dict(k) for k in keys]


class ClientRegistry:
    """Registered clients, their assertions and access tokens."""

    def __init__(
        self, engine: Engine, *, token_endpoint: str, issuer: str, clock: Callable[[], float] = time.time
    ) -> None:
        self._engine = engine
        self.token_endpoint = token_endpoint
        self._audiences = frozenset({token_endpoint, issuer})
        self._clock = clock

    # -- administration ------------------------------------------------------------------------------------
    def register(
        self,
        *,
        name: str,
        organisation_code: str,
        contact: str,
        purposes: Collection[str],
        jwks: Mapping[str, Any],
        webhook_url: str | None,
    ) -> ClientInfo:
        if webhook_url is not None and not webhook_url.startswith(("https://", "http://")):
            raise MalformedInput("The webhook URL must be http(s).", slug="webhook-url-invalid")
        client_id = "cl_" + secrets.token_urlsafe(12)
        values = {
            "id": client_id,
            "name": name,
            "organisation_code": organisation_code,
            "contact": contact,
            "purposes": json.dumps(sorted(set(purposes))),
            "jwks": json.dumps({"keys": _check_keys(jwks)}),
            "webhook_url": webhook_url,
            "created_at": int(self._clock()),
        }
        with self._engine.begin() as conn:
            conn.execute(insert(_CLIENT).values(**values))
        return self.get(client_id)

    def get(self, client_id: str) -> ClientInfo:
        with self._engine.connect() as conn:
            row = conn.execute(select(_CLIENT).where(_CLIENT.c.id == client_id[:64])).first()
        if row is None:
            raise NotFound("No such client.", slug="client-not-found")
        return ClientInfo.of(row)

    def all(self) -> list[ClientInfo]:
        with self._engine.connect() as conn:
            return [ClientInfo.of(r) for r in conn.execute(select(_CLIENT).order_by(_CLIENT.c.created_at))]

    def disable(self, client_id: str) -> ClientInfo:
        """Stop the client: its tokens die at once (its consents are revoked by the consent service)."""
        self.get(client_id)
        with self._engine.begin() as conn:
            conn.execute(
                update(_CLIENT).where(_CLIENT.c.id == client_id).values(disabled_at=int(self._clock()))
            )
            conn.execute(delete(_TOKEN).where(_TOKEN.c.client_id == client_id))
        return self.get(client_id)

    # -- RFC 7523 token endpoint ---------------------------------------------------------------------------
    def issue_token(self, *, grant_type: str, assertion_type: str, assertion: str) -> tuple[str, int]:
        """Check a client assertion and return a fresh access token and its lifetime in seconds."""
        if grant_type != "client_credentials":
            raise MalformedInput(
                "Only client_credentials.", slug="grant-type-unsupported", error="unsupported_grant_type"
            )
        if assertion_type != ASSERTION_TYPE:
            raise _invalid("client_assertion_type must be the RFC 7523 jwt-bearer type.")
        now = int(self._clock())
        client_id, exp, jti = self._verify_assertion(assertion, now)
        self._use_jti(client_id, jti, exp, now)
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        with self._engine.begin() as conn:
            conn.execute(delete(_TOKEN).where(_TOKEN.c.expires_at < now))
            conn.execute(
                insert(_TOKEN).values(
                    token_hash=_digest(token), client_id=client_id, expires_at=now + TOKEN_TTL
                )
            )
        return token, TOKEN_TTL

    def _verify_assertion(self, assertion: str, now: int) -> tuple[str, int, str]:
        try:
            decoded = decode_jws_unverified(assertion)
        except ImiError as exc:
            raise _invalid(f"The client assertion is not a JWT: {exc.detail}") from None
        claims = decoded.payload
        client_id = claims.get("iss")
        if not isinstance(client_id, str) or claims.get("sub") != client_id:
            raise _invalid("iss and sub must both be the client id.")
        try:
            client = self.get(client_id)
        except NotFound:
            raise _invalid("Unknown client.") from None
        if client.disabled:
            raise _invalid("This client is disabled.")
        self._check_signature(assertion, decoded.header, client)
        return client_id, self._check_claims(claims, now), str(claims["jti"])

    @staticmethod
    def _check_signature(assertion: str, header: Mapping[str, Any], client: ClientInfo) -> None:
        kid = header.get("kid")
        keys: list[PublicKey] = [
            public_key_from_jwk(k) for k in client.jwks["keys"] if kid is None or k.get("kid") in (None, kid)
        ]
        for key in keys:
            try:
                verify_jws(assertion, key, expected_typ=None)
                return
            except ImiError:
                continue
        raise _invalid("The client assertion does not verify under the client's keys (ES256/EdDSA only).")

    def _check_claims(self, claims: Mapping[str, Any], now: int) -> int:
        aud = claims.get("aud")
        listed = aud if isinstance(aud, list) else [aud]
        audiences = {a for a in listed if isinstance(a, str)}
        if not audiences & self._audiences:
            raise _invalid(f"aud must be {self.token_endpoint}.")
        exp, jti = claims.get("exp"), claims.get("jti")
        if not isinstance(exp, int) or exp <= now:
            raise _invalid("The client assertion has expired (or has no exp).")
        if exp > now + ASSERTION_MAX_LIFETIME:
            raise _invalid(f"exp may be at most {ASSERTION_MAX_LIFETIME} s ahead.")
        for name in ("iat", "nbf"):
            value = claims.get(name)
            if value is not None and (not isinstance(value, int) or value > now + CLOCK_SKEW):
                raise _invalid(f"{name} is in the future.")
        if not isinstance(jti, str) or not 1 <= len(jti) <= 200:
            raise _invalid("jti is required.")
        return exp

    def _use_jti(self, client_id: str, jti: str, exp: int, now: int) -> None:
        try:
            with self._engine.begin() as conn:
                conn.execute(delete(_JTI).where(_JTI.c.expires_at < now))
                conn.execute(insert(_JTI).values(key=_digest(f"{client_id}\x00{jti}"), expires_at=exp))
        except IntegrityError:
            raise _invalid("This client assertion was already used.", "client-assertion-replayed") from None

    # -- access tokens -------------------------------------------------------------------------------------
    def authenticate(self, authorization: str | None) -> str:
        """The client id behind ``Authorization: Bearer <access token>`` (one indexed read)."""
        with self._engine.connect() as conn:
            return self.authenticate_in(conn, authorization, int(self._clock()))

    @staticmethod
    def authenticate_in(conn: Connection, authorization: str | None, now: int) -> str:
        """The same, inside the caller's transaction."""
        row = conn.execute(_TOKEN_LOOKUP, {"token_hash": bearer_hash(authorization)}).first()
        return check_token(None if row is None else (row.client_id, row.expires_at, row.disabled_at), now)


def bearer_hash(authorization: str | None) -> str:
    """SHA-256 (hex) of the access token in ``Authorization: Bearer <token>``; ``client-token-missing`` if none."""
    scheme, _, token = (authorization or "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthenticated("Send 'Authorization: Bearer <access token>'.", slug="client-token-missing")
    return _digest(token[:200])


def check_token(found: tuple[str, int, int | None] | None, now: int) -> str:
    """The client id of a stored token ``(client_id, expires_at, client disabled_at)``, if it is still good."""
    if found is None or found[2] is not None:
        raise Unauthenticated("The access token is not valid.", slug="client-token-invalid")
    if found[1] <= now:
        raise Unauthenticated("The access token has expired.", slug="client-token-expired")
    return str(found[0])
