"""Identifier rules shared by every request (api.md: 1 to 128 of ``A-Z a-z 0-9 _ . : -``)."""

from __future__ import annotations

import re

from rating_service.domain.currencies import is_currency
from rating_service.domain.errors import FieldViolation

_IDENTIFIER = re.compile(r"[A-Za-z0-9_.:\-]{1,128}")
_CURRENCY = re.compile(r"[A-Z]{3}")


def identifier_violation(field: str, value: str, *, required: bool = True) -> FieldViolation | None:
    """Why ``value`` is not an acceptable identifier, or None when it is."""
    if not value:
        return FieldViolation(field, "is required") if required else None
    if not _IDENTIFIER.fullmatch(value):
        return FieldViolation(
            field, "must be 1 to 128 characters of A-Z a-z 0-9 _ . : - (got a different value)"
        )
    return None


def currency_violation(field: str, value: str) -> FieldViolation | None:
    """Why ``value`` is not an ISO 4217 code, or None when it is."""
    if not value:
        return FieldViolation(field, "is required (an ISO 4217 code such as USD)")
    if not _CURRENCY.fullmatch(value):
        return FieldViolation(field, "must be an ISO 4217 code of 3 capital letters, such as USD")
    if not is_currency(value):
        return FieldViolation(field, f"{value} is not an active ISO 4217 currency code")
    return None
