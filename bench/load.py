"""Load generator: ``python -m bench.load --target HOST:PORT`` against any rating-service.

It puts its own rate card, customers and buckets (every id starts with a run
id, so it can run against the same server again and again), then drives a
realistic mix of RecordOutcome (settled and pending), RecordOutcomes,
ReverseOutcome, QuoteCost and ConsumeBucket at a fixed concurrency or a fixed
rate, and resends a share of the acknowledged writes to check that each comes
back as a replay of the same ledger entry. It speaks to the wire through the
generated grpc.aio stubs (not the high-level client), over several channels.

At the end it reads every customer's ledger back and checks that it holds
exactly what was acknowledged: each acknowledged outcome, reversal and
consumption once, at the sequence the server answered, and nothing for calls
that failed with a definite error. A call whose fate the client cannot know
(DEADLINE_EXCEEDED, UNAVAILABLE, ...) is retried like a real client would and,
if it never got an answer, may or may not be in the ledger: it is reported,
not counted as a failure. ``rating-service verify`` then checks the rest
(hash chain, zero-sum postings, stored balances).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import random
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, TextIO

import grpc
from google.type import money_pb2
from rating_client.v1 import rating_pb2 as pb
from rating_client.v1 import rating_pb2_grpc

from bench.driver import (
    OK,
    Channels,
    DriveResult,
    Plan,
    Progress,
    Recorder,
    Step,
    code_name,
    drive,
    format_table,
    status_name,
)

DEFAULT_MIX = "settled=70,pending=20,reverse=5,quote=5"
OPERATIONS = ("settled", "pending", "reverse", "quote", "consume")
OUTCOME_TYPE = "resolution"
BUCKET_UNITS = 1_000_000_000
"""Large enough that ConsumeBucket never runs out during a run."""
AMBIGUOUS = frozenset({"DEADLINE_EXCEEDED", "CANCELLED", "UNKNOWN", "INTERNAL", "UNAVAILABLE"})
"""Failures after which the client cannot know whether the write happened."""
RETRYABLE = frozenset({"UNAVAILABLE", "DEADLINE_EXCEEDED", "RESOURCE_EXHAUSTED"})
"""Failures a client sends again, the very same request (every write is idempotent)."""
MAX_REVERSIBLE = 100_000
"""Reversal candidates kept (a random sample of acknowledged outcomes beyond that)."""
VERIFY_PAGE = 1000
VERIFY_PARALLEL = 16


# ---- the mix ------------------------------------------------------------------------


@dataclass(frozen=True)
class Mix:
    """Shares of operations, e.g. ``settled=70,pending=20,reverse=5,quote=5``."""

    weights: dict[str, float]

    @classmethod
    def parse(cls, text: str) -> Mix:
        weights: dict[str, float] = {}
        for part in filter(None, (p.strip() for p in text.split(","))):
            name, sep, value = part.partition("=")
            name = name.strip()
            if not sep or name not in OPERATIONS:
                raise ValueError(f"{part!r}: expected one of {', '.join(OPERATIONS)} as name=share")
            weights[name] = float(value)
            if weights[name] < 0:
                raise ValueError(f"{part!r}: a share cannot be negative")
        if sum(weights.values()) <= 0:
            raise ValueError(f"{text!r}: the shares add up to nothing")
        return cls(weights)

    def pick(self, u: float) -> str:
        """The operation at ``u`` in [0, 1) of the cumulative shares."""
        total = sum(self.weights.values())
        running = 0.0
        for name, weight in self.weights.items():
            running += weight / total
            if u < running:
                return name
        return next(reversed(self.weights))

    def pending_share(self) -> float:
        """Among recorded outcomes, the share that is pending."""
        settled, pending = self.weights.get("settled", 0.0), self.weights.get("pending", 0.0)
        return pending / (settled + pending) if settled + pending else 0.0

    def __str__(self) -> str:
        return ",".join(f"{k}={v:g}" for k, v in self.weights.items())


# ---- what was acknowledged ----------------------------------------------------------


@dataclass
class Track:
    """One kind of write: which keys were acknowledged (at which sequence), which failed."""

    acked: dict[str, dict[str, tuple[int, bool]]] = field(default_factory=lambda: defaultdict(dict))
    """customer -> key -> (ledger sequence, pending)."""
    failed: dict[str, dict[str, str]] = field(default_factory=lambda: defaultdict(dict))
    """customer -> key -> status code of a definite failure (nothing may be written)."""
    ambiguous: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    """customer -> keys whose last answer leaves their fate unknown."""

    def ack(self, customer: str, key: str, sequence: int, pending: bool = False) -> None:
        self.acked[customer][key] = (sequence, pending)
        self.failed[customer].pop(key, None)
        self.ambiguous[customer].discard(key)

    def fail(self, customer: str, key: str, code: str, ambiguous: bool) -> None:
        if ambiguous:
            self.ambiguous[customer].add(key)
        else:
            self.failed[customer][key] = code

    def count(self) -> int:
        return sum(len(keys) for keys in self.acked.values())


@dataclass
class Ledger:
    """Everything the run wrote or tried to write, to check against the server's ledger."""

    outcomes: Track = field(default_factory=Track)
    reversals: Track = field(default_factory=Track)
    consumptions: Track = field(default_factory=Track)
    replays_ok: int = 0
    replay_problems: list[str] = field(default_factory=list)


