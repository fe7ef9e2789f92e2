"""A real server for the browser: uvicorn on 127.0.0.1, a random free port, in a background thread.

The app is the composition root's (``imi.app.create_app``) with ``IMI_PUBLIC_URL=http://localhost:<port>``, so
WebAuthn sees a secure context with rp_id ``localhost``, and the wallet and the verifier reach the issuer over
real HTTP, as separate parties would. ``wire_pages`` adds the page routers and ``/static`` exactly as the
composition root is asked to (see the report); it is a no-op once ``imi.app`` does it itself.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
import uvicorn
from fastapi import FastAPI

from imi.app import create_app
from issuer.pages import router as counter_pages
from kernel.accounts import Role, create_token
from kernel.sealing import derive_key, load_master_key
from kernel.settings import Settings
from kernel.web_static import mount_static
from verifier.fetch import CachingFetcher, HttpFetcher
from verifier.pages import router as kiosk_pages
from verifier.wiring import online_verifier
from wallet_api.consent_worker import ConsentWorker
from wallet_api.pages import router as wallet_pages


def wire_pages(app: FastAPI) -> None:
    """What ``imi.app.create_app`` should do (the lines are in the report of the pages issue)."""
    paths = {getattr(route, "path", "") for route in app.routes}
    if "/counter" not in paths:
        app.include_router(counter_pages)
    if "/kiosk" not in paths:
        app.include_router(kiosk_pages)
    if "/wallet" not in paths:
        app.include_router(wallet_pages)
    if "/static" not in paths:
        mount_static(app)


class SkewClock:
    """Wall-clock time plus an offset the test moves forward (``advance``)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


def steerable_verifier(app: FastAPI, settings: Settings, clock: SkewClock) -> None:
    """The app's own online verifier, with its HTTP cache on ``clock``: a test lets a cached status list go
    stale (max-age 60 s) without waiting a minute."""
    master = load_master_key(settings.data_dir, settings.master_key)
    fetcher = CachingFetcher(HttpFetcher(httpx.Client(follow_redirects=False, timeout=15)), clock=clock)
    app.state.verifier = online_verifier(
        app.state.engine,
        settings,
        app.state.verifier.trust,
        fetcher=fetcher,
        result_key=derive_key(master, "verifier-results"),
    )


def wire_consent(app: FastAPI, settings: Settings) -> ConsentWorker | None:
    """The consent API as its own tests mount it (``wallet_api.consent_api.install``), unless the composition
    root already does; returns the worker to run (access history, expiry) when this function mounted it."""
    if getattr(app.state, "consent", None) is not None:
        return None
    from wallet_api.consent_api import install
    from wallet_api.consent_wiring import build_consent

    master = load_master_key(settings.data_dir, settings.master_key)
    parts = build_consent(
        app.state.engine,
        keystore=app.state.keystore,
        log=app.state.log,
        vault=app.state.wallet.vault,
        pairwise_key=derive_key(master, "pairwise"),
        public_url=settings.public_url,
        resolve_session=app.state.wallet.sessions.resolve,
        worker_interval=0.5,
    )
    install(app, parts)
    return parts.worker


@dataclass
class LiveServer:
    app: FastAPI
    base_url: str
    clock: SkewClock

    def officer_token(self, name: str = "officer-li") -> str:
        return create_token(self.app.state.engine, role=Role.OFFICER, name=name)

    def admin_token(self, name: str = "admin") -> str:
        return create_token(self.app.state.engine, role=Role.ADMIN, name=name)

    def url(self, path: str) -> str:
        return self.base_url + path


@contextmanager
def live_server(make_settings: Callable[..., Settings]) -> Iterator[LiveServer]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    settings = make_settings(public_url=f"http://localhost:{port}")
    app = create_app(settings)
    wire_pages(app)
    worker = wire_consent(app, settings)
    clock = SkewClock()
    steerable_verifier(app, settings, clock)
    server = uvicorn.Server(
        uvicorn.Config(
            app, log_level="critical", lifespan="on", access_log=False, timeout_graceful_shutdown=1
        )
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    if worker is not None:
        worker.start()
    try:
        yield LiveServer(app, f"http://localhost:{port}", clock)
    finally:
        if worker is not None:
            worker.stop()
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()
        app.state.engine.dispose()
