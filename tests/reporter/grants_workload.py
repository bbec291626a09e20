"""One workload of buckets drawn by outcomes, by hand and voided, for the robustness tests.

The same workload runs with Stripe failing one call in five, with ``serve``
SIGKILLed mid-reporting, and across a fail-over of two replicas; each run must
end in the same state: Stripe's meter total per customer equals the ledger's
net usage, each bucket has exactly one live credit grant worth what the ledger
says it is worth (domain/grants.py), and the request log shows nothing created
or voided twice and no meter event identifier carrying two values.

Per customer (a bucket of 30 units at the card's 0.99):
- phase 1: 16 confirmed outcomes and 4 pending ones (their units held), a manual
  draw of 3;
- phase 2: 2 confirmed outcomes reversed (their units back), a second manual draw
  of 2 for every other customer, and every third customer's bucket voided (its
  undrawn units expire; the 4 held stay with their outcomes);
- phase 3: of the 4 pending outcomes, 2 released (on a voided bucket their units
  expire then, and leave the grant) and 2 confirmed; 10 more outcomes.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

import grpc
import reporter_support as rs
from rating_client.v1 import rating_pb2 as pb
from rating_client.v1 import rating_pb2_grpc

from rating_service.testing.stripe_server import StripeTestServer

QUANTITY = 30
CENTS = 99
_T = TypeVar("_T")
RETRYABLE = (
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.CANCELLED,
)
"""What a client sees while the service is killed and restarting."""
CALL_TIMEOUT = 10.0
RETRY_FOR = 120.0


async def until_done(make_call: Callable[[], Awaitable[_T]]) -> _T:
    """Retry an idempotent call while the service is down or restarting (bounded)."""
    deadline = time.monotonic() + RETRY_FOR
    while True:
        try:
            return await make_call()
        except grpc.aio.AioRpcError as error:
            if error.code() not in RETRYABLE or time.monotonic() > deadline:
                raise
        await asyncio.sleep(0.05)


@dataclass
class GrantsWorkload:
    customers: int = 6
    voided_units: dict[str, int] = field(default_factory=dict)
    """Units each voided bucket's void expired (from VoidBucket's answer)."""
    draws: dict[str, tuple[str, int]] = field(default_factory=dict)
    """Manual draws by request id: (customer, units)."""

    @property
    def stripe_ids(self) -> dict[str, str]:
        return {f"gw-{i}": f"cus_gw_{i}" for i in range(self.customers)}

    def bucket(self, customer: str) -> str:
        return f"bucket-{customer}"

    def voids(self, customer: str) -> bool:
        return int(customer.rsplit("-", 1)[1]) % 3 == 0

    async def set_up(
        self, stub: rating_pb2_grpc.RatingServiceStub, server: StripeTestServer
    ) -> None:
        await until_done(lambda: rs.put_card(stub, "standard", "0.99"))
        for customer, stripe_id in self.stripe_ids.items():
            server.add_customer(stripe_id)
            await until_done(
                lambda c=customer, s=stripe_id: rs.put_customer(stub, c, s, "standard")
            )
            await until_done(lambda c=customer: rs.create_bucket(stub, c, self.bucket(c), QUANTITY))

    async def _record(
        self, stub: rating_pb2_grpc.RatingServiceStub, name: str, count: int, pending: bool
    ) -> None:
        batch = pb.RecordOutcomesRequest(
            requests=[
                rs.outcome(c, f"{c}-{name}{i}", pending=pending)
                for c in self.stripe_ids
                for i in range(count)
            ]
        )
        reply = await until_done(
            lambda: stub.RecordOutcomes(batch, timeout=CALL_TIMEOUT, wait_for_ready=True)
        )
        assert all(r.WhichOneof("result") == "response" for r in reply.results), reply

    async def _draw(
        self, stub: rating_pb2_grpc.RatingServiceStub, customer: str, request_id: str, units: int
    ) -> None:
        request = pb.ConsumeBucketRequest(
            customer_id=customer,
            request_id=request_id,
            bucket_id=self.bucket(customer),
            quantity=units,
            reason="manual redemption",
        )
        await until_done(
            lambda: stub.ConsumeBucket(request, timeout=CALL_TIMEOUT, wait_for_ready=True)
        )
        self.draws[request_id] = (customer, units)

    def drawn_by_hand(self, customer: str) -> int:
        return sum(units for c, units in self.draws.values() if c == customer)

    async def _reverse(
        self, stub: rating_pb2_grpc.RatingServiceStub, customer: str, outcome_id: str
    ) -> None:
        request = pb.ReverseOutcomeRequest(
            customer_id=customer, outcome_id=outcome_id, reason="reopened"
        )
        await until_done(
            lambda: stub.ReverseOutcome(request, timeout=CALL_TIMEOUT, wait_for_ready=True)
        )

    async def phase_1(self, stub: rating_pb2_grpc.RatingServiceStub) -> None:
        await self._record(stub, "a", 16, pending=False)
        await self._record(stub, "p", 4, pending=True)
        for c in self.stripe_ids:
            await self._draw(stub, c, f"{c}-draw-1", 3)

    async def phase_2(self, stub: rating_pb2_grpc.RatingServiceStub) -> None:
        for i, c in enumerate(self.stripe_ids):
            for j in range(2):
                await self._reverse(stub, c, f"{c}-a{j}")
            if i % 2 == 0:
                await self._draw(stub, c, f"{c}-draw-2", 2)
            if self.voids(c):
                request = pb.VoidBucketRequest(
                    customer_id=c, bucket_id=self.bucket(c), reason="refunded"
                )
                answer = await until_done(
                    lambda r=request: stub.VoidBucket(r, timeout=CALL_TIMEOUT, wait_for_ready=True)
                )
                self.voided_units[c] = answer.units_expired

    async def phase_3(self, stub: rating_pb2_grpc.RatingServiceStub) -> None:
        for c in self.stripe_ids:
            for j in range(2):
                await self._reverse(stub, c, f"{c}-p{j}")
            for j in range(2, 4):
                request = pb.ConfirmOutcomeRequest(customer_id=c, outcome_id=f"{c}-p{j}")
                await until_done(
                    lambda r=request: stub.ConfirmOutcome(
                        r, timeout=CALL_TIMEOUT, wait_for_ready=True
                    )
                )
        await self._record(stub, "z", 10, pending=False)

    async def run(self, stub: rating_pb2_grpc.RatingServiceStub, pause: float = 0.0) -> None:
        for phase in (self.phase_1, self.phase_2, self.phase_3):
            await phase(stub)
            await asyncio.sleep(pause)

    def grant_cents(self, customer: str) -> int:
        """What the bucket's live grant must be worth at the end, in cents."""
        units = QUANTITY - self.drawn_by_hand(customer)
        if self.voids(customer):
            units -= self.voided_units[customer] + 2  # the void, then the 2 released
        return units * CENTS

    async def ledger_usage(self, stub: rating_pb2_grpc.RatingServiceStub) -> dict[str, int]:
        return await rs.ledger_usage_by_customer(stub, self.stripe_ids)

    def stripe_usage(self, server: StripeTestServer) -> dict[str, int]:
        return {c: server.state.meter_totals(s, rs.EVENT_NAME) for c, s in self.stripe_ids.items()}

    def live_grants(self, server: StripeTestServer) -> dict[str, list[int]]:
        """Each bucket's live grants (cents), from Stripe's state."""
        return {
            c: [
                g["amount"]["monetary"]["value"]
                for g in server.state.grants_for(s)
                if g["voided_at"] is None and g["metadata"].get("bucket_id") == self.bucket(c)
            ]
            for c, s in self.stripe_ids.items()
        }

    def expected_grants(self) -> dict[str, list[int]]:
        return {c: [cents] if (cents := self.grant_cents(c)) else [] for c in self.stripe_ids}

    async def settled(
        self, stub: rating_pb2_grpc.RatingServiceStub, server: StripeTestServer
    ) -> bool:
        """Stripe holds the ledger's usage and the grants the ledger wants."""
        return (
            self.stripe_usage(server) == await until_done(lambda: self.ledger_usage(stub))
            and self.live_grants(server) == self.expected_grants()
        )


