"""A new bucket's terms once the defaults are filled in: its validity and its size."""

from __future__ import annotations

from datetime import datetime

from rating_service.domain.commands import DEFAULT_BUCKET_VALIDITY, MAX_QUANTITY
from rating_service.domain.errors import InvalidArgument
from rating_service.domain.instants import LATEST
from rating_service.domain.money import Money


def validity(
    valid_from: datetime | None, valid_until: datetime | None, now: datetime
) -> tuple[datetime, datetime]:
    """``valid_from`` defaults to now and ``valid_until`` to a year after ``valid_from``."""
    start = valid_from or now
    if valid_until is None:
        if start > LATEST - DEFAULT_BUCKET_VALIDITY:
            raise InvalidArgument.field(
                "valid_until",
                "is required when valid_from is within a year of 9999-12-31 "
                "(a year after it is past the latest time the ledger keeps)",
            )
        valid_until = start + DEFAULT_BUCKET_VALIDITY
    end = valid_until
    if end <= start:
        raise InvalidArgument.field("valid_until", "must be after valid_from")
    return start, end


def funded_units(funding: Money, unit_price: Money) -> int:
    """The whole units ``funding`` buys at ``unit_price`` (rounded down), within the limits."""
    if funding.currency != unit_price.currency:
        raise InvalidArgument.field(
            "funding.currency_code",
            f"must be the unit price's currency {unit_price.currency}, got {funding.currency}",
        )
    if unit_price.nanos <= 0:
        raise InvalidArgument.field("unit_price", "must be positive to turn funding into units")
    units = funding.units_affordable(unit_price)
    if units > MAX_QUANTITY:
        raise InvalidArgument.field(
            "funding", f"buys {units} units at {unit_price} per unit; at most {MAX_QUANTITY}"
        )
    if units < 1:
        raise InvalidArgument.field(
            "funding", f"{funding} buys no whole unit at {unit_price} per unit"
        )
    return units


def require_card_currency(unit_price: Money, card_currency: str | None) -> None:
    """A bucket is priced in the currency its customer is billed in (when a card says which)."""
    if card_currency is not None and unit_price.currency != card_currency:
        raise InvalidArgument.field(
            "unit_price.currency_code",
            f"must be the customer's rate card currency {card_currency}, got {unit_price.currency}",
        )
