"""What the fuzz checks on every answer, the caller that checks it, the tally, the seeded world."""

from __future__ import annotations

import contextlib
import re
import sqlite3
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import grpc
from fuzz_requests import SERVICE
from google.rpc import error_details_pb2, status_pb2
from rating_client import decimal_to_money
from rating_client.v1 import rating_pb2 as pb
from rating_client.v1 import rating_pb2_grpc
from support import ECHO_BYTES, status_of, strings_of, ts, unpacked

Code = grpc.StatusCode
CONTRACT: dict[str, Code] = {
    "INVALID_FIELD": Code.INVALID_ARGUMENT,
    "CUSTOMER_NOT_FOUND": Code.NOT_FOUND,
    "NO_PRICE": Code.FAILED_PRECONDITION,
    "BUCKET_NOT_FOUND": Code.NOT_FOUND,
    "INSUFFICIENT_UNITS": Code.FAILED_PRECONDITION,
    "BUCKET_NOT_ACTIVE": Code.FAILED_PRECONDITION,
    "IDEMPOTENCY_KEY_REUSED": Code.ALREADY_EXISTS,
    "OUTCOME_NOT_FOUND": Code.NOT_FOUND,
    "OUTCOME_REVERSED": Code.FAILED_PRECONDITION,
    "SPEND_LIMIT_REACHED": Code.FAILED_PRECONDITION,
    "AMOUNT_OUT_OF_RANGE": Code.FAILED_PRECONDITION,
}
"""api.md's reasons for what a request asks, each with its code. Authentication is off here,
and one caller at a time never meets the operational reasons (OVERLOADED, STORE_UNAVAILABLE):
either of those would be a finding."""
STATUS_BYTES = 4096
READS = frozenset(
    {
        "QuoteCost",
        "GetBalance",
        "ListLedgerEntries",
        "ExplainOutcome",
        "PreviewInvoice",
        "SimulateRateCard",
        "WatchAlerts",
    }
)
APPENDS = frozenset(
    {
        "RecordOutcome",
        "ConfirmOutcome",
        "ReverseOutcome",
        "ConsumeBucket",
        "CreateBucket",
        "VoidBucket",
    }
)
STREAMS = frozenset(m.name for m in SERVICE.methods if m.server_streaming)
STREAM_WAIT = 0.05
"""Seconds a stream is read: a watch that is admitted runs until its deadline, which ends
it as DEADLINE_EXCEEDED (its success); a refusal comes before that."""
"""The RPCs whose first (not replayed) success appends to the customer's ledger."""
_ECHO = re.compile(r"[^\x00-\x7f…]+")


def echoed_bytes(status: status_pb2.Status) -> int:
    """How much of the caller's non-ASCII text a status carries, counted once however often
    it repeats: the server writes only ASCII (and ``…`` where it cuts), so any other
    character came from the request. A run cut short counts within the whole run."""
    runs = {run for text in strings_of(status) for run in _ECHO.findall(text)}
    whole = [run for run in runs if not any(run != other and run in other for other in runs)]
    return sum(len(run.encode()) for run in whole)


def assert_contract_error(status: status_pb2.Status, where: str) -> str:
    """A refusal the contract allows: never INTERNAL or UNKNOWN, exactly one ErrorInfo
    (rating.v1) whose reason goes with the code, a BadRequest for INVALID_ARGUMENT, each
    string at most 256 bytes, at most 256 bytes of the caller's text in all; its reason."""
    code = Code(next(c for c in Code if c.value[0] == status.code))
    assert code not in (Code.INTERNAL, Code.UNKNOWN, Code.OK), f"{where}: {code.name} {status}"
    infos = [d for d in status.details if d.Is(error_details_pb2.ErrorInfo.DESCRIPTOR)]
    assert len(infos) == 1, f"{where}: {len(infos)} ErrorInfo in {status}"
    info, violations = unpacked(status)
    assert info.domain == "rating.v1", f"{where}: {info}"
    assert CONTRACT.get(info.reason) == code, f"{where}: {code.name} / {info.reason!r}"
    if code == Code.INVALID_ARGUMENT:
        assert violations, f"{where}: INVALID_ARGUMENT without a BadRequest: {status}"
    longest = max(len(text.encode()) for text in strings_of(status))
    assert longest <= ECHO_BYTES, f"{where}: a string of {longest} bytes"
    assert status.ByteSize() <= STATUS_BYTES, f"{where}: a status of {status.ByteSize()} bytes"
    echoed = echoed_bytes(status)
    assert echoed <= ECHO_BYTES, f"{where}: {echoed} bytes of the request echoed: {status}"
    return info.reason


