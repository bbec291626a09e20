"""The wire formats of scalar values: Money, Timestamp and Duration (page tokens: ``page_tokens``).

A value the proto can carry but the domain cannot hold (nanos out of range,
mixed signs, a time outside 0001-01-01 .. 9999-12-31, a time or a duration
finer than the microsecond the ledger keeps) is refused here as InvalidArgument naming the field; every rule about what a
request may ask lives in the domain commands.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from google.protobuf import duration_pb2, timestamp_pb2
from google.type import money_pb2

from rating_service.domain.errors import InvalidArgument
from rating_service.domain.money import NANOS_PER_UNIT, Money

MAX_NANOS = 2**63 - 1  # what the ledger's 64-bit integer columns hold
MAX_DURATION_SECONDS = 315_576_000_000  # google.protobuf.Duration's documented range
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def money_in(message: money_pb2.Money, field: str) -> Money:
    units, nanos = message.units, message.nanos
    if not -NANOS_PER_UNIT < nanos < NANOS_PER_UNIT:
        raise InvalidArgument.field(f"{field}.nanos", "must be between -999999999 and 999999999")
    if (units > 0 and nanos < 0) or (units < 0 and nanos > 0):
        raise InvalidArgument.field(field, "units and nanos must have the same sign")
    total = units * NANOS_PER_UNIT + nanos
    if abs(total) > MAX_NANOS:
        raise InvalidArgument.field(field, "must be at most 9,223,372,036 currency units")
    return Money(message.currency_code, total)


def money_out(money: Money) -> money_pb2.Money:
    message = money_pb2.Money()
    set_money(message, money)
    return message


def set_money(message: money_pb2.Money, money: Money) -> None:
    """Fill an empty ``google.type.Money`` (often a response's field, in place: no copy)."""
    message.currency_code = money.currency
    if money.nanos < 0:
        units, nanos = divmod(-money.nanos, NANOS_PER_UNIT)
        message.units, message.nanos = -units, -nanos
    else:
        message.units, message.nanos = divmod(money.nanos, NANOS_PER_UNIT)


_FIRST_SECOND = -62_135_596_800  # 0001-01-01T00:00:00Z
_LAST_SECOND = 253_402_300_799  # 9999-12-31T23:59:59Z
_TIMESTAMP_RANGE = "must be between 0001-01-01T00:00:00Z and 9999-12-31T23:59:59.999999Z"
_WHOLE_MICROSECONDS = "must be a whole number of microseconds (nanos a multiple of 1000)"


def stamp_in(stamp: timestamp_pb2.Timestamp, field: str) -> datetime:
    """A Timestamp as an aware UTC datetime; the ledger keeps microseconds, so no finer part."""
    seconds, nanos = stamp.seconds, stamp.nanos
    if not 0 <= nanos < NANOS_PER_UNIT:
        raise InvalidArgument.field(field, "nanos must be between 0 and 999,999,999")
    if not _FIRST_SECOND <= seconds <= _LAST_SECOND:
        raise InvalidArgument.field(field, _TIMESTAMP_RANGE)
    if nanos % 1000:
        raise InvalidArgument.field(field, _WHOLE_MICROSECONDS)
    return _EPOCH + timedelta(seconds=seconds, microseconds=nanos // 1000)


def time_in(owner: object, name: str, field: str | None = None) -> datetime | None:
    """The timestamp field ``name`` of ``owner``, or None when absent."""
    if not owner.HasField(name):  # type: ignore[attr-defined]
        return None
    return stamp_in(getattr(owner, name), field or name)


def time_out(at: datetime) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    set_time(stamp, at)
    return stamp


def set_time(stamp: timestamp_pb2.Timestamp, at: datetime) -> None:
    """``stamp.FromDatetime(at)`` into an empty Timestamp (often a response's field, in place).

    The instants the service handles are UTC: for those, exact integer arithmetic
    (whole seconds since the epoch, rounded down, and the microseconds) is several
    times cheaper than ``FromDatetime``'s ``calendar.timegm``; any other ``at`` takes
    ``FromDatetime`` itself.
    """
    if at.tzinfo is UTC:
        since = at - _EPOCH
        stamp.seconds = since.days * 86400 + since.seconds
        stamp.nanos = since.microseconds * 1000
    else:
        stamp.FromDatetime(at)


def duration_in(message: duration_pb2.Duration, field: str) -> timedelta:
    seconds, nanos = message.seconds, message.nanos
    if not -NANOS_PER_UNIT < nanos < NANOS_PER_UNIT:
        raise InvalidArgument.field(field, "nanos must be between -999999999 and 999999999")
    if (seconds > 0 and nanos < 0) or (seconds < 0 and nanos > 0):
        raise InvalidArgument.field(field, "seconds and nanos must have the same sign")
    if abs(seconds) > MAX_DURATION_SECONDS:
        raise InvalidArgument.field(field, "is outside the range of google.protobuf.Duration")
    if nanos % 1000:
        raise InvalidArgument.field(field, _WHOLE_MICROSECONDS)
    return timedelta(seconds=seconds, microseconds=nanos // 1000)


def duration_out(delta: timedelta) -> duration_pb2.Duration:
    duration = duration_pb2.Duration()
    duration.FromTimedelta(delta)
    return duration
