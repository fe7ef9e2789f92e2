"""Consent use cases that change state: file a request; refuse, pause, resume, withdraw; revoke; expire.
Grants and narrowing live in ``wallet_api.consent_grants``, reads in ``wallet_api.consent_queries``, releases in
``wallet_api.consent_release``; all of them use the transaction helpers of :class:`ConsentService`.

A third party files a request without knowing who will answer it; it gets an id and a link
(``<public url>/wallet/consents/<id>``, QR text ``imi-consent:<id>``) that the citizen opens in the wallet. The
first citizen to grant (or refuse) binds the consent to themselves; from then on only they see it, and the
third party knows them only as the pairwise pseudonym ``sub`` (``consent_rules.pairwise_subject``).

Every change is one write transaction that (1) re-reads the consent under lock, (2) applies the transition
table (``consent_rules.transition``), (3) appends the event to the consent's hash chain and its commitment to
the log (``consent_store.record``), (4) stores the new state and, on a grant or narrowing, a new version with
its signed ISO/IEC TS 27560 receipt, (5) puts the signed notification in the webhook outbox. Assisted consent
at a counter records the officer and any guardian in the event. The citizen's access history is written from
the events afterwards (``consent_worker``). Errors: those of ``consent_rules`` and ``consent_terms``, plus
``NotFound(consent-not-found)`` (also for other parties' consents, so that ids leak nothing) and
``Conflict(consent-expired)`` (the expiry is recorded first, then the call is refused).
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections.abc import Callable, Mapping
from typing import Any, Final

from sqlalchemy import Connection, Row, bindparam, insert, select

from kernel.errors import Conflict, ImiError, NotFound
from kernel.groupcommit import Writer
from kernel.keystore import KeyPair
from ledger.service import LogService
from wallet_api import consent_store as store
from wallet_api.consent_auth import ClientRegistry
from wallet_api.consent_records import WEBHOOK_TYP, webhook_claims
from wallet_api.consent_registry import PurposeRegistry
from wallet_api.consent_rules import (
    EVENT_OF,
    GENESIS,
    LIVE,
    Action,
    ConsentState,
    EventKind,
    canonical,
    transition,
)
from wallet_api.consent_tables import ConsentClient
from wallet_api.consent_terms import Terms, validate_request
from wallet_api.consent_webhooks import ServiceKeys, enqueue
from wallet_api.vault import Vault

REQUEST_TTL: Final = 7 * 86_400
_CLIENT = ConsentClient.__table__  # type: ignore[attr-defined]
_C = store.CONSENT.c
# Live consents past their end and requests nobody answered in time. Built once: the worker asks every second,
# and building the expression costs far more than running it on an idle table.
_DUE: Final = (
    select(_C.id)
    .where(
        (_C.state.in_([s.value for s in LIVE]) & (_C.valid_until <= bindparam("now")))
        | ((_C.state == ConsentState.REQUESTED.value) & (_C.request_expires_at <= bindparam("now")))
    )
    .limit(bindparam("limit"))
)
Allowed = Callable[[Row[Any]], bool]


class ConsentService:
    def __init__(
        self,
        writer: Writer,
        *,
        clients: ClientRegistry,
        purposes: PurposeRegistry,
        keys: ServiceKeys,
        vault: Vault,
        log: LogService,
        public_url: str,
        pairwise_key: bytes,
        clock: Callable[[], float] = time.time,
        rng: Callable[[int], bytes] = secrets.token_bytes,
    ) -> None:
        self.writer = writer
        self.clients = clients
        self.purposes = purposes
        self.keys = keys
        self.vault = vault
        self.log = log
        self.public_url = public_url.rstrip("/")
        self.issuer = self.public_url + "/consent"
        self.pairwise_key = pairwise_key
        self._clock = clock
        self.rng = rng

    def now(self) -> int:
        return int(self._clock())

    # -- the third party -----------------------------------------------------------------------------------
    def file_request(self, client_id: str, terms: Terms) -> str:
        """Validate ``terms`` against the purpose registry and store the request; returns the consent id."""
        client = self.clients.get(client_id)
        terms = validate_request(terms, self.purposes.get(terms.purpose), client_purposes=client.purposes)
        now, consent_id = self.now(), "cn_" + secrets.token_urlsafe(16)
        terms_json = terms.to_json()
        with self.writer.begin() as conn:
            conn.execute(
                insert(store.CONSENT).values(
                    id=consent_id, client_id=client_id, state=ConsentState.REQUESTED.value, version=0,
                    purpose=terms.purpose, terms=json.dumps(terms_json, ensure_ascii=False), created_at=now,
                    request_expires_at=now + REQUEST_TTL, window_start=0, window_count=0, releases=0,
                    event_seq=0, chain_head=GENESIS, updated_at=now,
                )
            )  # fmt: skip
            chain = store.Chain(consent_id, 0, 0, GENESIS)
            detail = {"terms_sha256": hashlib.sha256(canonical(terms_json)).hexdigest()}
            store.record(
                conn,
                chain,
                EventKind.REQUESTED,
                actor=f"client:{client_id}",
                at=now,
                detail=detail,
                rng=self.rng,
            )
            store.save(conn, consent_id, chain)
        self.log.wakeup.set()
        return consent_id

    def revoke(self, consent_id: str, *, client_id: str) -> None:
        """The third party gives up a request or a consent."""
        self.apply(
            consent_id, Action.REVOKE, allowed=lambda r: r.client_id == client_id, actor=f"client:{client_id}"
        )

    def revoke_all(self, client_id: str, *, actor: str) -> int:
        """Revoke every open consent of a client (the admin disabled it)."""
        with self.writer.engine.connect() as conn:
            ids = conn.execute(
                select(store.CONSENT.c.id).where(
                    store.CONSENT.c.client_id == client_id,
                    store.CONSENT.c.state.in_([s.value for s in (*LIVE, ConsentState.REQUESTED)]),
                )
            ).scalars().all()  # fmt: skip
        for consent_id in ids:
            self.apply(consent_id, Action.REVOKE, allowed=lambda r: True, actor=actor)
        return len(ids)

    # -- the citizen ---------------------------------------------------------------------------------------
    def refuse(self, consent_id: str, citizen_id: str) -> None:
        self.apply(
            consent_id,
            Action.REFUSE,
            allowed=unbound_or(citizen_id),
            actor="citizen",
            extra={"citizen_id": citizen_id},
        )

    def pause(self, consent_id: str, citizen_id: str) -> None:
        self.apply(consent_id, Action.PAUSE, allowed=owned_by(citizen_id), actor="citizen")

    def resume(self, consent_id: str, citizen_id: str) -> None:
        self.apply(consent_id, Action.RESUME, allowed=owned_by(citizen_id), actor="citizen")

    def withdraw(self, consent_id: str, citizen_id: str) -> None:
        """Withdraw in one call; the very next release is refused (no cache sits in front of the state)."""
        self.apply(consent_id, Action.WITHDRAW, allowed=owned_by(citizen_id), actor="citizen")

    # -- time ----------------------------------------------------------------------------------------------
    def expire_due(self, now: int | None = None, *, limit: int = 200) -> int:
        """Record ``expired`` for live consents past their end and requests nobody answered in time."""
        now = self.now() if now is None else now
        with self.writer.engine.connect() as conn:
            ids = conn.execute(_DUE, {"now": now, "limit": limit}).scalars().all()
        key = self.keys.active()
        for consent_id in ids:
            with self.writer.begin() as conn:
                row = store.load(conn, consent_id, lock=True)
                if row is not None:
                    self.expire_if_due(conn, row, key, now)
        self.log.wakeup.set()
        return len(ids)

    # -- helpers -------------------------------------------------------------------------------------------
    def apply(
        self,
        consent_id: str,
        action: Action,
        *,
        allowed: Allowed,
        actor: str,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        key, now = self.keys.active(), self.now()
        with self.writer.begin() as conn:
            row = self.locked(conn, consent_id, allowed)
            late = self.expire_if_due(conn, row, key, now)
            if late is None:
                new = transition(store.state_of(row), action)
                chain = store.Chain.of(row)
                event = store.record(
                    conn, chain, EVENT_OF[action], actor=actor, at=now, detail={}, rng=self.rng
                )
                store.save(conn, row.id, chain, state=new.value, updated_at=now, **(extra or {}))
                self.notify(conn, row, event, new, key=key, subject=row.subject)
        self.finish(late)

    def finish(self, late: ImiError | None) -> None:
        self.log.wakeup.set()
        if late is not None:
            raise late

    def expire_in(self, conn: Connection, row: Any, key: KeyPair, now: int, *, actor: str = "system") -> None:  # noqa: ANN401
        """Record the expiry of ``row`` inside ``conn`` (also used by releases)."""
        chain = store.Chain.of(row)
        event = store.record(conn, chain, EventKind.EXPIRED, actor=actor, at=now, detail={}, rng=self.rng)
        store.save(conn, row.id, chain, state=ConsentState.EXPIRED.value, updated_at=now)
        self.notify(conn, row, event, ConsentState.EXPIRED, key=key, subject=row.subject)

    def expire_if_due(self, conn: Connection, row: Row[Any], key: KeyPair, now: int) -> ImiError | None:
        state = store.state_of(row)
        due = (state in LIVE and row.valid_until is not None and now >= row.valid_until) or (
            state is ConsentState.REQUESTED and now >= row.request_expires_at
        )
        if not due:
            return None
        self.expire_in(conn, row, key, now)
        return Conflict("The consent (or the request) has expired.", slug="consent-expired")

    def notify(
        self,
        conn: Connection,
        row: Any,  # noqa: ANN401 - a consent row (SQLAlchemy Row or consent_fastsql.ReleaseRow)
        event: store.Recorded,
        state: ConsentState,
        *,
        key: KeyPair,
        subject: str | None,
    ) -> None:
        """Put the signed notification of ``event`` in the outbox, if the client registered a webhook."""
        url = conn.execute(
            select(_CLIENT.c.webhook_url).where(_CLIENT.c.id == row.client_id)
        ).scalar_one_or_none()
        if not url:
            return
        claims = webhook_claims(
            issuer=self.issuer, client_id=row.client_id, consent_id=row.id, version=event.version, seq=event.seq,
            kind=event.kind.value, state=state, at=event.at, event_hash=event.hash, subject=subject,
        )  # fmt: skip
        payload = ServiceKeys.sign(key, claims, typ=WEBHOOK_TYP)
        enqueue(
            conn, client_id=row.client_id, url=url, event_id=event.event_id, payload=payload, now=event.at
        )

    def peek(self, consent_id: str, allowed: Allowed) -> Row[Any]:
        with self.writer.engine.connect() as conn:
            row = store.load(conn, consent_id, lock=False)
        if row is None or not allowed(row):
            raise NotFound("No such consent.", slug="consent-not-found")
        return row

    @staticmethod
    def locked(conn: Connection, consent_id: str, allowed: Allowed) -> Row[Any]:
        row = store.load(conn, consent_id, lock=True)
        if row is None or not allowed(row):
            raise NotFound("No such consent.", slug="consent-not-found")
        return row


def owned_by(citizen_id: str) -> Allowed:
    return lambda row: row.citizen_id == citizen_id


def unbound_or(citizen_id: str) -> Allowed:
    return lambda row: row.citizen_id in (None, citizen_id)
