"""Request values (rating_service.domain.commands): validation names the field, fingerprints compare payloads.

A validation failure is an InvalidArgument whose violations name the
offending fields the way the caller wrote them (``prices[1].outcome_type``),
so a client can point at the exact input.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rating_service.domain.buckets import BucketSource
from rating_service.domain.commands import (
    ConfirmOutcome,
    ConsumeBucket,
    CreateBucket,
    OutcomeState,
    PutCustomer,
    PutRateCard,
    QuoteCost,
    RecordOutcome,
    ReverseOutcome,
    page_size_of,
)
from rating_service.domain.errors import InvalidArgument
from rating_service.domain.money import Money
from rating_service.domain.ratecard import Price

NOW = datetime(2026, 11, 15, 12, 0, tzinfo=UTC)


def violated(check: Callable[[], None]) -> list[str]:
    """The fields an InvalidArgument from ``check`` names (fails when it does not raise)."""
    with pytest.raises(InvalidArgument) as raised:
        check()
    return [v.field for v in raised.value.violations]


def record(**changes: object) -> RecordOutcome:
    values: dict[str, object] = {
        "customer_id": "acme",
        "outcome_id": "conv-1",
        "outcome_type": "resolution",
        "occurred_at": NOW,
        "state": OutcomeState.CONFIRMED,
        "attributes": {},
    }
    values.update(changes)
    return RecordOutcome(**values)  # type: ignore[arg-type]


def rate_card(*prices: Price, currency: str = "USD") -> PutRateCard:
    return PutRateCard("standard", None, currency, prices)


def price(outcome_type: str = "resolution", amount: str = "0.99", **kw: object) -> Price:
    return Price(outcome_type, Money.of(amount, "USD"), **kw)  # type: ignore[arg-type]


def bucket(**changes: object) -> CreateBucket:
    values: dict[str, object] = {
        "customer_id": "acme",
        "bucket_id": "b1",
        "outcome_type": "resolution",
        "quantity": 100,
        "funding": None,
        "valid_from": None,
        "valid_until": None,
        "unit_price": None,
        "source": BucketSource.PURCHASE,
        "priority": 0,
    }
    values.update(changes)
    return CreateBucket(**values)  # type: ignore[arg-type]


def consume(**changes: object) -> ConsumeBucket:
    values: dict[str, object] = {
        "customer_id": "acme",
        "request_id": "req-1",
        "outcome_type": "resolution",
        "quantity": 1,
        "bucket_id": "",
        "reason": "",
    }
    values.update(changes)
    return ConsumeBucket(**values)  # type: ignore[arg-type]


# ---- RecordOutcome ----------------------------------------------------------------------


def test_a_well_formed_outcome_passes_validation() -> None:
    """16 attributes of 256 bytes, occurred exactly 5 minutes ahead, a 128-char id: all fine."""
    attributes = {f"k{i:02d}" + "x" * 253: "v" * 256 for i in range(16)}

    record(
        outcome_id="c" * 128,
        occurred_at=NOW + timedelta(minutes=5),
        state=OutcomeState.PENDING,
        attributes=attributes,
    ).validate(NOW)


def test_more_than_16_attributes_names_the_attributes_field() -> None:
    """17 entries are one too many."""
    attributes = {f"k{i}": "v" for i in range(17)}

    assert violated(lambda: record(attributes=attributes).validate(NOW)) == ["attributes"]


@pytest.mark.parametrize(
    ("key", "value"),
    [("answer", "v" * 257), ("k" * 257, "v"), ("answer", "é" * 129)],
)
def test_an_attribute_over_256_bytes_names_that_attribute(key: str, value: str) -> None:
    """The key or value is measured in UTF-8 bytes (129 x 'é' is 258 bytes)."""
    fields = violated(lambda: record(attributes={key: value}).validate(NOW))

    assert fields == [f"attributes[{key[:40]}]"]


def test_of_many_over_long_attributes_only_the_first_is_named() -> None:
    """Each name echoes up to 40 characters of its key: naming three 86-character CJK keys
    echoed 360 bytes of the request (found by the fuzz suite); one stays within 256."""
    attributes = {chr(0x4E00 + i) * 86: "v" for i in range(3)}

    fields = violated(lambda: record(attributes=attributes).validate(NOW))

    assert fields == [f"attributes[{chr(0x4E00) * 40}]"]


def test_occurred_at_more_than_5_minutes_in_the_future_names_occurred_at() -> None:
    """One microsecond past the 5-minute skew is refused."""
    late = NOW + timedelta(minutes=5, microseconds=1)

    assert violated(lambda: record(occurred_at=late).validate(NOW)) == ["occurred_at"]


def test_an_absent_occurred_at_is_valid() -> None:
    """No occurred_at means now, which is never in the future."""
    record(occurred_at=None).validate(NOW)


@pytest.mark.parametrize("state", [OutcomeState.SETTLED, OutcomeState.RELEASED])
def test_an_outcome_can_only_be_recorded_confirmed_or_pending(state: OutcomeState) -> None:
    """Any other state names the state field."""
    assert violated(lambda: record(state=state).validate(NOW)) == ["state"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("customer_id", ""),
        ("customer_id", "a" * 129),
        ("outcome_id", "has space"),
        ("outcome_id", "ünïcode"),
        ("outcome_type", "res/olution"),
    ],
)
def test_a_malformed_identifier_names_its_field(field: str, value: str) -> None:
    """Identifiers are 1 to 128 of A-Z a-z 0-9 _ . : - and are required."""
    assert violated(lambda: record(**{field: value}).validate(NOW)) == [field]


def test_every_bad_field_of_a_batch_item_is_named_with_the_item_prefix() -> None:
    """Item 3 of a batch with a bad outcome_id and a far-future time names both, prefixed."""
    bad = record(outcome_id="", occurred_at=NOW + timedelta(hours=1))

    fields = violated(lambda: bad.validate(NOW, prefix="requests[3]."))

    assert sorted(fields) == ["requests[3].occurred_at", "requests[3].outcome_id"]


# ---- QuoteCost and ConsumeBucket ------------------------------------------------------------


@pytest.mark.parametrize("quantity", [0, 1, 10**9])
def test_a_quote_accepts_quantities_from_0_to_a_billion(quantity: int) -> None:
    """0 and 10^9 are both in range."""
    QuoteCost("acme", "resolution", quantity, None).validate()


@pytest.mark.parametrize("quantity", [-1, 10**9 + 1])
def test_a_quote_quantity_out_of_range_names_quantity(quantity: int) -> None:
    """Below 0 or above 10^9 is refused."""
    assert violated(lambda: QuoteCost("acme", "resolution", quantity, None).validate()) == [
        "quantity"
    ]


@pytest.mark.parametrize("quantity", [0, -5, 10**9 + 1])
def test_a_consumption_quantity_out_of_range_names_quantity(quantity: int) -> None:
    """ConsumeBucket needs 1 to 10^9 units."""
    assert violated(consume(quantity=quantity).validate) == ["quantity"]


def test_a_consumption_from_a_named_bucket_may_omit_the_outcome_type() -> None:
    """With a bucket_id, the bucket says which outcome type its units are."""
    consume(outcome_type="", bucket_id="b1").validate()


def test_a_consumption_without_a_bucket_needs_an_outcome_type() -> None:
    """Without bucket_id there is no way to choose buckets, so outcome_type is named."""
    assert violated(consume(outcome_type="", bucket_id="").validate) == ["outcome_type"]


def test_a_consumption_reason_over_256_bytes_names_reason() -> None:
    """The reason is measured in bytes."""
    assert violated(consume(reason="€" * 86).validate) == ["reason"]


# ---- CreateBucket -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"quantity": None, "funding": None}, "quantity"),
        ({"quantity": 0}, "quantity"),
        ({"quantity": 10**9 + 1}, "quantity"),
        ({"quantity": None, "funding": Money.of("-1", "USD")}, "funding"),
        ({"quantity": None, "funding": Money.of("0", "USD")}, "funding"),
        ({"quantity": None, "funding": Money.of("10", "usd")}, "funding.currency_code"),
        ({"valid_from": NOW, "valid_until": NOW}, "valid_until"),
        ({"unit_price": Money.of("0", "USD")}, "unit_price"),
        ({"unit_price": Money.of("0.99", "US")}, "unit_price.currency_code"),
        ({"bucket_id": ""}, "bucket_id"),
    ],
)
def test_a_bad_bucket_request_names_the_bad_field(changes: dict[str, object], field: str) -> None:
    """Size, funding, window and unit price are each checked and named."""
    assert violated(bucket(**changes).validate) == [field]


def test_a_bucket_funded_with_money_passes_validation() -> None:
    """Funding in place of a quantity, with a window and a unit price, is fine."""
    bucket(
        quantity=None,
        funding=Money.of("99", "USD"),
        valid_from=NOW,
        valid_until=NOW + timedelta(days=1),
        unit_price=Money.of("0.99", "USD"),
    ).validate()


# ---- PutRateCard --------------------------------------------------------------------------


def test_a_rate_card_with_a_price_per_outcome_type_passes_validation() -> None:
    """Two outcome types, a free one included, with windows of 0 and 90 days."""
    rate_card(
        price("resolution", "0.99", settlement_window=timedelta(0)),
        price("escalation", "0", settlement_window=timedelta(days=90)),
    ).validate()


def test_a_rate_card_listing_an_outcome_type_twice_names_the_second_entry() -> None:
    """The duplicate is reported at its own index."""
    card = rate_card(price("resolution"), price("escalation"), price("resolution", "1.25"))

    assert violated(card.validate) == ["prices[2].outcome_type"]


def test_a_negative_price_names_its_unit_price() -> None:
    """A price below zero would pay the customer for outcomes."""
    card = rate_card(price("resolution"), price("escalation", "-0.01"))

    assert violated(card.validate) == ["prices[1].unit_price"]


def test_a_price_in_another_currency_than_the_card_names_its_currency_code() -> None:
    """A USD price on a EUR card is refused."""
    assert violated(rate_card(price(), currency="EUR").validate) == [
        "prices[0].unit_price.currency_code"
    ]


@pytest.mark.parametrize("window", [timedelta(seconds=-1), timedelta(days=90, microseconds=1)])
def test_a_settlement_window_outside_0_to_90_days_names_it(window: timedelta) -> None:
    """Negative windows and windows past 90 days are refused."""
    assert violated(rate_card(price(settlement_window=window)).validate) == [
        "prices[0].settlement_window"
    ]


@pytest.mark.parametrize("count", [0, 101])
def test_a_rate_card_needs_1_to_100_prices(count: int) -> None:
    """An empty card and a card of 101 prices both name `prices`."""
    card = rate_card(*(price(f"type-{i}") for i in range(count)))

    assert violated(card.validate) == ["prices"]


@pytest.mark.parametrize("currency", ["", "usd", "US", "USDX"])
def test_a_rate_card_currency_that_is_not_iso_4217_names_currency_code(currency: str) -> None:
    """Three capital letters are required (prices are in USD, so they are named too)."""
    assert "currency_code" in violated(rate_card(price(), currency=currency).validate)


# ---- the other requests ---------------------------------------------------------------------


def test_a_reversal_reason_over_256_bytes_names_reason() -> None:
    """257 bytes of reason are refused."""
    assert violated(ReverseOutcome("acme", "conv-1", "r" * 257).validate) == ["reason"]


def test_a_confirmation_needs_an_outcome_id() -> None:
    """An empty outcome_id names outcome_id."""
    assert violated(ConfirmOutcome("acme", "").validate) == ["outcome_id"]


def test_a_customer_may_have_no_rate_card_yet() -> None:
    """An empty rate_card_id is accepted; the customer is priced once one is set."""
    PutCustomer("acme", "cus_123", "").validate()


def test_a_stripe_customer_id_over_255_characters_names_it() -> None:
    """Stripe ids are bounded at 255 characters."""
    assert violated(PutCustomer("acme", "c" * 256, "").validate) == ["stripe_customer_id"]


@pytest.mark.parametrize("stripe_id", ["cus_\x00", "cus_\n1", "cus_\x9f"])
def test_a_stripe_customer_id_with_a_control_character_names_it(stripe_id: str) -> None:
    """No Stripe id has one, and PostgreSQL cannot store a NUL: refused, not INTERNAL."""
    assert violated(PutCustomer("acme", stripe_id, "").validate) == ["stripe_customer_id"]


@pytest.mark.parametrize(("requested", "served"), [(0, 100), (1, 1), (1000, 1000)])
def test_page_size_0_means_the_default_and_up_to_1000_is_served(
    requested: int, served: int
) -> None:
    """0 is the default of 100; 1 to 1,000 are served as asked."""
    assert page_size_of(requested) == served


@pytest.mark.parametrize("requested", [-1, 1001])
def test_a_page_size_beyond_1000_names_page_size(requested: int) -> None:
    """Negative sizes and sizes past 1,000 are refused."""
    assert violated(lambda: page_size_of(requested)) == ["page_size"]


# ---- fingerprints ---------------------------------------------------------------------------


def test_an_absent_occurred_at_fingerprints_differently_from_a_present_one() -> None:
    """A retry that leaves occurred_at unset matches the original only if it was unset too."""
    assert record(occurred_at=None).fingerprint() != record(occurred_at=NOW).fingerprint()


def test_the_order_attributes_were_sent_in_does_not_change_the_fingerprint() -> None:
    """A map has no order: {a, b} and {b, a} are the same payload."""
    forwards = record(attributes={"a": "1", "b": "2"})
    backwards = record(attributes={"b": "2", "a": "1"})

    assert forwards.fingerprint() == backwards.fingerprint()


attribute_maps = st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=16)
optional_times = st.none() | st.datetimes(timezones=st.just(UTC))


@given(
    st.sampled_from(["resolution", "escalation"]),
    optional_times,
    st.sampled_from([OutcomeState.CONFIRMED, OutcomeState.PENDING]),
    attribute_maps,
)
def test_the_same_payload_always_has_the_same_fingerprint(
    outcome_type: str,
    occurred_at: datetime | None,
    state: OutcomeState,
    attributes: dict[str, str],
) -> None:
    """Two requests built separately from equal values fingerprint the same."""
    first = record(
        outcome_type=outcome_type, occurred_at=occurred_at, state=state, attributes=attributes
    )
    second = record(
        outcome_type=outcome_type,
        occurred_at=occurred_at,
        state=state,
        attributes=dict(reversed(list(attributes.items()))),
    )

    assert first.fingerprint() == second.fingerprint()


@pytest.mark.parametrize(
    "changes",
    [
        {"outcome_type": "escalation"},
        {"occurred_at": NOW + timedelta(microseconds=1)},
        {"state": OutcomeState.PENDING},
        {"attributes": {"answer": "a-2"}},
        {"attributes": {"answer": "a-1", "extra": ""}},
    ],
)
def test_any_change_of_payload_changes_the_fingerprint(changes: dict[str, object]) -> None:
    """Type, time, state and each attribute are part of the payload."""
    original = record(attributes={"answer": "a-1"})

    assert record(**{"attributes": {"answer": "a-1"}, **changes}).fingerprint() != (
        original.fingerprint()
    )


def test_bucket_fingerprints_tell_an_absent_window_from_a_present_one() -> None:
    """A bucket retried without valid_from is not the same as one sent with it."""
    assert bucket(valid_from=None).fingerprint() != bucket(valid_from=NOW).fingerprint()


@pytest.mark.parametrize(
    "changes", [{"quantity": 2}, {"bucket_id": "b1"}, {"reason": "refund"}, {"outcome_type": "x"}]
)
def test_consumption_fingerprints_cover_every_field_of_the_payload(
    changes: dict[str, object],
) -> None:
    """Quantity, bucket_id, reason and outcome_type each change the fingerprint."""
    assert consume(**changes).fingerprint() != consume().fingerprint()