class EntryView(NamedTuple):
    """The part of a ``LedgerEntry`` the check needs."""

    sequence: int
    kind: str
    outcome_id: str
    request_id: str


RECORD_KINDS = {"OUTCOME_HELD", "OUTCOME_RATED"}
END_KINDS = {"OUTCOME_REVERSED", "OUTCOME_RELEASED"}


@dataclass
class CustomerCheck:
    problems: list[str] = field(default_factory=list)
    ambiguous_written: int = 0
    ambiguous_absent: int = 0


def check_customer(
    customer: str, entries: list[EntryView], ledger: Ledger, prefix: str
) -> CustomerCheck:
    """Compare one customer's ledger with what the run was told; pure, so it is tested alone.

    Only ids that start with ``prefix`` (the run id) are this run's; a customer that
    existed before the run may have other entries too.
    """
    result = CustomerCheck()
    problems = result.problems
    for expected, entry in enumerate(entries, start=1):
        if entry.sequence != expected:
            problems.append(f"{customer}: sequence {entry.sequence} where {expected} was due")
            break
    records: dict[str, list[EntryView]] = defaultdict(list)
    ends: dict[str, list[EntryView]] = defaultdict(list)
    consumed: dict[str, list[EntryView]] = defaultdict(list)
    for entry in entries:
        if not (entry.outcome_id or entry.request_id).startswith(prefix):
            continue
        if entry.kind in RECORD_KINDS:
            records[entry.outcome_id].append(entry)
        elif entry.kind in END_KINDS:
            ends[entry.outcome_id].append(entry)
        elif entry.kind == "BUCKET_CONSUMED":
            consumed[entry.request_id].append(entry)

    for outcome_id, (sequence, pending) in ledger.outcomes.acked[customer].items():
        found = records.get(outcome_id, [])
        first = "OUTCOME_HELD" if pending else "OUTCOME_RATED"
        at_sequence = [e for e in found if e.sequence == sequence and e.kind == first]
        # A pending outcome may since have settled (one OUTCOME_RATED after its hold).
        extra_allowed = 1 if pending else 0
        if not at_sequence or len(found) > 1 + extra_allowed:
            problems.append(
                f"{customer}: outcome {outcome_id} acknowledged at sequence {sequence} as "
                f"{first}; the ledger has {_describe(found)}"
            )
    for outcome_id, (sequence, pending) in ledger.reversals.acked[customer].items():
        found = ends.get(outcome_id, [])
        kind = "OUTCOME_RELEASED" if pending else "OUTCOME_REVERSED"
        if len(found) != 1 or found[0].sequence != sequence or found[0].kind != kind:
            problems.append(
                f"{customer}: reversal of {outcome_id} acknowledged at sequence {sequence} as "
                f"{kind}; the ledger has {_describe(found)}"
            )
    for request_id, (sequence, _) in ledger.consumptions.acked[customer].items():
        found = consumed.get(request_id, [])
        if len(found) != 1 or found[0].sequence != sequence:
            problems.append(
                f"{customer}: consumption {request_id} acknowledged at sequence {sequence}; "
                f"the ledger has {_describe(found)}"
            )

    for track, written, what in (
        (ledger.outcomes, records, "outcome"),
        (ledger.reversals, ends, "reversal of"),
        (ledger.consumptions, consumed, "consumption"),
    ):
        acked, failed, ambiguous = (
            track.acked[customer],
            track.failed[customer],
            track.ambiguous[customer],
        )
        for key, found in written.items():
            if key in acked:
                continue
            if key in ambiguous:
                result.ambiguous_written += 1
            elif key in failed:
                problems.append(
                    f"{customer}: {what} {key} failed with {failed[key]} but the ledger has "
                    f"{_describe(found)}"
                )
            else:
                problems.append(
                    f"{customer}: {what} {key} was never sent by this run but is in the ledger"
                )
        result.ambiguous_absent += sum(1 for key in ambiguous if key not in written)
    return result


