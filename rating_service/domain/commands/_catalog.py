"""Commands on what outcomes are priced with and held to: customers, rate cards, spend controls."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from rating_service.domain.commands._rules import (
    MAX_PRICES,
    fingerprint,
    price_entry_violations,
    raise_if_any,
)
from rating_service.domain.errors import FieldViolation
from rating_service.domain.identifiers import currency_violation, identifier_violation
from rating_service.domain.money import Money
from rating_service.domain.ratecard import MAX_SETTLEMENT_WINDOW, Price

MAX_ALERT_THRESHOLDS = 20


@dataclass(frozen=True)
class PutCustomer:
    customer_id: str
    stripe_customer_id: str
    rate_card_id: str

    def validate(self) -> None:
        stripe: FieldViolation | None = None
        if len(self.stripe_customer_id) > 255:
            stripe = FieldViolation("stripe_customer_id", "must be at most 255 characters")
        elif any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in self.stripe_customer_id):
            # No Stripe id has one, and PostgreSQL cannot store a NUL in text (was INTERNAL).
            stripe = FieldViolation("stripe_customer_id", "must not contain control characters")
        raise_if_any(
            identifier_violation("customer_id", self.customer_id),
            identifier_violation("rate_card_id", self.rate_card_id, required=False),
            stripe,
        )


@dataclass(frozen=True)
class PutRateCard:
    rate_card_id: str
    effective_from: datetime | None
    currency: str
    prices: tuple[Price, ...]

    def validate(self) -> None:
        violations: list[FieldViolation | None] = [
            identifier_violation("rate_card_id", self.rate_card_id),
            currency_violation("currency_code", self.currency),
        ]
        if not 1 <= len(self.prices) <= MAX_PRICES:
            violations.append(FieldViolation("prices", f"must have 1 to {MAX_PRICES} entries"))
        seen: set[str] = set()
        for i, price in enumerate(self.prices):
            violations.extend(
                price_entry_violations(f"prices[{i}]", price, self.currency, "rate card's", seen)
            )
            if not timedelta(0) <= price.settlement_window <= MAX_SETTLEMENT_WINDOW:
                violations.append(
                    FieldViolation(
                        f"prices[{i}].settlement_window", "must be between 0 and 90 days"
                    )
                )
        raise_if_any(*violations)


@dataclass(frozen=True)
class PutSpendControls:
    customer_id: str
    request_id: str
    alert_thresholds: tuple[Money, ...]
    hard_limit: Money | None

    @property
    def currency(self) -> str | None:
        """The one currency of every amount (None when no amount was given)."""
        amounts = [*self.alert_thresholds, *([self.hard_limit] if self.hard_limit else [])]
        return amounts[0].currency if amounts else None

    def validate(self) -> None:
        violations: list[FieldViolation | None] = [
            identifier_violation("customer_id", self.customer_id),
            identifier_violation("request_id", self.request_id),
        ]
        if len(self.alert_thresholds) > MAX_ALERT_THRESHOLDS:
            violations.append(
                FieldViolation(
                    "alert_thresholds", f"must have at most {MAX_ALERT_THRESHOLDS} entries"
                )
            )
        currency = self.currency
        seen: set[int] = set()
        for i, threshold in enumerate(self.alert_thresholds):
            field_name = f"alert_thresholds[{i}]"
            violations.append(
                currency_violation(f"{field_name}.currency_code", threshold.currency)
                or _same_currency_violation(field_name, threshold, currency)
                or (
                    FieldViolation(field_name, "must be a positive amount")
                    if threshold.nanos <= 0
                    else None
                )
            )
            if threshold.nanos in seen:
                violations.append(FieldViolation(field_name, "each threshold may appear once"))
            seen.add(threshold.nanos)
        if self.hard_limit is not None:
            violations.append(
                currency_violation("hard_limit.currency_code", self.hard_limit.currency)
                or _same_currency_violation("hard_limit", self.hard_limit, currency)
                or (
                    FieldViolation("hard_limit", "must not be negative")
                    if self.hard_limit.nanos < 0
                    else None
                )
            )
        raise_if_any(*violations)

    def fingerprint(self) -> str:
        return fingerprint("spend", list(self.alert_thresholds), self.hard_limit)


def _same_currency_violation(
    field_name: str, amount: Money, currency: str | None
) -> FieldViolation | None:
    if currency is not None and amount.currency != currency:
        return FieldViolation(
            f"{field_name}.currency_code", f"every amount must be in one currency ({currency})"
        )
    return None
