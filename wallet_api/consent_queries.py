"""Reads of the consent API: views for the third party and the citizen, receipts with anchors, the event chain.

A third party sees its own consents only, with the citizen as the pairwise ``sub``; the citizen sees their own
consents and any unanswered request whose link they hold (ids are 128-bit random, the link is the capability).
Anything else answers ``NotFound(consent-not-found)``, exactly like an id that does not exist.

The event chain is served with each event's chained body (``consent_rules.event_body``), so that anyone holding
it recomputes every link (``consent_rules.verify_chain``); the citizen also gets each event's details, actor and
anchor salt, and checks the anchor with ``ledger.receipt.verify_receipt``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Final

from sqlalchemy import Engine, Row, select

from kernel.errors import NotFound
from ledger.service import LogService
from wallet_api import consent_store as store
from wallet_api.consent_auth import ClientRegistry
from wallet_api.consent_rules import EventKind, event_body
from wallet_api.consent_tables import ConsentVersion
from wallet_api.consent_terms import Terms

LINK_SCHEME: Final = "imi-consent:"
_VERSION = ConsentVersion.__table__  # type: ignore[attr-defined]
Allowed = Callable[[Row[Any]], bool]


def client_may(client_id: str) -> Allowed:
    return lambda row: row.client_id == client_id


def citizen_may(citizen_id: str) -> Allowed:
    return lambda row: row.citizen_id in (None, citizen_id)


class ConsentQueries:
    def __init__(self, engine: Engine, *, clients: ClientRegistry, log: LogService, public_url: str) -> None:
        self._engine = engine
        self._clients = clients
        self._log = log
        self.public_url = public_url.rstrip("/")

    def links(self, consent_id: str) -> dict[str, str]:
        """Where the citizen's wallet opens a request: a link and the QR text."""
        return {
            "link": f"{self.public_url}/wallet/consents/{consent_id}",
            "qr_text": LINK_SCHEME + consent_id,
        }

    def get(self, consent_id: str, allowed: Allowed, *, for_citizen: bool) -> dict[str, Any]:
        with self._engine.connect() as conn:
            row = store.load(conn, consent_id, lock=False)
        if row is None or not allowed(row):
            raise NotFound("No such consent.", slug="consent-not-found")
        return self._view(row, for_citizen=for_citizen)

    def for_client(
        self, client_id: str, *, state: str | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        c = store.CONSENT.c
        query = select(store.CONSENT).where(c.client_id == client_id)
        if state:
            query = query.where(c.state == state)
        with self._engine.connect() as conn:
            rows = conn.execute(query.order_by(c.created_at.desc()).limit(limit)).all()
        return [self._view(r, for_citizen=False) for r in rows]

    def for_citizen(self, citizen_id: str, *, limit: int = 200) -> list[dict[str, Any]]:
        c = store.CONSENT.c
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(store.CONSENT)
                .where(c.citizen_id == citizen_id)
                .order_by(c.created_at.desc())
                .limit(limit)
            ).all()
        return [self._view(r, for_citizen=True) for r in rows]

    def _view(self, row: Row[Any], *, for_citizen: bool) -> dict[str, Any]:
        terms = Terms.from_json(json.loads(row.terms))
        granted = json.loads(row.granted) if row.granted else []
        view: dict[str, Any] = {
            "id": row.id,
            "state": row.state,
            "version": row.version,
            "purpose": terms.purpose,
            "items": [{**i.__dict__, "granted": i.key in granted} for i in terms.items],
            "granted": granted,
            "recipients": list(terms.recipients),
            "validity_days": terms.validity_days,
            "frequency": {
                "count": row.frequency_count or terms.frequency.count,
                "period": terms.frequency.period,
            },
            "retention_days": terms.retention_days,
            "one_time": terms.one_time,
            "credential_type": terms.credential_type,
            "notice": terms.notice,
            "created_at": row.created_at,
            "request_expires_at": row.request_expires_at,
            "given_at": row.given_at,
            "valid_until": row.valid_until,
            "releases": row.releases,
            "collection_method": row.collection_method,
            **self.links(row.id),
        }
        if for_citizen:
            client = self._clients.get(row.client_id)
            view["client"] = {
                "name": client.name,
                "organisation_code": client.organisation_code,
                "contact": client.contact,
            }
            view["credential_id"] = row.credential_item
        else:
            view["sub"] = row.subject
        return view

    def receipt(
        self, consent_id: str, allowed: Allowed, *, version: int | None = None, wait: float = 10.0
    ) -> dict[str, Any]:
        """A version's signed receipt and its anchor receipt (waiting up to ``wait`` s for the log)."""
        with self._engine.connect() as conn:
            row = store.load(conn, consent_id, lock=False)
            if row is None or not allowed(row):
                raise NotFound("No such consent.", slug="consent-not-found")
            wanted = row.version if version is None else version
            stored = conn.execute(
                select(_VERSION).where(_VERSION.c.consent_id == row.id, _VERSION.c.version == wanted)
            ).first()
            event = store.event_row(conn, stored.event_id) if stored is not None else None
        if stored is None or event is None:
            raise NotFound("This consent has no receipt of that version.", slug="consent-receipt-not-found")
        pending = store.pending_of(event)
        anchor = (
            self._log.wait_receipts([pending], timeout=wait)[0] if wait > 0 else self._log.receipt(pending)
        )
        return {
            "consent_id": row.id,
            "version": wanted,
            "superseded": stored.superseded_at is not None,
            "receipt": stored.receipt,
            "anchor": anchor.model_dump() if anchor is not None else None,
        }

    def events(self, consent_id: str, allowed: Allowed, *, for_citizen: bool) -> list[dict[str, Any]]:
        """The consent's event chain, oldest first."""
        with self._engine.connect() as conn:
            row = store.load(conn, consent_id, lock=False)
            if row is None or not allowed(row):
                raise NotFound("No such consent.", slug="consent-not-found")
            rows = store.events_of(conn, row.id)
        return [_event(e, for_citizen=for_citizen) for e in rows]


def _event(row: Row[Any], *, for_citizen: bool) -> dict[str, Any]:
    detail = json.loads(row.detail)
    body = event_body(
        consent_id=row.consent_id,
        seq=row.seq,
        version=row.version,
        kind=EventKind(row.kind),
        at=row.at,
        detail=detail,
    )
    out: dict[str, Any] = {
        "body": body,
        "prev_hash": row.prev_hash,
        "hash": row.hash,
        "log_event_type": row.log_event_type,
        "object_hash": row.object_hash,
    }
    if for_citizen:
        out.update(detail=detail, actor=row.actor, salt=row.salt)
    return out
