"""The RatingService servicer: it only translates (proto in, store call, proto out).

Every rule a request must follow is its domain command's ``validate``: the
store calls it for the commands it writes, the read handlers before reading.
Handlers raise; ``api.errors.ErrorInterceptor``, applied at registration,
turns what they raise into the call's rich status.

The translation is the ``convert_*`` modules, one per group of calls
(outcomes, buckets, catalog, reports), the servicer's only vocabulary:
requests become domain commands and results become responses; scalar values
(Money, times, durations) go through ``wire``. What cannot become a domain
value raises InvalidArgument there; whether a command is allowed is for its
``validate``.
"""

from __future__ import annotations

from rating_client.v1 import rating_pb2 as pb
from rating_client.v1 import rating_pb2_grpc

from rating_service.api import convert_buckets, convert_catalog, convert_outcomes, convert_reports
from rating_service.api.interceptors import Context
from rating_service.api.page_tokens import PageTokens
from rating_service.domain.commands import RecordOutcome, require_batch_size
from rating_service.domain.errors import InvalidArgument
from rating_service.service.clock import Clock, system_clock
from rating_service.service.store import LedgerStore


class RatingServicer(rating_pb2_grpc.RatingServiceServicer):
    def __init__(
        self, store: LedgerStore, page_token_key: bytes, clock: Clock = system_clock
    ) -> None:
        self._store = store
        self._clock = clock
        self._page_tokens = PageTokens(page_token_key, "ListLedgerEntries")

    async def RecordOutcome(
        self, request: pb.RecordOutcomeRequest, context: Context
    ) -> pb.RecordOutcomeResponse:
        cmd = convert_outcomes.record_outcome_in(request)
        return convert_outcomes.outcome_recorded_out(
            await self._store.record_outcome(cmd, self._clock())
        )

    async def RecordOutcomes(
        self, request: pb.RecordOutcomesRequest, context: Context
    ) -> pb.RecordOutcomesResponse:
        require_batch_size(len(request.requests))
        items = convert_outcomes.record_outcomes_in(request)
        commands = [item for item in items if isinstance(item, RecordOutcome)]
        answers = iter(await self._store.record_outcomes(commands, self._clock()))
        return convert_outcomes.record_outcomes_out(
            [item if isinstance(item, InvalidArgument) else next(answers) for item in items]
        )

    async def ConfirmOutcome(
        self, request: pb.ConfirmOutcomeRequest, context: Context
    ) -> pb.ConfirmOutcomeResponse:
        cmd = convert_outcomes.confirm_outcome_in(request)
        return convert_outcomes.outcome_confirmed_out(
            await self._store.confirm_outcome(cmd, self._clock())
        )

    async def ReverseOutcome(
        self, request: pb.ReverseOutcomeRequest, context: Context
    ) -> pb.ReverseOutcomeResponse:
        cmd = convert_outcomes.reverse_outcome_in(request)
        return convert_outcomes.outcome_undone_out(
            await self._store.reverse_outcome(cmd, self._clock())
        )

    async def QuoteCost(
        self, request: pb.QuoteCostRequest, context: Context
    ) -> pb.QuoteCostResponse:
        cmd = convert_buckets.quote_cost_in(request)
        return convert_buckets.quote_out(await self._store.quote_cost(cmd, self._clock()))

    async def ConsumeBucket(
        self, request: pb.ConsumeBucketRequest, context: Context
    ) -> pb.ConsumeBucketResponse:
        cmd = convert_buckets.consume_bucket_in(request)
        return convert_buckets.consumed_out(await self._store.consume_bucket(cmd, self._clock()))

    async def CreateBucket(self, request: pb.CreateBucketRequest, context: Context) -> pb.Bucket:
        cmd = convert_buckets.create_bucket_in(request)
        now = self._clock()
        created = await self._store.create_bucket(cmd, now)
        return convert_buckets.bucket_out(
            created.bucket, now, replayed=created.replayed, sequence=created.ledger_sequence
        )

    async def GetBalance(
        self, request: pb.GetBalanceRequest, context: Context
    ) -> pb.GetBalanceResponse:
        cmd = convert_buckets.get_balance_in(request)
        now = self._clock()
        return convert_buckets.balance_out(await self._store.get_balance(cmd, now), now)

    async def ListLedgerEntries(
        self, request: pb.ListLedgerEntriesRequest, context: Context
    ) -> pb.ListLedgerEntriesResponse:
        cmd = convert_reports.list_entries_in(request, self._page_tokens)
        cmd.validate()
        size = cmd.limit
        # One entry more than a page says whether another page follows.
        found = await self._store.list_entries(cmd.customer_id, after=cmd.after, limit=size + 1)
        page = found[:size]
        more = len(found) > size
        token = self._page_tokens.issue(cmd.customer_id, page[-1].sequence) if more else ""
        return pb.ListLedgerEntriesResponse(
            entries=[convert_reports.entry_out(e) for e in page], next_page_token=token
        )

    async def PutCustomer(
        self, request: pb.PutCustomerRequest, context: Context
    ) -> pb.PutCustomerResponse:
        cmd = convert_catalog.put_customer_in(request)
        return convert_catalog.customer_out(await self._store.put_customer(cmd, self._clock()))

    async def VoidBucket(
        self, request: pb.VoidBucketRequest, context: Context
    ) -> pb.VoidBucketResponse:
        cmd = convert_buckets.void_bucket_in(request)
        now = self._clock()
        return convert_buckets.bucket_voided_out(await self._store.void_bucket(cmd, now), now)

    async def PutSpendControls(
        self, request: pb.PutSpendControlsRequest, context: Context
    ) -> pb.PutSpendControlsResponse:
        cmd = convert_catalog.put_spend_controls_in(request)
        return convert_catalog.spend_controls_out(
            await self._store.put_spend_controls(cmd, self._clock())
        )

    async def WatchAlerts(  # type: ignore[override]
        self, request: pb.WatchAlertsRequest, context: Context
    ) -> None:
        """Written with ``context.write`` (not yielded), so the unary wrappers apply."""
        cmd = convert_catalog.watch_alerts_in(request)
        async for alert in self._store.watch_alerts(cmd):
            await context.write(convert_catalog.alert_out(alert))

    async def PutRateCard(
        self, request: pb.PutRateCardRequest, context: Context
    ) -> pb.PutRateCardResponse:
        cmd = convert_catalog.put_rate_card_in(request)
        put = await self._store.put_rate_card(cmd, self._clock())
        return pb.PutRateCardResponse(
            version=convert_catalog.rate_card_out(put.version), replayed=put.replayed
        )

    async def ExplainOutcome(
        self, request: pb.ExplainOutcomeRequest, context: Context
    ) -> pb.ExplainOutcomeResponse:
        cmd = convert_reports.explain_outcome_in(request)
        found = await self._store.explain_outcome(cmd)
        return convert_reports.explanation_out(found, self._clock())

    async def PreviewInvoice(
        self, request: pb.PreviewInvoiceRequest, context: Context
    ) -> pb.PreviewInvoiceResponse:
        cmd = convert_reports.preview_invoice_in(request)
        return convert_reports.invoice_out(await self._store.preview_invoice(cmd, self._clock()))

    async def SimulateRateCard(
        self, request: pb.SimulateRateCardRequest, context: Context
    ) -> pb.SimulateRateCardResponse:
        cmd = convert_reports.simulate_rate_card_in(request)
        return convert_reports.simulation_out(
            await self._store.simulate_rate_card(cmd, self._clock())
        )
