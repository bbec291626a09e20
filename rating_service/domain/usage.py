"""Turning ledger entries into Stripe usage: aggregation and the reversal policy (pure).

Usage is the net of settled outcomes (+1) and reversals (-1), aggregated per
meter and time window (default one minute), in the period (calendar month,
UTC) of the ledger entry, exactly as the ledger counts it: a reversal counts
in the month it is made, not in its outcome's.

**Reversal policy: a reversal always reaches Stripe**, by the first of these
that applies (Stripe has no negative usage):

1. *Not yet planned*: usage planned in the same pass nets it out before
   anything is sent.
2. *Cancel and replace*: the meter event that carried the outcome is in the
   reversal's month and Stripe received it less than ``CANCEL_WINDOW`` minus
   ``CANCEL_MARGIN`` (23 h) ago, or it is not yet marked sent (it is sent
   first): the event is cancelled and its remainder sent under a new
   identifier (:func:`replacement_identifier`). Cancel and
   replacement are planned in one transaction with the cursor; the
   replacement is sent only once Stripe confirmed the cancel, so until then
   more reversals fold into it (one cancel, one replacement).
3. *Debt*: otherwise the reversal is owed by its meter and month, and paid off
   by the month's next usage before any of it is reported.
4. *Credit*: a debt still owed when the month closes (its end plus the
   Stripe account's invoice finalization grace, :func:`month_closes_at`)
   becomes a credit grant worth exactly the owed units at the meter's price,
   so the next invoice deducts it; a reversal counted in a month already
   closed is credited at once.

So, per customer, meter and month: Stripe's total minus the credited units
equals the ledger's net, the debt still owed in an open month aside.

Each planned event's ``identifier`` is derived from the ledger range it
covers, and is planned once (saved with the cursor in one transaction), so a
retry or a crash between sending and saving can never count it twice.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from rating_service.domain.postings import EntryKind, period_of

DEFAULT_WINDOW = timedelta(minutes=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class UsageFact:
    """One settled outcome (+1) or reversal (-1) of a customer, in ledger order."""

    sequence: int
    event_name: str
    at: datetime
    delta: int


@dataclass(frozen=True)
class PeriodState:
    """What has been planned for one meter and period, and the reversals still owed."""

    planned: int = 0
    debt: int = 0
    credited: int = 0
    """Owed-back units turned into credit grants once the period closed."""


@dataclass(frozen=True)
class PlannedEvent:
    identifier: str
    event_name: str
    period: str
    window_start: datetime
    value: int
    first_sequence: int
    last_sequence: int


@dataclass(frozen=True)
class UsagePlan:
    events: tuple[PlannedEvent, ...]
    states: Mapping[tuple[str, str], PeriodState] = field(default_factory=dict)
    """The new state of every (event_name, period) the facts touched."""


def meter_event_name(outcome_type: str, meters: Mapping[str, str]) -> str:
    """The meter an outcome type's usage goes to: as configured, else its own name."""
    return meters.get(outcome_type, outcome_type)


def usage_facts(
    kind: EntryKind, sequence: int, outcome_type: str, at: datetime, meters: Mapping[str, str]
) -> UsageFact | None:
    """The usage an entry makes: settlements count, reversals uncount, the rest is not usage."""
    delta = {EntryKind.OUTCOME_RATED: 1, EntryKind.OUTCOME_REVERSED: -1}.get(kind)
    if delta is None:
        return None
    return UsageFact(sequence, meter_event_name(outcome_type, meters), at, delta)


def window_of(at: datetime, window: timedelta) -> datetime:
    return _EPOCH + ((at - _EPOCH) // window) * window


def identifier(customer_id: str, event_name: str, first: int, last: int) -> str:
    """Stable for the ledger range it covers; at most 100 characters, as Stripe requires."""
    digest = hashlib.sha256(f"{customer_id}\0{event_name}\0{first}\0{last}".encode()).hexdigest()
    return f"rs-{first}-{last}-{digest[:32]}"


def replacement_identifier(customer_id: str, cancelled: str, value: int) -> str:
    """The identifier of what remains of the cancelled event ``cancelled`` (``value`` units)."""
    digest = hashlib.sha256(f"{customer_id}\0{cancelled}\0{value}".encode()).hexdigest()
    return f"rs-x-{digest[:48]}"


CANCEL_WINDOW = timedelta(hours=24)
"""Stripe cancels a meter event only within 24 hours of receiving it."""
CANCEL_MARGIN = timedelta(hours=1)
"""Kept in hand for the cancel to reach Stripe (a pass, retries, clock skew)."""


def cancellable(planned_at: datetime, now: datetime) -> bool:
    """Whether a cancel planned ``now`` will reach Stripe within its window.

    Stripe cannot have received an event before it was planned, so
    ``planned_at`` bounds the event's age from above without trusting when it
    was marked sent.
    """
    return now - planned_at < CANCEL_WINDOW - CANCEL_MARGIN


DEFAULT_MONTH_CLOSE_GRACE = timedelta(hours=1)
"""Stripe's default invoice finalization grace period (configurable up to 72 h)."""


def month_closes_at(period: str, grace: timedelta) -> datetime:
    """When a period (``YYYY-MM``) is closed: its end plus the invoice finalization grace."""
    year, month = (int(x) for x in period.split("-"))
    end = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)
    return end + grace


