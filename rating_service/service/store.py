"""The facade the API, the sweeps and the reporter use: each call one use case, one transaction.

Writes go through the group-commit writer as jobs (a handler of
``service.outcomes``, ``service.buckets`` or ``service.catalog`` bound to its
command); reads run a ``service.queries`` function on their own snapshot and
never wait for the writer. Commands are validated here, before they queue.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
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
    QuoteCost,
    RecordOutcome,
    ReverseOutcome,
    SimulateRateCard,
)
from rating_service.domain.errors import DomainError
from rating_service.domain.explanation import Explanation
from rating_service.domain.rating import Quote
from rating_service.domain.results import (
    Balance,
    BucketCreated,
    Consumed,
    CustomerPut,
    Entry,
    OutcomeConfirmed,
    OutcomeRecorded,
    OutcomeUndone,
    RateCardPut,
)
from rating_service.ledger.engine import Connection, Engines
from rating_service.ledger.lease import Lease, lease_for
from rating_service.ledger.session import ReadSession
from rating_service.ledger.writer import GroupCommitWriter
from rating_service.service import buckets, catalog, outcomes, queries, reports

T = TypeVar("T")


class LedgerStore:
    def __init__(self, engines: Engines, *, max_batch: int = 256) -> None:
        self._engines = engines
        self._writer = GroupCommitWriter(engines.writer, max_batch=max_batch)

    def start(self) -> None:
        self._writer.start()

    def lease(self, name: str) -> Lease:
        """A lease only one process sharing this ledger holds at a time (see ``lease``)."""
        return lease_for(self._engines.reader, name)

    async def close(self) -> None:
        await self._writer.stop()
        await self._engines.dispose()

    # ---- outcomes ---------------------------------------------------------------------

    async def record_outcome(self, cmd: RecordOutcome, now: datetime) -> OutcomeRecorded:
        cmd.validate(now)
        return await self._writer.submit(
            partial(outcomes.record, cmd=cmd, now=now), customers=(cmd.customer_id,)
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
        recorded = iter(
            await self._writer.submit_many(
                [partial(outcomes.record, cmd=c, now=now) for c in valid],
                customers={c.customer_id for c in valid},
            )
        )
        return [refused[i] if i in refused else next(recorded) for i in range(len(cmds))]

    async def confirm_outcome(self, cmd: ConfirmOutcome, now: datetime) -> OutcomeConfirmed:
        cmd.validate()
        return await self._writer.submit(
            partial(outcomes.confirm, cmd=cmd, now=now), customers=(cmd.customer_id,)
        )

    async def reverse_outcome(self, cmd: ReverseOutcome, now: datetime) -> OutcomeUndone:
        cmd.validate()
        return await self._writer.submit(
            partial(outcomes.reverse, cmd=cmd, now=now), customers=(cmd.customer_id,)
        )

    async def settle_due(self, now: datetime, limit: int = 500) -> int:
        """Settle pending outcomes whose window has passed, at the end of their window."""
        return await self._writer.submit(partial(outcomes.settle_due, now=now, limit=limit))

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
        return await self._query(
            partial(
                queries.quote_cost,
                customer_id=cmd.customer_id,
                outcome_type=cmd.outcome_type,
                quantity=cmd.quantity,
                at=cmd.at or now,
            )
        )

    async def get_balance(self, cmd: GetBalance, now: datetime) -> Balance:
        cmd.validate()
        return await self._query(partial(queries.balance, customer_id=cmd.customer_id, now=now))

    async def list_entries(self, customer_id: str, *, after: int, limit: int) -> list[Entry]:
        return await self._query(
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

    # ---- the reporter's bookkeeping --------------------------------------------------------

    async def write(self, job: Callable[[Connection], T]) -> T:
        """Run ``job`` in the next group commit (the reporter's bookkeeping goes this way)."""
        return await self._writer.submit(lambda s: job(s.conn))

    async def read(self, job: Callable[[Connection], T]) -> T:
        """Run a read on its own snapshot, never waiting for the writer."""
        return await self._engines.reads.run(partial(_in_snapshot, job))


def _in_snapshot(job: Callable[[Connection], T], conn: Connection) -> T:
    """One transaction, so every statement of ``job`` sees the same database."""
    with conn.begin():
        return job(conn)
