"""Signed notifications to third parties: the service key, its JWKS, an outbox and delivery with backoff.

Each transition of a consent puts one notification in the ``consent_webhook`` outbox, in the same transaction as
the transition (a transactional outbox: no transition without its notification, none for a rolled-back one).
The body is a compact JWS (``typ: imi-consent-event+jwt``, RFC 7515) signed with the wallet service key (KeyStore
purpose ``wallet``, ES256); third parties verify it with ``GET /consent/jwks.json`` (RFC 7517 JWK Set), the same
keys that sign consent receipts. It is POSTed as ``application/jwt`` to the URL the admin registered.

:meth:`Webhooks.deliver_due` sends what is due: a row is leased first (its next attempt moved forward by
``LEASE`` seconds with a compare-and-set) so several workers never send one row twice at once; a 2xx answer marks
it delivered; anything else schedules the next attempt after ``backoff(attempts)`` = 30 s, 60 s, 120 s, ...
capped at 6 h, and after ``MAX_ATTEMPTS`` attempts the row is marked failed (kept for the admin to see).
Delivery is at least once: receivers deduplicate on ``jti`` (``<consent id>.<event seq>``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Final

import httpx
from sqlalchemy import Connection, Engine, bindparam, insert, select, update

from kernel.jose import sign_jws
from kernel.keystore import KeyAlg, KeyPair, KeyStore
from wallet_api.consent_tables import ConsentWebhook

KEY_PURPOSE: Final = "wallet"
MAX_ATTEMPTS: Final = 10
BACKOFF_BASE: Final = 30
BACKOFF_CAP: Final = 6 * 3600
LEASE: Final = 60
_HOOK = ConsentWebhook.__table__  # type: ignore[attr-defined]


def backoff(attempts: int) -> int:
    """Seconds to wait after the ``attempts``-th failed attempt (exponential, capped)."""
    return int(min(BACKOFF_BASE * 2 ** max(0, attempts - 1), BACKOFF_CAP))


# Notifications due for an attempt, earliest first; built once (the worker asks every second).
_DUE = (
    select(_HOOK.c.id, _HOOK.c.url, _HOOK.c.payload, _HOOK.c.attempts, _HOOK.c.next_attempt_at)
    .where(
        _HOOK.c.delivered_at.is_(None),
        _HOOK.c.failed_at.is_(None),
        _HOOK.c.next_attempt_at <= bindparam("now"),
    )
    .order_by(_HOOK.c.next_attempt_at)
    .limit(bindparam("limit"))
)


class ServiceKeys:
    """The wallet service key that signs receipts and notifications; the active key is re-read every minute."""

    def __init__(
        self, keystore: KeyStore, *, clock: Callable[[], float] = time.monotonic, ttl: float = 60
    ) -> None:
        self._keystore = keystore
        self._clock = clock
        self._ttl = ttl
        self._lock = threading.Lock()
        self._cached: tuple[float, KeyPair] | None = None

    def active(self) -> KeyPair:
        """The active key (created on first use). Call it *before* opening a write transaction."""
        with self._lock:
            if self._cached is None or self._clock() - self._cached[0] > self._ttl:
                self._cached = (self._clock(), self._keystore.active(KEY_PURPOSE, KeyAlg.ES256))
            return self._cached[1]

    def peek(self) -> KeyPair | None:
        """The active key if it is cached and fresh, without touching the database (for the event loop)."""
        cached = self._cached
        return cached[1] if cached is not None and self._clock() - cached[0] <= self._ttl else None

    def jwks(self) -> dict[str, Any]:
        """Every key ever used for signing (retired ones verify what they signed): an RFC 7517 JWK Set."""
        self.active()
        return {"keys": [{**k.public_jwk, "use": "sig"} for k in self._keystore.all(KEY_PURPOSE)]}

    @staticmethod
    def sign(key: KeyPair, claims: Mapping[str, Any], *, typ: str) -> str:
        return sign_jws(claims, key.private_key, typ=typ, kid=key.kid)


def enqueue(conn: Connection, *, client_id: str, url: str, event_id: int, payload: str, now: int) -> None:
    """Put one signed notification in the outbox, inside the caller's transaction."""
    conn.execute(
        insert(_HOOK).values(
            client_id=client_id,
            event_id=event_id,
            url=url,
            payload=payload,
            attempts=0,
            next_attempt_at=now,
            created_at=now,
            last_error="",
        )
    )


class Webhooks:
    """Delivers the outbox."""

    def __init__(self, engine: Engine, *, clock: Callable[[], float] = time.time) -> None:
        self._engine = engine
        self._clock = clock

    def deliver_due(self, http: httpx.Client, now: int | None = None, *, limit: int = 100) -> int:
        """Send every notification due at ``now``; returns how many were delivered."""
        now = int(self._clock()) if now is None else now
        with self._engine.connect() as conn:
            due = conn.execute(_DUE, {"now": now, "limit": limit}).all()
        delivered = 0
        for row in due:
            if self._lease(row.id, row.next_attempt_at, now):
                delivered += self._attempt(http, row, now)
        return delivered

    def _lease(self, hook_id: int, expected: int, now: int) -> bool:
        with self._engine.begin() as conn:
            claimed = conn.execute(
                update(_HOOK)
                .where(
                    _HOOK.c.id == hook_id, _HOOK.c.next_attempt_at == expected, _HOOK.c.delivered_at.is_(None)
                )
                .values(next_attempt_at=now + LEASE)
            )
        return claimed.rowcount == 1

    def _attempt(self, http: httpx.Client, row: Any, now: int) -> int:  # noqa: ANN401 - a result row
        try:
            response = http.post(
                row.url,
                content=row.payload.encode(),
                headers={"Content-Type": "application/jwt", "X-IMI-Delivery": str(row.id)},
                timeout=10.0,
            )
            error = "" if 200 <= response.status_code < 300 else f"HTTP {response.status_code}"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}"
        attempts = row.attempts + 1
        values: dict[str, Any] = {"attempts": attempts, "last_error": error[:200]}
        if not error:
            values["delivered_at"] = now
        elif attempts >= MAX_ATTEMPTS:
            values["failed_at"] = now
        else:
            values["next_attempt_at"] = now + backoff(attempts)
        with self._engine.begin() as conn:
            conn.execute(update(_HOOK).where(_HOOK.c.id == row.id).values(**values))
        return 0 if error else 1

    def outbox(self, client_id: str, *, limit: int = 100) -> list[dict[str, Any]]:
        """The client's recent notifications and their delivery state (admin view)."""
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(_HOOK).where(_HOOK.c.client_id == client_id).order_by(_HOOK.c.id.desc()).limit(limit)
            ).all()
        return [{k: v for k, v in row._mapping.items() if k != "payload"} for row in rows]