def owed_credit_key(customer_id: str, event_name: str, period: str, number: int) -> str:
    """The idempotency key and Stripe metadata of a month's ``number``-th owed-back credit."""
    digest = hashlib.sha256(f"{customer_id}\0{event_name}\0{period}\0{number}".encode())
    return f"rs-owed-{period}-{number}-{digest.hexdigest()[:40]}"


def plan_usage(
    customer_id: str,
    facts: Iterable[UsageFact],
    states: Mapping[tuple[str, str], PeriodState],
    window: timedelta = DEFAULT_WINDOW,
) -> UsagePlan:
    """The meter events for ``facts`` (in ledger order), netted against reversals owed."""
    groups: dict[tuple[str, str, datetime], list[UsageFact]] = {}
    for fact in facts:
        key = (fact.event_name, period_of(fact.at), window_of(fact.at, window))
        groups.setdefault(key, []).append(fact)
    new_states = dict(states)
    events: list[PlannedEvent] = []
    for (event_name, period, start), group in sorted(
        groups.items(), key=lambda kv: kv[1][0].sequence
    ):
        meter_period = (event_name, period)
        state = new_states.get(meter_period, PeriodState())
        net = sum(f.delta for f in group)
        if net < 0:
            # First undo usage planned in this same pass (not yet sent), newest first;
            # only what was already planned before becomes a debt.
            owed = -net
            for i in range(len(events) - 1, -1, -1):
                if owed == 0:
                    break
                e = events[i]
                if (e.event_name, e.period) != meter_period:
                    continue
                taken = min(owed, e.value)
                owed -= taken
                state = replace(state, planned=state.planned - taken)
                events[i] = replace(e, value=e.value - taken)
            state = replace(state, debt=state.debt + owed)
        else:
            paid = min(state.debt, net)
            value = net - paid
            state = replace(state, planned=state.planned + value, debt=state.debt - paid)
            if value > 0:
                first, last = group[0].sequence, group[-1].sequence
                events.append(
                    PlannedEvent(
                        identifier=identifier(customer_id, event_name, first, last),
                        event_name=event_name,
                        period=period,
                        window_start=start,
                        value=value,
                        first_sequence=first,
                        last_sequence=last,
                    )
                )
        new_states[meter_period] = state
    events = [e for e in events if e.value > 0]
    return UsagePlan(tuple(events), new_states)


@dataclass(frozen=True)
class Carrier:
    """The live meter event whose ledger range holds a reversed outcome's settlement."""

    identifier: str
    period: str
    value: int
    planned_at: datetime
    sent: bool
    """Marked sent. One not marked sent may be in Stripe already (a send whose answer a crash
    lost), so it is sent, then cancelled like the others."""
    pending_replacement: bool
    """A replacement not yet sendable (the event it replaces awaits its cancel): never sent."""


def take_reversals(
    facts: Iterable[UsageFact], carriers: Mapping[int, Carrier], now: datetime
) -> tuple[list[UsageFact], dict[str, int]]:
    """Split reversals that undo their carrier event from the rest (policy steps 2 and 3).

    ``carriers`` maps a reversal's sequence to its outcome's carrier. A
    reversal is taken out of its carrier (returned as units per carrier
    identifier) when the carrier is of the reversal's month, still has a unit
    to give, and is either :func:`cancellable`, or not marked sent (it is sent
    first, then cancelled: Stripe may hold it already from a send whose
    answer was lost, so it cannot simply shrink), or a replacement not yet
    sendable (then the reversal folds into it). Every other fact is returned,
    in order, for :func:`plan_usage`.
    """
    rest: list[UsageFact] = []
    taken: dict[str, int] = {}
    for fact in facts:
        carrier = carriers.get(fact.sequence) if fact.delta < 0 else None
        if (
            carrier is not None
            and carrier.period == period_of(fact.at)
            and carrier.value > taken.get(carrier.identifier, 0)
            and (
                carrier.pending_replacement
                or not carrier.sent
                or cancellable(carrier.planned_at, now)
            )
        ):
            taken[carrier.identifier] = taken.get(carrier.identifier, 0) + 1
        else:
            rest.append(fact)
    return rest, taken


STRIPE_MAX_AGE = timedelta(days=35)
_SAFETY = timedelta(hours=1)


def stripe_timestamp(window_start: datetime, now: datetime) -> datetime:
    """The event's time as Stripe will take it: within its 35-day window, never in the future.

    Usage that waited for a customer's Stripe id longer than Stripe accepts is
    stamped at the oldest time it still takes (reconciliation then shows it in
    that later period).
    """
    return min(max(window_start, now - STRIPE_MAX_AGE + _SAFETY), now)
