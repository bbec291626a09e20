"""Hypothesis strategies for RatingService's requests: mostly plausible, sometimes hostile.

Each field (an amount as a whole) is usually a value that reaches the ledger (a
customer, rate card, bucket or outcome that exists, a time near now, a small
amount in a seeded currency) and sometimes one a caller should not send: huge or control-laden
strings, times at and past the calendar's ends or finer than a microsecond,
amounts past the ledger's 64-bit range, currencies that are no currency,
unknown enum values, tampered page tokens, batches with duplicates. So a run
reaches the rating, burn-down, idempotency and range checks, not only the
field validation in front of them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from google.protobuf import duration_pb2, timestamp_pb2
from google.protobuf.message import DecodeError, Message
from google.type import money_pb2
from hypothesis import strategies as st
from rating_client.v1 import rating_pb2 as pb

T = TypeVar("T")

NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
"""The server's clock stands still here: a run is the same run every time."""
SERVICE = pb.DESCRIPTOR.services_by_name["RatingService"]

INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)
FIRST_SECOND = -62_135_596_800  # 0001-01-01T00:00:00Z
LAST_SECOND = 253_402_300_799  # 9999-12-31T23:59:59Z
MIB = 1024 * 1024

CUSTOMERS = ("acme", "whale", "rupiah", "euro", "titan")
"""Seeded: acme on a USD card with buckets, whale on the highest USD price, rupiah in IDR,
euro in EUR, titan one outcome short of the highest month the ledger keeps."""
NEW_CUSTOMERS = ("c-0", "c-1", "c-2")
UNKNOWN_CUSTOMER = "ghost"
RATE_CARDS = ("card-usd", "card-top", "card-idr", "card-eur", "card-new")
OUTCOME_TYPES = ("resolution", "handoff", "refund")  # refund has no price anywhere
OUTCOME_IDS = tuple(f"o-{i}" for i in range(30))
BUCKET_IDS = tuple(f"b-{i}" for i in range(8))
REQUEST_IDS = tuple(f"r-{i}" for i in range(20))
CURRENCIES = ("USD", "USD", "IDR", "EUR")
ODD_CURRENCIES = ("ZZZ", "usd", "US", "USDX", "", "JPY", "BHD", "XAU", "XXX")


def mostly(good: st.SearchStrategy[T], *odd: st.SearchStrategy[Any], weight: int = 12) -> Any:
    """``good`` about ``weight`` times in ``weight + len(odd)``, else one of ``odd``.

    The branch is an index drawn with ``sampled_from``: a ``one_of`` repeating ``good``
    does not weight it (measured: 0.4% of draws took it with 24 copies against 2)."""
    branches = (good,) * weight + odd
    pick = st.sampled_from(range(len(branches)))

    @st.composite
    def chosen(draw: st.DrawFn) -> Any:
        return draw(branches[draw(pick)])

    return chosen()


