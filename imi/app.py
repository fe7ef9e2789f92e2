"""The composition root: build every part from ``Settings`` and wire them into one FastAPI app."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit

import anyio.to_thread
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from imi import migrate
from issuer.api import router as issuer_router
from issuer.api_oid4vci import router as oid4vci_router
from issuer.api_staff import router as staff_router
from issuer.api_vc import router as vc_api_router
from issuer.oid4vci import Oid4vciService
from issuer.pages import router as counter_pages
from issuer.service import IssuerService
from kernel import hotpath, openapi, problems, ratelimit
from kernel.db import is_sqlite, make_engine, ping
from kernel.keystore import KeyAlg, KeyStore
from kernel.logs import configure as configure_logs
from kernel.outbound import http_client
from kernel.passkeys import PasskeyService
from kernel.sealing import derive_key, load_master_key
from kernel.sessions import SessionService
from kernel.settings import Settings
from kernel.web_static import mount_static
from ledger.api import router as log_router
from ledger.note import NoteSigner, WitnessVerifier
from ledger.sequencer import Sequencer
from ledger.service import LogService, SequencerLoop
from verifier import wiring as verifier_wiring
from verifier.api import HOT_ROUTES as VERIFIER_HOT_ROUTES
from verifier.api import VerifierIdentity
from verifier.api import router as verifier_router
from verifier.api_vc import router as verifier_vc_router
from verifier.check_pool import CheckPool
from verifier.fetch import CachingFetcher, DidWebResolver, HttpFetcher
from verifier.pages import router as kiosk_pages
from verifier.service import VerifierService
from wallet_api.api import router as wallet_router
from wallet_api.consent_api import install as install_consent
from wallet_api.consent_wiring import ConsentParts, build_consent
from wallet_api.pages import router as wallet_pages
from wallet_api.service import WalletService
from wallet_api.vault import Vault

LOG_KEY_PURPOSE = "log"


@dataclass
class Services:
    """What the parts share in one process. Built once per app."""

    settings: Settings
    engine: Engine
    keystore: KeyStore
    log: LogService
    issuer: IssuerService
    oid4vci: Oid4vciService
    verifier: VerifierService
    verifier_identity: VerifierIdentity
    wallet: WalletService
    consent: ConsentParts


def build_services(settings: Settings) -> Services:
    engine = make_engine(settings.resolved_database_url)
    migrate.upgrade(engine)
    master = load_master_key(settings.data_dir, settings.master_key)
    keystore = KeyStore(engine, master)
    origin = settings.resolved_log_origin
    log_key = keystore.active(LOG_KEY_PURPOSE, KeyAlg.EDDSA)
    signer = NoteSigner.from_ed25519(origin, log_key.private_key)  # type: ignore[arg-type]
    sequencer = Sequencer(engine, signer, origin, batch_max=settings.log_batch_max)
    witnesses = tuple(WitnessVerifier.from_vkey(v) for v in settings.log_witnesses)
    log = LogService(engine, sequencer, origin=origin, verifier=signer.verifier, witnesses=witnesses)
    log.latest()  # publishes the size-0 checkpoint of a new log
    issuer = IssuerService(engine, keystore, log, master, public_url=settings.public_url)
    oid4vci = Oid4vciService(engine, issuer, hmac_key=derive_key(master, "oid4vci"))
    trust = verifier_wiring.trust_policy(settings, own_log_vkey=signer.verifier.vkey)
    # The verifier's own writes (replay cache, verification records) need no fsync each (see kernel.db).
    scans = make_engine(settings.resolved_database_url, durable=False) if is_sqlite(engine) else engine
    checks = None
    if settings.verifier_check_processes and "verifier" in settings.parties:
        checks = CheckPool(
            settings, own_log_vkey=signer.verifier.vkey, processes=settings.verifier_check_processes
        )
    if settings.verifier_bundle is not None:
        verifier = verifier_wiring.offline_verifier(
            scans, settings, settings.verifier_bundle.read_text(), check_pool=checks
        )
    else:
        verifier = verifier_wiring.online_verifier(
            scans, settings, trust, result_key=derive_key(master, "verifier-results"), check_pool=checks
        )
    identity = verifier_wiring.identity(keystore, settings)
    wallet = build_wallet(engine, settings, keystore, log, master)
    consent = build_consent(
        engine,
        keystore=keystore,
        log=log,
        vault=wallet.vault,
        pairwise_key=derive_key(master, "pairwise"),
        public_url=settings.public_url,
        resolve_session=wallet.sessions.resolve,
    )
    return Services(settings, engine, keystore, log, issuer, oid4vci, verifier, identity, wallet, consent)


def build_wallet(
    engine: Engine, settings: Settings, keystore: KeyStore, log: LogService, master: bytes
) -> WalletService:
    """The citizen's wallet: an OpenID4VCI/VP client of issuers and verifiers, reached over HTTP."""
    http = http_client(timeout=15, follow_redirects=False)
    parts = urlsplit(settings.public_url)
    return WalletService(
        engine,
        vault=Vault(engine, derive_key(master, "wallet-kek")),
        passkeys=PasskeyService(
            engine,
            rp_id=parts.hostname or "localhost",
            rp_name="IMI",
            origin=f"{parts.scheme}://{parts.netloc}",
        ),
        sessions=SessionService(engine),
        keystore=keystore,
        log=log,
        http=http,
        resolver=DidWebResolver(CachingFetcher(HttpFetcher(http))),
        public_url=settings.public_url,
        ref_key=derive_key(master, "wallet-ref"),
        trusted_issuers=settings.wallet_trusted_issuers,
        verifiers=settings.wallet_verifiers,
    )


