"""The RatingService servicer: it only translates (proto in, store call, proto out).

Handlers raise; ``api.errors.ErrorInterceptor``, applied at registration, turns
what they raise into the call's rich status.
"""

from __future__ import annotations

from rating_client.v1 import rating_pb2 as pb
from rating_client.v1 import rating_pb2_grpc

from rating_service.api import convert, wire
from rating_service.api.errors import to_status
from rating_service.api.interceptors import Context
from rating_service.domain.commands import (
    QuoteCost,
    page_size_of,
    require_customer_id,
)
from rating_service.domain.errors import DomainError, InvalidArgument
from rating_service.service.clock import Clock, system_clock
from rating_service.service.store import LedgerStore

MAX_BATCH = 1000


class RatingServicer(rating_pb2_grpc.RatingServiceServicer):
    def __init__(self, store: LedgerStore, clock: Clock = system_clock) -> None:
        self._store = store
        self._clock = clock

    async def RecordOutcome(
        self, request: pb.RecordOutcomeRequest, context: Context
    ) -> pb.RecordOutcomeResponse:
        cmd = convert.record_outcome_in(request)
        return convert.outcome_recorded_out(await self._store.record_outcome(cmd, self._clock()))

    async def RecordOutcomes(
        self, request: pb.RecordOutcomesRequest, context: Context
    ) -> pb.RecordOutcomesResponse:
        count = len(request.requests)
        if not 1 <= count <= MAX_BATCH:
            raise InvalidArgument.field(
                "requests", f"must hold 1 to {MAX_BATCH} items, got {count}"
            )
        results: list[pb.RecordOutcomeResult | None] = [None] * count
        commands = []
        positions = []
        for i, item in enumerate(request.requests):
            try:
                commands.append(convert.record_outcome_in(item, prefix=f"requests[{i}]."))
                positions.append(i)
            except DomainError as error:
                results[i] = pb.RecordOutcomeResult(error=to_status(error))
        answers = await self._store.record_outcomes(commands, self._clock())
        for i, answer in zip(positions, answers, strict=True):
            results[i] = (
                pb.RecordOutcomeResult(error=to_status(answer))
                if isinstance(answer, Exception)
                else pb.RecordOutcomeResult(response=convert.outcome_recorded_out(answer))
            )
        return pb.RecordOutcomesResponse(results=[r for r in results if r is not None])

    async def ConfirmOutcome(
        self, request: pb.ConfirmOutcomeRequest, context: Context
    ) -> pb.ConfirmOutcomeResponse:
        cmd = convert.confirm_outcome_in(request)
        return convert.outcome_confirmed_out(await self._store.confirm_outcome(cmd, self._clock()))

    async def ReverseOutcome(
        self, request: pb.ReverseOutcomeRequest, context: Context
    ) -> pb.ReverseOutcomeResponse:
        cmd = convert.reverse_outcome_in(request)
        return convert.outcome_undone_out(await self._store.reverse_outcome(cmd, self._clock()))

    async def QuoteCost(
        self, request: pb.QuoteCostRequest, context: Context
    ) -> pb.QuoteCostResponse:
        cmd = QuoteCost(
            customer_id=request.customer_id,
            outcome_type=request.outcome_type,
            quantity=request.quantity,
            at=wire.time_in(request, "at"),
        )
        cmd.validate()
        quote = await self._store.quote_cost(
            cmd.customer_id, cmd.outcome_type, cmd.quantity, cmd.at or self._clock()
        )
        return convert.quote_out(quote)

    async def ConsumeBucket(
        self, request: pb.ConsumeBucketRequest, context: Context
    ) -> pb.ConsumeBucketResponse:
        cmd = convert.consume_bucket_in(request)
        return convert.consumed_out(await self._store.consume_bucket(cmd, self._clock()))

    async def CreateBucket(self, request: pb.CreateBucketRequest, context: Context) -> pb.Bucket:
        cmd = convert.create_bucket_in(request)
        now = self._clock()
        created = await self._store.create_bucket(cmd, now)
        return convert.bucket_out(
            created.bucket, now, replayed=created.replayed, sequence=created.ledger_sequence
        )

    async def GetBalance(
        self, request: pb.GetBalanceRequest, context: Context
    ) -> pb.GetBalanceResponse:
        require_customer_id(request.customer_id)
        now = self._clock()
        return convert.balance_out(await self._store.get_balance(request.customer_id, now), now)

    async def ListLedgerEntries(
        self, request: pb.ListLedgerEntriesRequest, context: Context
    ) -> pb.ListLedgerEntriesResponse:
        require_customer_id(request.customer_id)
        size = page_size_of(request.page_size)
        after = wire.page_token_in(request.page_token)
        found = await self._store.list_entries(request.customer_id, after=after, limit=size + 1)
        page = found[:size]
        token = wire.page_token_out(page[-1].sequence) if len(found) > size else ""
        return pb.ListLedgerEntriesResponse(
            entries=[convert.entry_out(e) for e in page], next_page_token=token
        )

    async def PutCustomer(
        self, request: pb.PutCustomerRequest, context: Context
    ) -> pb.PutCustomerResponse:
        cmd = convert.put_customer_in(request)
        return convert.customer_out(await self._store.put_customer(cmd, self._clock()))

    async def PutRateCard(
        self, request: pb.PutRateCardRequest, context: Context
    ) -> pb.PutRateCardResponse:
        cmd = convert.put_rate_card_in(request)
        put = await self._store.put_rate_card(cmd, self._clock())
        return pb.PutRateCardResponse(
            version=convert.rate_card_out(put.version), replayed=put.replayed
        )
