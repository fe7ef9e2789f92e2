"""SQL tables of the personal data space. Everything personal is sealed under the citizen's own data key."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, LargeBinary
from sqlmodel import Field, SQLModel


class Citizen(SQLModel, table=True):
    """A wallet holder. ``wrapped_key`` is the citizen's data key sealed under the service key; erasing it
    makes every vault item of this citizen undecryptable (crypto-shredding)."""

    __tablename__ = "wallet_citizen"
    id: str = Field(primary_key=True, max_length=64)
    status: str = Field(default="pending", max_length=16)  # pending (enrolling) | active | erased
    wrapped_key: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    created_at: datetime
    erased_at: datetime | None = None


class VaultItem(SQLModel, table=True):
    """One sealed item of a citizen's data space (a credential, a holder key, a receipt, a history entry)."""

    __tablename__ = "wallet_vault_item"
    id: str = Field(primary_key=True, max_length=64)
    citizen_id: str = Field(index=True, foreign_key="wallet_citizen.id", max_length=64)
    kind: str = Field(max_length=32, index=True)
    sealed: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    created_at: datetime = Field(index=True)


class PresentationRef(SQLModel, table=True):
    """A presentation parked for a reference QR (``IMI2:``): fetched once, within minutes, then gone."""

    __tablename__ = "wallet_presentation_ref"
    ref: str = Field(primary_key=True, max_length=64)
    citizen_id: str = Field(index=True, max_length=64)
    sealed: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    expires_at: datetime
    fetched_at: datetime | None = None
