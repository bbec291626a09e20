"""The reporter's cost to the ledger's writer: none while idle, one short save per plan.

The writer is the ledger's one door for writes (group commit), and on SQLite
every job the reporter gives it costs the API the writer's in-memory working
set. So a pass that finds nothing to do gives it no job at all, and planning
reads on a snapshot: the writer only saves the plan, and only if the snapshot
is still the ledger's (a plan saved twice, or over a cursor that moved, is
refused and writes nothing).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

import pytest
import reporter_support as rs
from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from rating_service.ledger import outbox
from rating_service.ledger.schema import stripe_cursors, stripe_meter_events, stripe_usage_periods
from rating_service.reporter.settings import ReporterSettings

stripe_test_server = rs.stripe_test_server
stripe_gateway = rs.stripe_gateway
rig = rs.rig

T = TypeVar("T")


def writes_of(rig: rs.Rig, monkeypatch: pytest.MonkeyPatch) -> list[Callable[[Connection], Any]]:
    """Every job handed to the store's writer from now on (still run, as before)."""
    jobs: list[Callable[[Connection], Any]] = []
    write = rig.store.write

    async def recording(job: Callable[[Connection], T]) -> T:
        jobs.append(job)
        return await write(job)

    monkeypatch.setattr(rig.store, "write", recording)
    return jobs


async def test_a_pass_with_nothing_to_report_gives_the_writer_no_job(
    rig: rs.Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After everything is in Stripe, a pass reads and writes nothing, however often it runs."""
    reported = await rs.report_one_customer(rig)
    reporter = rig.reporter(ReporterSettings())
    await rs.drain(reporter, rig.store)
    jobs = writes_of(rig, monkeypatch)

    idle = [await reporter.run_once() for _ in range(3)]

    assert [r.did_work for r in idle] == [False] * 3
    assert jobs == []
    assert rig.server.state.meter_totals(reported.stripe_customer_id, rs.EVENT_NAME) == 30


async def plan(rig: rs.Rig, customer_id: str) -> outbox.RangePlan | None:
    return await rig.store.read(
        partial(
            outbox.plan_range,
            customer_id=customer_id,
            meters={},
            window=ReporterSettings().window,
            now=rig.clock(),
        )
    )


def planned(customer_id: str) -> Callable[[Connection], tuple[int, int, int]]:
    """(cursor, units in meter events, units planned in usage periods) of the customer."""

    def read(conn: Connection) -> tuple[int, int, int]:
        cursor = conn.execute(
            select(stripe_cursors.c.sequence).where(stripe_cursors.c.customer_id == customer_id)
        ).scalar()
        events = conn.execute(
            select(func.coalesce(func.sum(stripe_meter_events.c.value), 0)).where(
                stripe_meter_events.c.customer_id == customer_id
            )
        ).scalar_one()
        states = conn.execute(
            select(func.coalesce(func.sum(stripe_usage_periods.c.planned), 0)).where(
                stripe_usage_periods.c.customer_id == customer_id
            )
        ).scalar_one()
        return int(cursor or 0), int(events), int(states)

    return read


async def test_a_plan_is_saved_once_and_never_over_a_cursor_that_moved(rig: rs.Rig) -> None:
    """Two plans of one range from one snapshot: the first saved, the second refused, the
    range planned once; with more entries, planning again starts where the first stopped."""
    await rs.put_card(rig.stub, "standard", "0.99")
    rig.server.add_customer("cus_once")
    await rs.put_customer(rig.stub, "once-co", "cus_once", "standard")
    await rs.record_all(rig.stub, [rs.outcome("once-co", f"o-{i}") for i in range(7)])
    first, twin = await plan(rig, "once-co"), await plan(rig, "once-co")
    assert first is not None
    assert twin is not None

    saved = await rig.store.write(partial(outbox.save_plan, plan=first))
    after_first = await rig.store.read(planned("once-co"))
    saved_again = await rig.store.write(partial(outbox.save_plan, plan=first))
    twin_saved = await rig.store.write(partial(outbox.save_plan, plan=twin))
    after_twins = await rig.store.read(planned("once-co"))
    await rs.record_all(rig.stub, [rs.outcome("once-co", f"p-{i}") for i in range(4)])
    stale = await rig.store.write(partial(outbox.save_plan, plan=twin))
    after_stale = await rig.store.read(planned("once-co"))
    later = await plan(rig, "once-co")
    assert later is not None
    saved_later = await rig.store.write(partial(outbox.save_plan, plan=later))

    assert (saved, saved_again, twin_saved, stale, saved_later) == (True, False, False, False, True)
    assert after_first == (first.last, 7, 7)
    assert after_twins == after_stale == after_first
    assert later.after == first.last
    assert await rig.store.read(planned("once-co")) == (later.last, 11, 11)
