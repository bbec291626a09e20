"""Billing credit grants and the credit balance they add up to.

A grant is kept as the API object Stripe returns (``billing.credit_grant``).
Beyond the spec's types, these rules are Stripe's (``../shared/design/
stripe.md``): a monetary amount with a positive value in minor units; a
scope of either ``price_type`` or up to 20 ``prices``, not both;
``priority`` from 0 to 100 (default 50); ``category`` ``paid`` by default;
an update changes only ``expires_at``
and ``metadata`` (with Stripe's metadata rules: keys merge, an empty value
deletes its key).

Two rules here are assumptions, found in neither the spec nor Stripe's docs
(unconfirmed; kept because the reporter must not rely on the opposite):
``expires_at`` must follow ``effective_at``, and voiding a voided grant is a
400.

Stripe applies credits only when it finalizes an invoice, and this server has
no invoices: a grant's available balance is its whole amount while it is
effective, not expired and not voided, and the balance transactions list is
always empty.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from ._errors import JsonObject, StripeError, invalid, no_such

MAX_PRICES = 20
_CURRENCY = re.compile(r"[a-z]{3}")


class Grants:
    """Credit grants by id, in creation order."""

    def __init__(self, new_id: Callable[[str], str]) -> None:
        self._new_id = new_id
        self._grants: dict[str, JsonObject] = {}

    def create(self, customer: str, params: Mapping[str, Any], now: float) -> JsonObject:
        amount = params["amount"]
        monetary = amount.get("monetary")
        if monetary is None:
            raise invalid(
                "Missing required param: amount[monetary].",
                param="amount[monetary]",
                code="parameter_missing",
            )
        if monetary["value"] <= 0:
            raise invalid("The amount must be a positive integer.", param="amount[monetary][value]")
        currency = monetary["currency"].lower()
        if not _CURRENCY.fullmatch(currency):
            raise invalid(f"Invalid currency: {currency}", param="amount[monetary][currency]")
        effective_at = params.get("effective_at", int(now))
        expires_at = params.get("expires_at")
        _check_expiry(expires_at, effective_at)
        priority = params.get("priority", 50)
        if not 0 <= priority <= 100:
            raise invalid("priority must be between 0 and 100.", param="priority")
        grant: JsonObject = {
            "id": self._new_id("credgr"),
            "object": "billing.credit_grant",
            "amount": {
                "type": "monetary",
                "monetary": {"currency": currency, "value": monetary["value"]},
            },
            "applicability_config": {"scope": _scope(params["applicability_config"]["scope"])},
            "category": params.get("category", "paid"),
            "created": int(now),
            "customer": customer,
            "customer_account": None,
            "effective_at": effective_at,
            "expires_at": expires_at,
            "livemode": False,
            "metadata": {k: v for k, v in params.get("metadata", {}).items() if v != ""},
            "name": params.get("name"),
            "priority": priority,
            "test_clock": None,
            "updated": int(now),
            "voided_at": None,
        }
        self._grants[grant["id"]] = grant
        return grant

    def get(self, grant_id: str) -> JsonObject:
        grant = self._grants.get(grant_id)
        if grant is None:
            raise no_such("credit grant", grant_id)
        return grant

    def all(self, customer: str | None = None) -> list[JsonObject]:
        """Newest first, as Stripe lists; only this customer's when one is given."""
        return [g for g in reversed(self._grants.values()) if customer in (None, g["customer"])]

    def update(self, grant_id: str, params: Mapping[str, Any], now: float) -> JsonObject:
        grant = self.get(grant_id)
        if "expires_at" in params:
            expires_at = params["expires_at"] if params["expires_at"] != "" else None
            _check_expiry(expires_at, grant["effective_at"])
            grant["expires_at"] = expires_at
        for key, value in params.get("metadata", {}).items():
            if value == "":
                grant["metadata"].pop(key, None)
            else:
                grant["metadata"][key] = value
        grant["updated"] = int(now)
        return grant

    def void(self, grant_id: str, now: float) -> JsonObject:
        grant = self.get(grant_id)
        if grant["voided_at"] is not None:  # unconfirmed rule (see the module docstring)
            raise invalid(f"The credit grant {grant_id} is already voided.", param="id")
        grant["voided_at"] = int(now)
        grant["updated"] = int(now)
        return grant

    def expire(self, grant_id: str, now: float) -> JsonObject:
        grant = self.get(grant_id)
        if grant["voided_at"] is not None or _expired(grant, now):
            raise invalid(f"The credit grant {grant_id} is already voided or expired.", param="id")
        grant["expires_at"] = int(now)
        grant["updated"] = int(now)
        return grant

    def balance_summary(
        self, customer: str, balance_filter: Mapping[str, Any], now: float
    ) -> JsonObject:
        """``billing.credit_balance_summary``: one balance per currency of the matching grants."""
        if balance_filter["type"] == "credit_grant":
            grant_id = balance_filter.get("credit_grant")
            if grant_id is None:
                raise invalid(
                    "Missing required param: filter[credit_grant].",
                    param="filter[credit_grant]",
                    code="parameter_missing",
                )
            matching = [g for g in [self.get(grant_id)] if g["customer"] == customer]
        else:
            scope = balance_filter.get("applicability_scope")
            if scope is None:
                raise invalid(
                    "Missing required param: filter[applicability_scope].",
                    param="filter[applicability_scope]",
                    code="parameter_missing",
                )
            matching = [g for g in self.all(customer) if _in_scope(g, scope)]
        totals: dict[str, int] = {}
        for grant in matching:
            if _available(grant, now):
                money = grant["amount"]["monetary"]
                totals[money["currency"]] = totals.get(money["currency"], 0) + money["value"]
        balances = [
            {"available_balance": _money(c, v), "ledger_balance": _money(c, v)}
            for c, v in sorted(totals.items())
        ]
        return {
            "object": "billing.credit_balance_summary",
            "balances": balances,
            "customer": customer,
            "customer_account": None,
            "livemode": False,
        }