@dataclass
class Tally:
    """Per RPC and kind of request (structured, raw): requests sent, and each answer's
    reason ("OK" for a success); batch items are counted under ``RecordOutcomes[item]``."""

    counts: dict[str, Counter[str]] = field(default_factory=dict)

    def add(self, name: str, answer: str) -> None:
        self.counts.setdefault(name, Counter())[answer] += 1

    def lines(self) -> Iterator[str]:
        for name in sorted(self.counts):
            count = self.counts[name]
            reasons = ", ".join(
                f"{reason} {n}" for reason, n in count.most_common() if reason != "OK"
            )
            yield f"{name:32} sent {count.total():6}  OK {count['OK']:6}  {reasons}"


TALLY = Tally()


class Ledger:
    """The SQLite file, read behind the server's back: whether a call wrote anything.

    SQLite's ``data_version`` moves whenever the server commits, even a transaction whose
    work was all rolled back to a savepoint (the database itself decides AMOUNT_OUT_OF_RANGE
    that way), so a call is judged on content: ``watch`` opens a read transaction on a
    second connection, which keeps seeing the database as it was before the call; when the
    version moved, every table as it was is compared with what it is now.
    """

    def __init__(self, path: Path) -> None:
        self._now = _reader(path)
        self._then = _reader(path)

    def version(self) -> int:
        """``data_version``: it changes whenever another connection commits."""
        (value,) = self._now.execute("PRAGMA data_version").fetchone()
        return int(value)

    def entries(self) -> int:
        (value,) = self._now.execute("SELECT count(*) FROM ledger_entries").fetchone()
        return int(value)

    @contextlib.contextmanager
    def watch(self) -> Iterator[Callable[[], bool]]:
        """Within: a function telling whether the database is still as it was on entry."""
        self._then.execute("BEGIN")
        self._then.execute("SELECT count(*) FROM ledger_entries").fetchone()  # the snapshot
        version = self.version()
        try:
            yield lambda: self.version() == version or _content(self._then) == _content(self._now)
        finally:
            self._then.execute("COMMIT")

    def close(self) -> None:
        self._now.close()
        self._then.close()


def _reader(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)