def _describe(found: Iterable[EntryView]) -> str:
    listed = [f"{e.kind}@{e.sequence}" for e in found]
    return ", ".join(listed) if listed else "nothing"


@dataclass
class Verification:
    customers: int
    entries: int
    outcomes: int
    reversals: int
    consumptions: int
    ambiguous_written: int
    ambiguous_absent: int
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems

    def describe(self) -> str:
        verdict = (
            "every acknowledged write is in the ledger exactly once, at the sequence it was "
            "acknowledged with, and nothing that failed is: OK"
            if self.ok
            else f"FAILED ({len(self.problems):,} problems)"
        )
        lines = [
            f"ledger check: {self.outcomes:,} outcomes, {self.reversals:,} reversals and "
            f"{self.consumptions:,} consumptions acknowledged; {self.entries:,} entries read "
            f"back from {self.customers:,} customers: {verdict}"
        ]
        if self.ambiguous_written or self.ambiguous_absent:
            lines.append(
                f"calls that never got an answer (their fate unknown to the client): "
                f"{self.ambiguous_written:,} were written, {self.ambiguous_absent:,} were not"
            )
        lines += [f"  {p}" for p in self.problems[:20]]
        if len(self.problems) > 20:
            lines.append(f"  ... and {len(self.problems) - 20:,} more")
        return "\n".join(lines)


# ---- the workload -------------------------------------------------------------------


@dataclass(frozen=True)
class LoadConfig:
    target: str = "127.0.0.1:50051"
    duration: float = 30.0
    concurrency: int = 64
    rate: float | None = None
    customers: int = 200
    mix: Mix = field(default_factory=lambda: Mix.parse(DEFAULT_MIX))
    retry_share: float = 0.05
    batch: int = 0
    per_channel: int = 16
    timeout: float = 10.0
    attempts: int = 3
    warmup: float = 0.0
    calls: int | None = None
    """Stop after this many operations (a batch or a write and its resend count as one)."""
    seed: int | None = None
    run_id: str = ""
    verify: bool = True
    bucket_share: float = 0.5
    """Share of customers that get a large prepaid bucket (the others are charged)."""
    existing_customers: tuple[str, ...] = ()
    """Drive these customers (already on a rate card with a ``resolution`` price) instead of
    creating new ones: e.g. those of a bulk-filled ledger, whose chains are long."""


def new_run_id() -> str:
    return f"load-{uuid.uuid4().hex[:10]}"


