"""The read requests and the batch as domain values: their rules live in the domain, not the API.

GetBalance and ListLedgerEntries validate like the mutating commands (an
InvalidArgument naming each bad field); a RecordOutcomes batch holds 1 to
1,000 items.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from rating_service.domain.commands import (
    MAX_BATCH,
    GetBalance,
    ListLedgerEntries,
    require_batch_size,
)
from rating_service.domain.errors import InvalidArgument


def violated(check: Callable[[], None]) -> list[str]:
    """The fields an InvalidArgument from ``check`` names (fails when it does not raise)."""
    with pytest.raises(InvalidArgument) as raised:
        check()
    return [v.field for v in raised.value.violations]


def test_a_balance_needs_a_valid_customer_id() -> None:
    """An empty or spaced customer_id names customer_id; a valid one passes."""
    GetBalance("acme").validate()
    assert violated(GetBalance("").validate) == ["customer_id"]
    assert violated(GetBalance("ac me").validate) == ["customer_id"]


@pytest.mark.parametrize(("requested", "limit"), [(0, 100), (1, 1), (1000, 1000)])
def test_a_ledger_page_serves_the_size_asked_or_100(requested: int, limit: int) -> None:
    """0 means the default of 100; 1 to 1,000 are served as asked."""
    listing = ListLedgerEntries("acme", page_size=requested, after=0)

    listing.validate()

    assert listing.limit == limit


def test_a_ledger_page_names_every_bad_field_at_once() -> None:
    """A bad customer_id and a page_size past 1,000 are both named."""
    listing = ListLedgerEntries("", page_size=1001, after=0)

    assert violated(listing.validate) == ["customer_id", "page_size"]


@pytest.mark.parametrize("count", [1, MAX_BATCH])
def test_a_batch_of_1_to_1000_items_is_accepted(count: int) -> None:
    """The bounds themselves are accepted."""
    require_batch_size(count)


@pytest.mark.parametrize("count", [0, MAX_BATCH + 1])
def test_an_empty_or_oversized_batch_names_requests(count: int) -> None:
    """0 items or 1,001 items name the field requests."""
    assert violated(lambda: require_batch_size(count)) == ["requests"]