def sent_twice(server: StripeTestServer) -> dict[str, object]:
    """From the request log: what Stripe was made to do more than once (empty: nothing).

    A grant created twice for one bucket version, a grant voided twice, an identifier
    sent with two values, a cancel applied twice (retries after a lost answer replay
    their saved answer and are not counted; a meter event re-sent after a crash is
    deduplicated by its identifier, and must carry the same value).
    """
    created: Counter[tuple[str, str, str]] = Counter()
    voided: Counter[str] = Counter()
    cancelled: Counter[str] = Counter()
    values: dict[str, set[int]] = {}
    for r in server.requests:
        if not r.applied or r.replayed or r.params is None:
            continue
        if r.operation_id == "PostBillingCreditGrants":
            metadata = r.params.get("metadata", {})
            created[
                (
                    metadata.get("rating_customer_id", ""),
                    metadata.get("bucket_id", metadata.get("owed_back", "")),
                    metadata.get("grant_version", "1"),
                )
            ] += 1
        elif r.operation_id == "PostBillingCreditGrantsIdVoid":
            voided[r.path] += 1
        elif r.operation_id == "PostV2BillingMeterEventAdjustments":
            cancelled[r.params["cancel"]["identifier"]] += 1
        elif r.operation_id == "PostV2BillingMeterEventStream":
            for e in r.params["events"]:
                values.setdefault(e["identifier"], set()).add(int(e["payload"]["value"]))
    twice: dict[str, object] = {
        "grants created twice": [k for k, n in created.items() if n > 1],
        "grants voided twice": [k for k, n in voided.items() if n > 1],
        "cancels applied twice": [k for k, n in cancelled.items() if n > 1],
        "identifiers with two values": [k for k, v in values.items() if len(v) > 1],
        "events counted twice": rs.duplicate_identifiers(server),
    }
    return {k: v for k, v in twice.items() if v}
