"""Ledger transaction ids: UUIDv7, so new ids land at the end of their index."""

from __future__ import annotations

import time
import uuid

from rating_service.ledger.append import time_ordered_uuid


def test_a_transaction_id_is_an_rfc_9562_version_7_uuid_carrying_its_millisecond() -> None:
    before = time.time_ns() // 1_000_000
    text = time_ordered_uuid()
    after = time.time_ns() // 1_000_000

    parsed = uuid.UUID(text)
    assert str(parsed) == text
    assert (parsed.version, parsed.variant) == (7, uuid.RFC_4122)
    assert before <= parsed.int >> 80 <= after


def test_ids_made_a_millisecond_apart_sort_in_the_order_they_were_made() -> None:
    first = time_ordered_uuid()
    time.sleep(0.002)
    second = time_ordered_uuid()

    assert first < second


def test_ten_thousand_ids_are_all_different() -> None:
    assert len({time_ordered_uuid() for _ in range(10_000)}) == 10_000
