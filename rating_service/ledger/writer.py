"""Group commit: one writer drains a queue and commits many calls in one transaction.

Jobs are plain synchronous functions of a ``WriteSession``: the whole batch
runs where the database is cheapest to reach (a dedicated thread for SQLite,
``run_sync`` over asyncpg for PostgreSQL), so a statement costs no trip
through the event loop, and the session stages the batch's appends so that
they are written one statement per table. A job refused with a DomainError
has what it staged taken back (``WriteSession.undo_job``), so it leaves no
trace and never fails its neighbours. When that cannot be done in memory (the
job's rows were already written out), or a job fails any other way, or the
batch's writing-out fails, the batch goes down the careful path: one savepoint
per job, each written out on its own. Every caller is answered only after the
shared COMMIT has returned: an acknowledged write is durable.

Replicas sharing PostgreSQL each gather many customers into one transaction.
Callers name the customers their jobs append to, and a batch locks them all
first, in id order, so two replicas' batches wait for each other instead of
deadlocking. Whatever still ends in a deadlock or a serialization failure
(a job that locks more than it named) was rolled back whole: the batch is
run again, a few times, before its callers hear UNAVAILABLE.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from sqlalchemy.engine import Connection

from rating_service.domain.errors import AmountOutOfRange, DomainError
from rating_service.ledger.engine import BatchRunner
from rating_service.ledger.outage import describe, is_outage
from rating_service.ledger.ranges import INT64_MAX, INT64_MIN, left_range
from rating_service.ledger.session import WriteSession
from rating_service.ledger.unit import WorkingSet
from rating_service.metrics import COMMIT_BATCH, COMMIT_FAILURES, COMMIT_RETRIES, COMMIT_SECONDS

T = TypeVar("T")
Job = Callable[[WriteSession], T]
Outcome = tuple[Any, BaseException | None]

log = logging.getLogger(__name__)

RETRYABLE_SQLSTATES = frozenset({"40001", "40P01"})
"""serialization_failure and deadlock_detected: PostgreSQL rolled the transaction back."""
ATTEMPTS = 5
"""Runs of one batch before a retryable failure reaches its callers."""


class StoreUnavailable(Exception):
    """The database could not commit; nothing of the call was written, a retry is safe."""


class StoreOverloaded(Exception):
    """The write queue is full; the caller should back off and retry."""


@dataclass
class _Pending:
    """Jobs from one caller, answered together: one item each, in order."""

    jobs: Sequence[Job[Any]]
    customers: Sequence[str]
    outcome_keys: Sequence[tuple[str, str]]
    future: asyncio.Future[list[Outcome]] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class _Unexpected(Exception):
    """A job failed in a way that may have left partial writes: the batch must be redone."""


def retryable(error: BaseException) -> bool:
    """Whether the database rolled the transaction back for a conflict that may not recur."""
    seen: BaseException | None = error
    while seen is not None:  # SQLAlchemy raises its error from the driver's, which has it
        if getattr(seen, "sqlstate", None) in RETRYABLE_SQLSTATES:
            return True
        seen = seen.__cause__
    return False


def _fast_batch(
    conn: Connection,
    jobs: list[Job[Any]],
    customers: list[str],
    keys: list[tuple[str, str]],
    keep: bool,
) -> list[Outcome]:
    """Every job in one transaction, no savepoints, staged and written out once.

    A job refused after it staged something is taken back in memory; one whose
    writes already reached the database, or that fails any other way, aborts
    the whole transaction for the careful path.
    """
    outcomes: list[Outcome] = []
    with conn.begin():
        working_set = WorkingSet.of(conn) if keep else None
        session = WriteSession(conn, None if working_set is None else working_set.caches)
        session.lock_customers(customers)
        session.outcomes.look_up(keys)
        for job in jobs:
            session.begin_job()
            try:
                outcomes.append((job(session), None))
            except DomainError as error:
                if not session.undo_job():
                    raise _Unexpected() from error
                outcomes.append((None, error))
            except Exception as error:
                if retryable(error):
                    raise
                raise _Unexpected() from error
        try:
            session.flush()
        except Exception as error:
            if retryable(error):
                raise
            raise _Unexpected() from error
    return outcomes


def _careful_batch(conn: Connection, jobs: list[Job[Any]], customers: list[str]) -> list[Outcome]:
    """Each job in its own savepoint, written out there, so one that fails leaves no trace."""
    outcomes: list[Outcome] = []
    with conn.begin():
        WriteSession(conn).lock_customers(customers)
        for job in jobs:
            session = WriteSession(conn)  # nothing cached survives a rollback
            try:
                with conn.begin_nested():
                    result = job(session)
                    session.flush()
                outcomes.append((result, None))
            except DomainError as error:
                outcomes.append((None, error))
            except Exception as error:  # a bug must not fail the neighbours
                # The whole transaction is gone, or the database cannot write at all.
                if retryable(error) or is_outage(error):
                    raise
                if left_range(error):
                    outcomes.append((None, _out_of_range()))
                    continue
                log.exception("ledger job failed; rolled back to its savepoint")
                outcomes.append((None, error))
    return outcomes


def _out_of_range() -> AmountOutOfRange:
    return AmountOutOfRange(
        "the call would take a balance or a month's total past the range the ledger keeps "
        f"exactly ({INT64_MIN} to {INT64_MAX} nanos or units); nothing was written"
    )


def _run_batch(
    conn: Connection,
    jobs: list[Job[Any]],
    customers: list[str],
    keys: list[tuple[str, str]],
    keep: bool = True,
) -> list[Outcome]:
    """One COMMIT for all jobs (raises if the commit fails).

    The working set moved with the batch in memory: whatever did not commit the
    fast way leaves it unlike the database, so it is dropped. A writer that
    keeps none (``keep`` False) drops the connection's after each batch, in case
    another writer of this connection keeps one.
    """
    try:
        outcomes = _fast_batch(conn, jobs, customers, keys, keep)
        if not keep:
            _forget_working_set(conn)
        return outcomes
    except _Unexpected:
        _forget_working_set(conn)
        return _careful_batch(conn, jobs, customers)
    except BaseException:
        _forget_working_set(conn)
        raise


def _forget_working_set(conn: Connection) -> None:
    found = conn.connection.info.get("working_set") if not conn.invalidated else None
    if isinstance(found, WorkingSet):
        found.forget()


class GroupCommitWriter:
    def __init__(
        self,
        runner: BatchRunner,
        *,
        max_batch: int = 256,
        max_queue: int = 20_000,
        working_set: bool = True,
    ) -> None:
        """``working_set``: keep the SQLite writer's between batches (see ``WorkingSet``)."""
        self._runner = runner
        self._working_set = working_set
        self._max_batch = max_batch
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue(maxsize=max_queue)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="ledger-writer")

    async def stop(self) -> None:
        """Finish what is queued, then stop."""
        if self._task is None:
            return
        await self._queue.join()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    async def submit(
        self,
        job: Job[T],
        *,
        customers: Iterable[str] = (),
        outcome_keys: Iterable[tuple[str, str]] = (),
    ) -> T:
        """Run ``job`` in the next commit; ``customers``: those whose chains it appends to;
        ``outcome_keys``: the (customer, outcome id) it will look for, read with the batch's."""
        ((result, failure),) = await self._enqueue([job], customers, outcome_keys)
        if failure is not None:
            raise failure
        return cast(T, result)

    async def submit_many(
        self,
        jobs: Sequence[Job[T]],
        *,
        customers: Iterable[str] = (),
        outcome_keys: Iterable[tuple[str, str]] = (),
    ) -> list[T | Exception]:
        """Several jobs as one caller: each answers for itself, all in the same commit(s)."""
        outcomes = await self._enqueue(jobs, customers, outcome_keys)
        return [
            cast(T, result) if failure is None else _as_exception(failure)
            for result, failure in outcomes
        ]

    async def _enqueue(
        self,
        jobs: Sequence[Job[Any]],
        customers: Iterable[str],
        outcome_keys: Iterable[tuple[str, str]],
    ) -> list[Outcome]:
        pending = _Pending(jobs, tuple(customers), tuple(outcome_keys))
        try:
            self._queue.put_nowait(pending)
        except asyncio.QueueFull:
            raise StoreOverloaded("the ledger writer's queue is full") from None
        return await asyncio.shield(pending.future)

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            size = len(batch[0].jobs)
            while size < self._max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
                size += len(batch[-1].jobs)
            try:
                await self._commit(batch)
            finally:
                for _ in batch:
                    self._queue.task_done()

    async def _run_with_retries(
        self, jobs: list[Job[Any]], customers: list[str], keys: list[tuple[str, str]]
    ) -> list[Outcome]:
        def run(conn: Connection) -> list[Outcome]:
            return _run_batch(conn, jobs, customers, keys, self._working_set)

        for attempt in range(1, ATTEMPTS):
            try:
                return await self._runner.run(run)
            except Exception as error:
                if not retryable(error):
                    raise
                COMMIT_RETRIES.inc()
                log.info("ledger batch rolled back by the database (%s); running it again", error)
                await asyncio.sleep(_backoff(attempt))
        return await self._runner.run(run)

    async def _commit(self, batch: list[_Pending]) -> None:
        jobs = [job for pending in batch for job in pending.jobs]
        customers = list({c for pending in batch for c in pending.customers})
        keys = [key for pending in batch for key in pending.outcome_keys]
        started = time.perf_counter()
        try:
            outcomes = await self._run_with_retries(jobs, customers, keys)
        except Exception as error:
            COMMIT_FAILURES.inc()
            log.exception("ledger commit failed; %d jobs answered UNAVAILABLE", len(jobs))
            for pending in batch:
                if not pending.future.done():
                    pending.future.set_exception(StoreUnavailable(describe(error)))
            return
        COMMIT_SECONDS.observe(time.perf_counter() - started)
        COMMIT_BATCH.observe(len(jobs))
        start = 0
        for pending in batch:
            end = start + len(pending.jobs)
            if not pending.future.done():
                pending.future.set_result(outcomes[start:end])
            start = end


def _backoff(attempt: int) -> float:
    """Seconds before the next run: a few milliseconds, jittered so replicas part ways."""
    return random.uniform(0, 0.005 * 2**attempt)


def _as_exception(failure: BaseException) -> Exception:
    if isinstance(failure, Exception):
        return failure
    raise failure  # KeyboardInterrupt and the like are not an item's answer
