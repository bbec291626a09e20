"""Commands on one outcome: record it (alone or in a batch), confirm it, reverse it."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from rating_service.domain.commands._rules import (
    MAX_REASON_BYTES,
    OutcomeKey,
    bytes_violation,
    fingerprint,
    raise_if_any,
)
from rating_service.domain.errors import FieldViolation, InvalidArgument
from rating_service.domain.identifiers import identifier_violation

MAX_FUTURE_SKEW = timedelta(minutes=5)
MAX_ATTRIBUTES = 16
MAX_ATTRIBUTE_BYTES = 256
MAX_BATCH = 1000


class OutcomeState(enum.Enum):
    CONFIRMED = "CONFIRMED"
    PENDING = "PENDING"
    SETTLED = "SETTLED"
    RELEASED = "RELEASED"
    REVERSED = "REVERSED"


_INPUT_STATES = frozenset((OutcomeState.CONFIRMED, OutcomeState.PENDING))
"""The states an outcome may be recorded in; the others are reached by later calls."""


def _future_violation(field_name: str, at: datetime | None, now: datetime) -> FieldViolation | None:
    if at is not None and at > now + MAX_FUTURE_SKEW:
        return FieldViolation(field_name, "must not be more than 5 minutes in the future")
    return None


@dataclass(frozen=True)
class RecordOutcome:
    customer_id: str
    outcome_id: str
    outcome_type: str
    occurred_at: datetime | None
    state: OutcomeState
    attributes: Mapping[str, str] = field(default_factory=dict)

    def validate(self, now: datetime, prefix: str = "") -> None:
        """``prefix`` (``requests[3].``) starts each field's name: one item of a batch.

        The names are built only on the error path: most outcomes are valid, and
        validation runs on the event loop for every one.
        """
        found = [
            violation
            for violation in (
                identifier_violation("customer_id", self.customer_id),
                identifier_violation("outcome_id", self.outcome_id),
                identifier_violation("outcome_type", self.outcome_type),
                _future_violation("occurred_at", self.occurred_at, now),
                None
                if self.state in _INPUT_STATES
                else FieldViolation(
                    "state", "must be OUTCOME_STATE_CONFIRMED or OUTCOME_STATE_PENDING"
                ),
                *self._attribute_violations(),
            )
            if violation is not None
        ]
        if found:
            raise InvalidArgument(*(FieldViolation(prefix + v.field, v.description) for v in found))

    def _attribute_violations(self) -> list[FieldViolation]:
        found: list[FieldViolation] = []
        if len(self.attributes) > MAX_ATTRIBUTES:
            found.append(
                FieldViolation("attributes", f"must have at most {MAX_ATTRIBUTES} entries")
            )
        # Only the first over-long attribute is named: each name echoes part of its key,
        # and an error echoes at most 256 bytes of the request, however many are too long.
        for key, value in self.attributes.items():
            if max(len(key.encode()), len(value.encode())) > MAX_ATTRIBUTE_BYTES:
                found.append(
                    FieldViolation(
                        f"attributes[{key[:40]}]", f"must be at most {MAX_ATTRIBUTE_BYTES} bytes"
                    )
                )
                break
        return found

    def fingerprint(self) -> str:
        return fingerprint(
            "record", self.outcome_type, self.occurred_at, self.state, dict(self.attributes)
        )


@dataclass(frozen=True)
class ConfirmOutcome(OutcomeKey):
    pass


@dataclass(frozen=True)
class ReverseOutcome(OutcomeKey):
    reason: str

    def validate(self) -> None:
        raise_if_any(
            *self.key_violations(), bytes_violation("reason", self.reason, MAX_REASON_BYTES)
        )

    def fingerprint(self) -> str:
        return fingerprint("reverse", self.reason)


def require_batch_size(count: int) -> None:
    """A RecordOutcomes call holds 1 to ``MAX_BATCH`` items (each is validated on its own)."""
    if not 1 <= count <= MAX_BATCH:
        raise InvalidArgument.field("requests", f"must hold 1 to {MAX_BATCH} items, got {count}")