class RatingLoad:
    """The rating workload: set-up, one step per call (or batch), and the final ledger check."""

    def __init__(self, config: LoadConfig, channels: Channels, recorder: Recorder) -> None:
        self.config = config
        self.run_id = config.run_id or new_run_id()
        self.recorder = recorder
        self.ledger = Ledger()
        self.mix = config.mix
        self.batch = config.batch
        self.retry_share = config.retry_share
        self._stubs = [rating_pb2_grpc.RatingServiceStub(c) for c in channels.channels]
        self._rng = random.Random(config.seed)
        self._ids = itertools.count(1)
        self._next_stub = itertools.cycle(self._stubs)
        self.customers = list(config.existing_customers) or [
            f"{self.run_id}-c{i}" for i in range(config.customers)
        ]
        with_bucket = max(1, round(len(self.customers) * config.bucket_share))
        self.bucketed = self.customers[:with_bucket] if config.bucket_share > 0 else []
        self._reversible: list[tuple[str, str, bool]] = []

    @property
    def rate_card_id(self) -> str:
        return f"{self.run_id}-card"

    # ---- set-up ----

    async def setup(self) -> None:
        """A rate card, the customers on it, and buckets for some of them (idempotent)."""
        if not self.config.existing_customers:
            await self._put_customers()
        await self._create_buckets()

    async def _put_customers(self) -> None:
        stub = self._stubs[0]
        price = money_pb2.Money(currency_code="USD", units=0, nanos=990_000_000)
        await stub.PutRateCard(
            pb.PutRateCardRequest(
                rate_card_id=self.rate_card_id,
                currency_code="USD",
                prices=[pb.Price(outcome_type=OUTCOME_TYPE, unit_price=price)],
            ),
            timeout=self.config.timeout,
        )
        await _bounded(
            (
                stub.PutCustomer(
                    pb.PutCustomerRequest(customer_id=c, rate_card_id=self.rate_card_id),
                    timeout=self.config.timeout,
                )
                for c in self.customers
            ),
            64,
        )

    async def _create_buckets(self) -> None:
        stub = self._stubs[0]
        await _bounded(
            (
                stub.CreateBucket(
                    pb.CreateBucketRequest(
                        customer_id=c,
                        bucket_id=f"{self.run_id}-bucket-{i}",
                        outcome_type=OUTCOME_TYPE,
                        quantity=BUCKET_UNITS,
                        source=pb.BUCKET_SOURCE_PURCHASE,
                    ),
                    timeout=self.config.timeout,
                )
                for i, c in enumerate(self.bucketed)
            ),
            64,
        )

    # ---- steps ----

    def step_for(self, worker: int) -> Step:
        """Worker ``worker`` sends on its own channel; -1 (open loop) takes them in turn."""
        if worker < 0:
            return lambda due: self.step(next(self._next_stub), due)
        stub = self._stubs[worker % len(self._stubs)]
        return lambda due: self.step(stub, due)

    async def step(self, stub: rating_pb2_grpc.RatingServiceStub, due: float) -> None:
        operation = self.mix.pick(self._rng.random())
        if operation in ("settled", "pending"):
            if self.batch > 0:
                await self._record_batch(stub, due)
            else:
                await self._record(stub, due, pending=operation == "pending")
        elif operation == "reverse":
            await self._reverse(stub, due)
        elif operation == "quote":
            await self._quote(stub, due)
        else:
            await self._consume(stub, due)

    def _new_id(self, tag: str) -> str:
        return f"{self.run_id}-{tag}{next(self._ids)}"

    def _outcome_request(self, pending: bool) -> pb.RecordOutcomeRequest:
        customer = self.customers[self._rng.randrange(len(self.customers))]
        outcome_id = self._new_id("o")
        return pb.RecordOutcomeRequest(
            customer_id=customer,
            outcome_id=outcome_id,
            outcome_type=OUTCOME_TYPE,
            state=pb.OUTCOME_STATE_PENDING if pending else pb.OUTCOME_STATE_CONFIRMED,
            attributes={"conversation_id": outcome_id, "answer_id": f"ans-{outcome_id}"},
        )

    def _remember(self, customer: str, outcome_id: str, pending: bool) -> None:
        """Keep an acknowledged outcome as a candidate for a later reversal."""
        if len(self._reversible) < MAX_REVERSIBLE:
            self._reversible.append((customer, outcome_id, pending))
        else:
            self._reversible[self._rng.randrange(MAX_REVERSIBLE)] = (customer, outcome_id, pending)

    def _should_resend(self) -> bool:
        return self.retry_share > 0 and self._rng.random() < self.retry_share

    async def _record(
        self, stub: rating_pb2_grpc.RatingServiceStub, due: float, *, pending: bool
    ) -> None:
        request = self._outcome_request(pending)
        customer, outcome_id = request.customer_id, request.outcome_id
        reply, code, ambiguous = await self._send("RecordOutcome", stub.RecordOutcome, request, due)
        if reply is None:
            self.ledger.outcomes.fail(customer, outcome_id, code, ambiguous)
            return
        self.ledger.outcomes.ack(customer, outcome_id, reply.ledger_sequence, pending)
        self._remember(customer, outcome_id, pending)
        if self._should_resend():
            again, code, _ = await self._send(
                "RecordOutcome", stub.RecordOutcome, request, time.perf_counter()
            )
            self._check_replay(f"outcome {outcome_id}", again, code, [reply.ledger_sequence])

    async def _record_batch(self, stub: rating_pb2_grpc.RatingServiceStub, due: float) -> None:
        share = self.mix.pending_share()
        items = [self._outcome_request(self._rng.random() < share) for _ in range(self.batch)]
        request = pb.RecordOutcomesRequest(requests=items)
        reply, code, ambiguous = await self._send(
            "RecordOutcomes", stub.RecordOutcomes, request, due, items=0
        )
        outcomes = self.ledger.outcomes
        if reply is None:
            for item in items:
                outcomes.fail(item.customer_id, item.outcome_id, code, ambiguous)
            return
        stats = self.recorder.stats.get("RecordOutcomes")
        sequences = []
        for item, result in zip(items, reply.results, strict=True):
            pending = item.state == pb.OUTCOME_STATE_PENDING
            if result.HasField("response"):
                outcomes.ack(
                    item.customer_id, item.outcome_id, result.response.ledger_sequence, pending
                )
                self._remember(item.customer_id, item.outcome_id, pending)
                sequences.append(result.response.ledger_sequence)
                if stats is not None:
                    stats.items += 1
            else:
                failure = code_name(result.error.code)
                outcomes.fail(item.customer_id, item.outcome_id, failure, ambiguous=False)
                if stats is not None:
                    stats.item_errors[failure] += 1
        if self._should_resend() and len(sequences) == len(items):
            again, code, _ = await self._send(
                "RecordOutcomes", stub.RecordOutcomes, request, time.perf_counter(), items=0
            )
            replies = [r.response for r in again.results] if again is not None else None
            self._check_replay(f"batch of {len(items)}", replies, code, sequences)

    async def _reverse(self, stub: rating_pb2_grpc.RatingServiceStub, due: float) -> None:
        if not self._reversible:
            await self._record(stub, due, pending=False)
            return
        index = self._rng.randrange(len(self._reversible))
        self._reversible[index], self._reversible[-1] = (
            self._reversible[-1],
            self._reversible[index],
        )
        customer, outcome_id, pending = self._reversible.pop()
        request = pb.ReverseOutcomeRequest(
            customer_id=customer, outcome_id=outcome_id, reason="reopened (load test)"
        )
        reply, code, ambiguous = await self._send(
            "ReverseOutcome", stub.ReverseOutcome, request, due
        )
        if reply is None:
            self.ledger.reversals.fail(customer, outcome_id, code, ambiguous)
            return
        self.ledger.reversals.ack(customer, outcome_id, reply.ledger_sequence, pending)
        if self._should_resend():
            again, code, _ = await self._send(
                "ReverseOutcome", stub.ReverseOutcome, request, time.perf_counter()
            )
            self._check_replay(f"reversal of {outcome_id}", again, code, [reply.ledger_sequence])

    async def _quote(self, stub: rating_pb2_grpc.RatingServiceStub, due: float) -> None:
        request = pb.QuoteCostRequest(
            customer_id=self.customers[self._rng.randrange(len(self.customers))],
            outcome_type=OUTCOME_TYPE,
            quantity=self._rng.randint(1, 100),
        )
        await self._send("QuoteCost", stub.QuoteCost, request, due)

    async def _consume(self, stub: rating_pb2_grpc.RatingServiceStub, due: float) -> None:
        if not self.bucketed:
            await self._quote(stub, due)
            return
        customer = self.bucketed[self._rng.randrange(len(self.bucketed))]
        request_id = self._new_id("r")
        request = pb.ConsumeBucketRequest(
            customer_id=customer,
            request_id=request_id,
            outcome_type=OUTCOME_TYPE,
            quantity=1,
            reason="load test",
        )
        reply, code, ambiguous = await self._send("ConsumeBucket", stub.ConsumeBucket, request, due)
        if reply is None:
            self.ledger.consumptions.fail(customer, request_id, code, ambiguous)
            return
        self.ledger.consumptions.ack(customer, request_id, reply.ledger_sequence)
        if self._should_resend():
            again, code, _ = await self._send(
                "ConsumeBucket", stub.ConsumeBucket, request, time.perf_counter()
            )
            self._check_replay(f"consumption {request_id}", again, code, [reply.ledger_sequence])

    # ---- sending ----

    async def _send(
        self,
        rpc: str,
        method: Callable[..., Any],
        request: Any,
        due: float,
        items: int = 1,
    ) -> tuple[Any, str, bool]:
        """Send, resending the same request after a retryable failure; (reply, code, ambiguous)."""
        ambiguous = False
        code = OK
        for attempt in range(self.config.attempts):
            started = due if attempt == 0 else time.perf_counter()
            try:
                reply = await method(request, timeout=self.config.timeout)
            except grpc.aio.AioRpcError as error:
                code = status_name(error.code())
                self.recorder.record(rpc, time.perf_counter() - started, code)
                ambiguous = code in AMBIGUOUS
                if code not in RETRYABLE:
                    break
                await asyncio.sleep(0.05 * 2**attempt * self._rng.random())
                continue
            self.recorder.record(rpc, time.perf_counter() - started, OK, items)
            return reply, OK, False
        return None, code, ambiguous

    def _check_replay(self, what: str, reply: Any, code: str, sequences: list[int]) -> None:
        replies = reply if isinstance(reply, list) else ([reply] if reply is not None else None)
        if replies is None:
            if code not in RETRYABLE:
                self.ledger.replay_problems.append(f"resent {what}: failed with {code}")
            return
        got = [r.ledger_sequence for r in replies]
        if all(r.replayed for r in replies) and got == sequences:
            self.ledger.replays_ok += 1
        else:
            self.ledger.replay_problems.append(
                f"resent {what}: replayed={[r.replayed for r in replies][:5]} "
                f"sequences {got[:5]} instead of {sequences[:5]}"
            )

    # ---- the final check ----

    async def verify(self) -> Verification:
        """Read every customer's ledger back and compare it with what was acknowledged."""
        stub = self._stubs[0]
        semaphore = asyncio.Semaphore(VERIFY_PARALLEL)

        async def one(customer: str) -> tuple[int, CustomerCheck]:
            async with semaphore:
                entries = await read_ledger(stub, customer, self.config.timeout * 3)
            return len(entries), check_customer(customer, entries, self.ledger, f"{self.run_id}-")

        checks = await asyncio.gather(*(one(c) for c in self.customers))
        problems = [p for _, c in checks for p in c.problems]
        problems += self.ledger.replay_problems
        return Verification(
            customers=len(self.customers),
            entries=sum(n for n, _ in checks),
            outcomes=self.ledger.outcomes.count(),
            reversals=self.ledger.reversals.count(),
            consumptions=self.ledger.consumptions.count(),
            ambiguous_written=sum(c.ambiguous_written for _, c in checks),
            ambiguous_absent=sum(c.ambiguous_absent for _, c in checks),
            problems=problems,
        )