def _content(db: sqlite3.Connection) -> dict[str, list[Any]]:
    """Every table as it is: its rows, or for a table of thousands (titan's ledger) its
    count and, per column, the sum of its values and of their lengths, which any insert,
    delete or update of a row moves (a scan in SQLite rather than a copy into Python)."""
    content: dict[str, list[Any]] = {}
    for (table,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'"):
        (rows,) = db.execute(f'SELECT count(*) FROM "{table}"').fetchone()
        if rows <= 1000:
            content[table] = db.execute(f'SELECT * FROM "{table}" ORDER BY rowid').fetchall()
            continue
        columns = [column for _, column, *_ in db.execute(f'PRAGMA table_info("{table}")')]
        sums = ", ".join(f'total("{c}"), total(length("{c}"))' for c in columns)
        content[table] = list(db.execute(f'SELECT count(*), {sums} FROM "{table}"').fetchone())
    return content


@dataclass
class Caller:
    """Sends requests to the fuzz server and checks each answer against the contract."""

    channel: grpc.Channel
    stub: rating_pb2_grpc.RatingServiceStub
    ledger: Ledger
    database_path: Path
    tokens: tuple[str, ...] = ()

    def call(self, rpc: str, request: Any) -> None:
        """Send ``request`` through the generated stub and check the answer."""
        entries = self.ledger.entries()
        with self.ledger.watch() as unchanged:
            if rpc in STREAMS:
                self._stream(rpc, getattr(self.stub, rpc)(request, timeout=STREAM_WAIT), unchanged)
                return
            try:
                response = getattr(self.stub, rpc)(request, timeout=60)
            except grpc.RpcError as error:
                self._refused(rpc, error, unchanged)
                return
            TALLY.add(rpc, "OK")
            if rpc in READS:
                assert unchanged(), f"{rpc} wrote: {request}"
        if rpc in APPENDS and not response.replayed:
            # What proves the write detector works: a first answer wrote.
            assert self.ledger.entries() > entries, f"{rpc} answered OK without a ledger entry"
        if rpc == "RecordOutcomes":
            self._batch(response, entries)

    def call_raw(self, rpc: str, data: bytes, parses: bool) -> None:
        """Send ``data`` as ``rpc``'s request as it is; bytes that do not parse must be
        INVALID_ARGUMENT / INVALID_FIELD."""
        name = f"{rpc} (raw bytes)"
        path = f"/{SERVICE.full_name}/{rpc}"
        if rpc in STREAMS:
            with self.ledger.watch() as unchanged:
                reason = self._stream(
                    name, self.channel.unary_stream(path)(data, timeout=STREAM_WAIT), unchanged
                )
            assert parses or reason == "INVALID_FIELD", f"{name}: unparsable bytes: {reason}"
            return
        method = self.channel.unary_unary(path)
        with self.ledger.watch() as unchanged:
            try:
                method(data, timeout=60)
            except grpc.RpcError as error:
                reason = self._refused(name, error, unchanged)
                assert parses or reason == "INVALID_FIELD", f"{name}: unparsable bytes: {reason}"
                return
        assert parses, f"{name}: bytes that do not parse were answered OK: {data!r}"
        TALLY.add(name, "OK")

    def _stream(self, name: str, answers: Any, unchanged: Callable[[], bool]) -> str:
        """Read a server stream until its deadline ends it ("OK") or it is refused."""
        try:
            for _ in answers:
                pass
        except grpc.RpcError as error:
            call: grpc.Call = error  # type: ignore[assignment]
            if call.code() != Code.DEADLINE_EXCEEDED:
                return self._refused(name, error, unchanged)
        assert unchanged(), f"{name} wrote"
        TALLY.add(name, "OK")
        return "OK"

    def _refused(self, name: str, error: grpc.RpcError, unchanged: Callable[[], bool]) -> str:
        call: grpc.Call = error  # type: ignore[assignment]
        assert call.code() not in (Code.INTERNAL, Code.UNKNOWN), f"{name}: {call}"
        status = status_of(call)
        assert status.code == call.code().value[0], f"{name}: {call.code()} vs {status}"
        reason = assert_contract_error(status, name)
        assert unchanged(), f"{name}: refused ({reason}) but wrote"
        TALLY.add(name, reason)
        return reason

    def _batch(self, response: pb.RecordOutcomesResponse, entries_before: int) -> None:
        """Each item's error is a contract error; the ledger grew by one entry per item
        recorded, none for an item refused or replayed."""
        recorded = 0
        for i, result in enumerate(response.results):
            if result.WhichOneof("result") == "error":
                TALLY.add("RecordOutcomes[item]", assert_contract_error(result.error, f"item {i}"))
            else:
                TALLY.add("RecordOutcomes[item]", "OK")
                recorded += not result.response.replayed
        assert self.ledger.entries() - entries_before == recorded


def _card(card: str, price: str, currency: str = "USD") -> pb.PutRateCardRequest:
    """A card in force since 2020 pricing resolution (and, on card-usd, handoff)."""
    since = ts(datetime(2020, 1, 1, tzinfo=UTC))
    prices = [
        pb.Price(outcome_type="resolution", unit_price=decimal_to_money(Decimal(price), currency))
    ]
    if card == "card-usd":
        prices.append(
            pb.Price(outcome_type="handoff", unit_price=decimal_to_money(Decimal("2.5"), currency))
        )
    return pb.PutRateCardRequest(
        rate_card_id=card, effective_from=since, currency_code=currency, prices=prices
    )


TITAN_OUTCOMES = (2**63 - 1) // (1_000_000 * 10**9) - 1


def seed(stub: rating_pb2_grpc.RatingServiceStub) -> tuple[str, ...]:
    """The world the fuzz starts from; the page tokens the server issued in it."""
    for card, price, currency, customer in [
        ("card-usd", "0.99", "USD", "acme"),
        ("card-top", "1000000", "USD", "whale"),
        ("card-idr", "16000", "IDR", "rupiah"),
        ("card-eur", "0.90", "EUR", "euro"),
    ]:
        stub.PutRateCard(_card(card, price, currency))
        stub.PutCustomer(pb.PutCustomerRequest(customer_id=customer, rate_card_id=card))
    for customer, bucket, quantity in [
        ("acme", "b-0", 100),
        ("acme", "b-1", 3),
        ("whale", "b-0", 5),
    ]:
        stub.CreateBucket(
            pb.CreateBucketRequest(
                customer_id=customer, bucket_id=bucket, outcome_type="resolution", quantity=quantity
            )
        )
    for customer in ("acme", "whale"):
        for outcome, state in [
            ("o-0", pb.OUTCOME_STATE_CONFIRMED),
            ("o-1", pb.OUTCOME_STATE_PENDING),
        ]:
            stub.RecordOutcome(
                pb.RecordOutcomeRequest(
                    customer_id=customer, outcome_id=outcome, outcome_type="resolution", state=state
                )
            )
    # titan's month is one outcome short of the most the ledger keeps at its price
    # (9,223 of USD 1,000,000): the next charges are AMOUNT_OUT_OF_RANGE.
    stub.PutRateCard(_card("card-titan", "1000000"))
    stub.PutCustomer(pb.PutCustomerRequest(customer_id="titan", rate_card_id="card-titan"))
    for start in range(0, TITAN_OUTCOMES, 1000):
        batch = [
            pb.RecordOutcomeRequest(
                customer_id="titan", outcome_id=f"t-{i}", outcome_type="resolution"
            )
            for i in range(start, min(start + 1000, TITAN_OUTCOMES))
        ]
        stub.RecordOutcomes(pb.RecordOutcomesRequest(requests=batch))
    tokens = []
    for customer in ("acme", "whale"):
        page = stub.ListLedgerEntries(
            pb.ListLedgerEntriesRequest(customer_id=customer, page_size=1)
        )
        tokens.append(page.next_page_token)
    return tuple(tokens)
