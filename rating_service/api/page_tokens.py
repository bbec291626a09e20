"""Page tokens: opaque, bound to the listing and the customer they were issued for.

A token is ``base64url(version || sequence || tag)`` without padding: a version
byte, the sequence of the last entry served (8 bytes, big-endian) and
``tag = HMAC-SHA256(key, version || listing || customer_id || sequence)``, the
listing and the customer id each preceded by its length. The key is drawn once
per database (migration 0004) and read at start, so every server sharing the
ledger accepts the tokens of the others, across restarts. A token that was
tampered with, that another customer or listing was given, or that carries
anything more (trailing characters, padding) is refused as InvalidArgument on
``page_token``; such a token tells nothing, and nothing about a customer can be
read with it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import struct

from rating_service.domain.errors import InvalidArgument

VERSION = 1
_SEQUENCE = struct.Struct(">Q")
_TAG_BYTES = hashlib.sha256().digest_size
_TOKEN_BYTES = 1 + _SEQUENCE.size + _TAG_BYTES
_TOKEN_CHARS = len(base64.urlsafe_b64encode(bytes(_TOKEN_BYTES)).rstrip(b"="))
_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
INT64_MAX = 2**63 - 1


def _framed(text: str) -> bytes:
    data = text.encode()
    return struct.pack(">I", len(data)) + data


class PageTokens:
    """Issues and reads the page tokens of one listing (e.g. ``ListLedgerEntries``)."""

    def __init__(self, key: bytes, listing: str) -> None:
        if len(key) < 32:
            raise ValueError("a page token key has at least 32 bytes")
        self._keyed = hmac.new(key, bytes([VERSION]) + _framed(listing), hashlib.sha256)
        self._refusal = f"is not a token returned by {listing} for this customer"

    def _tag(self, customer_id: str, sequence: bytes) -> bytes:
        mac = self._keyed.copy()  # keyed once: a copy costs less than the key schedule
        mac.update(_framed(customer_id) + sequence)
        return mac.digest()

    def issue(self, customer_id: str, sequence: int) -> str:
        """The token of the page that follows the entry ``sequence`` of ``customer_id``."""
        packed = _SEQUENCE.pack(sequence)
        token = bytes([VERSION]) + packed + self._tag(customer_id, packed)
        return base64.urlsafe_b64encode(token).rstrip(b"=").decode("ascii")

    def read(self, customer_id: str, token: str) -> int:
        """The sequence a token of ``customer_id`` continues after; 0 for no token."""
        if not token:
            return 0
        if len(token) != _TOKEN_CHARS or not _ALPHABET.issuperset(token):
            raise self._refused()
        data = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        if base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii") != token:
            raise self._refused()  # stray bits in the last character
        packed, tag = data[1 : 1 + _SEQUENCE.size], data[1 + _SEQUENCE.size :]
        if data[0] != VERSION or not hmac.compare_digest(tag, self._tag(customer_id, packed)):
            raise self._refused()
        (sequence,) = _SEQUENCE.unpack(packed)
        if not 0 < sequence <= INT64_MAX:
            raise self._refused()
        return int(sequence)

    def _refused(self) -> InvalidArgument:
        return InvalidArgument.field("page_token", self._refusal)
