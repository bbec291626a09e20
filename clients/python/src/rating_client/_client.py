"""The async client: one method per RPC, plain values in and out.

Every write of the service is idempotent on a key the caller sends, so a
call that failed with UNAVAILABLE is sent again, the very same message, with
exponential backoff and full jitter; one the server refused with a
``google.rpc.RetryInfo`` (a caller past its rate limit) is sent again after
the delay it names. Nothing else is retried: DEADLINE_EXCEEDED in particular
means the call may still be running, and the caller's deadline is spent anyway. The deadline covers the whole call, retries and waits
included, so ``timeout`` bounds how long a method can take.
"""

# ``timeout`` becomes the gRPC deadline, which the server sees and honours;
# asyncio.timeout (what ASYNC109 asks for) would only stop waiting on this side.
# ruff: noqa: ASYNC109

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from types import TracebackType
from typing import Self, TypeVar

import grpc
from google.protobuf.message import Message

from rating_client import _convert
from rating_client._errors import (
    RatingError,
    UnavailableError,
    UnexpectedError,
    error_from_rpc_error,
    error_from_status,
)
from rating_client._money import decimal_to_money
from rating_client._types import (
    Alert,
    Balance,
    Bucket,
    BucketSource,
    BucketVoid,
    Confirmation,
    Consumption,
    Customer,
    InvoicePreview,
    LedgerEntry,
    NewOutcome,
    OutcomeExplanation,
    OutcomeRecorded,
    Quote,
    RateCardVersion,
    RecordState,
    Reversal,
    Simulation,
    SpendControls,
)
from rating_client.v1 import rating_pb2 as pb
from rating_client.v1 import rating_pb2_grpc

__all__ = ["RatingClient"]

_Reply = TypeVar("_Reply", bound=Message)
_Method = Callable[..., Awaitable[object]]


