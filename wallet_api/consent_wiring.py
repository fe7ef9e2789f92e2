"""Builds the consent API's parts from what the composition root already has (engine, key store, log, vault)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx
from sqlalchemy import Engine

from kernel.groupcommit import Writer
from kernel.keystore import KeyStore
from kernel.outbound import http_client
from ledger.service import LogService
from wallet_api.consent_auth import ClientRegistry
from wallet_api.consent_grants import GrantService
from wallet_api.consent_queries import ConsentQueries
from wallet_api.consent_registry import PurposeRegistry
from wallet_api.consent_release import Releaser
from wallet_api.consent_service import ConsentService
from wallet_api.consent_webhooks import ServiceKeys, Webhooks
from wallet_api.consent_worker import ConsentWorker, HistoryWriter
from wallet_api.vault import Vault


@dataclass
class ConsentParts:
    """Everything the consent routers use; ``app.state.consent``."""

    clients: ClientRegistry
    purposes: PurposeRegistry
    service: ConsentService
    grants: GrantService
    queries: ConsentQueries
    releaser: Releaser
    keys: ServiceKeys
    webhooks: Webhooks
    history: HistoryWriter
    worker: ConsentWorker
    resolve_session: Callable[[str], str]  # a citizen's session token -> citizen id (assisted consent)


def build_consent(
    engine: Engine,
    *,
    keystore: KeyStore,
    log: LogService,
    vault: Vault,
    pairwise_key: bytes,
    public_url: str,
    resolve_session: Callable[[str], str],
    http: httpx.Client | None = None,
    clock: Callable[[], float] = time.time,
    worker_interval: float = 1.0,
) -> ConsentParts:
    """``pairwise_key`` is ``kernel.sealing.derive_key(master_key, "pairwise")``."""
    base = public_url.rstrip("/")
    clients = ClientRegistry(
        engine, token_endpoint=f"{base}/consent/token", issuer=f"{base}/consent", clock=clock
    )
    purposes, keys, writer = PurposeRegistry(engine, clock=clock), ServiceKeys(keystore), Writer(engine)
    keys.active()  # create the key now: never inside a consent transaction
    service = ConsentService(
        writer, clients=clients, purposes=purposes, keys=keys, vault=vault, log=log, public_url=base,
        pairwise_key=pairwise_key, clock=clock,
    )  # fmt: skip
    webhooks, history = Webhooks(engine, clock=clock), HistoryWriter(writer, vault)
    http = http or http_client(follow_redirects=False, timeout=10.0)
    return ConsentParts(
        clients=clients,
        purposes=purposes,
        service=service,
        grants=GrantService(service),
        queries=ConsentQueries(engine, clients=clients, log=log, public_url=base),
        releaser=Releaser(service),
        keys=keys,
        webhooks=webhooks,
        history=history,
        worker=ConsentWorker(service, history, webhooks, http, interval=worker_interval, clock=clock),
        resolve_session=resolve_session,
    )
