"""The reporter's lease: one holder among the processes sharing a ledger, freed by death.

Replicas stand by while one reports to Stripe; if the reporting one is killed
(``kill -9``, no chance to clean up), another must take over by itself.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator

import pytest

from rating_service.ledger.engine import Engines, create_engines
from rating_service.ledger.lease import lease_for

HOLD_AND_WAIT = """
import asyncio, sys
from rating_service.ledger.engine import create_engines
from rating_service.ledger.lease import lease_for

async def main() -> None:
    lease = lease_for(create_engines(sys.argv[1]).reader, "probe")
    print("held" if await lease.try_acquire() else "refused", flush=True)
    await asyncio.sleep(3600)

asyncio.run(main())
"""


@pytest.fixture
async def engines(database_url: str) -> AsyncIterator[Engines]:
    created = create_engines(database_url)
    yield created
    await created.dispose()


async def test_a_second_holder_is_refused_until_the_first_releases(
    engines: Engines, database_url: str
) -> None:
    other = create_engines(database_url)
    first, second = lease_for(engines.reader, "probe"), lease_for(other.reader, "probe")
    try:
        taken = [await first.try_acquire(), await second.try_acquire(), await first.try_acquire()]
        await first.release()
        after_release = await second.try_acquire()
    finally:
        await second.release()
        await other.dispose()

    assert taken == [True, False, True]
    assert after_release


async def test_a_holder_killed_with_sigkill_frees_the_lease(
    engines: Engines, database_url: str
) -> None:
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", HOLD_AND_WAIT, database_url, stdout=asyncio.subprocess.PIPE
    )
    assert child.stdout is not None
    said = (await asyncio.wait_for(child.stdout.readline(), timeout=30)).decode().strip()
    lease = lease_for(engines.reader, "probe")
    refused_while_alive = not await lease.try_acquire()

    os.kill(child.pid, signal.SIGKILL)
    await child.wait()
    for _ in range(100):  # PostgreSQL ends the session once it sees the socket close
        if await lease.try_acquire():
            break
        await asyncio.sleep(0.1)
    taken_after_death = await lease.try_acquire()
    await lease.release()

    assert said == "held"
    assert refused_while_alive
    assert taken_after_death
