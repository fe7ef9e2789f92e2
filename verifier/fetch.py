"""Fetching remote documents (DID documents, status lists, JWKS): the verifier's one HTTP edge.

:class:`HttpFetcher` does plain GETs over an ``httpx.Client`` the caller owns (FastAPI's ``TestClient`` and
``httpx.MockTransport`` clients work too), with a timeout, a body ceiling and every network failure turned
into :class:`InfrastructureFailure`. :class:`CachingFetcher` wraps any :class:`Fetcher` with the basics of
an RFC 9111 private cache. :class:`DidWebResolver` resolves ``did:web`` through a fetcher.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any, Protocol

import httpx

from kernel.did import DEFAULT_INSECURE_HOSTS, DidResolver, did_web_to_url
from kernel.errors import InfrastructureFailure, MalformedInput, VerificationFailed
from kernel.jose import load_json_object

MAX_BODY_BYTES = 2 * 1024 * 1024
# RFC 9111 section 1.2.2: a delta-seconds value too large to represent is taken as 2^31.
_MAX_DELTA = 2**31
# RFC 5861 section 4: the statuses that count as an error for stale-if-error.
_ERROR_STATUSES = frozenset({500, 502, 503, 504})


@dataclass(frozen=True)
class Fetched:
    status: int
    body: bytes
    headers: Mapping[str, str]  # names in lower case


class Fetcher(Protocol):
    def get(self, url: str, headers: Mapping[str, str] | None = None) -> Fetched:
        """GET ``url``. Any HTTP status is returned; only a failure to get a response raises."""
        ...


def header(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive header lookup (works for plain dicts from any fetcher)."""
    name = name.lower()
    return next((value for key, value in headers.items() if key.lower() == name), None)


