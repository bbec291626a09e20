"""Customers and their chain heads."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from sqlalchemy import bindparam, select, update

from rating_service.domain.errors import CustomerNotFound
from rating_service.domain.results import Customer
from rating_service.ledger.codec import from_micros, to_micros
from rating_service.ledger.executor import RowLike
from rating_service.ledger.heads import CustomerHead
from rating_service.ledger.repositories.spend import controls_from_row
from rating_service.ledger.schema import customers

if TYPE_CHECKING:
    from rating_service.ledger.unit import Unit

# Hot-path statements are built once: building a statement costs more than running it.
_CUSTOMER = select(customers).where(customers.c.customer_id == bindparam("customer_id"))
_CUSTOMER_FOR_UPDATE = _CUSTOMER.with_for_update()
_LOCK_CUSTOMERS = (
    select(customers)
    .where(customers.c.customer_id.in_(bindparam("ids", expanding=True)))
    .order_by(customers.c.customer_id)
    .with_for_update()
)
_EXISTING = select(customers.c.customer_id).where(
    customers.c.customer_id.in_(bindparam("ids", expanding=True))
)
_ON_CARD = (
    select(customers.c.customer_id)
    .where(customers.c.rate_card_id == bindparam("card"))
    .order_by(customers.c.customer_id)
)


def head_from_row(row: RowLike) -> CustomerHead:
    return CustomerHead(
        customer_id=row["customer_id"],
        stripe_customer_id=row["stripe_customer_id"],
        rate_card_id=row["rate_card_id"],
        head_sequence=row["head_sequence"],
        head_hash=row["head_hash"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        spend_controls=controls_from_row(row),
    )


def customer_of(head: CustomerHead) -> Customer:
    return Customer(
        head.customer_id,
        head.stripe_customer_id,
        head.rate_card_id,
        from_micros(head.created_at),
        from_micros(head.updated_at),
    )


class Customers:
    def __init__(self, unit: Unit) -> None:
        self._unit = unit

    def head(self, customer_id: str) -> CustomerHead:
        """The customer and its chain head; in a write, locked (PostgreSQL) until COMMIT."""
        caches = self._unit.caches
        if caches is None:
            return self._load(customer_id, for_update=False)
        head = caches.heads.get(customer_id)
        if head is None:
            head = caches.heads[customer_id] = self._load(customer_id, for_update=True)
        return head

    def find(self, customer_id: str) -> CustomerHead | None:
        """The customer (locked in a write), or None when it does not exist."""
        locked = self._unit.caches is not None and self._unit.dialect == "postgresql"
        row = self._unit.db().first(
            _CUSTOMER_FOR_UPDATE if locked else _CUSTOMER, {"customer_id": customer_id}
        )
        return None if row is None else head_from_row(row)

    def _load(self, customer_id: str, *, for_update: bool) -> CustomerHead:
        locked = for_update and self._unit.dialect == "postgresql"
        row = self._unit.sql.first(
            _CUSTOMER_FOR_UPDATE if locked else _CUSTOMER, {"customer_id": customer_id}
        )
        if row is None:
            raise CustomerNotFound(
                f"customer {customer_id!r} does not exist", customer_id=customer_id
            )
        return head_from_row(row)

    def missing(self, customer_ids: Iterable[str]) -> list[str]:
        """Those of ``customer_ids`` that do not exist, in the order given."""
        ids = list(customer_ids)
        found = {r["customer_id"] for r in self._unit.db().all(_EXISTING, {"ids": ids})}
        return [i for i in ids if i not in found]

    def on_rate_card(self, rate_card_id: str) -> list[str]:
        """The customers whose rate card this is now, by id."""
        return [r["customer_id"] for r in self._unit.db().all(_ON_CARD, {"card": rate_card_id})]

    def lock(self, customer_ids: Iterable[str]) -> None:
        """Lock these customers' rows in one statement, in id order (PostgreSQL only).

        Every transaction that takes its customers' locks in the same order can
        wait for another but never deadlock with it: replicas sharing one ledger
        group many callers, so many customers, into each transaction.
        """
        ids = sorted(set(customer_ids))
        caches = self._unit.caches
        if self._unit.dialect != "postgresql" or not ids or caches is None:
            return
        for row in self._unit.sql.all(_LOCK_CUSTOMERS, {"ids": ids}):
            head = head_from_row(row)
            caches.heads.setdefault(head.customer_id, head)

    def add(self, customer: Customer) -> None:
        self._unit.customer_changed(customer.customer_id)
        self._unit.db_write().conn.execute(
            customers.insert().values(
                customer_id=customer.customer_id,
                stripe_customer_id=customer.stripe_customer_id,
                rate_card_id=customer.rate_card_id,
                head_sequence=0,
                head_hash="",
                created_at=to_micros(customer.created_at),
                updated_at=to_micros(customer.updated_at),
            )
        )

    def update(self, customer: Customer) -> None:
        """Its Stripe id and rate card (the chain head is the ledger's to move)."""
        self._unit.customer_changed(customer.customer_id)
        self._unit.db_write().conn.execute(
            update(customers)
            .where(customers.c.customer_id == customer.customer_id)
            .values(
                stripe_customer_id=customer.stripe_customer_id,
                rate_card_id=customer.rate_card_id,
                updated_at=to_micros(customer.updated_at),
            )
        )
