"""The facade the API, the sweeps and the reporter use: each call one use case, one transaction.

Writes go through the group-commit writer as jobs (a handler of
``service.outcomes``, ``service.buckets`` or ``service.catalog`` bound to its
command); reads run a ``service.queries`` function on their own snapshot and
never wait for the writer. Commands are validated here, before they queue.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from datetime import datetime
from functools import partial
from typing import TypeVar

from rating_service.domain.billing import Invoice, Simulation
from rating_service.domain.commands import (
    ConfirmOutcome,
    ConsumeBucket,
    CreateBucket,
    ExplainOutcome,
    GetBalance,
    PreviewInvoice,
    PutCustomer,
    PutRateCard,
    PutSpendControls,
    QuoteCost,
    RecordOutcome,
    ReverseOutcome,
    SimulateRateCard,
    VoidBucket,
    WatchAlerts,
)
from rating_service.domain.errors import DomainError
from rating_service.domain.explanation import Explanation
from rating_service.domain.rating import Quote
from rating_service.domain.results import (
    Balance,
    BucketCreated,
    BucketVoided,
    Consumed,
    CustomerPut,
    Entry,
    OutcomeConfirmed,
    OutcomeRecorded,
    OutcomeUndone,
    RateCardPut,
    SpendControlsPut,
)
from rating_service.domain.spend import Alert
from rating_service.ledger.engine import Connection, Engines
from rating_service.ledger.lease import Lease, lease_for
from rating_service.ledger.session import ReadSession, WriteSession
from rating_service.ledger.writer import GroupCommitWriter, Job
from rating_service.metrics import SPEND_ALERTS
from rating_service.service import buckets, catalog, outcomes, queries, reports, spend
from rating_service.service.alert_feed import AlertFeed

T = TypeVar("T")

ALERT_PAGE = 500
"""Alerts a watcher reads per query."""
ALERT_POLL_SECONDS = 1.0
"""How often a watcher looks for alerts other replicas committed (this one's wake it at once)."""


class LedgerStore:
    def __init__(self, engines: Engines, *, max_batch: int = 256, working_set: bool = True) -> None:
        self._engines = engines
        self._short_reads = engines.short_reads or engines.reads
        self._writer = GroupCommitWriter(
            engines.writer, max_batch=max_batch, working_set=working_set
        )
        self.alert_feed = AlertFeed()

    def start(self) -> None:
        self._writer.start()

    def lease(self, name: str) -> Lease:
        """A lease only one process sharing this ledger holds at a time (see ``lease``)."""
        return lease_for(self._engines.reader, name)

    async def close(self) -> None:
        self.alert_feed.close()
        await self._writer.stop()
        await self._engines.dispose()

    # ---- outcomes ---------------------------------------------------------------------

    async def record_outcome(self, cmd: RecordOutcome, now: datetime) -> OutcomeRecorded:
        cmd.validate(now)
        return await self._charging(
            partial(outcomes.record, cmd=cmd, now=now, prepared=outcomes.prepare(cmd)),
            cmd.customer_id,
            outcome_keys=((cmd.customer_id, cmd.outcome_id),),
        )

    async def record_outcomes(
        self, cmds: Sequence[RecordOutcome], now: datetime
    ) -> list[OutcomeRecorded | Exception]:
        """Each item as ``record_outcome``; the valid ones go to the writer as one caller."""
        refused: dict[int, Exception] = {}
        for index, cmd in enumerate(cmds):
            try:
                cmd.validate(now, prefix=f"requests[{index}].")
            except DomainError as error:
                refused[index] = error
        valid = [cmd for index, cmd in enumerate(cmds) if index not in refused]
        answers = await self._writer.submit_many(
            [
                _noting_alerts(
                    partial(outcomes.record, cmd=c, now=now, prepared=outcomes.prepare(c))
                )
                for c in valid
            ],
            customers={c.customer_id for c in valid},
            outcome_keys=[(c.customer_id, c.outcome_id) for c in valid],
        )
        self._committed(
            [a for answer in answers if not isinstance(answer, Exception) for a in answer[1]]
        )
        recorded = iter(a if isinstance(a, Exception) else a[0] for a in answers)
        return [refused[i] if i in refused else next(recorded) for i in range(len(cmds))]

    async def confirm_outcome(self, cmd: ConfirmOutcome, now: datetime) -> OutcomeConfirmed:
        cmd.validate()
        return await self._charging(partial(outcomes.confirm, cmd=cmd, now=now), cmd.customer_id)

    async def reverse_outcome(self, cmd: ReverseOutcome, now: datetime) -> OutcomeUndone:
        cmd.validate()
        # A reversal may first settle an outcome whose window has passed: that charge counts.
        return await self._charging(partial(outcomes.reverse, cmd=cmd, now=now), cmd.customer_id)

    async def settle_due(self, now: datetime, limit: int = 500) -> int:
        """Settle pending outcomes whose window has passed, at the end of their window."""
        settled, alerts = await self._writer.submit(
            _noting_alerts(partial(outcomes.settle_due, now=now, limit=limit))
        )
        self._committed(alerts)
        return settled

    async def _charging(
        self, job: Job[T], customer_id: str, outcome_keys: Sequence[tuple[str, str]] = ()
    ) -> T:
        """Run a job that may charge (and so raise alerts) for ``customer_id``."""
        result, alerts = await self._writer.submit(
            _noting_alerts(job), customers=(customer_id,), outcome_keys=outcome_keys
        )
        self._committed(alerts)
        return result

    def _committed(self, alerts: list[Alert]) -> None:
        """Alerts are counted and watchers woken only once their transaction has committed."""
        if alerts:
            SPEND_ALERTS.inc(len(alerts))
            self.alert_feed.notify()

    # ---- buckets ------------------------------------------------------------------------

    async def expire_buckets(self, now: datetime, limit: int = 500) -> int:
        """Move the undrawn units of buckets past ``valid_until`` to ``expired``."""
        return await self._writer.submit(partial(buckets.expire_due, now=now, limit=limit))

    async def consume_bucket(self, cmd: ConsumeBucket, now: datetime) -> Consumed:
        cmd.validate()
        return await self._writer.submit(
            partial(buckets.consume, cmd=cmd, now=now), customers=(cmd.customer_id,)
        )

    async def create_bucket(self, cmd: CreateBucket, now: datetime) -> BucketCreated:
        cmd.validate()
        return await self._writer.submit(
            partial(buckets.create, cmd=cmd, now=now), customers=(cmd.customer_id,)
        )

    async def void_bucket(self, cmd: VoidBucket, now: datetime) -> BucketVoided:
        cmd.validate()
        return await self._writer.submit(
            partial(buckets.void, cmd=cmd, now=now), customers=(cmd.customer_id,)
        )

    # ---- spend controls and alerts ------------------------------------------------------

    async def put_spend_controls(self, cmd: PutSpendControls, now: datetime) -> SpendControlsPut:
        cmd.validate()
        return await self._writer.submit(
            partial(spend.put_controls, cmd=cmd, now=now), customers=(cmd.customer_id,)
        )

    async def watch_alerts(self, cmd: WatchAlerts) -> AsyncIterator[Alert]:
        """Every alert after ``cmd.after_alert_id``, then each new one, until the store closes
        (``AlertFeedClosed``) or the caller stops iterating."""
        cmd.validate()
        after = cmd.after_alert_id
        while True:
            seen = self.alert_feed.version
            found = await self._short_query(
                partial(
                    spend.alerts_after,
                    customer_id=cmd.customer_id,
                    after=after,
                    limit=ALERT_PAGE,
                )
            )
            for alert in found:
                yield alert
                after = alert.alert_id
            if len(found) < ALERT_PAGE:
                await self.alert_feed.wait(seen, ALERT_POLL_SECONDS)

    # ---- customers and rate cards -----------------------------------------------------

    async def put_customer(self, cmd: PutCustomer, now: datetime) -> CustomerPut:
        cmd.validate()
        return await self._writer.submit(
            partial(catalog.put_customer, cmd=cmd, now=now), customers=(cmd.customer_id,)
        )

    async def put_rate_card(self, cmd: PutRateCard, now: datetime) -> RateCardPut:
        cmd.validate()
        return await self._writer.submit(partial(catalog.put_rate_card, cmd=cmd, now=now))

    # ---- reads ---------------------------------------------------------------------------

    async def quote_cost(self, cmd: QuoteCost, now: datetime) -> Quote:
        cmd.validate()
        return await self._short_query(
            partial(
                queries.quote_cost,
                now=now,
                customer_id=cmd.customer_id,
                outcome_type=cmd.outcome_type,
                quantity=cmd.quantity,
                at=cmd.at or now,
            )
        )

    async def get_balance(self, cmd: GetBalance, now: datetime) -> Balance:
        cmd.validate()
        return await self._short_query(
            partial(queries.balance, customer_id=cmd.customer_id, now=now)
        )

    async def list_entries(self, customer_id: str, *, after: int, limit: int) -> list[Entry]:
        return await self._short_query(
            partial(queries.list_entries, customer_id=customer_id, after=after, limit=limit)
        )

    async def explain_outcome(self, cmd: ExplainOutcome) -> Explanation:
        cmd.validate()
        return await self._query(partial(reports.explain, cmd=cmd))

    async def preview_invoice(self, cmd: PreviewInvoice, now: datetime) -> Invoice:
        cmd.validate()
        return await self._query(partial(reports.preview_invoice, cmd=cmd, now=now))

    async def simulate_rate_card(self, cmd: SimulateRateCard, now: datetime) -> Simulation:
        cmd.validate()
        return await self._query(partial(reports.simulate, cmd=cmd, now=now))

    async def _query(self, query: Callable[[ReadSession], T]) -> T:
        return await self.read(lambda conn: query(ReadSession(conn)))

    async def _short_query(self, query: Callable[[ReadSession], T]) -> T:
        """A read of a few statements, on the short reads' own thread (``Engines``)."""
        work = partial(_in_snapshot, lambda conn: query(ReadSession(conn)))
        return await self._short_reads.run(work)

    # ---- the reporter's bookkeeping --------------------------------------------------------

    async def write(self, job: Callable[[Connection], T]) -> T:
        """Run ``job`` in the next group commit: the reporter's bookkeeping, which writes only
        what the writer's working set does not hold (see ``WriteSession.stripe_conn``)."""
        return await self._writer.submit(lambda s: job(s.stripe_conn))

    async def read(self, job: Callable[[Connection], T]) -> T:
        """Run a read on its own snapshot, never waiting for the writer."""
        return await self._engines.reads.run(partial(_in_snapshot, job))


def _in_snapshot(job: Callable[[Connection], T], conn: Connection) -> T:
    """One transaction, so every statement of ``job`` sees the same database."""
    with conn.begin():
        return job(conn)


def _noting_alerts(job: Job[T]) -> Job[tuple[T, list[Alert]]]:
    """``job``, answering also the alerts it raised (the session collects them)."""

    def run(uow: WriteSession) -> tuple[T, list[Alert]]:
        before = len(uow.alerts_raised)
        result = job(uow)
        return result, uow.alerts_raised[before:]

    return run
