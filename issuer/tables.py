"""SQL tables of the issuer. Personal data only ever sealed (AES-256-GCM); lookups through keyed hashes."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, LargeBinary, UniqueConstraint
from sqlmodel import Field, SQLModel


class RealNameCheck(SQLModel, table=True):
    """The record of an in-person check. ``sealed`` holds the personal data; the rest is not personal."""

    __tablename__ = "real_name_check"
    id: str = Field(primary_key=True, max_length=64)
    kind: str = Field(max_length=16)
    result: str = Field(max_length=16)
    officer: str = Field(max_length=200)
    counter: str = Field(max_length=200)
    checked_at: datetime
    document_type: str = Field(max_length=64)
    document_lookup: str = Field(index=True, max_length=64)  # HMAC of the document number, for search
    document_masked: str = Field(max_length=32)
    sealed: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class IssuedCredential(SQLModel, table=True):
    """What the issuer remembers of a credential: never its claims, only ids, status slots and the anchor."""

    __tablename__ = "issued_credential"
    id: str = Field(primary_key=True, max_length=64)
    check_id: str | None = Field(default=None, index=True, foreign_key="real_name_check.id", max_length=64)
    credential_type: str = Field(max_length=64)
    format: str = Field(max_length=16)
    kid: str = Field(max_length=128)
    holder_thumbprint: str | None = Field(default=None, max_length=64)
    revocation_list: str = Field(max_length=32)
    revocation_index: int
    suspension_list: str = Field(max_length=32)
    suspension_index: int
    status: str = Field(default="active", max_length=16)
    object_hash: str = Field(max_length=64)
    log_salt: str = Field(max_length=64)
    receipt: str | None = None
    issued_at: datetime
    valid_until: datetime


class StatusList(SQLModel, table=True):
    """One Bitstring Status List; ``version`` bumps on every flip (the ETag)."""

    __tablename__ = "status_list"
    id: str = Field(primary_key=True, max_length=32)
    purpose: str = Field(max_length=16)
    size: int
    bits: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    allocated: int = 0
    version: int = 0
    updated_at: datetime


class StatusAllocation(SQLModel, table=True):
    """One row per used index: the unique key makes a duplicate index impossible, across processes too."""

    __tablename__ = "status_allocation"
    __table_args__ = (UniqueConstraint("list_id", "idx"),)
    id: int | None = Field(default=None, primary_key=True)
    list_id: str = Field(foreign_key="status_list.id", max_length=32)
    idx: int


class CredentialOffer(SQLModel, table=True):
    """An OpenID4VCI pre-authorized offer: code and PIN stored hashed; single use; limited PIN attempts."""

    __tablename__ = "credential_offer"
    id: str = Field(primary_key=True, max_length=64)
    code_hash: str = Field(unique=True, max_length=64)
    pin_hash: str = Field(max_length=64)
    check_id: str = Field(foreign_key="real_name_check.id", max_length=64)
    configuration_id: str = Field(max_length=64)
    valid_days: int
    expires_at: datetime
    attempts: int = 0
    redeemed_at: datetime | None = None
    token_hash: str | None = Field(default=None, unique=True, max_length=64)
    token_expires_at: datetime | None = None
    credential_id: str | None = Field(default=None, max_length=64)


class IssuerNonce(SQLModel, table=True):
    """``c_nonce`` values of the Nonce Endpoint; a nonce is consumed by the credential request that uses it."""

    __tablename__ = "issuer_nonce"
    value_hash: str = Field(primary_key=True, max_length=64)
    expires_at: datetime
    used_at: datetime | None = None


class IssuerAudit(SQLModel, table=True):
    """Audit trail of every issuer action (who, what, on which object), without personal data."""

    __tablename__ = "issuer_audit"
    id: int | None = Field(default=None, primary_key=True)
    at: datetime
    actor: str = Field(max_length=200)
    action: str = Field(max_length=64)
    target: str = Field(max_length=128)
    detail: str = ""
