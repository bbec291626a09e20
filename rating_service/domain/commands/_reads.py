"""The reads' requests: quotes, balances, ledger pages, explanations, bills, simulations.

Nothing here writes, so nothing is fingerprinted; each is validated before reading.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from rating_service.domain.commands._rules import (
    MAX_PRICES,
    OutcomeKey,
    month_violation,
    price_entry_violations,
    quantity_violation,
    raise_if_any,
)
from rating_service.domain.errors import FieldViolation
from rating_service.domain.identifiers import currency_violation, identifier_violation
from rating_service.domain.ratecard import Price

MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 100
MAX_SIMULATED_CUSTOMERS = 1000


def _page_size_violation(requested: int) -> FieldViolation | None:
    if not 0 <= requested <= MAX_PAGE_SIZE:
        return FieldViolation("page_size", f"must be between 0 and {MAX_PAGE_SIZE}")
    return None


def page_size_of(requested: int) -> int:
    """The page size to serve: 0 means the default; beyond 1,000 is refused."""
    raise_if_any(_page_size_violation(requested))
    return requested or DEFAULT_PAGE_SIZE


@dataclass(frozen=True)
class QuoteCost:
    customer_id: str
    outcome_type: str
    quantity: int
    at: datetime | None

    def validate(self) -> None:
        raise_if_any(
            identifier_violation("customer_id", self.customer_id),
            identifier_violation("outcome_type", self.outcome_type),
            quantity_violation("quantity", self.quantity, minimum=0),
        )


@dataclass(frozen=True)
class WatchAlerts:
    """Alerts after ``after_alert_id``, of one customer or (empty ``customer_id``) of all."""

    customer_id: str
    after_alert_id: int

    def validate(self) -> None:
        raise_if_any(
            identifier_violation("customer_id", self.customer_id, required=False),
            None
            if self.after_alert_id >= 0
            else FieldViolation("after_alert_id", "must not be negative"),
        )


@dataclass(frozen=True)
class GetBalance:
    """A customer's buckets and this month's usage (a read: nothing to fingerprint)."""

    customer_id: str

    def validate(self) -> None:
        raise_if_any(identifier_violation("customer_id", self.customer_id))


@dataclass(frozen=True)
class ListLedgerEntries:
    """One page of a customer's ledger, in sequence order (a read)."""

    customer_id: str
    page_size: int
    """As asked: 0 means ``DEFAULT_PAGE_SIZE``."""
    after: int
    """The sequence of the last entry already listed (0: list from the first)."""

    @property
    def limit(self) -> int:
        """How many entries a page holds."""
        return page_size_of(self.page_size)

    def validate(self) -> None:
        raise_if_any(
            identifier_violation("customer_id", self.customer_id),
            _page_size_violation(self.page_size),
        )


@dataclass(frozen=True)
class ExplainOutcome(OutcomeKey):
    """Everything that decided one outcome's charge (a read)."""


@dataclass(frozen=True)
class PreviewInvoice:
    """One customer's bill for one calendar month (a read)."""

    customer_id: str
    period_start: datetime | None
    """The month's first instant (UTC); None: the current month."""

    def validate(self) -> None:
        raise_if_any(
            identifier_violation("customer_id", self.customer_id),
            month_violation("period_start", self.period_start),
        )


@dataclass(frozen=True)
class SimulateRateCard:
    """A month re-priced under draft prices, for a rate card's customers or a list (a read)."""

    rate_card_id: str | None
    customer_ids: tuple[str, ...] | None
    period_start: datetime | None
    currency: str
    prices: tuple[Price, ...]

    def validate(self) -> None:
        violations: list[FieldViolation | None] = [
            month_violation("period_start", self.period_start),
            currency_violation("currency_code", self.currency),
        ]
        if (self.rate_card_id is None) == (self.customer_ids is None):
            violations.append(
                FieldViolation("rate_card_id", "exactly one of rate_card_id or customer_list")
            )
        if self.rate_card_id is not None:
            violations.append(identifier_violation("rate_card_id", self.rate_card_id))
        if self.customer_ids is not None:
            field_name = "customer_list.customer_ids"
            if not 1 <= len(self.customer_ids) <= MAX_SIMULATED_CUSTOMERS:
                violations.append(
                    FieldViolation(field_name, f"must hold 1 to {MAX_SIMULATED_CUSTOMERS} ids")
                )
            seen: set[str] = set()
            for i, customer_id in enumerate(self.customer_ids[:MAX_SIMULATED_CUSTOMERS]):
                violations.append(identifier_violation(f"{field_name}[{i}]", customer_id))
                if customer_id in seen:
                    violations.append(FieldViolation(f"{field_name}[{i}]", "appears twice"))
                seen.add(customer_id)
        if not 1 <= len(self.prices) <= MAX_PRICES:
            violations.append(FieldViolation("prices", f"must have 1 to {MAX_PRICES} entries"))
        types: set[str] = set()
        for i, price in enumerate(self.prices[:MAX_PRICES]):
            violations.extend(
                price_entry_violations(f"prices[{i}]", price, self.currency, "draft's", types)
            )
        raise_if_any(*violations)
