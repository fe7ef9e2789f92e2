"""The purpose registry: DPV purpose terms and their fair-use limits, managed by an admin.

A purpose is a W3C DPV 2.0 term (``dpv:CreditChecking``, ``dpv:IdentityVerification``, a sector extension term
such as ``dpv-health:...``) with a label, a legal basis (DPV, e.g. ``dpv:Consent``) and three limits in the
spirit of India's Account Aggregator fair-use templates: the longest validity of a consent, the highest release
frequency, and the longest time the recipient may keep the data. Limits are enforced when a request is filed
and again on every release (``wallet_api.consent_rules``); suspending a purpose stops every release under it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine, Row, insert, select, update

from kernel.db import writer
from wallet_api.consent_tables import ConsentPurpose
from wallet_api.consent_terms import Frequency, Period, PurposeLimits

_PURPOSE = ConsentPurpose.__table__  # type: ignore[attr-defined]


def limits_of(row: Row[Any]) -> PurposeLimits:
    return PurposeLimits(
        term=row.term,
        legal_basis=row.legal_basis,
        max_validity_days=row.max_validity_days,
        max_frequency=Frequency(row.max_frequency_count, Period(row.max_frequency_period)),
        max_retention_days=row.max_retention_days,
        active=bool(row.active),
    )


class PurposeRegistry:
    def __init__(self, engine: Engine, *, clock: Callable[[], float] = time.time) -> None:
        self._engine = engine
        self._writer = writer(engine)
        self._clock = clock

    def put(self, limits: PurposeLimits, *, label: str) -> dict[str, Any]:
        """Create or replace a purpose (an admin action)."""
        values = {
            "label": label,
            "legal_basis": limits.legal_basis,
            "max_validity_days": limits.max_validity_days,
            "max_frequency_count": limits.max_frequency.count,
            "max_frequency_period": limits.max_frequency.period.value,
            "max_retention_days": limits.max_retention_days,
            "active": limits.active,
            "updated_at": int(self._clock()),
        }
        with self._writer.begin() as conn:
            exists = conn.execute(select(_PURPOSE.c.term).where(_PURPOSE.c.term == limits.term)).first()
            if exists is None:
                conn.execute(insert(_PURPOSE).values(term=limits.term, **values))
            else:
                conn.execute(update(_PURPOSE).where(_PURPOSE.c.term == limits.term).values(**values))
        return self.describe(limits.term) or {}

    def get(self, term: str) -> PurposeLimits | None:
        with self._engine.connect() as conn:
            row = conn.execute(select(_PURPOSE).where(_PURPOSE.c.term == term[:120])).first()
        return None if row is None else limits_of(row)

    def describe(self, term: str) -> dict[str, Any] | None:
        with self._engine.connect() as conn:
            row = conn.execute(select(_PURPOSE).where(_PURPOSE.c.term == term[:120])).first()
        return None if row is None else _public(row)

    def all(self) -> list[dict[str, Any]]:
        with self._engine.connect() as conn:
            return [_public(r) for r in conn.execute(select(_PURPOSE).order_by(_PURPOSE.c.term))]


def _public(row: Row[Any]) -> dict[str, Any]:
    return {
        "term": row.term,
        "label": row.label,
        "legal_basis": row.legal_basis,
        "max_validity_days": row.max_validity_days,
        "max_frequency": {"count": row.max_frequency_count, "period": row.max_frequency_period},
        "max_retention_days": row.max_retention_days,
        "active": bool(row.active),
    }