class HttpFetcher(Fetcher):
    """GET over ``client``: at most ``max_bytes`` of body, at most ``timeout`` seconds in all."""

    def __init__(
        self,
        client: httpx.Client,
        *,
        timeout: float = 10.0,
        max_bytes: int = MAX_BODY_BYTES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._timeout = timeout
        self._max_bytes = max_bytes
        self._clock = clock

    def _too_large(self, url: str) -> InfrastructureFailure:
        return InfrastructureFailure(f"{url} sent more than {self._max_bytes} bytes", slug="remote-too-large")

    def get(self, url: str, headers: Mapping[str, str] | None = None) -> Fetched:
        deadline = self._clock() + self._timeout
        try:
            with self._client.stream("GET", url, headers=dict(headers or {}), timeout=self._timeout) as resp:
                declared = resp.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > self._max_bytes:
                    raise self._too_large(url)
                body = bytearray()
                for chunk in resp.iter_bytes():
                    body += chunk
                    if len(body) > self._max_bytes:
                        raise self._too_large(url)
                    if self._clock() > deadline:
                        raise InfrastructureFailure(f"{url} is too slow", slug="remote-unreachable")
                names = {k.lower(): v for k, v in resp.headers.items()}
                return Fetched(resp.status_code, bytes(body), MappingProxyType(names))
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise InfrastructureFailure(
                f"{url} could not be fetched: {exc}", slug="remote-unreachable"
            ) from None


# ------------------------------------------------------------------------------------------------ cache


def _directives(value: str | None) -> dict[str, str | None]:
    """``Cache-Control`` directives (RFC 9111 section 5.2): lower-cased names, unquoted arguments."""
    found: dict[str, str | None] = {}
    for part in (value or "").split(","):
        name, sep, arg = part.strip().partition("=")
        name, arg = name.strip().lower(), arg.strip()
        if len(arg) >= 2 and arg[0] == arg[-1] == '"':
            arg = arg[1:-1]
        if name:
            found.setdefault(name, arg if sep else None)
    return found


def _delta_seconds(value: str | None) -> int | None:
    if value is None or not value.isascii() or not value.isdigit():
        return None
    return min(int(value), _MAX_DELTA)


@dataclass(frozen=True)
class _Entry:
    fetched: Fetched
    received_at: float  # clock value when the response (or its last 304) arrived
    initial_age: int  # its Age header
    lifetime: int  # freshness lifetime (max-age), 0 when it must be revalidated every time
    may_serve_stale: bool  # false under no-cache, must-revalidate, proxy-revalidate
    etag: str | None

    def staleness(self, now: float) -> float:
        """Seconds past the end of freshness (negative while fresh)."""
        return self.initial_age + max(0.0, now - self.received_at) - self.lifetime


@dataclass
class CacheStats:
    hits: int = 0  # answered from a fresh entry, without the origin
    misses: int = 0  # full responses from the origin
    revalidated: int = 0  # 304 Not Modified answers
    stale_served: int = 0  # stale entries served because the origin failed


class CachingFetcher(Fetcher):
    """RFC 9111 basics over another fetcher, for 200 responses.

    Fresh for ``max-age`` seconds (minus ``Age``); ``no-store`` is never kept; ``no-cache`` is kept but
    revalidated on every use. Stale entries with an ``ETag`` are revalidated with ``If-None-Match`` and
    a 304 refreshes them. When the origin is unreachable or answers 500/502/503/504, a stale entry is served
    for at most ``stale_if_error`` seconds past its freshness (RFC 5861), unless the response forbade it.
    Heuristic freshness, ``Expires``, ``Vary`` and ``Last-Modified`` are not used. At most ``max_entries``
    entries are kept, least recently used evicted first.
    """

    def __init__(
        self,
        inner: Fetcher,
        *,
        clock: Callable[[], float] = time.time,
        max_entries: int = 256,
        stale_if_error: float = 3600.0,
    ) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self._inner = inner
        self._clock = clock
        self._max_entries = max_entries
        self._stale_if_error = stale_if_error
        self._entries: OrderedDict[tuple[str, tuple[tuple[str, str], ...]], _Entry] = OrderedDict()
        self._lock = threading.Lock()
        self.stats = CacheStats()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, url: str, headers: Mapping[str, str] | None = None) -> Fetched:
        key = (url, tuple(sorted((k.lower(), v) for k, v in (headers or {}).items())))
        now = self._clock()
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
                if entry.staleness(now) < 0:
                    self.stats.hits += 1
                    return entry.fetched
        request = dict(headers or {})
        if entry is not None and entry.etag is not None:
            request["If-None-Match"] = entry.etag
        try:
            fetched = self._inner.get(url, request)
        except InfrastructureFailure:
            stale = self._stale_copy(entry, now)
            if stale is None:
                raise
            return stale
        if fetched.status in _ERROR_STATUSES:  # the origin failed: keep the entry, maybe serve it
            return self._stale_copy(entry, now) or fetched
        if fetched.status == 304 and entry is not None:
            self.stats.revalidated += 1
            merged = dict(entry.fetched.headers)
            merged.update((k.lower(), v) for k, v in fetched.headers.items() if k.lower() != "content-length")
            fetched = replace(entry.fetched, headers=MappingProxyType(merged))
        else:
            self.stats.misses += 1
        self._store(key, fetched, now)
        return fetched

    def _stale_copy(self, entry: _Entry | None, now: float) -> Fetched | None:
        if entry is None or not entry.may_serve_stale or entry.staleness(now) > self._stale_if_error:
            return None
        self.stats.stale_served += 1
        return entry.fetched

    def _store(self, key: tuple[str, tuple[tuple[str, str], ...]], fetched: Fetched, now: float) -> None:
        directives = _directives(header(fetched.headers, "cache-control"))
        with self._lock:
            if fetched.status != 200 or "no-store" in directives:
                self._entries.pop(key, None)
                return
            no_cache = "no-cache" in directives
            self._entries[key] = _Entry(
                fetched=fetched,
                received_at=now,
                initial_age=_delta_seconds(header(fetched.headers, "age")) or 0,
                lifetime=0 if no_cache else (_delta_seconds(directives.get("max-age")) or 0),
                may_serve_stale=not (no_cache or {"must-revalidate", "proxy-revalidate"} & directives.keys()),
                etag=header(fetched.headers, "etag"),
            )
            self._entries.move_to_end(key)
            while len(self._entries) > self._max_entries:
                self._entries.popitem(last=False)


# ------------------------------------------------------------------------------------------------ did:web


class DidWebResolver(DidResolver):
    """``did:web`` documents over a :class:`Fetcher` (usually a :class:`CachingFetcher`)."""

    def __init__(self, fetcher: Fetcher, *, insecure_hosts: frozenset[str] = DEFAULT_INSECURE_HOSTS) -> None:
        self._fetcher = fetcher
        self._insecure_hosts = insecure_hosts

    def resolve(self, did: str) -> dict[str, Any]:
        url = did_web_to_url(did, insecure_hosts=self._insecure_hosts)
        fetched = self._fetcher.get(url, {"Accept": "application/did+json, application/json"})
        if fetched.status >= 500:
            raise InfrastructureFailure(f"{url} answered {fetched.status}", slug="did-resolution-failed")
        if fetched.status != 200:
            raise VerificationFailed(f"{url} answered {fetched.status}", slug="did-resolution-failed")
        try:
            return load_json_object(fetched.body, slug="did-resolution-failed")
        except MalformedInput as exc:
            raise VerificationFailed(
                f"{url} is not a JSON object: {exc}", slug="did-resolution-failed"
            ) from None
