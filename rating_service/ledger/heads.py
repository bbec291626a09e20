"""A customer's row as the write path holds it: its chain's head moves with each append."""

from __future__ import annotations

from dataclasses import dataclass

from rating_service.domain.spend import SpendControls


@dataclass
class CustomerHead:
    customer_id: str
    stripe_customer_id: str
    rate_card_id: str
    head_sequence: int
    head_hash: str
    created_at: int
    updated_at: int
    spend_controls: SpendControls | None = None
