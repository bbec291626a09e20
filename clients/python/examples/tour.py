"""A two-minute tour of rating-service: price, record, quote, consume, read the balance.

Run it against a running server (``rating-service serve``)::

    .venv/bin/python clients/python/examples/tour.py [host:port]

Every call is idempotent, so the tour can be run again: the second run's
answers say ``replayed=True`` and the ledger does not change.
"""

from __future__ import annotations

import asyncio
import sys
from decimal import Decimal

from rating_client import RatingClient, RatingError


async def tour(target: str) -> None:
    async with RatingClient(target) as rating:
        # Prices are data: a rate card version, in force from its effective time on.
        await rating.put_rate_card(
            rate_card_id="standard", currency_code="USD", prices={"resolution": Decimal("0.99")}
        )
        await rating.put_customer(customer_id="acme", rate_card_id="standard")
        # A prepaid bucket of 2 resolutions (valid for a year from now).
        await rating.create_bucket(
            customer_id="acme", bucket_id="acme-2026", outcome_type="resolution", quantity=2
        )

        # Three resolved conversations: two come from the bucket, the third costs USD 0.99.
        for conversation in ("conv-1", "conv-2", "conv-3"):
            recorded = await rating.record_outcome(
                customer_id="acme", outcome_id=conversation, outcome_type="resolution"
            )
            print(
                f"{conversation}: sequence {recorded.ledger_sequence}, "
                f"from bucket {recorded.units_from_buckets}, charged {recorded.charged.amount:.2f} "
                f"{recorded.charged.currency_code}, replayed {recorded.replayed}"
            )

        quote = await rating.quote_cost(customer_id="acme", outcome_type="resolution", quantity=10)
        print(f"10 more would cost {quote.total.amount:.2f} {quote.total.currency_code}")

        try:
            await rating.consume_bucket(
                customer_id="acme", request_id="redeem-1", outcome_type="resolution", quantity=5
            )
        except RatingError as error:
            print(f"consuming 5 more units: {error.reason} (nothing was consumed)")

        balance = await rating.get_balance(customer_id="acme")
        print(
            f"this month: {balance.period_outcomes} outcomes, "
            f"{balance.period_charged.amount:.2f} {balance.period_charged.currency_code} charged; "
            f"buckets: {[(b.bucket_id, b.remaining) for b in balance.buckets]}"
        )


if __name__ == "__main__":
    asyncio.run(tour(sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:50051"))
