"""Citizens' login sessions: short-lived bearer tokens, stored only as their SHA-256.

A session starts after a passkey login (``PasskeyService.finish_authentication``) and ends at a fixed time
(default 15 minutes, no sliding renewal: NIST SP 800-63B-4 §2.3.3 / OWASP Session Management: an absolute
timeout), at logout, or when all of the citizen's sessions are revoked (erasure, lost device). The token is 32
random bytes; a dump of the table hands out no working token. Errors (``kernel.errors``)::

    Unauthenticated  session-invalid (unknown, malformed or revoked), session-expired
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import ColumnElement, Engine, delete, update
from sqlmodel import Session, col

from kernel.auth_tables import WalletSession
from kernel.db import writer
from kernel.errors import Unauthenticated

TOKEN_PREFIX = "imiw_"  # noqa: S105 - a prefix that secret scanners can match, not a secret
DEFAULT_TTL = timedelta(minutes=15)
_MAX_TOKEN = 200


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class SessionService:
    """Create, resolve and revoke citizens' sessions."""

    def __init__(
        self, engine: Engine, *, ttl: timedelta = DEFAULT_TTL, clock: Callable[[], datetime] = _utcnow
    ) -> None:
        self._engine = engine
        self._writer = writer(engine)
        self._ttl = ttl
        self._clock = clock

    @property
    def ttl(self) -> timedelta:
        return self._ttl

    def create(self, citizen_id: str) -> str:
        """Start a session for ``citizen_id``; returns the bearer token (the only time it exists in clear)."""
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        now = self._clock()
        row = WalletSession(
            token_hash=_hash(token), citizen_id=citizen_id, created_at=now, expires_at=now + self._ttl
        )
        with Session(self._writer) as s:
            s.add(row)
            s.commit()
        return token

    def resolve(self, token: str) -> str:
        """Return the citizen id of a live session. Raises ``Unauthenticated`` ("session-invalid" for an
        unknown, malformed or revoked token, "session-expired" after its fixed lifetime)."""
        if not token.startswith(TOKEN_PREFIX) or len(token) > _MAX_TOKEN:
            raise Unauthenticated("The session is not valid; sign in again.", slug="session-invalid")
        with Session(self._engine) as s:
            row = s.get(WalletSession, _hash(token))
        if row is None or row.revoked_at is not None:
            raise Unauthenticated("The session is not valid; sign in again.", slug="session-invalid")
        expires_at = row.expires_at if row.expires_at.tzinfo else row.expires_at.replace(tzinfo=UTC)
        if expires_at <= self._clock():
            raise Unauthenticated("The session has expired; sign in again.", slug="session-expired")
        return row.citizen_id

    def revoke(self, token: str) -> None:
        """End one session (logout). Unknown or already revoked tokens are ignored: logout is idempotent."""
        if len(token) > _MAX_TOKEN:
            return
        self._revoke(col(WalletSession.token_hash) == _hash(token))

    def revoke_all(self, citizen_id: str) -> int:
        """End every live session of the citizen (erasure, lost device); returns how many were live."""
        return self._revoke(col(WalletSession.citizen_id) == citizen_id)

    def purge_expired(self, *, grace: timedelta = timedelta(days=1)) -> int:
        """Delete sessions that expired more than ``grace`` ago (housekeeping); returns how many."""
        with Session(self._writer) as s:
            result = s.exec(
                delete(WalletSession).where(col(WalletSession.expires_at) < self._clock() - grace)
            )
            s.commit()
        return int(result.rowcount)

    def _revoke(self, condition: ColumnElement[bool]) -> int:
        now = self._clock()
        with Session(self._writer) as s:
            result = s.exec(
                update(WalletSession)
                .where(
                    condition, col(WalletSession.revoked_at).is_(None), col(WalletSession.expires_at) > now
                )
                .values(revoked_at=now)
            )
            s.commit()
        return int(result.rowcount)
