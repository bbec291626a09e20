"""Spend controls (on the customer's row), their request ids, the month's exposure, and alerts."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from sqlalchemy import and_, bindparam, select, update

from rating_service.domain import postings as entries
from rating_service.domain.money import Money
from rating_service.domain.spend import Alert, Exposure, NewAlert, SpendControls
from rating_service.ledger.codec import from_micros, to_micros
from rating_service.ledger.executor import RowLike
from rating_service.ledger.schema import (
    balances,
    customers,
    spend_alert_counter,
    spend_alerts,
    spend_control_requests,
)

if TYPE_CHECKING:
    from rating_service.ledger.unit import Unit


def controls_from_row(row: RowLike) -> SpendControls | None:
    """The controls kept on a ``customers`` row (None when none were ever put)."""
    currency = row["spend_currency"]
    if currency is None:
        return None
    return SpendControls(
        currency=currency,
        alert_thresholds=tuple(json.loads(row["spend_thresholds"] or "[]")),
        hard_limit=row["spend_hard_limit"],
        updated_at=from_micros(row["spend_updated_at"]),
    )


def _controls_json(controls: SpendControls) -> str:
    return json.dumps(
        {
            "currency": controls.currency,
            "thresholds": list(controls.alert_thresholds),
            "hard_limit": controls.hard_limit,
            "updated_at": to_micros(controls.updated_at),
        }
    )


def _controls_from_json(text: str) -> SpendControls:
    data = json.loads(text)
    return SpendControls(
        currency=data["currency"],
        alert_thresholds=tuple(data["thresholds"]),
        hard_limit=data["hard_limit"],
        updated_at=from_micros(data["updated_at"]),
    )


def _alert_from_row(row: RowLike) -> Alert:
    currency = row["currency"]
    return Alert(
        alert_id=row["alert_id"],
        customer_id=row["customer_id"],
        period=row["period"],
        threshold=Money(currency, row["threshold_nanos"]),
        period_charged=Money(currency, row["period_charged_nanos"]),
        crossed_at=from_micros(row["crossed_at"]),
    )


_BALANCE = select(balances.c.amount).where(
    balances.c.customer_id == bindparam("customer_id"),
    balances.c.account == bindparam("account"),
    balances.c.asset == bindparam("asset"),
)
_REQUEST = select(spend_control_requests).where(
    and_(
        spend_control_requests.c.customer_id == bindparam("customer_id"),
        spend_control_requests.c.request_id == bindparam("request_id"),
    )
)
_INSERT_REQUEST = spend_control_requests.insert()
_SET_CONTROLS = (
    update(customers)
    .where(customers.c.customer_id == bindparam("c_customer_id"))
    .values(  # an UPDATE's own bind names may not be its columns' names
        spend_currency=bindparam("s_currency"),
        spend_thresholds=bindparam("s_thresholds"),
        spend_hard_limit=bindparam("s_hard_limit"),
        spend_updated_at=bindparam("s_updated_at"),
    )
)
_FIRED = select(spend_alerts.c.threshold_nanos).where(
    spend_alerts.c.customer_id == bindparam("customer_id"),
    spend_alerts.c.period == bindparam("period"),
    spend_alerts.c.currency == bindparam("currency"),
)
_TAKE_IDS = (
    update(spend_alert_counter)
    .where(spend_alert_counter.c.id == 1)
    .values(last_alert_id=spend_alert_counter.c.last_alert_id + bindparam("count"))
    .returning(spend_alert_counter.c.last_alert_id)
)
_INSERT_ALERTS = spend_alerts.insert()
_AFTER = (
    select(spend_alerts)
    .where(spend_alerts.c.alert_id > bindparam("after"))
    .order_by(spend_alerts.c.alert_id)
    .limit(bindparam("limit"))
)
_AFTER_OF_CUSTOMER = (
    select(spend_alerts)
    .where(
        spend_alerts.c.customer_id == bindparam("customer_id"),
        spend_alerts.c.alert_id > bindparam("after"),
    )
    .order_by(spend_alerts.c.alert_id)
    .limit(bindparam("limit"))
)


class Spend:
    def __init__(self, unit: Unit) -> None:
        self._unit = unit

    # ---- the month's money, as the write path sees it -----------------------------------

    def balance(self, customer_id: str, account: str, asset: str) -> int:
        """The balance with what this write batch staged but has not yet written out."""
        params = {"customer_id": customer_id, "account": account, "asset": asset}
        row = self._unit.sql.first(_BALANCE, params)
        stored: int = 0 if row is None else row["amount"]
        staged = self._unit.staged
        return stored + (staged.deltas.get((customer_id, account, asset), 0) if staged else 0)

    def exposure(self, customer_id: str, period: str, currency: str) -> Exposure:
        """The month's settled charges and every pending charge, in ``currency``."""
        return Exposure(
            charged=self.balance(customer_id, entries.usage_charged(period), currency),
            pending=self.balance(customer_id, entries.CHARGES_PENDING, currency),
        )

    # ---- the controls and their request ids ----------------------------------------------

    def request(self, customer_id: str, request_id: str) -> tuple[str, SpendControls] | None:
        """The fingerprint of the earlier call with this request id, and what it set."""
        row = self._unit.db().first(
            _REQUEST, {"customer_id": customer_id, "request_id": request_id}
        )
        return None if row is None else (row["fingerprint"], _controls_from_json(row["result"]))

    def put(
        self, customer_id: str, request_id: str, fingerprint: str, controls: SpendControls
    ) -> None:
        """Replace the customer's controls and keep the request id with what it set."""
        self._unit.customer_changed(customer_id)
        sql = self._unit.db_write()
        sql.many(
            _SET_CONTROLS,
            [
                {
                    "c_customer_id": customer_id,
                    "s_currency": controls.currency,
                    "s_thresholds": json.dumps(list(controls.alert_thresholds)),
                    "s_hard_limit": controls.hard_limit,
                    "s_updated_at": to_micros(controls.updated_at),
                }
            ],
        )
        sql.many(
            _INSERT_REQUEST,
            [
                {
                    "customer_id": customer_id,
                    "request_id": request_id,
                    "fingerprint": fingerprint,
                    "result": _controls_json(controls),
                }
            ],
        )

    # ---- alerts ----------------------------------------------------------------------------

    def fired(self, customer_id: str, period: str, currency: str) -> set[int]:
        """The thresholds (nanos) that already raised an alert this month."""
        rows = self._unit.db().all(
            _FIRED, {"customer_id": customer_id, "period": period, "currency": currency}
        )
        return {r["threshold_nanos"] for r in rows}

    def raise_alerts(self, new: list[NewAlert], sequence: int) -> list[Alert]:
        """Give ``new`` the next alert ids and store them, in this transaction.

        The counter row stays locked until COMMIT, so ids are gap-free and
        committed in order, whichever replica raises them.
        """
        if not new:
            return []
        sql = self._unit.db_write()
        last = sql.conn.execute(_TAKE_IDS, {"count": len(new)}).scalar_one()
        alerts = [
            Alert(
                alert_id=last - len(new) + 1 + i,
                customer_id=a.customer_id,
                period=a.period,
                threshold=a.threshold,
                period_charged=a.period_charged,
                crossed_at=a.crossed_at,
            )
            for i, a in enumerate(new)
        ]
        sql.many(
            _INSERT_ALERTS,
            [
                {
                    "alert_id": a.alert_id,
                    "customer_id": a.customer_id,
                    "period": a.period,
                    "currency": a.threshold.currency,
                    "threshold_nanos": a.threshold.nanos,
                    "period_charged_nanos": a.period_charged.nanos,
                    "crossed_at": to_micros(a.crossed_at),
                    "sequence": sequence,
                }
                for a in alerts
            ],
        )
        return alerts

    def alerts_after(self, after: int, customer_id: str, limit: int) -> list[Alert]:
        """Up to ``limit`` alerts with ``alert_id > after`` (of one customer, or all: "")."""
        params: dict[str, object] = {"after": after, "limit": limit}
        if customer_id:
            params["customer_id"] = customer_id
        rows = self._unit.db().all(_AFTER_OF_CUSTOMER if customer_id else _AFTER, params)
        return [_alert_from_row(r) for r in rows]
