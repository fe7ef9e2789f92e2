"""verifier.fetch: the HTTP edge (size, errors), the RFC 9111 cache with a fake clock, did:web resolution."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi.testclient import TestClient

from kernel.did import resolve_key
from kernel.did_document import did_document
from kernel.errors import ImiError, InfrastructureFailure, VerificationFailed
from kernel.jose import public_jwk_dict, public_key_from_jwk
from verifier.fetch import MAX_BODY_BYTES, CachingFetcher, DidWebResolver, Fetched, HttpFetcher

URL = "https://origin.example/doc.json"
Reply = Callable[[httpx.Request], httpx.Response]


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Origin:
    """A MockTransport handler that answers with ``reply`` and records every request it sees."""

    def __init__(self, reply: Reply) -> None:
        self.reply = reply
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.reply(request)

    def statuses(self) -> list[int]:
        return [self.reply(r).status_code for r in self.requests]


def _fetcher(origin: Origin, **kwargs: Any) -> HttpFetcher:
    return HttpFetcher(httpx.Client(transport=httpx.MockTransport(origin)), **kwargs)


def _cached(origin: Origin, clock: Clock, **kwargs: Any) -> CachingFetcher:
    return CachingFetcher(_fetcher(origin), clock=clock, **kwargs)


def _ok(body: bytes = b"{}", headers: dict[str, str] | None = None) -> Reply:
    return lambda _request: httpx.Response(200, content=body, headers=headers)


def _etag_origin(etag: str, cache_control: str, body: bytes = b"v1") -> Reply:
    def reply(request: httpx.Request) -> httpx.Response:
        if request.headers.get("if-none-match") == etag:
            return httpx.Response(304, headers={"ETag": etag, "Cache-Control": cache_control})
        return httpx.Response(200, content=body, headers={"ETag": etag, "Cache-Control": cache_control})

    return reply


def _down(_request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("connection refused")


def _slug(exc: pytest.ExceptionInfo[ImiError]) -> str:
    return exc.value.slug


# -------------------------------------------------------------------------------------------- HttpFetcher


def test_http_fetcher_returns_any_status_with_lower_case_headers() -> None:
    origin = Origin(lambda r: httpx.Response(404, content=b"gone", headers={"X-Thing": "1"}))
    fetched = _fetcher(origin).get(URL, {"Accept": "application/json"})
    assert (fetched.status, fetched.body, fetched.headers["x-thing"]) == (404, b"gone", "1")
    assert origin.requests[0].headers["accept"] == "application/json"
    with pytest.raises(TypeError):
        fetched.headers["x-thing"] = "2"  # type: ignore[index]


def test_http_fetcher_body_limit() -> None:
    exact = Origin(_ok(b"x" * MAX_BODY_BYTES))
    assert len(_fetcher(exact).get(URL).body) == MAX_BODY_BYTES
    for reply in (
        _ok(b"x" * (MAX_BODY_BYTES + 1)),  # declared by Content-Length
        lambda r: httpx.Response(200, content=iter([b"x" * 1024] * (MAX_BODY_BYTES // 1024 + 1))),  # streamed
    ):
        with pytest.raises(InfrastructureFailure) as exc:
            _fetcher(Origin(reply)).get(URL)
        assert _slug(exc) == "remote-too-large"


def test_http_fetcher_network_errors() -> None:
    def timeout(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    for handler in (_down, timeout):
        with pytest.raises(InfrastructureFailure) as exc:
            _fetcher(Origin(handler)).get(URL)
        assert _slug(exc) == "remote-unreachable"


def test_http_fetcher_total_deadline() -> None:
    ticks = iter(range(0, 1000, 4))
    slow = Origin(lambda r: httpx.Response(200, content=iter([b"x"] * 10)))
    with pytest.raises(InfrastructureFailure) as exc:
        _fetcher(slow, timeout=10.0, clock=lambda: float(next(ticks))).get(URL)
    assert _slug(exc) == "remote-unreachable"


# ------------------------------------------------------------------------------------------ CachingFetcher


def test_max_age_is_respected() -> None:
    origin, clock = Origin(_ok(b"doc", {"Cache-Control": "public, max-age=60"})), Clock()
    cache = _cached(origin, clock)
    assert cache.get(URL).body == b"doc"
    clock.now += 59
    assert cache.get(URL).body == b"doc"
    assert len(origin.requests) == 1
    assert cache.stats.hits == 1
    clock.now += 1
    cache.get(URL)
    assert len(origin.requests) == 2


def test_age_header_shortens_freshness() -> None:
    origin, clock = Origin(_ok(headers={"Cache-Control": "max-age=60", "Age": "50"})), Clock()
    cache = _cached(origin, clock)
    cache.get(URL)
    clock.now += 9
    cache.get(URL)
    clock.now += 1
    cache.get(URL)
    assert len(origin.requests) == 2


def test_etag_revalidation_with_304() -> None:
    origin, clock = Origin(_etag_origin('"v1"', "max-age=10")), Clock()
    cache = _cached(origin, clock)
    assert cache.get(URL).body == b"v1"
    clock.now += 11
    again = cache.get(URL)
    assert (again.status, again.body) == (200, b"v1")
    assert origin.requests[1].headers["if-none-match"] == '"v1"'
    assert origin.statuses() == [200, 304]
    assert cache.stats.revalidated == 1
    clock.now += 9  # the 304 made the entry fresh again
    cache.get(URL)
    assert len(origin.requests) == 2


def test_changed_etag_replaces_the_entry() -> None:
    origin, clock = Origin(_etag_origin('"v1"', "max-age=10")), Clock()
    cache = _cached(origin, clock)
    cache.get(URL)
    origin.reply = _etag_origin('"v2"', "max-age=10", body=b"v2")
    clock.now += 11
    assert cache.get(URL).body == b"v2"
    assert origin.statuses() == [200, 200]


def test_no_store_is_not_cached() -> None:
    origin, clock = Origin(_ok(b"a", {"Cache-Control": "max-age=60"})), Clock()
    cache = _cached(origin, clock)
    cache.get(URL)
    clock.now += 61
    origin.reply = _ok(b"b", {"Cache-Control": "no-store", "ETag": '"b"'})
    assert cache.get(URL).body == b"b"
    assert cache.get(URL).body == b"b"
    assert len(origin.requests) == 3
    assert len(cache) == 0
    assert "if-none-match" not in origin.requests[2].headers


def test_no_cache_revalidates_every_time_and_is_never_served_stale() -> None:
    origin, clock = Origin(_etag_origin('"v1"', "no-cache, max-age=600")), Clock()
    cache = _cached(origin, clock)
    for _ in range(3):
        assert cache.get(URL).body == b"v1"
    assert origin.statuses() == [200, 304, 304]
    origin.reply = _down
    with pytest.raises(InfrastructureFailure):
        cache.get(URL)


def test_no_freshness_information_means_revalidate() -> None:
    origin, clock = Origin(_etag_origin('"x"', "")), Clock()
    cache = _cached(origin, clock)
    cache.get(URL)
    cache.get(URL)
    assert origin.statuses() == [200, 304]


def test_stale_if_error() -> None:
    origin, clock = Origin(_ok(b"doc", {"Cache-Control": "max-age=10"})), Clock()
    cache = _cached(origin, clock, stale_if_error=100)
    cache.get(URL)
    origin.reply = _down
    clock.now += 10 + 100  # stale for exactly stale_if_error seconds: still usable
    assert cache.get(URL).body == b"doc"
    origin.reply = lambda r: httpx.Response(503)
    assert cache.get(URL).body == b"doc"
    assert cache.stats.stale_served == 2
    clock.now += 1
    assert cache.get(URL).status == 503
    origin.reply = _down
    with pytest.raises(InfrastructureFailure) as exc:
        cache.get(URL)
    assert _slug(exc) == "remote-unreachable"


def test_must_revalidate_forbids_stale() -> None:
    origin, clock = Origin(_ok(headers={"Cache-Control": "max-age=10, must-revalidate"})), Clock()
    cache = _cached(origin, clock)
    cache.get(URL)
    origin.reply = _down
    clock.now += 11
    with pytest.raises(InfrastructureFailure):
        cache.get(URL)


def test_not_found_drops_the_entry() -> None:
    origin, clock = Origin(_ok(headers={"Cache-Control": "max-age=10"})), Clock()
    cache = _cached(origin, clock)
    cache.get(URL)
    clock.now += 11
    origin.reply = lambda r: httpx.Response(404)
    assert cache.get(URL).status == 404
    assert len(cache) == 0


def test_lru_bound_and_header_keys() -> None:
    origin, clock = Origin(_ok(headers={"Cache-Control": "max-age=60"})), Clock()
    cache = _cached(origin, clock, max_entries=2)
    for url in ("https://a.example/", "https://b.example/", "https://a.example/", "https://c.example/"):
        cache.get(url)
    assert len(cache) == 2
    cache.get("https://a.example/")  # kept: recently used
    cache.get("https://b.example/")  # evicted: fetched again
    assert [r.url.host for r in origin.requests] == ["a.example", "b.example", "c.example", "b.example"]
    cache.get("https://b.example/", {"Accept": "text/plain"})  # other request headers, other entry
    assert len(origin.requests) == 5


def test_caching_fetcher_over_a_fake_fetcher() -> None:
    class Counting:
        def __init__(self) -> None:
            self.calls = 0

        def get(self, url: str, headers: Any = None) -> Fetched:
            self.calls += 1
            return Fetched(200, b"x", {"Cache-Control": "max-age=5"})  # mixed-case names from a fake

    inner, clock = Counting(), Clock()
    cache = CachingFetcher(inner, clock=clock)
    cache.get(URL)
    cache.get(URL)
    assert inner.calls == 1


# ------------------------------------------------------------------------------------------ DidWebResolver


def _did_origin(doc: dict[str, Any]) -> Origin:
    def reply(request: httpx.Request) -> httpx.Response:
        if str(request.url) != "https://issuer.example/.well-known/did.json":
            return httpx.Response(404)
        return httpx.Response(200, json=doc, headers={"Cache-Control": "public, max-age=300"})

    return Origin(reply)


def test_did_web_resolver_with_cache_and_resolve_key() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    did = "did:web:issuer.example"
    origin, clock = _did_origin(did_document(did, [{**public_jwk_dict(key), "kid": "k1"}])), Clock()
    resolver = DidWebResolver(_cached(origin, clock))
    for _ in range(2):
        assert public_jwk_dict(resolve_key(f"{did}#k1", resolver)) == public_jwk_dict(key)
    assert len(origin.requests) == 1
    assert "application/did+json" in origin.requests[0].headers["accept"]


@pytest.mark.parametrize(
    ("response", "error"),
    [
        (httpx.Response(404), VerificationFailed),
        (httpx.Response(200, content=b"<html>"), VerificationFailed),
        (httpx.Response(200, json=[1, 2]), VerificationFailed),
        (httpx.Response(503), InfrastructureFailure),
    ],
)
def test_did_web_resolution_failures(response: httpx.Response, error: type[ImiError]) -> None:
    resolver = DidWebResolver(_fetcher(Origin(lambda r: response)))
    with pytest.raises(error) as exc:
        resolver.resolve("did:web:issuer.example")
    assert _slug(exc) == "did-resolution-failed"


def test_did_web_resolver_against_the_issuer_app(client: TestClient) -> None:
    resolver = DidWebResolver(HttpFetcher(client))
    doc = resolver.resolve("did:web:testserver")
    kid_url = doc["assertionMethod"][0]
    method = next(m for m in doc["verificationMethod"] if m["id"] == kid_url)
    key = resolve_key(kid_url, resolver)
    assert public_jwk_dict(key) == public_jwk_dict(public_key_from_jwk(method["publicKeyJwk"]))
