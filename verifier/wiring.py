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
from verifier.bundle import BundleFetcher, open_bundle
from verifier.fetch import CachingFetcher, Fetcher, HttpFetcher
from verifier.policy import TrustPolicy
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


def online_verifier(
    engine: Engine,
    settings: Settings,
    trust: TrustPolicy,
    fetcher: Fetcher | None = None,
    result_key: bytes | None = None,
) -> VerifierService:
    """A verifier that fetches public material over HTTP, with HTTP caching."""
    from verifier.fetch import DidWebResolver

    if fetcher is None:  # (not `or`: an empty cache is falsy)
        fetcher = CachingFetcher(HttpFetcher(http_client(follow_redirects=False)), clock=time.time)
    keys = DidKeys(DidWebResolver(fetcher))
    status = ListStatusSource(fetcher, keys, clock=time.time)
    origins = settings.verifier_reference_origins or (settings.public_url,)
    return VerifierService(
        engine,
        trust=trust,
        keys=keys,
        status=status,
        fetcher=fetcher,
        reference_origins=origins,
        result_key=result_key,
    )


def offline_verifier(engine: Engine, settings: Settings, token: str) -> VerifierService:
    """A verifier that reads nothing from the network: keys, status lists and log key come from a bundle."""
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
    status = ListStatusSource(fetcher, keys, clock=time.time)
    return VerifierService(engine, trust=trust, keys=keys, status=status, fetcher=fetcher, bundle=bundle)


def identity(keystore: KeyStore, settings: Settings) -> VerifierIdentity:
    base = settings.public_url.rstrip("/")
    return VerifierIdentity(keystore, did=did_web(base + "/verifier"), public_url=base)
