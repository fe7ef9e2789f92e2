"""A fixed-window rate limiter kept in the database, so that every process on one database shares the counts.

Use it as a FastAPI dependency on the routes where guessing pays (sign-in, PIN entry, token endpoints)::

    @router.post("/token", dependencies=[Depends(RateLimit(10, 60, scope="oid4vci-token"))])

Each call counts one hit in the bucket ``(scope, client address, window)``, where the window is
``floor(now / per_seconds)``. Over ``limit`` hits in one window answer ``429`` problem+json
(``urn:imi:problem:rate-limited``) with ``Retry-After`` = seconds until the window ends. The count is one atomic
``INSERT ... ON CONFLICT DO UPDATE ... RETURNING`` (PostgreSQL, and SQLite >= 3.35 under ``BEGIN IMMEDIATE``), so
parallel requests on several processes can never let more than ``limit`` through in one window.

Privacy: the client address is stored only inside a SHA-256 bucket key together with the scope and the window,
and every row is deleted soon after its window ends (a purge runs every ``PURGE_EVERY`` hits per process).

The table lives outside ``SQLModel.metadata`` (it is created on first use, ``checkfirst``); the migration that
makes it part of the Alembic history is ``migrations/versions/0007_rate_limits.py``.

Fixed windows allow up to ``2 * limit`` hits around a window boundary; that is accepted here: the limits sit far
below what a guessing attack needs (a 6-digit PIN space is 10**6; each offer also locks after 5 wrong PINs).
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
import time
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from ipaddress import IPv4Network, IPv6Network, ip_address, ip_network
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import BigInteger, Column, Engine, Integer, MetaData, String, Table, delete
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import Pool

from kernel.db import writer
from kernel.errors import RateLimited
from kernel.problems import problem_response

log = logging.getLogger("imi.ratelimit")
TABLE_NAME = "rate_limit_window"
PURGE_EVERY = 512  # hits per process between two purges of finished windows

_META = MetaData()
RATE_LIMIT = Table(
    TABLE_NAME,
    _META,
    Column("bucket", String(64), primary_key=True),  # sha256(scope | client | window start), hex
    Column("hits", Integer, nullable=False),
    Column("expires_at", BigInteger, nullable=False, index=True),  # unix seconds: end of the window
)

_ready: weakref.WeakSet[Pool] = weakref.WeakSet()  # pools whose database has the table
_ready_lock = threading.Lock()


class RateLimitExceeded(RateLimited):
    """``429 rate-limited``; ``retry_after`` (seconds) becomes the ``Retry-After`` header once ``install`` ran."""

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail, slug="rate-limited", retry_after=retry_after)
        self.retry_after = retry_after


def ensure_table(engine: Engine) -> None:
    """Create the counter table if it does not exist (idempotent, safe when processes race to do it)."""
    pool = engine.pool
    if pool in _ready:
        return
    with _ready_lock:
        if pool in _ready:
            return
        try:
            _META.create_all(engine, checkfirst=True)
        except DBAPIError:  # another process created it between the check and the CREATE
            _META.create_all(engine, checkfirst=True)
        _ready.add(pool)


def client_address(request: Request) -> str:
    """The peer address of the connection. Behind a reverse proxy, run uvicorn with ``--proxy-headers`` and
    ``--forwarded-allow-ips`` so that this is the real client; a raw ``X-Forwarded-For`` is never trusted here."""
    return request.client.host if request.client else "unknown"


class FixedWindowLimiter:
    """Counts hits per ``(scope, client)`` in fixed windows of ``per_seconds``, in the database."""

    def __init__(
        self, engine: Engine, *, limit: int, per_seconds: int, clock: Callable[[], float] = time.time
    ) -> None:
        if limit < 1 or per_seconds < 1:
            raise ValueError("limit and per_seconds must be >= 1")
        self._engine = writer(engine)
        self.limit = limit
        self.per_seconds = per_seconds
        self._clock = clock

    def hit(self, scope: str, client: str) -> int:
        """Count one hit; return the seconds to wait (0 if the hit is within the limit)."""
        now = self._clock()
        window = int(now // self.per_seconds) * self.per_seconds
        end = window + self.per_seconds
        bucket = hashlib.sha256(f"{scope}\x00{client}\x00{window}".encode()).hexdigest()
        ensure_table(self._engine)
        dialect = self._engine.dialect.name
        insert = pg_insert if dialect == "postgresql" else sqlite_insert
        stmt = (
            insert(RATE_LIMIT)
            .values(bucket=bucket, hits=1, expires_at=end)
            .on_conflict_do_update(index_elements=["bucket"], set_={"hits": RATE_LIMIT.c.hits + 1})
            .returning(RATE_LIMIT.c.hits)
        )
        with self._engine.begin() as conn:
            hits = int(conn.execute(stmt).scalar_one())
        _maybe_purge(self._engine, now)
        if hits <= self.limit:
            return 0
        return max(1, math.ceil(end - now))

    def purge(self) -> int:
        """Delete every finished window; returns how many rows went."""
        ensure_table(self._engine)
        with self._engine.begin() as conn:
            return int(
                conn.execute(delete(RATE_LIMIT).where(RATE_LIMIT.c.expires_at <= self._clock())).rowcount
            )


_hits_since_purge = 0
_purge_lock = threading.Lock()


def _maybe_purge(engine: Engine, now: float) -> None:
    global _hits_since_purge  # noqa: PLW0603 - one counter per process
    with _purge_lock:
        _hits_since_purge += 1
        if _hits_since_purge < PURGE_EVERY:
            return
        _hits_since_purge = 0
    with engine.begin() as conn:
        conn.execute(delete(RATE_LIMIT).where(RATE_LIMIT.c.expires_at <= now))


@dataclass(frozen=True)
class Policy:
    """Deployment-wide switches, set by ``install``: limits on or off, and client networks never limited (the
    deployment's own egress, say: its wallet redeems offers at its issuer's token endpoint over HTTP)."""

    enabled: bool = True
    exempt: tuple[IPv4Network | IPv6Network, ...] = ()

    def exempts(self, address: str) -> bool:
        try:
            ip = ip_address(address)
        except ValueError:
            return False
        return any(ip in net for net in self.exempt)


DEFAULT_POLICY = Policy()


class RateLimit:
    """FastAPI dependency: ``Depends(RateLimit(limit, per_seconds, scope="wallet-login"))``.

    ``scope`` names the bucket; routes that share a scope share the count (say, both steps of a sign-in).
    Without a scope the route's path template is used. The engine is ``request.app.state.engine``; the
    deployment's ``Policy`` (``install``) may switch limits off or exempt networks.
    """

    def __init__(
        self,
        limit: int,
        per_seconds: int,
        scope: str | None = None,
        *,
        key: Callable[[Request], str] = client_address,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if limit < 1 or per_seconds < 1:
            raise ValueError("limit and per_seconds must be >= 1")
        self.limit = limit
        self.per_seconds = per_seconds
        self.scope = scope
        self._key = key
        self._clock = clock

    def __call__(self, request: Request) -> None:
        policy: Policy = getattr(request.app.state, "ratelimit_policy", DEFAULT_POLICY)
        client = self._key(request)
        if not policy.enabled or policy.exempts(client_address(request)):
            return
        engine: Engine = request.app.state.engine
        route = request.scope.get("route")
        scope = self.scope or str(getattr(route, "path", request.url.path))
        limiter = FixedWindowLimiter(
            engine, limit=self.limit, per_seconds=self.per_seconds, clock=self._clock
        )
        wait = limiter.hit(scope, client)
        if wait:
            raise RateLimitExceeded(
                f"Too many requests; at most {self.limit} every {self.per_seconds} s. Retry in {wait} s.",
                retry_after=wait,
            )


def _rate_limited(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RateLimitExceeded)
    response = problem_response(
        429, exc.slug, exc.title, exc.detail, request.url.path, retry_after=exc.retry_after
    )
    response.headers["Retry-After"] = str(exc.retry_after)
    return response


def install(app: FastAPI, *, enabled: bool = True, exempt: Iterable[str] = ()) -> None:
    """Answer ``RateLimitExceeded`` with its own ``Retry-After``, create the table now (not mid-request), and set
    the deployment's ``Policy``: ``enabled=False`` switches every limit off, ``exempt`` lists client networks
    (CIDR) that are never limited. Without ``install`` the generic ``ImiError`` handler still answers 429
    problem+json (with ``Retry-After: 1``). Calling it again only replaces the policy."""
    state: Any = app.state
    state.ratelimit_policy = Policy(enabled, tuple(ip_network(n, strict=False) for n in exempt))
    if getattr(state, "ratelimit_installed", False):
        return
    app.add_exception_handler(RateLimitExceeded, _rate_limited)
    engine = getattr(state, "engine", None)
    if isinstance(engine, Engine):
        try:
            ensure_table(engine)
        except DBAPIError:  # down at start: the first limited request tries again (503 until then)
            log.warning("rate limit table not checked: the database is not reachable")
    state.ratelimit_installed = True