def _scope(scope: Mapping[str, Any]) -> JsonObject:
    has_type, has_prices = "price_type" in scope, "prices" in scope
    if has_type == has_prices:
        raise StripeError(
            400,
            "Specify exactly one of applicability_config[scope][price_type] and "
            "applicability_config[scope][prices].",
            param="applicability_config[scope]",
            code="parameters_exclusive" if has_type else "parameter_missing",
        )
    if has_prices and not 1 <= len(scope["prices"]) <= MAX_PRICES:
        raise invalid(
            f"applicability_config[scope][prices] takes 1 to {MAX_PRICES} prices.",
            param="applicability_config[scope][prices]",
        )
    if has_type:
        return {"price_type": scope["price_type"]}
    return {"prices": [{"id": p["id"]} for p in scope["prices"]]}


def _check_expiry(expires_at: int | None, effective_at: int) -> None:
    """Unconfirmed rule (see the module docstring)."""
    if expires_at is not None and expires_at <= effective_at:
        raise invalid("expires_at must be after effective_at.", param="expires_at")


def _expired(grant: Mapping[str, Any], now: float) -> bool:
    return grant["expires_at"] is not None and grant["expires_at"] <= now


def _available(grant: Mapping[str, Any], now: float) -> bool:
    return grant["voided_at"] is None and grant["effective_at"] <= now and not _expired(grant, now)


def _in_scope(grant: Mapping[str, Any], scope: Mapping[str, Any]) -> bool:
    own = grant["applicability_config"]["scope"]
    if "price_type" in scope:
        return bool(own.get("price_type") == scope["price_type"])
    wanted = {p["id"] for p in scope.get("prices", [])}
    return bool(wanted & {p["id"] for p in own.get("prices", [])})


def _money(currency: str, value: int) -> JsonObject:
    return {"type": "monetary", "monetary": {"currency": currency, "value": value}}
