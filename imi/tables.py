"""Every SQL table of every party, imported so that ``metadata`` is complete (Alembic and tests use it)."""

from __future__ import annotations

from sqlmodel import SQLModel

import issuer.tables
import kernel.accounts
import kernel.auth_tables
import kernel.keystore
import ledger.tables
import verifier.tables
import wallet_api.consent_tables
import wallet_api.tables

metadata = SQLModel.metadata
__all__ = ["issuer", "kernel", "ledger", "metadata", "verifier", "wallet_api"]