class RatingClient:
    """Typed async client of rating.v1.RatingService.

    Use it as ``async with RatingClient("host:port") as client: ...``. Given a
    ``channel``, the client uses it and leaves closing it to its owner;
    otherwise it opens a channel to ``target`` and closes it on exit: TLS when
    ``tls`` is true or any of ``root_certificates`` (PEM of the CA that signed
    the server's certificate; default the system's), ``certificate_chain`` and
    ``private_key`` (the client's certificate, for mutual TLS) is given, else
    plaintext. ``token`` is sent with every call as ``authorization: Bearer
    <token>`` (a server with RATING_AUTH_TOKENS_FILE requires it). Failures raise
    ``RatingError`` subclasses.
    """

    def __init__(
        self,
        target: str = "127.0.0.1:50051",
        *,
        channel: grpc.aio.Channel | None = None,
        token: str | None = None,
        tls: bool = False,
        root_certificates: bytes | None = None,
        certificate_chain: bytes | None = None,
        private_key: bytes | None = None,
        timeout: float = 10.0,
        max_attempts: int = 5,
        initial_backoff: float = 0.05,
        max_backoff: float = 2.0,
    ) -> None:
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if initial_backoff < 0 or max_backoff < initial_backoff:
            raise ValueError("backoffs must satisfy 0 <= initial_backoff <= max_backoff")
        if (certificate_chain is None) != (private_key is None):
            raise ValueError("give both certificate_chain and private_key, or neither")
        if token is not None and (not token or any(c in token for c in " \r\n")):
            raise ValueError("token must be non-empty, without spaces or line breaks")
        secure = tls or root_certificates is not None or certificate_chain is not None
        if channel is not None and secure:
            raise ValueError("TLS settings apply to the channel the client opens, not to channel")
        self._owns_channel = channel is None
        if channel is not None:
            self._channel = channel
        elif secure:
            credentials = grpc.ssl_channel_credentials(
                root_certificates, private_key, certificate_chain
            )
            self._channel = grpc.aio.secure_channel(target, credentials)
        else:
            self._channel = grpc.aio.insecure_channel(target)
        self._metadata: tuple[tuple[str, str], ...] = (
            () if token is None else (("authorization", f"Bearer {token}"),)
        )
        self._stub = rating_pb2_grpc.RatingServiceStub(self._channel)
        self._timeout = timeout
        self._max_attempts = max_attempts
        self._initial_backoff = initial_backoff
        self._max_backoff = max_backoff

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the channel if the client opened it."""
        if self._owns_channel:
            await self._channel.close()

    # Outcomes --------------------------------------------------------------

    async def record_outcome(
        self,
        *,
        customer_id: str,
        outcome_id: str,
        outcome_type: str,
        occurred_at: datetime | None = None,
        state: RecordState | None = None,
        attributes: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> OutcomeRecorded:
        """Rate and record one outcome; ``outcome_id`` is its idempotency key."""
        outcome = NewOutcome(
            customer_id=customer_id,
            outcome_id=outcome_id,
            outcome_type=outcome_type,
            occurred_at=occurred_at,
            state=state,
            attributes=attributes or {},
        )
        request = _convert.outcome_request(outcome)
        reply = await self._call(
            self._stub.RecordOutcome, request, pb.RecordOutcomeResponse, timeout
        )
        return _convert.outcome_recorded(reply)

    async def record_outcomes(
        self, *, outcomes: Sequence[NewOutcome], timeout: float | None = None
    ) -> list[OutcomeRecorded | RatingError]:
        """Record up to 1,000 outcomes; each item's result or error, in order.

        Item errors are returned, not raised, since one bad item never fails
        the others; a failure of the whole call is raised.
        """
        request = pb.RecordOutcomesRequest(
            requests=[_convert.outcome_request(outcome) for outcome in outcomes]
        )
        reply = await self._call(
            self._stub.RecordOutcomes, request, pb.RecordOutcomesResponse, timeout
        )
        return [_item_result(result) for result in reply.results]

    async def confirm_outcome(
        self, *, customer_id: str, outcome_id: str, timeout: float | None = None
    ) -> Confirmation:
        """Settle a pending outcome now."""
        request = pb.ConfirmOutcomeRequest(customer_id=customer_id, outcome_id=outcome_id)
        reply = await self._call(
            self._stub.ConfirmOutcome, request, pb.ConfirmOutcomeResponse, timeout
        )
        return _convert.confirmation(reply)

    async def reverse_outcome(
        self,
        *,
        customer_id: str,
        outcome_id: str,
        reason: str = "",
        timeout: float | None = None,
    ) -> Reversal:
        """Undo a recorded outcome; ``reason`` is part of the idempotent payload."""
        request = pb.ReverseOutcomeRequest(
            customer_id=customer_id, outcome_id=outcome_id, reason=reason
        )
        reply = await self._call(
            self._stub.ReverseOutcome, request, pb.ReverseOutcomeResponse, timeout
        )
        return _convert.reversal(reply)

    async def quote_cost(
        self,
        *,
        customer_id: str,
        outcome_type: str,
        quantity: int,
        at: datetime | None = None,
        timeout: float | None = None,
    ) -> Quote:
        """Price ``quantity`` more outcomes at ``at`` (None: now) without writing."""
        request = pb.QuoteCostRequest(
            customer_id=customer_id,
            outcome_type=outcome_type,
            quantity=quantity,
            at=_convert.optional_timestamp(at),
        )
        reply = await self._call(self._stub.QuoteCost, request, pb.QuoteCostResponse, timeout)
        return _convert.quote(reply)

    # Buckets ---------------------------------------------------------------

    async def consume_bucket(
        self,
        *,
        customer_id: str,
        request_id: str,
        quantity: int,
        outcome_type: str | None = None,
        bucket_id: str | None = None,
        reason: str = "",
        timeout: float | None = None,
    ) -> Consumption:
        """Draw ``quantity`` units, all or nothing; ``request_id`` is the idempotency key."""
        request = pb.ConsumeBucketRequest(
            customer_id=customer_id,
            request_id=request_id,
            outcome_type=outcome_type or "",
            quantity=quantity,
            bucket_id=bucket_id or "",
            reason=reason,
        )
        reply = await self._call(
            self._stub.ConsumeBucket, request, pb.ConsumeBucketResponse, timeout
        )
        return _convert.consumption(reply)

    async def create_bucket(
        self,
        *,
        customer_id: str,
        bucket_id: str,
        outcome_type: str,
        quantity: int | None = None,
        funding: Decimal | None = None,
        currency_code: str = "",
        unit_price: Decimal | None = None,
        valid_from: datetime | None = None,
        valid_until: datetime | None = None,
        source: BucketSource | None = None,
        priority: int = 0,
        timeout: float | None = None,
    ) -> Bucket:
        """Create a bucket of ``quantity`` units, or of ``funding`` / unit price.

        ``currency_code`` is that of ``funding`` and ``unit_price``. Absent
        times and price take the server's defaults (now, a year later, the
        rate card's price).
        """
        if (quantity is None) == (funding is None):
            raise ValueError("give exactly one of quantity and funding")
        request = pb.CreateBucketRequest(
            customer_id=customer_id,
            bucket_id=bucket_id,
            outcome_type=outcome_type,
            valid_from=_convert.optional_timestamp(valid_from),
            valid_until=_convert.optional_timestamp(valid_until),
            unit_price=_convert.optional_money(unit_price, currency_code),
            source=_convert.bucket_source(source),
            priority=priority,
        )
        if quantity is not None:
            request.quantity = quantity
        elif funding is not None:
            request.funding.CopyFrom(decimal_to_money(funding, currency_code))
        reply = await self._call(self._stub.CreateBucket, request, pb.Bucket, timeout)
        return _convert.bucket(reply)

    async def void_bucket(
        self, *, customer_id: str, bucket_id: str, reason: str = "", timeout: float | None = None
    ) -> BucketVoid:
        """End a bucket now: its undrawn units expire. Idempotent on the bucket; a retry with
        another ``reason`` raises ``AlreadyExistsError``."""
        request = pb.VoidBucketRequest(customer_id=customer_id, bucket_id=bucket_id, reason=reason)
        reply = await self._call(self._stub.VoidBucket, request, pb.VoidBucketResponse, timeout)
        return _convert.bucket_void(reply)

    # Spend controls --------------------------------------------------------

    async def put_spend_controls(
        self,
        *,
        customer_id: str,
        request_id: str,
        currency_code: str,
        alert_thresholds: Sequence[Decimal] = (),
        hard_limit: Decimal | None = None,
        timeout: float | None = None,
    ) -> SpendControls:
        """Replace the customer's monthly alert thresholds and hard limit (amounts in
        ``currency_code``, the rate card's); ``request_id`` is the idempotency key."""
        request = pb.PutSpendControlsRequest(
            customer_id=customer_id,
            request_id=request_id,
            alert_thresholds=[decimal_to_money(t, currency_code) for t in alert_thresholds],
            hard_limit=_convert.optional_money(hard_limit, currency_code),
        )
        reply = await self._call(
            self._stub.PutSpendControls, request, pb.PutSpendControlsResponse, timeout
        )
        return _convert.spend_controls(reply)

    async def watch_alerts(
        self, *, customer_id: str = "", after_alert_id: int = 0
    ) -> AsyncGenerator[Alert, None]:
        """Yield every alert after ``after_alert_id``, then each new one, until cancelled.

        When the stream breaks (the server shuts down: ``UnavailableError``), watch again
        with ``after_alert_id`` set to the last alert's id: nothing is lost or repeated.
        """
        call = self._stub.WatchAlerts(
            pb.WatchAlertsRequest(customer_id=customer_id, after_alert_id=after_alert_id),
            metadata=self._metadata,
        )
        try:
            async for message in call:
                yield _convert.alert(message)
        except grpc.aio.AioRpcError as rpc_error:
            raise error_from_rpc_error(rpc_error) from rpc_error
        finally:
            call.cancel()

    # Reads -----------------------------------------------------------------

    async def explain_outcome(
        self, *, customer_id: str, outcome_id: str, timeout: float | None = None
    ) -> OutcomeExplanation:
        """Return what decided the outcome's charge: price, bucket, history, entries, Stripe."""
        request = pb.ExplainOutcomeRequest(customer_id=customer_id, outcome_id=outcome_id)
        reply = await self._call(
            self._stub.ExplainOutcome, request, pb.ExplainOutcomeResponse, timeout
        )
        return _convert.explanation(reply)

    async def preview_invoice(
        self,
        *,
        customer_id: str,
        period_start: datetime | None = None,
        timeout: float | None = None,
    ) -> InvoicePreview:
        """Return the customer's bill for the month opening at ``period_start`` (None: now)."""
        request = pb.PreviewInvoiceRequest(
            customer_id=customer_id, period_start=_convert.optional_timestamp(period_start)
        )
        reply = await self._call(
            self._stub.PreviewInvoice, request, pb.PreviewInvoiceResponse, timeout
        )
        return _convert.invoice(reply)

    async def simulate_rate_card(
        self,
        *,
        prices: Mapping[str, Decimal],
        currency_code: str,
        rate_card_id: str | None = None,
        customer_ids: Sequence[str] | None = None,
        period_start: datetime | None = None,
        timeout: float | None = None,
    ) -> Simulation:
        """Re-price a month under draft ``prices`` (outcome type -> unit price), for the
        customers on ``rate_card_id`` or those in ``customer_ids``; nothing is stored."""
        request = pb.SimulateRateCardRequest(
            currency_code=currency_code,
            period_start=_convert.optional_timestamp(period_start),
            prices=[
                pb.Price(outcome_type=kind, unit_price=decimal_to_money(price, currency_code))
                for kind, price in prices.items()
            ],
        )
        if rate_card_id is not None:
            request.rate_card_id = rate_card_id
        if customer_ids is not None:
            request.customer_list.customer_ids.extend(customer_ids)
        reply = await self._call(
            self._stub.SimulateRateCard, request, pb.SimulateRateCardResponse, timeout
        )
        return _convert.simulation(reply)

    async def get_balance(self, *, customer_id: str, timeout: float | None = None) -> Balance:
        """Return the customer's buckets and this month's usage and charges."""
        request = pb.GetBalanceRequest(customer_id=customer_id)
        reply = await self._call(self._stub.GetBalance, request, pb.GetBalanceResponse, timeout)
        return _convert.balance(reply)

    async def list_ledger_entries(
        self,
        *,
        customer_id: str,
        page_size: int | None = None,
        page_token: str = "",
        timeout: float | None = None,
    ) -> tuple[list[LedgerEntry], str]:
        """Return one page of the ledger and the next page's token ("" at the end).

        ``page_size`` is 1 to 1,000; None lets the server choose (100).
        """
        request = pb.ListLedgerEntriesRequest(
            customer_id=customer_id, page_size=page_size or 0, page_token=page_token
        )
        reply = await self._call(
            self._stub.ListLedgerEntries, request, pb.ListLedgerEntriesResponse, timeout
        )
        return [_convert.ledger_entry(e) for e in reply.entries], reply.next_page_token

    async def iter_ledger_entries(
        self,
        *,
        customer_id: str,
        page_size: int | None = None,
        timeout: float | None = None,
    ) -> AsyncIterator[LedgerEntry]:
        """Yield the whole ledger in sequence order, fetching page after page.

        ``timeout`` applies to each page, not to the whole walk.
        """
        page_token = ""
        while True:
            entries, page_token = await self.list_ledger_entries(
                customer_id=customer_id,
                page_size=page_size,
                page_token=page_token,
                timeout=timeout,
            )
            for entry in entries:
                yield entry
            if not page_token:
                return

    # Configuration ---------------------------------------------------------

    async def put_customer(
        self,
        *,
        customer_id: str,
        rate_card_id: str,
        stripe_customer_id: str | None = None,
        timeout: float | None = None,
    ) -> Customer:
        """Create or replace a customer; None for ``stripe_customer_id`` means not known yet."""
        request = pb.PutCustomerRequest(
            customer_id=customer_id,
            rate_card_id=rate_card_id,
            stripe_customer_id=stripe_customer_id or "",
        )
        reply = await self._call(self._stub.PutCustomer, request, pb.PutCustomerResponse, timeout)
        return _convert.customer(reply)

    async def put_rate_card(
        self,
        *,
        rate_card_id: str,
        currency_code: str,
        prices: Mapping[str, Decimal],
        settlement_windows: Mapping[str, timedelta] | None = None,
        effective_from: datetime | None = None,
        timeout: float | None = None,
    ) -> RateCardVersion:
        """Append a rate-card version with a price per outcome type.

        A type missing from ``settlement_windows`` gets the server's default
        (24 hours); ``effective_from`` None means the server's default.
        """
        request = pb.PutRateCardRequest(
            rate_card_id=rate_card_id,
            effective_from=_convert.optional_timestamp(effective_from),
            currency_code=currency_code,
            prices=_convert.prices(currency_code, prices, settlement_windows or {}),
        )
        reply = await self._call(self._stub.PutRateCard, request, pb.PutRateCardResponse, timeout)
        return _convert.rate_card_version(reply)

    # Transport -------------------------------------------------------------

    async def _call(
        self,
        method: _Method,
        request: Message,
        reply_type: type[_Reply],
        timeout: float | None,
    ) -> _Reply:
        """Send ``request``, retrying UNAVAILABLE (and what the server asks to retry later)
        within one deadline for the whole call."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (self._timeout if timeout is None else timeout)
        attempt = 1
        while True:
            try:
                reply = await method(
                    request, timeout=max(deadline - loop.time(), 0.0), metadata=self._metadata
                )
            except grpc.aio.AioRpcError as rpc_error:
                error = error_from_rpc_error(rpc_error)
                delay = self._delay_before_retry(error, attempt)
                if (
                    delay is None
                    or attempt >= self._max_attempts
                    or loop.time() + delay >= deadline
                ):
                    raise error from rpc_error
            else:
                if not isinstance(reply, reply_type):
                    raise TypeError(f"expected {reply_type.__name__}, got {type(reply).__name__}")
                return reply
            await asyncio.sleep(delay)
            attempt += 1

    def _delay_before_retry(self, error: RatingError, attempt: int) -> float | None:
        """Seconds to wait before sending again; None when ``error`` is not to be retried."""
        if error.retry_delay is not None:
            return error.retry_delay + random.uniform(0.0, self._initial_backoff)
        if isinstance(error, UnavailableError):
            return self._backoff(attempt)
        return None

    def _backoff(self, attempt: int) -> float:
        """Full jitter: a uniform wait up to the capped exponential bound."""
        bound = min(self._max_backoff, self._initial_backoff * 2.0 ** min(attempt - 1, 64))
        return random.uniform(0.0, bound)


def _item_result(result: pb.RecordOutcomeResult) -> OutcomeRecorded | RatingError:
    """Return one RecordOutcomes item as its result or its error."""
    which = result.WhichOneof("result")
    if which == "response":
        return _convert.outcome_recorded(result.response)
    if which == "error":
        return error_from_status(result.error)
    return UnexpectedError(grpc.StatusCode.UNKNOWN, "the server sent an empty item result")