async def read_ledger(
    stub: rating_pb2_grpc.RatingServiceStub, customer: str, deadline: float
) -> list[EntryView]:
    """A customer's whole ledger, page by page."""
    entries: list[EntryView] = []
    token = ""
    while True:
        page: pb.ListLedgerEntriesResponse = await stub.ListLedgerEntries(  # type: ignore[misc]
            pb.ListLedgerEntriesRequest(
                customer_id=customer, page_size=VERIFY_PAGE, page_token=token
            ),
            timeout=deadline,
        )
        entries += [
            EntryView(
                e.sequence,
                pb.LedgerEntryKind.Name(e.kind).removeprefix("LEDGER_ENTRY_KIND_"),
                e.outcome_id,
                e.request_id,
            )
            for e in page.entries
        ]
        token = page.next_page_token
        if not token:
            return entries


async def _bounded(calls: Iterable[Awaitable[Any]], limit: int) -> None:
    semaphore = asyncio.Semaphore(limit)

    async def one(call: Awaitable[Any]) -> None:
        async with semaphore:
            await call

    await asyncio.gather(*(one(c) for c in calls))


# ---- a whole run --------------------------------------------------------------------


@dataclass
class LoadReport:
    run_id: str
    drive: DriveResult
    replays_ok: int
    verification: Verification | None

    @property
    def ok(self) -> bool:
        return self.verification is None or self.verification.ok

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "elapsed_s": self.drive.elapsed,
            "late": self.drive.late,
            "rpcs": [r.as_dict() for r in self.drive.rows],
            "replays_ok": self.replays_ok,
            "verification": asdict(self.verification) if self.verification else None,
        }


