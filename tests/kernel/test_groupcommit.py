"""``kernel.groupcommit``: shared write transactions, outcomes per job, isolation of bad jobs, lingering."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Column, Connection, Engine, Integer, MetaData, String, Table, func, insert, select

from kernel.db import make_engine
from kernel.errors import Conflict, ImiError, InfrastructureFailure
from kernel.groupcommit import GroupCommitter, Writer, each, one_by_one

META = MetaData()
ROWS = Table(
    "gc_rows", META, Column("id", Integer, primary_key=True), Column("name", String(40), unique=True)
)


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{(tmp_path / 'gc.sqlite3').as_posix()}", durable=False)
    META.create_all(engine)
    yield engine
    engine.dispose()


def insert_name(conn: Connection, name: str) -> int:
    if name.startswith("refuse"):
        conn.execute(insert(ROWS).values(name=name + "-recorded"))  # written before refusing: kept
        raise Conflict("refused", slug="test-refused")
    if name == "boom":
        raise RuntimeError("a bug, not a refusal")
    return int(conn.execute(insert(ROWS).values(name=name).returning(ROWS.c.id)).scalar_one())


def names(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        return set(conn.execute(select(ROWS.c.name)).scalars())


def test_every_job_gets_its_own_outcome_across_threads(engine: Engine) -> None:
    sizes: list[int] = []
    per_job = one_by_one(insert_name)

    def batch_fn(conn: Connection, jobs: list[str]) -> list[int | ImiError]:
        sizes.append(len(jobs))
        return per_job(conn, jobs)

    committer = GroupCommitter(
        Writer(engine), batch_fn, name="test", timeout_slug="test-timeout", linger=0.01
    )
    results: dict[str, int] = {}

    def worker(t: int) -> None:
        for i in range(10):
            results[f"t{t}-{i}"] = committer.run(f"t{t}-{i}")

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(results.values())) == 80  # each job its own row id
    assert names(engine) == set(results)
    assert sum(sizes) == 80
    assert max(sizes) > 1  # concurrent callers shared transactions


def test_a_refusal_stays_with_its_job_and_keeps_what_it_wrote(engine: Engine) -> None:
    committer = GroupCommitter(Writer(engine), one_by_one(insert_name), name="t", timeout_slug="t-timeout")
    with pytest.raises(Conflict):
        committer.run("refuse-1")
    assert committer.run("fine") > 0
    assert names(engine) == {"refuse-1-recorded", "fine"}


def test_a_bug_in_one_job_does_not_fail_its_batch(engine: Engine) -> None:
    committer = GroupCommitter(
        Writer(engine), one_by_one(insert_name), name="t", timeout_slug="t-timeout", linger=0.05
    )

    async def together() -> list[int | BaseException]:
        jobs = (committer.run_async(name) for name in ("a", "boom", "b", "c"))
        return await asyncio.gather(*jobs, return_exceptions=True)

    outcomes = asyncio.run(together())
    failed = outcomes[1]
    assert isinstance(failed, ImiError)
    assert failed.slug == "database-unavailable"
    assert all(isinstance(o, int) for i, o in enumerate(outcomes) if i != 1)
    assert names(engine) == {"a", "b", "c"}


def test_a_lone_caller_soon_stops_lingering(engine: Engine) -> None:
    linger = 0.2
    committer = GroupCommitter(
        Writer(engine), one_by_one(insert_name), name="t", timeout_slug="t-timeout", linger=linger
    )
    started = time.monotonic()
    for i in range(10):
        committer.run(f"alone-{i}")
    # Lingering every time would take 10 x 0.2 s; it stops after at most three waits in vain.
    assert time.monotonic() - started < 4 * linger + 0.6


def test_outcomes_count_must_match_jobs(engine: Engine) -> None:
    def broken(conn: Connection, jobs: list[str]) -> list[int | ImiError]:
        counted: int | ImiError = conn.execute(select(func.count()).select_from(ROWS)).scalar_one()
        return [counted][:0]

    committer = GroupCommitter(Writer(engine), broken, name="t", timeout_slug="t-timeout")
    with pytest.raises(ImiError) as raised:
        committer.run("x")
    assert raised.value.slug == "database-unavailable"


def test_prepare_runs_before_the_transaction_and_may_refuse_a_job(engine: Engine) -> None:
    def prepare(name: str) -> str:
        if name == "bad input":
            raise Conflict("refused before any write", slug="test-refused-early")
        return name.upper()

    committer = GroupCommitter(
        Writer(engine), one_by_one(insert_name), name="t", timeout_slug="t-timeout", prepare=each(prepare)
    )

    async def together() -> list[int | BaseException]:
        jobs = (committer.run_async(name) for name in ("a", "bad input", "b"))
        return await asyncio.gather(*jobs, return_exceptions=True)

    outcomes = asyncio.run(together())
    refused = outcomes[1]
    assert isinstance(refused, Conflict)
    assert refused.slug == "test-refused-early"
    assert isinstance(outcomes[0], int)
    assert isinstance(outcomes[2], int)
    assert names(engine) == {"A", "B"}  # what prepare made of the jobs is what was written


def test_a_batch_prepare_that_fails_fails_each_of_its_jobs_and_writes_nothing(engine: Engine) -> None:
    seen: list[list[str]] = []

    def prepare(jobs: list[str]) -> list[str | Exception]:
        seen.append(list(jobs))
        raise InfrastructureFailure("the check processes are gone", slug="verifier-checks-unavailable")

    committer = GroupCommitter(
        Writer(engine), one_by_one(insert_name), name="t", timeout_slug="t-timeout", prepare=prepare
    )

    async def together() -> list[int | BaseException]:
        return await asyncio.gather(*(committer.run_async(n) for n in ("a", "b")), return_exceptions=True)

    outcomes = asyncio.run(together())
    assert all(isinstance(o, InfrastructureFailure) for o in outcomes)
    assert {o.slug for o in outcomes if isinstance(o, ImiError)} == {"verifier-checks-unavailable"}
    assert sorted(job for batch in seen for job in batch) == ["a", "b"]
    assert names(engine) == set()
