"""Group commit: many small write jobs, one transaction and one durable commit.

On SQLite with ``synchronous=FULL`` every commit waits for an fsync (1 to 5 ms on the disks measured here), so one
transaction per release would cap releases at a few hundred per second whatever the CPU. :class:`GroupCommitter`
runs one committer thread per process: it takes every job waiting in its queue (up to ``max_batch``), runs them
one after the other inside one write transaction, commits once, and only then hands each job its outcome. While
it waits for the disk, new jobs queue up and form the next batch, so batches grow with the load. Where commits
are cheap (no fsync), jobs trickle in one by one and each would pay a transaction of its own: a batch then waits
up to ``linger`` seconds for company, as long as waiting brings some (a lone caller soon stops paying it).
PostgreSQL does the same inside the server (group commit of concurrent transactions); the committer makes it
explicit and saves a round trip per statement.

Correctness: a job's outcome is delivered only after the commit that made it durable. Contract of a job
function: it refuses by raising an :class:`~kernel.errors.ImiError`, and whatever it wrote before raising is
meant to stay (a release refused because the consent just expired records the expiry; every other refusal
raises before writing anything); the refusal does not disturb the other jobs. If the batch fails in any other
way, every job is run again alone in its own transaction, so one bad job cannot fail its neighbours. Every job
reads the state it decides on inside the transaction, after the write lock is taken, so a change committed before
the batch (a withdrawal) is seen. The thread ends after ``idle`` seconds without work and starts again on the
next job.

Users: the consent API's data release, the verifier's replay cache and verification record.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Generic, TypeVar

from sqlalchemy import Connection, Engine

from kernel.db import is_sqlite, writer
from kernel.errors import ImiError, InfrastructureFailure

T = TypeVar("T")
J = TypeVar("J")
A = TypeVar("A")
B = TypeVar("B")
log = logging.getLogger("imi.groupcommit")
_LINGER_RETRY = 0.25  # seconds without lingering after a linger that brought no other job


class Writer:
    """Write transactions (``BEGIN IMMEDIATE`` on SQLite) behind one gate per process.

    On SQLite the gate keeps the threads of one process from spinning in SQLite's busy handler (which sleeps in
    growing steps) while one of them holds the write lock; PostgreSQL needs no gate.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._writer = writer(engine)
        self._gate: threading.Lock | None = threading.Lock() if is_sqlite(engine) else None

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        with self.gate(), self._writer.connect() as conn, conn.begin():
            yield conn

    def gate(self) -> AbstractContextManager[object]:
        """Hold the process's write gate around writes made through other engines (SQLite only; else a no-op)."""
        return self._gate or nullcontext()


class Ticket(Generic[J, T]):
    """One queued job and, once committed, its outcome."""

    __slots__ = ("_done", "_future", "_loop", "_timeout_slug", "error", "job", "result")

    def __init__(self, job: J, loop: asyncio.AbstractEventLoop | None, timeout_slug: str) -> None:
        self.job = job
        self._timeout_slug = timeout_slug
        self.result: T | None = None
        self.error: BaseException | None = None
        self._loop = loop
        self._future: asyncio.Future[None] | None = loop.create_future() if loop else None
        self._done = threading.Event() if loop is None else None

    def outcome(self) -> T:
        if self.error is not None:
            raise self.error
        assert self.result is not None
        return self.result

    def wait(self, timeout: float) -> T:
        assert self._done is not None
        if not self._done.wait(timeout):
            raise InfrastructureFailure("The database did not answer in time.", slug=self._timeout_slug)
        return self.outcome()

    async def wait_async(self, timeout: float) -> T:
        assert self._future is not None
        try:
            async with asyncio.timeout(timeout):  # (cheaper than wait_for, which wraps the wait in a task)
                await self._future
        except TimeoutError:
            raise InfrastructureFailure(
                "The database did not answer in time.", slug=self._timeout_slug
            ) from None
        return self.outcome()


def _settle(batch: list[Ticket[J, T]]) -> None:
    """Hand every ticket its outcome: waiting threads one by one, each event loop once for all of its tickets
    (one wake-up of a loop costs a system call and a trip through its queue)."""
    by_loop: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}
    for ticket in batch:
        if ticket._loop is not None and ticket._future is not None:
            by_loop.setdefault(ticket._loop, []).append(ticket._future)
        elif ticket._done is not None:
            ticket._done.set()
    for loop, futures in by_loop.items():
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody is waiting any more
            loop.call_soon_threadsafe(_resolve, futures)


def _resolve(futures: list[asyncio.Future[None]]) -> None:
    for future in futures:
        if not future.done():
            future.set_result(None)


# A batch function answers, for each job in order, its result or the ImiError that refuses it.
BatchFn = Callable[[Connection, list[J]], list[T | ImiError]]


def one_by_one(job_fn: Callable[[Connection, J], T]) -> BatchFn[J, T]:
    """A batch function that runs ``job_fn`` for each job; a refusal (an ``ImiError``) stays with its job."""

    def run(conn: Connection, jobs: list[J]) -> list[T | ImiError]:
        outcomes: list[T | ImiError] = []
        for job in jobs:
            try:
                outcomes.append(job_fn(conn, job))
            except ImiError as refused:  # see the contract in the module docstring
                outcomes.append(refused)
        return outcomes

    return run


PrepareFn = Callable[[list[J]], list[J | Exception]]


def each(prepare_one: Callable[[A], B]) -> Callable[[list[A]], list[B | Exception]]:
    """A ``prepare`` step from a function of one job; what it raises for a job becomes that job's outcome."""

    def prepare(jobs: list[A]) -> list[B | Exception]:
        out: list[B | Exception] = []
        for job in jobs:
            try:
                out.append(prepare_one(job))
            except Exception as exc:  # a refusal (ImiError), or a bug: the caller sees it as its own
                out.append(exc)
        return out

    return prepare


