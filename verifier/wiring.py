"""Builds a verifier from settings: online (DID documents and status lists over HTTP) or from a bundle."""

from __future__ import annotations

import time

from sqlalchemy import Engine

from kernel.did_document import did_web
from kernel.keystore import KeyStore
from kernel.outbound import http_client
from kernel.settings import Settings
from ledger.note import NoteVerifier, WitnessVerifier
from verifier.api import VerifierIdentity
from verifier.bundle import BundleFetcher, TrustBundle, open_bundle
from verifier.check_pool import CheckPool
from verifier.fetch import CachingFetcher, Fetcher, HttpFetcher
from verifier.policy import TrustPolicy
from verifier.scanning import ScanSources
from verifier.service import VerifierService
from verifier.sources import DidKeys, ListStatusSource


def trust_policy(settings: Settings, *, own_log_vkey: str | None) -> TrustPolicy:
    issuers = settings.verifier_trusted_issuers or (did_web(settings.public_url),)
    vkey = settings.verifier_log_vkey or own_log_vkey
    return TrustPolicy(
        trusted_issuers=frozenset(issuers),
        log_verifier=NoteVerifier.from_vkey(vkey) if vkey else None,
        witnesses=tuple(WitnessVerifier.from_vkey(v) for v in settings.log_witnesses),
        witness_threshold=settings.log_witness_threshold,
        require_anchor=settings.verifier_require_anchor,
    )


def _online_sources(settings: Settings, trust: TrustPolicy, fetcher: Fetcher | None) -> ScanSources:
    from verifier.fetch import DidWebResolver

    if fetcher is None:  # (not `or`: an empty cache is falsy)
        fetcher = CachingFetcher(HttpFetcher(http_client(follow_redirects=False)), clock=time.time)
    keys = DidKeys(DidWebResolver(fetcher))
    status = ListStatusSource(fetcher, keys, clock=time.time)
    origins = settings.verifier_reference_origins or (settings.public_url,)
    return ScanSources(trust, keys, status, fetcher, origins)


def _offline_sources(settings: Settings, token: str) -> tuple[ScanSources, TrustBundle]:
    bundle = open_bundle(token, pinned_thumbprint=settings.verifier_bundle_key, now=int(time.time()))
    trust = TrustPolicy(
        trusted_issuers=frozenset(bundle.trusted_issuers),
        log_verifier=NoteVerifier.from_vkey(bundle.log_vkey) if bundle.log_vkey else None,
        witnesses=tuple(WitnessVerifier.from_vkey(v) for v in bundle.witnesses),
        witness_threshold=bundle.witness_threshold,
        require_anchor=settings.verifier_require_anchor,
    )
    keys = DidKeys(bundle.resolver())
    fetcher = BundleFetcher(bundle)
    return ScanSources(trust, keys, ListStatusSource(fetcher, keys, clock=time.time), fetcher), bundle


def scan_sources(settings: Settings, *, own_log_vkey: str | None) -> tuple[ScanSources, TrustBundle | None]:
    """What a check process (``verifier.check_pool``) checks scans against: as the web worker's verifier."""
    if settings.verifier_bundle is not None:
        return _offline_sources(settings, settings.verifier_bundle.read_text())
    return _online_sources(settings, trust_policy(settings, own_log_vkey=own_log_vkey), None), None


def online_verifier(
    engine: Engine,
    settings: Settings,
    trust: TrustPolicy,
    fetcher: Fetcher | None = None,
    result_key: bytes | None = None,
    *,
    check_pool: CheckPool | None = None,
) -> VerifierService:
    """A verifier that fetches public material over HTTP, with HTTP caching."""
    sources = _online_sources(settings, trust, fetcher)
    return VerifierService(
        engine,
        trust=trust,
        keys=sources.keys,
        status=sources.status,
        fetcher=sources.fetcher,
        reference_origins=sources.reference_origins,
        result_key=result_key,
        check_pool=check_pool,
    )


def offline_verifier(
    engine: Engine, settings: Settings, token: str, *, check_pool: CheckPool | None = None
) -> VerifierService:
    """A verifier that reads nothing from the network: keys, status lists and log key come from a bundle."""
    sources, bundle = _offline_sources(settings, token)
    return VerifierService(
        engine,
        trust=sources.trust,
        keys=sources.keys,
        status=sources.status,
        fetcher=sources.fetcher,
        bundle=bundle,
        check_pool=check_pool,
    )


def identity(keystore: KeyStore, settings: Settings) -> VerifierIdentity:
    base = settings.public_url.rstrip("/")
    return VerifierIdentity(keystore, did=did_web(base + "/verifier"), public_url=base)
