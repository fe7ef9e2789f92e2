"""Granting and narrowing a consent: the two changes that make a new version with a signed consent receipt.

A grant binds the request to the citizen, picks a credential from the wallet that holds every granted claim
(an ``vc+sd-jwt`` of the requested type: a ``vc+jwt`` cannot disclose selectively, so it is never used), computes
the pairwise pseudonym, signs the ISO/IEC TS 27560 receipt (``consent_records``) and anchors ``SHA-256(receipt)``
in the log with the ``consent.given`` event. Narrowing (``consent_terms.narrow``) makes version ``n+1`` with
its own receipt and ``consent.narrowed`` event; version ``n`` is marked superseded, and the very next release
presents only what version ``n+1`` allows. Assisted consent at a counter is the same grant made through an
officer's terminal: the officer and any guardian are recorded in the event, the receipt says ``assisted``.

Errors: those of ``consent_terms`` and ``ConsentService``, plus ``Conflict(credential-missing)`` (no credential
in the wallet can answer) and ``VerificationFailed(credential-unsuitable)`` (the chosen one cannot).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Row, insert, update

from kernel.errors import Conflict, ImiError, VerificationFailed
from kernel.jose import decode_jws_unverified
from kernel.keystore import KeyPair
from wallet_api import consent_store as store
from wallet_api.consent_records import RECEIPT_TYP, Controller, ReceiptInput, receipt_claims
from wallet_api.consent_rules import Action, ConsentState, EventKind, pairwise_subject, transition
from wallet_api.consent_service import ConsentService, owned_by, unbound_or
from wallet_api.consent_tables import ConsentVersion
from wallet_api.consent_terms import Frequency, Grant, Terms, check_grant, claim_name, narrow
from wallet_api.consent_webhooks import ServiceKeys

_VERSION = ConsentVersion.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Assisted:
    """Consent given at a counter: the officer who assisted, and a guardian if one acted for the citizen."""

    officer: str
    guardian: str | None = None
    relationship: str | None = None

    def detail(self) -> dict[str, Any]:
        out: dict[str, Any] = {"officer": self.officer}
        if self.guardian:
            out["guardian"] = {"name": self.guardian, "relationship": self.relationship or ""}
        return out


@dataclass(frozen=True)
class _Context:
    """Everything read outside the write transaction (other sessions must not nest inside it)."""

    key: KeyPair
    now: int
    controller: Controller
    legal_basis: str


def _sha256(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()


class GrantService:
    def __init__(self, core: ConsentService) -> None:
        self._core = core

    def grant(
        self,
        consent_id: str,
        citizen_id: str,
        *,
        items: Collection[str],
        sensitive_confirmed: Collection[str],
        credential_id: str | None = None,
        assisted: Assisted | None = None,
    ) -> None:
        """Grant all, or the optional part, of a request (sensitive items each with their own toggle)."""
        core, allowed = self._core, unbound_or(citizen_id)
        row = core.peek(consent_id, allowed)
        terms = Terms.from_json(json.loads(row.terms))
        granted = check_grant(terms, items, sensitive_confirmed)
        item_id = self._pick_credential(citizen_id, terms, granted, credential_id)
        ctx = self._context(row.client_id, terms.purpose)
        with core.writer.begin() as conn:
            row = core.locked(conn, consent_id, allowed)
            late = core.expire_if_due(conn, row, ctx.key, ctx.now)
            if late is None:
                transition(store.state_of(row), Action.GRANT)
                confirmed = sorted(set(sensitive_confirmed))
                self._give(
                    conn, row, ctx=ctx, terms=terms, granted=granted, confirmed=confirmed, item_id=item_id,
                    citizen_id=citizen_id, assisted=assisted,
                )  # fmt: skip
        core.finish(late)

    def _give(
        self, conn: Connection, row: Row[Any], *, ctx: _Context, terms: Terms, granted: tuple[str, ...],
        confirmed: list[str], item_id: str, citizen_id: str, assisted: Assisted | None,
    ) -> None:  # fmt: skip
        core = self._core
        subject = pairwise_subject(core.pairwise_key, citizen_id, row.client_id)
        grant = Grant(granted, ctx.now + terms.validity_days * 86_400, terms.frequency)
        method = "assisted" if assisted else "wallet"
        receipt = self._receipt(
            row.id, 1, subject=subject, ctx=ctx, terms=terms, grant=grant, confirmed=confirmed,
            state=ConsentState.GIVEN, method=method,
        )  # fmt: skip
        detail = {
            "items": list(granted),
            "sensitive_confirmed": confirmed,
            "method": method,
            "receipt_sha256": _sha256(receipt).hex(),
            **(assisted.detail() if assisted else {}),
        }
        chain = store.Chain(row.id, 1, row.event_seq, row.chain_head)
        actor = f"officer:{assisted.officer}" if assisted else "citizen"
        event = store.record(
            conn, chain, EventKind.GIVEN, actor=actor, at=ctx.now, detail=detail, rng=core.rng,
            object_hash=_sha256(receipt),
        )  # fmt: skip
        _add_version(
            conn, row.id, version=1, grant=grant, receipt=receipt, event_id=event.event_id, now=ctx.now
        )
        store.save(
            conn, row.id, chain, citizen_id=citizen_id, subject=subject, state=ConsentState.GIVEN.value,
            version=1, granted=json.dumps(list(granted)), credential_item=item_id, collection_method=method,
            given_at=ctx.now, valid_until=grant.valid_until, frequency_count=grant.frequency.count,
            window_start=0, window_count=0, updated_at=ctx.now,
        )  # fmt: skip
        core.notify(conn, row, event, ConsentState.GIVEN, key=ctx.key, subject=subject)

    def narrow(
        self,
        consent_id: str,
        citizen_id: str,
        *,
        items: Collection[str] | None,
        valid_until: int | None,
        frequency_count: int | None,
    ) -> None:
        """Make a narrower version; the old one is superseded and the next release uses the new one."""
        core, allowed = self._core, owned_by(citizen_id)
        row = core.peek(consent_id, allowed)
        ctx = self._context(row.client_id, row.purpose)
        with core.writer.begin() as conn:
            row = core.locked(conn, consent_id, allowed)
            late = core.expire_if_due(conn, row, ctx.key, ctx.now)
            if late is None:
                state = store.state_of(row)
                transition(state, Action.NARROW)
                terms = Terms.from_json(json.loads(row.terms))
                period = terms.frequency.period
                current = Grant(
                    tuple(json.loads(row.granted)), row.valid_until, Frequency(row.frequency_count, period)
                )
                new = narrow(
                    terms, current, items=items, valid_until=valid_until, frequency_count=frequency_count,
                    now=ctx.now,
                )  # fmt: skip
                self._new_version(conn, row, ctx=ctx, terms=terms, new=new, state=state)
        core.finish(late)

    def _new_version(
        self, conn: Connection, row: Row[Any], *, ctx: _Context, terms: Terms, new: Grant, state: ConsentState
    ) -> None:
        core, version = self._core, row.version + 1
        confirmed = [k for k in new.items if (item := terms.item(k)) is not None and item.sensitive]
        method = row.collection_method or "wallet"
        receipt = self._receipt(
            row.id, version, subject=row.subject, ctx=ctx, terms=terms, grant=new, confirmed=confirmed,
            state=state, method=method,
        )  # fmt: skip
        detail = {
            "items": list(new.items),
            "valid_until": new.valid_until,
            "frequency_count": new.frequency.count,
            "supersedes": row.version,
            "receipt_sha256": _sha256(receipt).hex(),
        }
        chain = store.Chain(row.id, version, row.event_seq, row.chain_head)
        event = store.record(
            conn, chain, EventKind.NARROWED, actor="citizen", at=ctx.now, detail=detail, rng=core.rng,
            object_hash=_sha256(receipt),
        )  # fmt: skip
        conn.execute(
            update(_VERSION)
            .where(_VERSION.c.consent_id == row.id, _VERSION.c.version == row.version)
            .values(superseded_at=ctx.now)
        )
        _add_version(
            conn, row.id, version=version, grant=new, receipt=receipt, event_id=event.event_id, now=ctx.now
        )
        store.save(
            conn, row.id, chain, version=version, granted=json.dumps(list(new.items)),
            valid_until=new.valid_until, frequency_count=new.frequency.count, updated_at=ctx.now,
        )  # fmt: skip
        core.notify(conn, row, event, state, key=ctx.key, subject=row.subject)

    # -- helpers -------------------------------------------------------------------------------------------
    def _context(self, client_id: str, purpose: str) -> _Context:
        core = self._core
        client = core.clients.get(client_id)
        limits = core.purposes.get(purpose)
        return _Context(
            key=core.keys.active(),
            now=core.now(),
            controller=Controller(client.id, client.name, client.organisation_code, client.contact),
            legal_basis=limits.legal_basis if limits else "dpv:Consent",
        )

    def _receipt(
        self, consent_id: str, version: int, *, subject: str, ctx: _Context, terms: Terms, grant: Grant,
        confirmed: list[str], state: ConsentState, method: str,
    ) -> str:  # fmt: skip
        core = self._core
        data = ReceiptInput(
            issuer=core.issuer, consent_id=consent_id, version=version, subject=subject,
            controller=ctx.controller, terms=terms, legal_basis=ctx.legal_basis, granted=grant.items,
            sensitive_confirmed=confirmed, state=state, at=ctx.now, valid_until=grant.valid_until,
            frequency_count=grant.frequency.count, collection_method=method,
            withdrawal_url=f"{core.public_url}/wallet/me/consents/{consent_id}/withdraw",
        )  # fmt: skip
        return ServiceKeys.sign(ctx.key, receipt_claims(data), typ=RECEIPT_TYP)

    def _pick_credential(
        self, citizen_id: str, terms: Terms, granted: tuple[str, ...], chosen: str | None
    ) -> str:
        """A vc+sd-jwt credential of the requested type holding every granted claim (the chosen one if given)."""
        names = {claim_name(k) for k in granted}
        suitable = [
            item_id
            for item_id, item in self._core.vault.items(citizen_id, "credential")
            if item.get("format") == "vc+sd-jwt"
            and terms.credential_type in _types(str(item.get("credential", "")))
            and names <= set(item.get("claims", {}))
        ]
        if chosen is not None and chosen not in suitable:
            raise VerificationFailed(
                "That credential cannot answer this request.", slug="credential-unsuitable"
            )
        if not suitable:
            raise Conflict(
                "No credential in the wallet holds the requested claims.", slug="credential-missing"
            )
        return chosen or suitable[0]


def _add_version(
    conn: Connection, consent_id: str, *, version: int, grant: Grant, receipt: str, event_id: int, now: int
) -> None:
    conn.execute(
        insert(_VERSION).values(
            consent_id=consent_id, version=version, granted=json.dumps(list(grant.items)),
            valid_until=grant.valid_until, frequency_count=grant.frequency.count, receipt=receipt,
            event_id=event_id, created_at=now,
        )
    )  # fmt: skip


def _types(credential: str) -> list[str]:
    try:
        types = decode_jws_unverified(credential.split("~", 1)[0]).payload.get("type", [])
    except ImiError:
        return []
    return [str(t) for t in types] if isinstance(types, list) else [str(types)]
