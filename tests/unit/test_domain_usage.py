"""Usage planning: aggregation per meter and window, and the net-within-the-period reversal policy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from rating_service.domain.usage import (
    Carrier,
    PeriodState,
    UsageFact,
    identifier,
    plan_usage,
    stripe_timestamp,
    take_reversals,
    window_of,
)

NOV = datetime(2026, 11, 10, 12, 0, tzinfo=UTC)


def fact(sequence: int, delta: int = 1, at: datetime = NOV, event: str = "resolution") -> UsageFact:
    return UsageFact(sequence, event, at, delta)


def test_outcomes_in_one_window_become_one_event_with_their_count() -> None:
    """Three settlements within a minute are one meter event of value 3 covering sequences 1-3."""
    plan = plan_usage("acme", [fact(1), fact(2, at=NOV + timedelta(seconds=30)), fact(3)], {})

    assert [(e.value, e.first_sequence, e.last_sequence) for e in plan.events] == [(3, 1, 3)]
    assert plan.states[("resolution", "2026-11")] == PeriodState(planned=3, debt=0)


def test_each_window_and_meter_gets_its_own_event() -> None:
    """Two minutes and two meters make three events."""
    plan = plan_usage(
        "acme",
        [fact(1), fact(2, at=NOV + timedelta(minutes=1)), fact(3, event="handoff")],
        {},
    )

    assert sorted((e.event_name, e.window_start, e.value) for e in plan.events) == [
        ("handoff", NOV, 1),
        ("resolution", NOV, 1),
        ("resolution", NOV + timedelta(minutes=1), 1),
    ]


def test_a_reversal_of_reported_usage_is_netted_against_later_usage_of_the_period() -> None:
    """A reversal is owed, then paid off by the next settlement: nothing is reported for it."""
    owed = plan_usage("acme", [fact(5, delta=-1)], {("resolution", "2026-11"): PeriodState(3, 0)})
    later = plan_usage("acme", [fact(6, at=NOV + timedelta(minutes=5))], owed.states)

    assert owed.events == ()
    assert owed.states[("resolution", "2026-11")] == PeriodState(3, 1)
    assert later.events == ()
    assert later.states[("resolution", "2026-11")] == PeriodState(3, 0)


def test_debt_is_kept_per_period() -> None:
    """A November reversal does not reduce December's usage."""
    december = datetime(2026, 12, 1, tzinfo=UTC)

    plan = plan_usage("acme", [fact(1, delta=-1), fact(2, at=december)], {})

    assert [(e.period, e.value) for e in plan.events] == [("2026-12", 1)]
    assert plan.states[("resolution", "2026-11")].debt == 1


@given(st.lists(st.tuples(st.integers(0, 30), st.sampled_from([1, 1, 1, -1])), max_size=60))
def test_planned_minus_debt_always_equals_the_net_of_the_facts(
    steps: list[tuple[int, int]],
) -> None:
    """However facts are batched, what is sent less what is owed is the ledger's net usage."""
    facts = [fact(i + 1, delta, NOV + timedelta(minutes=m)) for i, (m, delta) in enumerate(steps)]
    half = len(facts) // 2

    first = plan_usage("acme", facts[:half], {})
    second = plan_usage("acme", facts[half:], first.states)

    state = second.states.get(("resolution", "2026-11"), PeriodState())
    sent = sum(e.value for e in first.events + second.events)
    assert sent == state.planned
    assert state.planned - state.debt == sum(f.delta for f in facts)
    assert all(e.value > 0 for e in first.events + second.events)


def test_identifiers_are_stable_short_and_distinct() -> None:
    """The same range gives the same identifier; another range another; at most 100 characters."""
    long_customer = "c" * 128

    assert identifier(long_customer, "resolution", 1, 9) == identifier(
        long_customer, "resolution", 1, 9
    )
    assert identifier(long_customer, "resolution", 1, 9) != identifier(
        long_customer, "resolution", 1, 8
    )
    assert len(identifier(long_customer, "x" * 100, 10**15, 10**15)) <= 100


def test_windows_align_to_whole_minutes() -> None:
    """12:00:59 falls in the 12:00 window."""
    assert window_of(NOV + timedelta(seconds=59), timedelta(minutes=1)) == NOV


def test_usage_older_than_stripe_accepts_is_stamped_at_the_oldest_time_it_takes() -> None:
    """A 40-day-old window is moved inside Stripe's 35-day window; a recent one keeps its time."""
    now = NOV + timedelta(days=40)

    assert stripe_timestamp(NOV, now) == now - timedelta(days=35) + timedelta(hours=1)
    assert stripe_timestamp(now - timedelta(minutes=3), now) == now - timedelta(minutes=3)


def test_a_reversal_in_the_same_pass_cancels_unsent_usage_instead_of_owing_it() -> None:
    """Settled at 12:00 and reversed at 12:05, planned together: nothing reaches Stripe, nothing is owed."""
    plan = plan_usage(
        "acme", [fact(1), fact(2), fact(3, delta=-1, at=NOV + timedelta(minutes=5))], {}
    )

    assert [e.value for e in plan.events] == [1]
    assert plan.states[("resolution", "2026-11")] == PeriodState(planned=1, debt=0)


def carrier(*, sent: bool, planned_hours_ago: float) -> Carrier:
    return Carrier(
        identifier="ev-1",
        period="2026-11",
        value=5,
        planned_at=NOV - timedelta(hours=planned_hours_ago),
        sent=sent,
        pending_replacement=False,
    )


def test_a_reversal_cancels_its_sent_carrier_within_23_hours_and_is_owed_after() -> None:
    reversal = fact(9, delta=-1)

    fresh = take_reversals([reversal], {9: carrier(sent=True, planned_hours_ago=22)}, NOV)
    stale = take_reversals([reversal], {9: carrier(sent=True, planned_hours_ago=23)}, NOV)

    assert (fresh, stale) == (([], {"ev-1": 1}), ([reversal], {}))


def test_a_reversal_cancels_a_carrier_not_yet_marked_sent_however_old_it_is() -> None:
    """Its send comes first (Stripe may hold it already), so Stripe's 24 hours start then."""
    reversal = fact(9, delta=-1)

    taken = take_reversals([reversal], {9: carrier(sent=False, planned_hours_ago=72)}, NOV)

    assert taken == ([], {"ev-1": 1})