class GroupCommitter(Generic[J, T]):
    """Runs queued jobs in shared write transactions (see the module docstring).

    ``batch_fn(conn, jobs)`` does the work of a whole batch (set-wise SQL, say); ``one_by_one(job_fn)`` makes one
    from a function of a single job. ``prepare(jobs)``, if given, runs first on the committer thread for the
    whole batch, outside the transaction, and returns each job as it should be written, or the exception that is
    its outcome (``each(fn)`` makes one from a function of a single job). It is for CPU work such as a
    verification: done here (or handed to other processes from here), it keeps the event loop free for HTTP,
    and the thread hands results back once per batch.
    """

    def __init__(
        self,
        writer: Writer,
        batch_fn: BatchFn[J, T],
        *,
        name: str,
        timeout_slug: str,
        max_batch: int = 256,
        idle: float = 5.0,
        linger: float = 0.0,
        prepare: PrepareFn[J] | None = None,
    ) -> None:
        self._writer = writer
        self._prepare = prepare
        self._name = name
        self._timeout_slug = timeout_slug
        self._batch_fn = batch_fn
        self._max_batch = max_batch
        self._idle = idle
        self._linger = linger
        self._vain_lingers = 3  # lingers in a row that brought no other job (3: stop lingering for a while)
        self._retry_linger_at = 0.0
        self._queue: queue.SimpleQueue[Ticket[J, T]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def run(self, job: J, *, timeout: float = 30.0) -> T:
        """Queue ``job`` and block until it is committed (or refused)."""
        ticket: Ticket[J, T] = Ticket(job, None, self._timeout_slug)
        self._submit(ticket)
        return ticket.wait(timeout)

    async def run_async(self, job: J, *, timeout: float = 30.0) -> T:
        """Queue ``job`` and await its commit without holding a thread."""
        ticket: Ticket[J, T] = Ticket(job, asyncio.get_running_loop(), self._timeout_slug)
        self._submit(ticket)
        return await ticket.wait_async(timeout)

    def _submit(self, ticket: Ticket[J, T]) -> None:
        self._queue.put(ticket)
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._loop, name=f"imi-commit-{self._name}", daemon=True
                )
                self._thread.start()

    def _loop(self) -> None:
        while True:
            try:
                batch = [self._queue.get(timeout=self._idle)]
            except queue.Empty:
                with self._lock:
                    if self._queue.empty():
                        self._thread = None
                        return
                continue
            self._gather(batch)
            self._commit(batch)

    def _gather(self, batch: list[Ticket[J, T]]) -> None:
        """Add what is queued, and under load wait up to ``linger`` seconds for more. Lingering goes on while it
        pays; after three waits in vain in a row it is tried again only after ``_LINGER_RETRY`` seconds, so a
        lone caller (one kiosk, a test) rarely waits."""
        now = time.monotonic()
        linger = self._linger if self._vain_lingers < 3 or now >= self._retry_linger_at else 0.0
        deadline = now + linger
        while len(batch) < self._max_batch:
            wait = deadline - time.monotonic()
            try:  # (one wait per job, no polling: each wake-up of this thread costs the busy event loop the GIL)
                batch.append(self._queue.get(timeout=wait) if wait > 0 else self._queue.get_nowait())
            except queue.Empty:
                break
        if linger:
            self._vain_lingers = 0 if len(batch) > 1 else self._vain_lingers + 1
            self._retry_linger_at = now + _LINGER_RETRY

    def _commit(self, batch: list[Ticket[J, T]]) -> None:
        ready = self._prepared(batch) if self._prepare is not None else batch
        try:
            if ready:
                self._run(ready)
        except Exception:
            if len(ready) > 1:
                log.warning("a batch of %d failed; running its jobs one by one", len(ready), exc_info=True)
            for ticket in ready:
                self._run_alone(ticket)
        _settle(batch)

    def _prepared(self, batch: list[Ticket[J, T]]) -> list[Ticket[J, T]]:
        """Run ``prepare`` on the batch, outside the transaction; a job it refuses gets its error and no write."""
        assert self._prepare is not None
        try:
            prepared = self._prepare([ticket.job for ticket in batch])
            if len(prepared) != len(batch):
                raise RuntimeError(f"{self._name}: prepare gave {len(prepared)} jobs for {len(batch)}")
        except Exception as exc:  # a bug, or check processes gone: every job of the batch sees it
            log.exception("%s: prepare failed for a batch of %d", self._name, len(batch))
            prepared = [exc] * len(batch)
        ready = []
        for ticket, job in zip(batch, prepared, strict=True):
            if isinstance(job, Exception):
                ticket.error = job
            else:
                ticket.job = job
                ready.append(ticket)
        return ready

    def _run(self, batch: list[Ticket[J, T]]) -> None:
        with self._writer.begin() as conn:
            outcomes = self._batch_fn(conn, [ticket.job for ticket in batch])
        if len(outcomes) != len(batch):
            raise RuntimeError(f"{self._name}: {len(outcomes)} outcomes for {len(batch)} jobs")
        for ticket, outcome in zip(batch, outcomes, strict=True):
            if isinstance(outcome, ImiError):
                ticket.error = outcome
            else:
                ticket.result = outcome

    def _run_alone(self, ticket: Ticket[J, T]) -> None:
        try:
            self._run([ticket])
        except Exception as exc:
            log.exception("a %s job failed", self._name)
            ticket.error = InfrastructureFailure(
                "The database failed; retry shortly.", slug="database-unavailable"
            )
            ticket.error.__cause__ = exc