async def _housekeeping(services: Services, every: float = 3600.0) -> None:
    """Retention: drop verification records older than their retention, and expired replay entries."""
    log = logging.getLogger("imi.housekeeping")
    while True:
        try:
            removed = await run_in_threadpool(
                services.verifier.purge_history, timedelta(days=services.settings.verifier_history_days)
            )
            log.info("retention: removed %d verification records", removed)
        except Exception:  # the database may be down; try again next round
            log.exception("retention run failed")
        await asyncio.sleep(every)


def _include_routers(app: FastAPI, settings: Settings) -> None:
    """Each party's routers; ``imi serve --only X`` mounts one party (the shared services exist either way).
    Hot routes (``kernel.hotpath``) and then the consent API go first: routes are matched in order."""
    if "verifier" in settings.parties:
        hotpath.install(app, VERIFIER_HOT_ROUTES)
    if "wallet" in settings.parties:
        install_consent(app, app.state.services.consent)
    if "ledger" in settings.parties:
        app.include_router(log_router)
    if "issuer" in settings.parties:
        app.include_router(issuer_router)
        app.include_router(staff_router)
        app.include_router(counter_pages)
        app.include_router(oid4vci_router)
        app.include_router(vc_api_router)
    if "verifier" in settings.parties:
        app.include_router(verifier_router)
        app.include_router(verifier_vc_router)
        app.include_router(kiosk_pages)
    if "wallet" in settings.parties:
        app.include_router(wallet_router)
        app.include_router(wallet_pages)


def create_app(settings: Settings | None = None, *, run_sequencer: bool = True) -> FastAPI:
    """The ASGI app. ``run_sequencer=False`` leaves integration to explicit calls (tests, benchmarks)."""
    settings = settings or Settings()
    configure_logs(settings.log_level)
    services = build_services(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # Sync endpoints run in worker threads; a verifier may wait on an HTTP fetch from its own process (the
        # issuer's status list), so leave plenty of threads for the request that answers it.
        anyio.to_thread.current_default_thread_limiter().total_tokens = 200
        loop = SequencerLoop(services.log, settings.log_batch_interval) if run_sequencer else None
        if loop:
            loop.start()
        services.consent.worker.start()
        housekeeping = asyncio.create_task(_housekeeping(services))
        checks = services.verifier.check_pool
        if checks is not None:  # started now, in the background: each takes seconds to import and warm up
            warming = asyncio.create_task(run_in_threadpool(checks.warm))
        try:
            yield
        finally:
            housekeeping.cancel()
            if checks is not None:
                warming.cancel()
                await run_in_threadpool(checks.close)
            services.consent.worker.stop()
            if loop:
                loop.stop()

    app = FastAPI(
        title="IMI - Intelligent Multifunctional Identity",
        version="0.1.0",
        lifespan=lifespan,
        description="Verifiable credentials from an in-person check, anchored in a public transparency log.",
    )
    app.state.settings = settings
    app.state.engine = services.engine
    app.state.services = services
    app.state.keystore = services.keystore
    app.state.log = services.log
    app.state.issuer = services.issuer
    app.state.oid4vci = services.oid4vci
    app.state.verifier = services.verifier
    app.state.verifier_identity = services.verifier_identity
    app.state.wallet = services.wallet
    app.state.passkeys = services.wallet.passkeys  # one WebAuthn relying party for citizens and staff
    app.state.sessions = services.wallet.sessions
    problems.install(app, max_body_bytes=settings.request_max_bytes)
    ratelimit.install(app, enabled=settings.rate_limits, exempt=settings.rate_limit_exempt)
    openapi.install(app)

    @app.get("/healthz", tags=["health"], summary="Liveness")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"], summary="Readiness: the database answers")
    def readyz() -> JSONResponse:
        ping(services.engine)
        return JSONResponse({"status": "ready"})

    _include_routers(app, settings)
    mount_static(app)
    return app
