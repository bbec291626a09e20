"""Turning ledger entries into Stripe usage: aggregation and the reversal policy (pure).

Usage is the net of settled outcomes (+1) and reversals (-1), aggregated per
meter and time window (default one minute), in the period (calendar month,
UTC) of the ledger entry, exactly as the ledger counts it.

**Reversal policy: net within the period.** Stripe has no negative usage.
A reversal first cancels usage of the same meter and period that is planned
in the same pass (not yet sent); a reversal of usage already planned becomes a
*debt* of that meter and period, paid off by the next positive usage of the
same period before any of it is reported. So Stripe's total for a period equals the ledger's net for it
whenever that net is not negative; a period whose reversals outnumber its
usage is reported as 0 (what Stripe would invoice for a negative total anyway)
and its remaining debt is shown by reconciliation. Why not the alternatives:
cancelling a sent event works only within 24 h of Stripe receiving it and
cancels the whole aggregate; a compensating credit grant would move money
into another period's invoice.

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


def grant_idempotency_key(customer_id: str, bucket_id: str) -> str:
    """A bucket's credit grant is created with this key on every attempt, across restarts."""
    digest = hashlib.sha256(f"{customer_id}\0{bucket_id}".encode()).hexdigest()
    return f"rs-grant-{digest[:48]}"


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
                state = PeriodState(state.planned - taken, state.debt)
                events[i] = replace(e, value=e.value - taken)
            state = PeriodState(state.planned, state.debt + owed)
        else:
            paid = min(state.debt, net)
            value = net - paid
            state = PeriodState(state.planned + value, state.debt - paid)
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


STRIPE_MAX_AGE = timedelta(days=35)
_SAFETY = timedelta(hours=1)


def stripe_timestamp(window_start: datetime, now: datetime) -> datetime:
    """The event's time as Stripe will take it: within its 35-day window, never in the future.

    Usage that waited for a customer's Stripe id longer than Stripe accepts is
    stamped at the oldest time it still takes (reconciliation then shows it in
    that later period).
    """
    return min(max(window_start, now - STRIPE_MAX_AGE + _SAFETY), now)
