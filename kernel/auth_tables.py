"""SQL tables of the citizens' passkey login: passkeys (WebAuthn credential records), ceremonies, sessions.

A passkey row is the "credential record" of W3C WebAuthn Level 3 §4 (Terminology) / §7.1 step 27: credential
id, COSE public key, signature counter, transports, plus the user handle it was created under. Ceremony rows hold
the one-time challenges (§13.4.3 Cryptographic Challenges), so that any API process can finish a ceremony that
another began. Session rows keep only the SHA-256 of the bearer token.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, LargeBinary
from sqlmodel import Field, SQLModel


class Passkey(SQLModel, table=True):
    """One WebAuthn credential of a citizen. ``credential_id`` is the base64url of the raw credential id."""

    __tablename__ = "wallet_passkey"
    id: str = Field(primary_key=True, max_length=64)
    citizen_id: str = Field(index=True, max_length=64)
    credential_id: str = Field(unique=True, max_length=1400)  # <= 1023 bytes raw (§7.1), base64url
    user_handle: bytes = Field(sa_column=Column(LargeBinary, nullable=False))  # user.id it was created under
    public_key: bytes = Field(sa_column=Column(LargeBinary, nullable=False))  # COSE_Key
    sign_count: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))  # 32-bit unsigned
    transports: str = Field(default="", max_length=200)  # comma-separated AuthenticatorTransport values
    label: str = Field(default="", max_length=100)
    created_at: datetime
    last_used_at: datetime | None = None


class WebauthnCeremony(SQLModel, table=True):
    """A pending registration or authentication ceremony: its challenge works once, until ``expires_at``."""

    __tablename__ = "wallet_webauthn_ceremony"
    id: str = Field(primary_key=True, max_length=64)
    purpose: str = Field(max_length=16)  # register | login
    challenge: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    citizen_id: str | None = Field(default=None, max_length=64)
    user_handle: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    expires_at: datetime = Field(index=True)
    used_at: datetime | None = None


class WalletSession(SQLModel, table=True):
    """A citizen's short-lived login session; the token itself is never stored, only its SHA-256 (hex)."""

    __tablename__ = "wallet_session"
    token_hash: str = Field(primary_key=True, max_length=64)
    citizen_id: str = Field(index=True, max_length=64)
    created_at: datetime
    expires_at: datetime = Field(index=True)
    revoked_at: datetime | None = None
