"""The ledger cannot be corrupted by any request: generated requests against the real server.

Every RPC gets RATING_FUZZ_EXAMPLES requests (default 2,000) built by
``fuzz_requests`` through the generated stubs, and as many as raw bytes (random,
or a plausible request's bytes cut, flipped or made invalid UTF-8). For each:

- the code is never INTERNAL or UNKNOWN;
- a refusal carries exactly one ErrorInfo with a reason of api.md's table, and each
  string of its status echoes at most 256 bytes of the request;
- a refused call writes nothing (nor does a read that succeeds);
- bytes that do not parse are INVALID_ARGUMENT / INVALID_FIELD.

Last, ``rating-service verify`` replays the ledger the fuzz left: chain, sums and
balances hold. Examples are derandomized and the server's clock stands still, so a
run is reproducible; set RATING_FUZZ_EXAMPLES higher for a long run.
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import pytest
from fuzz_checks import STREAMS, Caller
from fuzz_requests import SERVICE, parses, raw_bytes, requests
from hypothesis import HealthCheck, given, settings

pytestmark = pytest.mark.fuzz

EXAMPLES = int(os.environ.get("RATING_FUZZ_EXAMPLES", "2000"))
RAW_EXAMPLES = max(EXAMPLES // 8, 1)
"""Raw bytes mostly stop at the parser: an eighth as many reach every RPC's refusal path."""
RPCS = [method.name for method in SERVICE.methods]
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,  # a call's time is the server's, not the strategy's
    derandomize=True,
    database=None,
    # The strategies draw megabyte strings and 1,001-item batches on purpose.
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=False,
)


def test_every_rpc_has_a_strategy(fuzz_caller: Caller) -> None:
    """A new RPC is fuzzed from the day it is added: it needs a strategy here."""
    assert sorted(requests(fuzz_caller.tokens)) == sorted(RPCS)


def examples(rpc: str, count: int) -> int:
    """``count``, or a quarter of it for a server stream: an admitted watch is read until its
    deadline (``STREAM_WAIT``), so each one costs that much time."""
    return max(count // 4, 1) if rpc in STREAMS else count


@pytest.mark.parametrize("rpc", RPCS)
def test_no_request_answers_internal_or_writes_when_refused(fuzz_caller: Caller, rpc: str) -> None:
    """Generated requests through the stub: contract answers only, and a refusal writes nothing."""

    @settings(FUZZ, max_examples=examples(rpc, EXAMPLES))
    @given(request=requests(fuzz_caller.tokens)[rpc])
    def run(request: Any) -> None:
        fuzz_caller.call(rpc, request)

    run()


@pytest.mark.parametrize("rpc", RPCS)
def test_bytes_that_do_not_parse_are_invalid_field_and_others_follow_the_contract(
    fuzz_caller: Caller, rpc: str
) -> None:
    """Raw bytes as the request: INVALID_FIELD unless they parse, then as any request."""

    @settings(FUZZ, max_examples=examples(rpc, RAW_EXAMPLES))
    @given(sent=raw_bytes(requests(fuzz_caller.tokens)[rpc]))
    def run(sent: bytes) -> None:
        fuzz_caller.call_raw(rpc, sent, parses(rpc, sent))

    run()


def test_the_ledger_the_fuzz_left_verifies(fuzz_caller: Caller) -> None:
    """``rating-service verify`` on the fuzzed database: exit 0 (chain, sums, balances)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RATING_", "STRIPE_"))}
    env["RATING_DATABASE_URL"] = f"sqlite+aiosqlite:///{fuzz_caller.database_path}"

    done = subprocess.run(
        [sys.executable, "-m", "rating_service", "verify"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert done.returncode == 0, done.stdout + done.stderr
    assert fuzz_caller.ledger.entries() > 0
