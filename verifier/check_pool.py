"""Check processes: scanned QR codes verified in processes of their own, beside the web worker.

A scan costs the web worker's process about three times what a bare HTTP request does, and most of it is the
verification: parsing, JSON, digests, three signatures. In one CPython process the event loop (HTTP) and the
checks take turns on one interpreter lock, so a worker stays on one core however many a kiosk server has.
With ``IMI_VERIFIER_CHECK_PROCESSES=n`` the committer thread hands each batch of scans to ``n`` processes
(split evenly) and books their results in one transaction as before; the worker's process keeps to HTTP and the
database. A check process trusts what the web worker trusts and reads it the same way (``verifier.wiring``:
DID documents and status lists over HTTP with their own cache, or the offline bundle); it never writes.

Processes are started with ``spawn`` (the web worker has threads: ``fork`` would copy their locks). A check
process that dies fails the scans it had (503 ``verifier-checks-unavailable``) and is replaced on the next batch.
"""

from __future__ import annotations

import logging
import multiprocessing
import threading
import time
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import TYPE_CHECKING

from kernel.errors import ImiError, InfrastructureFailure
from kernel.settings import Settings

if TYPE_CHECKING:
    from verifier.bundle import TrustBundle
    from verifier.core import VerificationReport
    from verifier.scanning import ScanSources

log = logging.getLogger("imi.verifier.checks")
CHECK_TIMEOUT = 30.0  # seconds a batch may take in a check process (a remote status list may be slow)
Outcome = tuple[str, "VerificationReport"] | Exception


class CheckPool:
    """``processes`` check processes; :meth:`check_many` is called from one thread (the committer's)."""

    def __init__(self, settings: Settings, *, own_log_vkey: str | None, processes: int) -> None:
        if processes < 1:
            raise ValueError("a check pool needs at least one process")
        self._settings = settings
        self._own_log_vkey = own_log_vkey
        self.processes = processes
        self._lock = threading.Lock()
        self._pool = self._new_pool()

    def _new_pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            self.processes,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start,
            initargs=(self._settings, self._own_log_vkey),
        )

    def warm(self) -> None:
        """Start every process now (each imports the code and builds its sources: seconds), not on a first scan."""
        futures = [self._pool.submit(_ready) for _ in range(self.processes)]
        for future in futures:
            future.result(timeout=120)

    def check_many(self, qr_texts: list[str]) -> list[Outcome]:
        """Each text's presentation and report, or the error that refused it; in order."""
        size = -(-len(qr_texts) // self.processes)
        chunks = [qr_texts[i : i + size] for i in range(0, len(qr_texts), size)]
        with self._lock:
            pool = self._pool
        try:
            futures: list[Future[list[Outcome]]] = [pool.submit(_check_chunk, chunk) for chunk in chunks]
        except (BrokenProcessPool, RuntimeError) as exc:  # a process died since the last batch
            return self._lost(pool, exc, len(qr_texts))
        out: list[Outcome] = []
        for chunk, future in zip(chunks, futures, strict=True):
            try:
                out.extend(future.result(timeout=CHECK_TIMEOUT))
            except (BrokenProcessPool, TimeoutError, OSError) as exc:
                out.extend(self._lost(pool, exc, len(chunk)))
        return out

    def _lost(self, pool: ProcessPoolExecutor, exc: BaseException, count: int) -> list[Outcome]:
        log.error("check process failed: %r; starting new ones", exc)
        self._replace(pool)
        unavailable = InfrastructureFailure(
            "The verifier could not check this code; retry.", slug="verifier-checks-unavailable"
        )
        return [unavailable] * count

    def _replace(self, broken: ProcessPoolExecutor) -> None:
        with self._lock:
            if self._pool is broken:
                self._pool = self._new_pool()
        broken.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        with self._lock:
            self._pool.shutdown(wait=True, cancel_futures=True)


# ------------------------------------------------------------------------------------- in a check process

_sources: ScanSources | None = None
_bundle: TrustBundle | None = None


def _start(settings: Settings, own_log_vkey: str | None) -> None:
    global _sources, _bundle
    from verifier import wiring

    _sources, _bundle = wiring.scan_sources(settings, own_log_vkey=own_log_vkey)


def _ready() -> bool:
    return _sources is not None


def _check_chunk(qr_texts: list[str]) -> list[Outcome]:
    from verifier.bundle import check_fresh
    from verifier.scanning import check_scan

    assert _sources is not None
    out: list[Outcome] = []
    for text in qr_texts:
        try:
            now = int(time.time())
            if _bundle is not None:
                check_fresh(_bundle, now)
            out.append(check_scan(text, _sources, now=now))
        except ImiError as refused:  # (pickled whole: kernel.errors.ImiError.__reduce__)
            out.append(refused)
        except Exception as exc:  # a bug: reported as one, without relying on its pickling
            log.exception("a scan check failed")
            out.append(RuntimeError(f"scan check failed: {exc!r}"))
    return out
