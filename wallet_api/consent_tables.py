"""SQL tables of the consent API. Separate from the wire models (``wallet_api.consent_models``).

Times are epoch seconds (``BIGINT``): the same on SQLite and PostgreSQL, and compared without time zones. No
claim value is ever stored here: a consent keeps the *names* of the granted claims, the id of the vault item
that holds the credential, and the citizen's internal id, which no third party ever sees.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, Column, Index, Integer, UniqueConstraint, text
from sqlmodel import Field, SQLModel

# SQLite only auto-increments an ``INTEGER PRIMARY KEY``; PostgreSQL gets a 64-bit key.
BigId = BigInteger().with_variant(Integer(), "sqlite")


def _epoch(*, nullable: bool = False, index: bool = False) -> Any:  # noqa: ANN401 - a SQLModel field
    return Field(default=None, sa_column=Column(BigInteger, nullable=nullable, index=index))


class ConsentClient(SQLModel, table=True):
    """A third party registered by an admin; it authenticates with ``private_key_jwt`` (RFC 7523)."""

    __tablename__ = "consent_client"
    id: str = Field(primary_key=True, max_length=64)
    name: str = Field(max_length=200)
    organisation_code: str = Field(max_length=64, index=True)
    contact: str = Field(max_length=200)
    purposes: str  # JSON list of DPV purpose terms it may ask for
    jwks: str  # JSON {"keys": [...]}: public keys of its client assertions
    webhook_url: str | None = Field(default=None, max_length=500)
    created_at: int = _epoch()
    disabled_at: int | None = _epoch(nullable=True)


class ConsentClientAssertion(SQLModel, table=True):
    """A used client-assertion ``jti`` (RFC 7523 section 3, item 7): the primary key makes it single-use."""

    __tablename__ = "consent_client_assertion"
    key: str = Field(primary_key=True, max_length=64)  # SHA-256 hex of client_id 0x00 jti
    expires_at: int = _epoch(index=True)


class ConsentAccessToken(SQLModel, table=True):
    """A short-lived client access token; only its SHA-256 is kept."""

    __tablename__ = "consent_access_token"
    token_hash: str = Field(primary_key=True, max_length=64)
    client_id: str = Field(max_length=64, index=True)
    expires_at: int = _epoch(index=True)


class ConsentPurpose(SQLModel, table=True):
    """A DPV purpose in the registry, with its fair-use limits."""

    __tablename__ = "consent_purpose"
    term: str = Field(primary_key=True, max_length=120)
    label: str = Field(max_length=200)
    legal_basis: str = Field(max_length=120)
    max_validity_days: int
    max_frequency_count: int
    max_frequency_period: str = Field(max_length=8)
    max_retention_days: int
    active: bool = True
    updated_at: int = _epoch()


class Consent(SQLModel, table=True):
    """One consent from request to end; the columns of the current version are copied here for the hot path."""

    __tablename__ = "consent"
    __table_args__ = (Index("ix_consent_state_valid_until", "state", "valid_until"),)
    id: str = Field(primary_key=True, max_length=64)
    client_id: str = Field(max_length=64, index=True)
    citizen_id: str | None = Field(default=None, max_length=64, index=True)
    subject: str | None = Field(default=None, max_length=32)  # pairwise pseudonym, once bound
    state: str = Field(max_length=16)
    version: int = 0
    purpose: str = Field(max_length=120)
    terms: str  # JSON of consent_terms.Terms
    granted: str | None = None  # JSON list of item keys
    credential_item: str | None = Field(default=None, max_length=64)
    collection_method: str | None = Field(default=None, max_length=16)
    created_at: int = _epoch()
    request_expires_at: int = _epoch()
    given_at: int | None = _epoch(nullable=True)
    valid_until: int | None = _epoch(nullable=True)
    frequency_count: int | None = None
    window_start: int = _epoch()
    window_count: int = 0
    releases: int = 0
    event_seq: int = 0
    chain_head: str = Field(max_length=64)
    updated_at: int = _epoch()


class ConsentVersion(SQLModel, table=True):
    """One version of a given consent (a consent artefact) with its signed ISO/IEC TS 27560 receipt."""

    __tablename__ = "consent_version"
    consent_id: str = Field(primary_key=True, max_length=64)
    version: int = Field(primary_key=True)
    granted: str  # JSON list of item keys
    valid_until: int = _epoch()
    frequency_count: int
    receipt: str  # compact JWS
    event_id: int = _epoch()  # the given/narrowed event that anchors it
    created_at: int = _epoch()
    superseded_at: int | None = _epoch(nullable=True)


class ConsentEvent(SQLModel, table=True):
    """One link of a consent's event chain, with its anchor in the log (``log_seq``, ``salt``, ``object_hash``)."""

    __tablename__ = "consent_event"
    __table_args__ = (
        UniqueConstraint("consent_id", "seq", name="uq_consent_event_seq"),
        Index(
            "ix_consent_event_unnotified",
            "id",
            sqlite_where=text("notified = 0"),
            postgresql_where=text("notified = false"),
        ),
    )
    id: int | None = Field(default=None, sa_column=Column(BigId, primary_key=True, autoincrement=True))
    consent_id: str = Field(max_length=64, index=True)
    seq: int
    version: int
    kind: str = Field(max_length=16)
    actor: str = Field(max_length=200)
    at: int = _epoch()
    detail: str  # JSON; its SHA-256 is in the chained body
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)
    log_seq: int = _epoch()
    log_event_type: str = Field(max_length=64)
    salt: str = Field(max_length=64)
    object_hash: str = Field(max_length=64)
    notified: bool = False  # written to the citizen's access history


class ConsentWebhook(SQLModel, table=True):
    """Outbox of signed notifications to third parties, delivered with exponential backoff."""

    __tablename__ = "consent_webhook"
    __table_args__ = (
        Index(
            "ix_consent_webhook_due",
            "next_attempt_at",
            sqlite_where=text("delivered_at IS NULL AND failed_at IS NULL"),
            postgresql_where=text("delivered_at IS NULL AND failed_at IS NULL"),
        ),
    )
    id: int | None = Field(default=None, sa_column=Column(BigId, primary_key=True, autoincrement=True))
    client_id: str = Field(max_length=64, index=True)
    event_id: int = _epoch()
    url: str = Field(max_length=500)
    payload: str  # compact JWS
    attempts: int = 0
    next_attempt_at: int = _epoch()
    delivered_at: int | None = _epoch(nullable=True)
    failed_at: int | None = _epoch(nullable=True)
    last_error: str = Field(default="", max_length=200)
    created_at: int = _epoch()
