"""Page tokens (rating_service.api.page_tokens): what binds a token besides its customer.

The server's tests (tests/integration/test_page_tokens.py) cover customers, tampering,
replicas and restarts; these cover the listing and the key, which one server cannot vary.
"""

from __future__ import annotations

import pytest

from rating_service.api.page_tokens import INT64_MAX, PageTokens
from rating_service.domain.errors import InvalidArgument

KEY = bytes(range(32))


def test_a_token_reads_back_the_sequence_it_was_issued_for() -> None:
    tokens = PageTokens(KEY, "ListLedgerEntries")

    assert [tokens.read("acme", tokens.issue("acme", s)) for s in (1, 2, INT64_MAX)] == [
        1,
        2,
        INT64_MAX,
    ]
    assert tokens.read("acme", "") == 0


@pytest.mark.parametrize(
    "reader",
    [PageTokens(KEY, "ListAlerts"), PageTokens(bytes(reversed(KEY)), "ListLedgerEntries")],
    ids=["another-listing", "another-key"],
)
def test_a_token_of_another_listing_or_key_is_refused(reader: PageTokens) -> None:
    token = PageTokens(KEY, "ListLedgerEntries").issue("acme", 7)

    with pytest.raises(InvalidArgument) as raised:
        reader.read("acme", token)

    assert [v.field for v in raised.value.violations] == ["page_token"]


def test_a_key_shorter_than_32_bytes_is_refused() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        PageTokens(KEY[:31], "ListLedgerEntries")
