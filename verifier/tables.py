"""SQL tables of the verifier: OpenID4VP transactions, the replay cache, the verification record."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column
from sqlmodel import Field, SQLModel


class VpTransaction(SQLModel, table=True):
    """A kiosk's OpenID4VP request: its nonce works once; the result is read by the kiosk."""

    __tablename__ = "vp_transaction"
    id: str = Field(primary_key=True, max_length=64)
    verifier_id: str = Field(max_length=200)
    nonce: str = Field(max_length=64)
    state: str = Field(unique=True, max_length=64)
    dcql_query: str
    created_at: datetime
    expires_at: datetime
    status: str = Field(default="pending", max_length=16)  # pending | verified | failed | expired
    result: str | None = None  # the report as JSON (claims disclosed to this kiosk only)
    answered_at: datetime | None = None


class ReplayEntry(SQLModel, table=True):
    """Presentations already seen (the KB-JWT digest), until their freshness window has passed."""

    __tablename__ = "verifier_replay"
    key: str = Field(primary_key=True, max_length=64)
    expires_at: int = Field(sa_column=Column(BigInteger, nullable=False, index=True))


class VerificationEvent(SQLModel, table=True):
    """One verification: who verified, when, the outcome and which claims: never the claims' values."""

    __tablename__ = "verification_event"
    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(index=True)
    verifier_id: str = Field(max_length=200)
    channel: str = Field(max_length=16)  # scan | openid4vp | vc-api
    outcome: str = Field(max_length=16)  # verified | refused
    problem: str = Field(default="", max_length=64)
    credential_id: str | None = Field(default=None, index=True, max_length=64)
    claims: str = ""  # comma-separated claim names