def describe_plan(config: LoadConfig, run_id: str, channels: int) -> str:
    pace = (
        f"{config.rate:,.0f} calls/s (open loop)"
        if config.rate
        else f"{config.concurrency} in flight"
    )
    batch = f", RecordOutcomes of {config.batch}" if config.batch else ""
    return (
        f"bench.load: run {run_id} against {config.target}: {pace} over {channels} channels "
        f"for {config.duration:g} s, {config.customers} customers, mix {config.mix}{batch}, "
        f"resending {config.retry_share:.0%} of acknowledged writes"
    )


async def run(
    config: LoadConfig, out: TextIO = sys.stdout, progress: TextIO | None = sys.stderr
) -> LoadReport:
    """Set up, drive, print the table, and check the ledger."""
    channels = Channels(config.target, config.concurrency, config.per_channel)
    recorder = Recorder()
    load = RatingLoad(config, channels, recorder)
    try:
        await channels.ready(config.timeout)
        print(describe_plan(config, load.run_id, len(channels)), file=out, flush=True)
        await load.setup()
        plan = Plan(
            duration=config.duration,
            concurrency=config.concurrency,
            rate=config.rate,
            warmup=config.warmup,
            steps=config.calls,
        )
        result = await drive(
            plan,
            load.step_for,
            recorder,
            Progress(recorder, "load", progress) if progress else None,
        )
        print(format_table(result.rows), file=out)
        if result.late:
            print(f"late: {result.late:,} scheduled calls not sent (too many in flight)", file=out)
        print(
            f"idempotency: {load.ledger.replays_ok:,} resent writes answered as replays of the "
            f"same ledger entry; {len(load.ledger.replay_problems):,} problems",
            file=out,
        )
        verification = await load.verify() if config.verify else None
        if verification is not None:
            print(verification.describe(), file=out)
        print(
            "next: `rating-service verify` with the server's RATING_DATABASE_URL checks the hash "
            "chain, the zero-sum postings and every stored balance",
            file=out,
            flush=True,
        )
        return LoadReport(load.run_id, result, load.ledger.replays_ok, verification)
    finally:
        await channels.close()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.load",
        description="Drive a rating-service with a realistic mix of calls, print calls/s, errors "
        "and latency percentiles, then check that the ledger holds exactly what was acknowledged.",
    )
    parser.add_argument("--target", default="127.0.0.1:50051", help="host:port of the server")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of load")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=64,
        help="calls in flight (closed loop); with --rate, only sizes the channel layout",
    )
    parser.add_argument(
        "--rate", type=float, help="calls per second, open loop (instead of a concurrency)"
    )
    parser.add_argument("--customers", type=int, default=200)
    parser.add_argument(
        "--mix",
        default=DEFAULT_MIX,
        help=f"shares of {', '.join(OPERATIONS)} (default {DEFAULT_MIX})",
    )
    parser.add_argument(
        "--retry-share", type=float, default=0.05, help="share of acknowledged writes sent again"
    )
    parser.add_argument(
        "--batch", type=int, default=0, help="record outcomes N per RecordOutcomes call (0: unary)"
    )
    parser.add_argument("--per-channel", type=int, default=16, help="calls in flight per channel")
    parser.add_argument(
        "--timeout", type=float, default=10.0, help="deadline of each call, seconds"
    )
    parser.add_argument("--warmup", type=float, default=0.0, help="seconds of load not measured")
    parser.add_argument(
        "--calls", type=int, help="stop after this many operations, even before --duration"
    )
    parser.add_argument("--seed", type=int, help="random seed (default: a fresh one)")
    parser.add_argument("--run-id", default="", help="prefix of every id (default: a fresh one)")
    parser.add_argument("--no-verify", action="store_true", help="skip the final ledger check")
    parser.add_argument("--json", type=Path, help="also write the results to this file as JSON")
    return parser


def config_from_args(args: argparse.Namespace) -> LoadConfig:
    if not 0 <= args.batch <= 1000:
        raise ValueError("--batch must be between 0 and 1000")
    if args.concurrency < 1 or args.customers < 1 or args.duration <= 0:
        raise ValueError("--concurrency, --customers and --duration must be positive")
    return LoadConfig(
        target=args.target,
        duration=args.duration,
        concurrency=args.concurrency,
        rate=args.rate,
        customers=args.customers,
        mix=Mix.parse(args.mix),
        retry_share=args.retry_share,
        batch=args.batch,
        per_channel=args.per_channel,
        timeout=args.timeout,
        warmup=args.warmup,
        calls=args.calls,
        seed=args.seed,
        run_id=args.run_id,
        verify=not args.no_verify,
    )


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        config = config_from_args(args)
    except ValueError as error:
        parser.error(str(error))
    try:
        report = asyncio.run(run(config))
    except (grpc.aio.AioRpcError, TimeoutError) as error:
        detail = error.details() if isinstance(error, grpc.aio.AioRpcError) else "no answer"
        print(f"bench.load: cannot drive {config.target}: {detail}", file=sys.stderr)
        return 2
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report.as_dict(), indent=2) + "\n")
    return 0 if report.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
