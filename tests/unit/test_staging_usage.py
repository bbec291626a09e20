"""The staging's daily usage counts: summed per day, type and price; a refused job's taken back."""

from __future__ import annotations

from datetime import UTC, datetime

from rating_service.domain.billing import UsageCounts
from rating_service.domain.money import Money
from rating_service.domain.postings import OutcomeTake, outcome_rated, outcome_reversed
from rating_service.ledger.heads import CustomerHead
from rating_service.ledger.staging import Staged

AT = datetime(2026, 11, 18, 9, 30, tzinfo=UTC)
DAY_US = 1_794_960_000_000_000  # 2026-11-18T00:00:00Z in microseconds
PRICE = Money("USD", 990_000_000)


def take(outcome_id: str, bucket_id: str | None = None) -> OutcomeTake:
    charge = Money.zero("USD") if bucket_id else PRICE
    return OutcomeTake(outcome_id, "resolution", bucket_id, charge, PRICE)


def head() -> CustomerHead:
    return CustomerHead("acme", "", "std", 0, "", 0, 0)


def test_settlements_and_reversals_of_one_day_and_price_add_up_in_one_count() -> None:
    staged, acme = Staged(), head()
    staged.append(acme, outcome_rated(take("a"), AT, was_pending=False), 0)
    staged.append(acme, outcome_rated(take("b", "annual"), AT, was_pending=False), 0)
    staged.append(acme, outcome_reversed(take("a"), AT, bucket_expired=False), 0)

    assert staged.usage == {
        ("acme", DAY_US, "resolution", "USD", PRICE.nanos): UsageCounts(2, 1, 1, 0)
    }


def test_a_refused_job_takes_its_counts_back() -> None:
    staged, acme = Staged(), head()
    staged.begin_job()
    staged.append(acme, outcome_rated(take("a"), AT, was_pending=False), 0)
    staged.begin_job()
    staged.append(acme, outcome_rated(take("b", "annual"), AT, was_pending=False), 0)
    staged.append(acme, outcome_reversed(take("a"), AT, bucket_expired=False), 0)

    assert staged.undo_job()

    assert staged.usage == {
        ("acme", DAY_US, "resolution", "USD", PRICE.nanos): UsageCounts(1, 0, 0, 0)
    }
