"""Catalog calls in and out: PutCustomer, PutRateCard, PutSpendControls, WatchAlerts.

What cannot become a domain value raises InvalidArgument here (see ``servicer``).
"""

from __future__ import annotations

from collections.abc import Sequence

from rating_client.v1 import rating_pb2 as pb

from rating_service.api.wire import (
    duration_in,
    duration_out,
    money_in,
    money_out,
    set_money,
    time_in,
    time_out,
)
from rating_service.domain import results
from rating_service.domain.commands import (
    PutCustomer,
    PutRateCard,
    PutSpendControls,
    WatchAlerts,
)
from rating_service.domain.errors import InvalidArgument
from rating_service.domain.money import Money
from rating_service.domain.ratecard import DEFAULT_SETTLEMENT_WINDOW, Price, RateCardVersion
from rating_service.domain.spend import Alert


def put_customer_in(request: pb.PutCustomerRequest) -> PutCustomer:
    return PutCustomer(
        customer_id=request.customer_id,
        stripe_customer_id=request.stripe_customer_id,
        rate_card_id=request.rate_card_id,
    )


def prices_in(prices_in: Sequence[pb.Price], currency_code: str) -> tuple[Price, ...]:
    prices = []
    for i, price in enumerate(prices_in):
        field = f"prices[{i}]"
        if not price.HasField("unit_price"):
            raise InvalidArgument.field(f"{field}.unit_price", "is required")
        unit_price = money_in(price.unit_price, f"{field}.unit_price")
        if not unit_price.currency:  # the rate card's currency applies
            unit_price = Money(currency_code, unit_price.nanos)
        window = (
            duration_in(price.settlement_window, f"{field}.settlement_window")
            if price.HasField("settlement_window")
            else DEFAULT_SETTLEMENT_WINDOW
        )
        prices.append(Price(price.outcome_type, unit_price, window))
    return tuple(prices)


def put_rate_card_in(request: pb.PutRateCardRequest) -> PutRateCard:
    return PutRateCard(
        rate_card_id=request.rate_card_id,
        effective_from=time_in(request, "effective_from"),
        currency=request.currency_code,
        prices=prices_in(request.prices, request.currency_code),
    )


def put_spend_controls_in(request: pb.PutSpendControlsRequest) -> PutSpendControls:
    return PutSpendControls(
        customer_id=request.customer_id,
        request_id=request.request_id,
        alert_thresholds=tuple(
            money_in(t, f"alert_thresholds[{i}]") for i, t in enumerate(request.alert_thresholds)
        ),
        hard_limit=money_in(request.hard_limit, "hard_limit")
        if request.HasField("hard_limit")
        else None,
    )


def watch_alerts_in(request: pb.WatchAlertsRequest) -> WatchAlerts:
    return WatchAlerts(customer_id=request.customer_id, after_alert_id=request.after_alert_id)


def customer_out(put: results.CustomerPut) -> pb.PutCustomerResponse:
    c = put.customer
    return pb.PutCustomerResponse(
        customer=pb.Customer(
            customer_id=c.customer_id,
            stripe_customer_id=c.stripe_customer_id,
            rate_card_id=c.rate_card_id,
            create_time=time_out(c.created_at),
            update_time=time_out(c.updated_at),
        ),
        replayed=put.replayed,
    )


def rate_card_out(version: RateCardVersion) -> pb.RateCardVersion:
    return pb.RateCardVersion(
        rate_card_id=version.rate_card_id,
        effective_from=time_out(version.effective_from),
        currency_code=version.currency,
        prices=[
            pb.Price(
                outcome_type=p.outcome_type,
                unit_price=money_out(p.unit_price),
                settlement_window=duration_out(p.settlement_window),
            )
            for p in sorted(version.prices.values(), key=lambda p: p.outcome_type)
        ],
    )


def spend_controls_out(put: results.SpendControlsPut) -> pb.PutSpendControlsResponse:
    controls = pb.SpendControls(
        customer_id=put.customer_id,
        alert_thresholds=[money_out(t) for t in put.controls.thresholds],
        update_time=time_out(put.controls.updated_at),
    )
    limit = put.controls.limit
    if limit is not None:
        set_money(controls.hard_limit, limit)
    return pb.PutSpendControlsResponse(spend_controls=controls, replayed=put.replayed)


def alert_out(alert: Alert) -> pb.WatchAlertsResponse:
    return pb.WatchAlertsResponse(
        alert_id=alert.alert_id,
        customer_id=alert.customer_id,
        period_start=time_out(alert.period_start),
        threshold=money_out(alert.threshold),
        period_charged=money_out(alert.period_charged),
        crossed_at=time_out(alert.crossed_at),
    )