def _repeated(piece: str, size: int) -> str:
    """``piece`` repeated to about ``size`` bytes of UTF-8."""
    return piece * (size // len(piece.encode()) or 1)


@functools.cache
def hostile_text(*, big: bool = True) -> st.SearchStrategy[str]:
    """Strings a caller should not send: any Unicode (controls included), just past a limit,
    and, when ``big``, up to 1 MiB of one character of 1, 2 or 4 bytes."""
    sizes = [129, 257, 4097] + ([65_536, MIB] if big else [])
    return st.one_of(
        st.text(st.characters(codec="utf-8"), max_size=40),
        st.sampled_from(
            ["", " ", "\x00", "a\nb", "a\x7fb", "\u202eacme", "x" * 128, "ZZZ", "💥", "o-1\x00"]
        ),
        st.builds(_repeated, st.sampled_from(["x", "é", "𝄞", "\x00", "-"]), st.sampled_from(sizes)),
    )


@functools.cache
def identifier(pool: tuple[str, ...], *unknown: str) -> Any:
    """Mostly one of ``pool`` (what exists), sometimes an unknown valid one, or hostile text."""
    known = st.sampled_from(pool)
    valid_but_unknown = st.sampled_from((*unknown, "x" * 128, "a:b.c_d-e"))
    return mostly(known, valid_but_unknown, hostile_text(), weight=24)


def _stamp(seconds: int, nanos: int) -> timestamp_pb2.Timestamp:
    return timestamp_pb2.Timestamp(seconds=seconds, nanos=nanos)


def _near_now(offset_seconds: int, micros: int) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(NOW + timedelta(seconds=offset_seconds, microseconds=micros))
    return stamp


@functools.cache
def times(*, past: int = 400 * 86_400, future: int = 300) -> Any:
    """A Timestamp, or None for "absent": mostly within ``past`` seconds before now to
    ``future`` after, in whole microseconds; sometimes at or past 0001-01-01 and 9999-12-31,
    with nanos that are not whole microseconds or are out of range, or any int64/int32 pair."""
    plausible = st.builds(_near_now, st.integers(-past, future), st.integers(0, 999_999))
    edges = st.builds(
        _stamp,
        st.sampled_from([FIRST_SECOND - 1, FIRST_SECOND, LAST_SECOND, LAST_SECOND + 1, *INT64]),
        st.sampled_from([0, 1, 999_999_000, 999_999_999, -1, 10**9, *INT32]),
    )
    sub_micro = st.builds(_stamp, st.integers(1_700_000_000, 1_800_000_000), st.integers(0, 10**9))
    anything = st.builds(_stamp, st.integers(*INT64), st.integers(*INT32))
    return mostly(st.one_of(st.none(), plausible), edges, sub_micro, anything, weight=30)


@functools.cache
def durations() -> Any:
    """A settlement window, or None: mostly minutes to days, sometimes negative, beyond
    Duration's range, finer than a microsecond or with nanos of the other sign."""
    plausible = st.builds(lambda s: duration_pb2.Duration(seconds=s), st.integers(0, 40 * 86_400))
    odd = st.builds(
        lambda s, n: duration_pb2.Duration(seconds=s, nanos=n),
        st.sampled_from([-1, 0, 1, 315_576_000_000, 315_576_000_001, *INT64]),
        st.sampled_from([0, 1, -1, 999_999_999, -999_999_999, 10**9, *INT32]),
    )
    return mostly(st.one_of(st.none(), plausible), odd)


def _money(currency: str, units: int, nanos: int) -> money_pb2.Money:
    return money_pb2.Money(currency_code=currency, units=units, nanos=nanos)


@functools.cache
def money() -> Any:
    """Mostly a small amount in a currency the seeded cards use; sometimes a currency that is
    none, units past what 64-bit nanos hold (USD 9,223,372,036; IDR 5,000,000,000), nanos out
    of range or of the other sign."""
    plausible = st.builds(
        _money,
        st.sampled_from(CURRENCIES),
        st.integers(0, 100),
        st.sampled_from([0, 990_000_000, 500_000_000, 1]),
    )
    # No megabyte codes: a rate card holds up to 100 prices, and a request at most 8 MiB.
    currency = st.one_of(st.sampled_from(CURRENCIES + ODD_CURRENCIES), hostile_text(big=False))
    units = st.one_of(
        st.integers(0, 100),
        st.sampled_from([9_223_372_036, 5_000_000_000, 1_000_000, 1_000_001, -1, *INT64]),
        st.integers(*INT64),
    )
    nanos = st.one_of(
        st.sampled_from([0, 990_000_000, -1, 10**9, -(10**9), 854_775_807, 999_999_999, *INT32]),
        st.integers(*INT32),
    )
    return mostly(plausible, st.builds(_money, currency, units, nanos), weight=20)


@functools.cache
def enum_values(values: tuple[int, ...], odd: tuple[int, ...]) -> Any:
    """Mostly one of an enum's accepted ``values``; sometimes one it refuses (``odd``) or
    any int32 (a value the enum does not define)."""
    return mostly(st.sampled_from(values), st.sampled_from(odd), st.integers(*INT32), weight=40)


@functools.cache
def quantities(high: int = 20) -> Any:
    """Mostly 1..``high``; sometimes 0, negative, 10^9 and just past it, or int64's ends."""
    return mostly(
        st.integers(1, high),
        st.sampled_from([0, -1, 10**9, 10**9 + 1, *INT64]),
        st.integers(*INT64),
    )


@functools.cache
def reasons() -> Any:
    return mostly(st.sampled_from(["", "reopened by the customer"]), hostile_text())


def _timed(request: Message, field: str, stamp: Any) -> None:
    if stamp is not None:
        getattr(request, field).CopyFrom(stamp)


def _over_long_attributes(count: int, width: int) -> dict[str, str]:
    """``count`` keys, each ``width`` of its own CJK character (3 bytes each: past 256 bytes)."""
    return {chr(0x4E00 + i) * width: "v" for i in range(count)}


@functools.cache
def attributes(*, big: bool = True) -> Any:
    plausible = st.dictionaries(
        st.sampled_from(["answer_id", "channel", "agent", "model"]),
        st.text(st.characters(codec="utf-8"), max_size=20),
        max_size=4,
    )
    hostile = st.dictionaries(hostile_text(big=False), hostile_text(big=False), max_size=20)
    flood = st.builds(_over_long_attributes, st.integers(1, 40), st.sampled_from([86, 300]))
    return mostly(plausible, hostile, flood) if big else mostly(plausible, hostile)


@functools.cache
def _small_identifier(pool: tuple[str, ...], *unknown: str) -> Any:
    """``identifier`` without the megabyte strings: a batch of them stays under 8 MiB."""
    return mostly(
        st.sampled_from(pool), st.sampled_from(unknown), hostile_text(big=False), weight=24
    )


CUSTOMER_ID = identifier(CUSTOMERS[:4] * 3 + ("titan",), UNKNOWN_CUSTOMER)  # titan now and then
OUTCOME_ID = identifier(OUTCOME_IDS, "o-999")
NEW_OUTCOME_ID = mostly(
    OUTCOME_ID, st.integers(100, 10**9).map(lambda i: f"o-{i}"), weight=1
)  # half of them recorded for the first time
# Mostly priced types: "refund" has no price anywhere (NO_PRICE).
OUTCOME_TYPE = identifier(("resolution", "resolution", "handoff", "refund"), "unpriced")
STATES = enum_values(
    (pb.OUTCOME_STATE_UNSPECIFIED, pb.OUTCOME_STATE_CONFIRMED, pb.OUTCOME_STATE_PENDING),
    (pb.OUTCOME_STATE_SETTLED, pb.OUTCOME_STATE_RELEASED, pb.OUTCOME_STATE_REVERSED),
)
SOURCES = enum_values(
    (
        pb.BUCKET_SOURCE_UNSPECIFIED,
        pb.BUCKET_SOURCE_PURCHASE,
        pb.BUCKET_SOURCE_REALLOCATION,
        pb.BUCKET_SOURCE_PROMOTIONAL,
    ),
    (-1, 4),
)
CURRENCY_CODE = mostly(st.sampled_from(CURRENCIES), st.sampled_from(ODD_CURRENCIES), hostile_text())


@st.composite
def record_outcome(draw: st.DrawFn, *, big: bool = True) -> pb.RecordOutcomeRequest:
    if big:
        customer, outcome, kind = CUSTOMER_ID, NEW_OUTCOME_ID, OUTCOME_TYPE
    else:
        customer = _small_identifier(CUSTOMERS, UNKNOWN_CUSTOMER)
        outcome = mostly(
            _small_identifier(OUTCOME_IDS, "o-999"),
            st.integers(100, 10**9).map(lambda i: f"o-{i}"),
            weight=1,
        )
        kind = _small_identifier(("resolution", "resolution", "handoff", "refund"), "unpriced")
    request = pb.RecordOutcomeRequest(
        customer_id=draw(customer),
        outcome_id=draw(outcome),
        outcome_type=draw(kind),
        state=draw(STATES),
    )
    _timed(request, "occurred_at", draw(times()))
    request.attributes.update(draw(attributes(big=big)))
    return request


RECORD_OUTCOME = record_outcome()
BATCH_ITEMS = st.lists(record_outcome(big=False), max_size=8)
COIN = st.booleans()
OVER_THE_LIMIT = st.sampled_from(range(200)).map(lambda i: i == 7)  # now and then


def _changed(request: pb.RecordOutcomeRequest, outcome_type: str) -> pb.RecordOutcomeRequest:
    """The same idempotency key with another payload."""
    other = pb.RecordOutcomeRequest()
    other.CopyFrom(request)
    other.outcome_type = outcome_type
    return other


@st.composite
def record_outcomes(draw: st.DrawFn) -> pb.RecordOutcomesRequest:
    """Batches: up to 8 items, then repeats of some (the same payload, or the same key with
    another payload); now and then one item past the 1,000 a batch may hold."""
    items = draw(BATCH_ITEMS)
    if items and draw(COIN):
        for item in draw(st.lists(st.sampled_from(items), min_size=1, max_size=4)):
            if draw(COIN):
                item = _changed(item, draw(st.sampled_from(OUTCOME_TYPES)))
            items.insert(draw(st.integers(0, len(items))), item)
    if draw(OVER_THE_LIMIT):
        items += [record_over_limit(i) for i in range(1001 - len(items))]
    return pb.RecordOutcomesRequest(requests=items)


def record_over_limit(i: int) -> pb.RecordOutcomeRequest:
    return pb.RecordOutcomeRequest(
        customer_id="acme", outcome_id=f"x-{i}", outcome_type="resolution"
    )


REASON = reasons()
confirm_outcome = st.builds(
    pb.ConfirmOutcomeRequest, customer_id=CUSTOMER_ID, outcome_id=OUTCOME_ID
)
reverse_outcome = st.builds(
    pb.ReverseOutcomeRequest, customer_id=CUSTOMER_ID, outcome_id=OUTCOME_ID, reason=REASON
)
get_balance = st.builds(pb.GetBalanceRequest, customer_id=CUSTOMER_ID)
QUOTE_QUANTITY = mostly(st.integers(0, 10**9), quantities())
QUOTE_AT = times(future=400 * 86_400)


@st.composite
def quote_cost(draw: st.DrawFn) -> pb.QuoteCostRequest:
    request = pb.QuoteCostRequest(
        customer_id=draw(CUSTOMER_ID),
        outcome_type=draw(OUTCOME_TYPE),
        quantity=draw(QUOTE_QUANTITY),
    )
    _timed(request, "at", draw(QUOTE_AT))
    return request


consume_bucket = st.builds(
    pb.ConsumeBucketRequest,
    customer_id=CUSTOMER_ID,
    request_id=identifier(REQUEST_IDS, "r-999"),
    outcome_type=mostly(OUTCOME_TYPE, st.just("")),
    quantity=quantities(high=5),
    bucket_id=mostly(st.just(""), identifier(BUCKET_IDS, "b-999"), weight=1),
    reason=REASON,
)

BUCKET_ID = mostly(
    identifier(BUCKET_IDS, "b-new"), st.integers(100, 10**9).map(lambda i: f"b-{i}"), weight=1
)  # half of them new
PRIORITY = mostly(st.integers(0, 3), st.integers(*INT32))
BUCKET_SIZE = st.sampled_from(["quantity"] * 12 + ["funding"] * 4 + ["none"])
# 10^9 units at whale's USD 1,000,000 are worth 10^24 nanos: past what the ledger keeps.
BUCKET_QUANTITY = mostly(
    st.integers(1, 1000), st.sampled_from([10**6, 10**9]), quantities(), weight=4
)
MONEY = money()
SOMETIMES = st.sampled_from(range(8)).map(lambda i: i == 5)
# 9999-06-01 with no valid_until: a year later is past the calendar.
VALID_FROM = mostly(times(future=30 * 86_400), st.just(_stamp(253_392_451_200, 0)), weight=30)
EFFECTIVE_FROM = times(past=30 * 86_400, future=800 * 86_400)
VALID_UNTIL = mostly(st.none(), EFFECTIVE_FROM, weight=3)


@st.composite
def create_bucket(draw: st.DrawFn) -> pb.CreateBucketRequest:
    request = pb.CreateBucketRequest(
        customer_id=draw(CUSTOMER_ID),
        bucket_id=draw(BUCKET_ID),
        outcome_type=draw(OUTCOME_TYPE),
        source=draw(SOURCES),
        priority=draw(PRIORITY),
    )
    size = draw(BUCKET_SIZE)
    if size == "quantity":
        request.quantity = draw(BUCKET_QUANTITY)
    elif size == "funding":
        request.funding.CopyFrom(draw(MONEY))
    if draw(SOMETIMES):
        request.unit_price.CopyFrom(draw(MONEY))
    _timed(request, "valid_from", draw(VALID_FROM))
    _timed(request, "valid_until", draw(VALID_UNTIL))
    return request


def _tampered(token: str, how: int, where: int) -> str:
    """``token`` with one change: a character replaced, one cut, one added, padding, or the
    standard alphabet instead of the URL-safe one."""
    if not token:
        return token
    at = where % len(token)
    changes: list[Callable[[], str]] = [
        lambda: token[:at] + ("A" if token[at] != "A" else "B") + token[at + 1 :],
        lambda: token[:at] + token[at + 1 :],
        lambda: token + "A",
        lambda: token + "=",
        lambda: token.replace("-", "+").replace("_", "/") + "==",
        lambda: token[:at],
    ]
    return changes[how % len(changes)]()


@functools.cache
def page_tokens(issued: tuple[str, ...]) -> Any:
    """A token the server issued (for acme or whale), tampered with, or not a token at all."""
    real = st.sampled_from(issued)
    tampered = st.builds(_tampered, real, st.integers(0, 5), st.integers(0, 200))
    return mostly(st.just(""), real, tampered, hostile_text(), weight=4)


@functools.cache
def list_ledger_entries(issued: tuple[str, ...]) -> Any:
    return st.builds(
        pb.ListLedgerEntriesRequest,
        customer_id=CUSTOMER_ID,
        page_size=mostly(st.integers(0, 5), st.sampled_from([1000, 1001, -1]), st.integers(*INT32)),
        page_token=page_tokens(issued),
    )


put_customer = st.builds(
    pb.PutCustomerRequest,
    customer_id=identifier(CUSTOMERS + NEW_CUSTOMERS, "c-9"),
    stripe_customer_id=mostly(st.sampled_from(["", "cus_123"]), hostile_text()),
    rate_card_id=identifier(RATE_CARDS, "card-none"),
)
SETTLEMENT_WINDOW = durations()
PRICED = mostly(st.just(True), st.just(False), weight=40)
PRICE_TYPES = mostly(
    st.lists(OUTCOME_TYPE, min_size=1, max_size=3, unique=True),
    st.lists(OUTCOME_TYPE, max_size=101),  # repeats, none, past the 100 a card may hold
    weight=20,
)


@st.composite
def put_rate_card(draw: st.DrawFn) -> pb.PutRateCardRequest:
    """A version whose prices are mostly in the card's currency."""
    currency = draw(CURRENCY_CODE)
    request = pb.PutRateCardRequest(
        rate_card_id=draw(identifier(RATE_CARDS, "card-9")), currency_code=currency
    )
    for outcome_type in draw(PRICE_TYPES):
        entry = request.prices.add(outcome_type=outcome_type)
        if draw(PRICED):
            entry.unit_price.CopyFrom(draw(MONEY))
            if len(currency) <= 8 and not draw(SOMETIMES):  # a copy of a huge one would pass 8 MiB
                entry.unit_price.currency_code = currency
        _timed(entry, "settlement_window", draw(SETTLEMENT_WINDOW))
    _timed(request, "effective_from", draw(EFFECTIVE_FROM))
    return request


EXISTING_BUCKET_ID = identifier(BUCKET_IDS, "b-999")
void_bucket = st.builds(
    pb.VoidBucketRequest, customer_id=CUSTOMER_ID, bucket_id=EXISTING_BUCKET_ID, reason=REASON
)
THRESHOLDS = mostly(st.lists(MONEY, max_size=4), st.lists(MONEY, max_size=40), weight=8)
HARD_LIMIT = mostly(st.none(), MONEY, weight=1)


@st.composite
def put_spend_controls(draw: st.DrawFn) -> pb.PutSpendControlsRequest:
    """Thresholds and a hard limit, mostly in the customer's currency: later requests of the
    run then meet SPEND_LIMIT_REACHED now and then."""
    request = pb.PutSpendControlsRequest(
        customer_id=draw(CUSTOMER_ID),
        request_id=draw(identifier(REQUEST_IDS, "r-999")),
        alert_thresholds=draw(THRESHOLDS),
    )
    _timed(request, "hard_limit", draw(HARD_LIMIT))
    return request


ALERT_IDS = mostly(st.integers(0, 5), st.sampled_from([-1, *INT64]), weight=8)
watch_alerts = st.builds(
    pb.WatchAlertsRequest,
    customer_id=mostly(st.just(""), CUSTOMER_ID, weight=1),
    after_alert_id=ALERT_IDS,
)
explain_outcome = st.builds(
    pb.ExplainOutcomeRequest, customer_id=CUSTOMER_ID, outcome_id=OUTCOME_ID
)
PERIOD_START = mostly(
    st.none(),
    st.sampled_from([datetime(2026, m, 1, tzinfo=UTC) for m in range(1, 13)]).map(
        lambda at: _near_now(int((at - NOW).total_seconds()), 0)
    ),
    times(),
    weight=2,
)


@st.composite
def preview_invoice(draw: st.DrawFn) -> pb.PreviewInvoiceRequest:
    request = pb.PreviewInvoiceRequest(customer_id=draw(CUSTOMER_ID))
    _timed(request, "period_start", draw(PERIOD_START))
    return request


CUSTOMER_LISTS = mostly(
    st.lists(CUSTOMER_ID, min_size=1, max_size=5),
    st.lists(st.sampled_from(CUSTOMERS), max_size=1001),
    weight=8,
)


@st.composite
def simulate_rate_card(draw: st.DrawFn) -> pb.SimulateRateCardRequest:
    """Draft prices for the customers of a card or of a list, in a month."""
    currency = draw(CURRENCY_CODE)
    request = pb.SimulateRateCardRequest(currency_code=currency)
    if draw(COIN):
        request.rate_card_id = draw(identifier(RATE_CARDS, "card-none"))
    else:
        request.customer_list.customer_ids.extend(draw(CUSTOMER_LISTS))
    for outcome_type in draw(PRICE_TYPES):
        entry = request.prices.add(outcome_type=outcome_type)
        if draw(PRICED):
            entry.unit_price.CopyFrom(draw(MONEY))
            if len(currency) <= 8 and not draw(SOMETIMES):
                entry.unit_price.currency_code = currency
    _timed(request, "period_start", draw(PERIOD_START))
    return request


def requests(issued_tokens: tuple[str, ...]) -> dict[str, st.SearchStrategy[Any]]:
    """A strategy of requests for each RPC, by name."""
    return {
        "RecordOutcome": RECORD_OUTCOME,
        "RecordOutcomes": record_outcomes(),
        "ConfirmOutcome": confirm_outcome,
        "ReverseOutcome": reverse_outcome,
        "QuoteCost": quote_cost(),
        "ConsumeBucket": consume_bucket,
        "CreateBucket": create_bucket(),
        "GetBalance": get_balance,
        "ListLedgerEntries": list_ledger_entries(issued_tokens),
        "PutCustomer": put_customer,
        "PutRateCard": put_rate_card(),
        "VoidBucket": void_bucket,
        "PutSpendControls": put_spend_controls(),
        "WatchAlerts": watch_alerts,
        "ExplainOutcome": explain_outcome,
        "PreviewInvoice": preview_invoice(),
        "SimulateRateCard": simulate_rate_card(),
    }


# ---- raw bytes ------------------------------------------------------------------------

BAD_UTF8 = (b"\xed\xa0\x80", b"\xff", b"\xc0\x80", b"\xe2\x82")
"""A UTF-16 surrogate in UTF-8's form, a byte UTF-8 never uses, an overlong NUL, a cut character."""


def _mutated(data: bytes, how: int, at: int, noise: bytes) -> bytes:
    """``data`` with one change at ``at``: cut, a byte flipped, bytes inserted, a known
    word's bytes made invalid UTF-8 (same length, so the message still frames)."""
    at = at % (len(data) + 1)
    if how == 0:
        return data[:at]
    if how == 1 and data:
        at = at % len(data)
        return data[:at] + bytes([data[at] ^ (noise[0] if noise else 0x80) or 1]) + data[at + 1 :]
    if how == 2:
        return data[:at] + noise + data[at:]
    for word in (b"acme", b"whale", b"resolution", b"card-usd", b"USD", b"o-1"):
        if word in data:
            bad = BAD_UTF8[at % len(BAD_UTF8)]
            return data.replace(word, (bad + word)[: len(word)], 1)
    return data + noise


def raw_bytes(request: st.SearchStrategy[Any]) -> Any:
    """Bytes sent as an RPC's request: arbitrary, or a plausible request's bytes mutated."""
    serialized = request.map(lambda message: message.SerializeToString())
    mutated = st.builds(
        _mutated,
        serialized,
        st.integers(0, 3),
        st.integers(0, 10**6),
        st.one_of(st.binary(min_size=1, max_size=6), st.sampled_from(BAD_UTF8)),
    )
    return mostly(mutated, st.binary(max_size=64), weight=3)


def parses(rpc: str, data: bytes) -> bool:
    """Whether ``data`` is a message of ``rpc``'s request type (valid UTF-8, well framed)."""
    message_class = _request_class(rpc)
    try:
        message_class.FromString(data)
    except DecodeError:
        return False
    return True


def _request_class(rpc: str) -> Any:
    return getattr(pb, SERVICE.methods_by_name[rpc].input_type.name)
