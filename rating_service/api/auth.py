"""Who may call what: bearer tokens from a tokens file, and a scope per RPC.

The tokens file names each caller once per line::

    # <caller-name> <sha256-hex-of-token> <scope>[,<scope>...] [rate=<calls-per-second>]
    billing-worker 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08 record,read
    nightly-export 60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752 read rate=50

It holds digests, never tokens, so reading it gives nobody a token. A caller
sends ``authorization: Bearer <token>``; the token's SHA-256 is compared with
every entry in constant time (``hmac.compare_digest``, all entries, no early
exit), so neither the comparison nor the lookup tells how close a guess was or
which caller it came near. ``admin`` implies every scope. A method missing
from ``SCOPES`` is refused to everyone: a new RPC is closed until it is given a
scope here. The health service and reflection are registered without this.

``Authenticator`` runs outermost but for the metrics (see ``server``): before
admission counts the call and before the request is parsed, so a flood of
refused calls costs a metadata lookup and a hash each, and writes nothing.
The caller's name (never the token) goes to the metrics and the logs through
``CALLER``.

A caller with ``rate=`` may make that many calls a second on this server (a token bucket
holding one second's worth, so a burst of that size passes); past it a call is
RESOURCE_EXHAUSTED / ``RATE_LIMITED`` with a ``google.rpc.RetryInfo`` saying when to come
back. The buckets are per process: with N replicas behind a balancer a caller gets up to N
times its rate. A reload keeps a caller's bucket while its rate is unchanged.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grpc_status import rpc_status

from rating_service.api.errors import (
    PermissionDenied,
    RateLimited,
    Unauthenticated,
    abort_with,
    to_status,
)
from rating_service.api.interceptors import CALLER, Context, Unary, UnaryInterceptor
from rating_service.ratelimit import TokenBucket

log = logging.getLogger(__name__)

RECORD, CONSUME, READ, ADMIN = "record", "consume", "read", "admin"
ALL_SCOPES = frozenset({RECORD, CONSUME, READ, ADMIN})

SCOPES: dict[str, str] = {
    "RecordOutcome": RECORD,
    "RecordOutcomes": RECORD,
    "ConfirmOutcome": RECORD,
    "ReverseOutcome": RECORD,
    "ConsumeBucket": CONSUME,
    "QuoteCost": READ,
    "GetBalance": READ,
    "ListLedgerEntries": READ,
    "ExplainOutcome": READ,
    "PreviewInvoice": READ,
    "SimulateRateCard": READ,
    "WatchAlerts": READ,
    "PutCustomer": ADMIN,
    "PutRateCard": ADMIN,
    "CreateBucket": ADMIN,
    "VoidBucket": ADMIN,
    "PutSpendControls": ADMIN,
}
"""The scope each RatingService method needs (api.md); a method not named here is refused."""

UNASSIGNED = "unassigned"
"""``required_scope`` of a method missing from ``SCOPES``: no caller has it, admin included."""

UNAUTHENTICATED = "unauthenticated"
"""The caller of a call refused for want of a known token."""

MAX_RATE = 1_000_000.0
"""The largest ``rate=`` a tokens file may give (a typo of more is refused, not obeyed)."""

LOG_INTERVAL = 10.0
"""Seconds between two log lines about refused calls (a flood costs one line per interval)."""

_CALLER_NAME = re.compile(r"[A-Za-z0-9_.:@-]{1,128}")
_DIGEST = re.compile(r"[0-9a-f]{64}")


class TokensFileError(ValueError):
    """The tokens file cannot be read or has a line that is not an entry; says which."""


@dataclass(frozen=True)
class Caller:
    name: str
    digest: bytes
    """SHA-256 of the token."""
    scopes: frozenset[str]
    rate: float | None = None
    """``rate=`` of its line: calls a second it may make on this server (None: no limit)."""

    def may(self, scope: str) -> bool:
        return scope in self.scopes or (ADMIN in self.scopes and scope in ALL_SCOPES)


@dataclass(frozen=True)
class TokenTable:
    """The callers of a tokens file."""

    callers: tuple[Caller, ...]

    def identify(self, token: str) -> Caller | None:
        """The caller whose token this is, compared with every entry in constant time."""
        digest = hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest()
        found: Caller | None = None
        for caller in self.callers:
            if hmac.compare_digest(caller.digest, digest):
                found = caller
        return found


def token_digest(token: str) -> str:
    """The hex SHA-256 of a token, as the tokens file holds it (``printf %s TOKEN | sha256sum``)."""
    return hashlib.sha256(token.encode()).hexdigest()


def parse_tokens(text: str, source: str) -> TokenTable:
    """The callers of a tokens file's ``text``; a bad line raises naming ``source`` and its number."""
    callers: list[Caller] = []
    names: set[str] = set()
    digests: set[bytes] = set()
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue

        def bad(why: str, number: int = number) -> TokensFileError:
            return TokensFileError(f"{source}, line {number}: {why}")

        parts = line.split()
        if len(parts) not in (3, 4):
            raise bad(
                f"expected '<caller-name> <sha256-hex-of-token> <scope>[,<scope>...] "
                f"[rate=<calls-per-second>]', found {len(parts)} fields"
            )
        name, digest_hex, scope_list, *options = parts
        rate = _rate(options[0], bad) if options else None
        if not _CALLER_NAME.fullmatch(name):
            raise bad("the caller name must be 1 to 128 of A-Z a-z 0-9 _ . : @ -")
        if not _DIGEST.fullmatch(digest_hex.lower()):
            raise bad("the token's digest must be 64 hex digits (SHA-256), not the token itself")
        scopes = frozenset(scope_list.split(","))
        unknown = sorted(scopes - ALL_SCOPES)
        if unknown:
            raise bad(f"unknown scope {unknown[0]!r}; scopes are {', '.join(sorted(ALL_SCOPES))}")
        digest = bytes.fromhex(digest_hex)
        if name in names:
            raise bad(f"caller {name!r} is named twice")
        if digest in digests:
            raise bad(f"caller {name!r} has the same token as an earlier line")
        names.add(name)
        digests.add(digest)
        callers.append(Caller(name, digest, scopes, rate))
    return TokenTable(tuple(callers))


def _rate(option: str, bad: Callable[[str], TokensFileError]) -> float:
    """``rate=<calls-per-second>``: a positive number, at most ``MAX_RATE``."""
    key, _, value = option.partition("=")
    try:
        rate = float(value) if key == "rate" else float("nan")
    except ValueError:
        rate = float("nan")
    if not 0 < rate <= MAX_RATE:
        raise bad(f"the fourth field must be rate=<calls per second, > 0 and <= {MAX_RATE:g}>")
    return rate


def load_tokens(path: str) -> TokenTable:
    """Read and parse the tokens file at ``path``."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise TokensFileError(f"cannot read the tokens file {path}: {error}") from None
    return parse_tokens(text, path)


def bearer_token(metadata: Iterable[tuple[str, Any]]) -> str | None:
    """The token of the call's ``authorization: Bearer <token>`` metadata, if any."""
    for key, value in metadata:
        if key == "authorization" and isinstance(value, str):
            scheme, _, token = value.partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
    return None


class Authenticator(UnaryInterceptor):
    """Admits the calls of ``service_prefix``'s methods whose token carries the method's scope."""

    wraps_request_streams = True

    def __init__(
        self,
        service_prefix: str,
        table: TokenTable,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._prefix = service_prefix
        self.table = table
        """Replaced whole on reload (``reload``); each call reads it once."""
        self._unauthenticated = rpc_status.to_status(to_status(Unauthenticated()))
        self._clock = clock
        self._quiet_until = float("-inf")
        self._unlogged = 0
        self._buckets: dict[str, TokenBucket] = {}
        """Per caller with a ``rate=``, made on its first call."""

    def applies_to(self, method: str) -> bool:
        return method.startswith(self._prefix)

    def reload(self, path: str) -> None:
        """Read the tokens file again; on any error keep the current table and log why."""
        try:
            table = load_tokens(path)
        except TokensFileError as error:
            log.error("tokens file not reloaded, the previous callers stay in force: %s", error)
            return
        self.table = table
        log.info(
            "tokens file reloaded: %d callers (%s)",
            len(table.callers),
            ", ".join(c.name for c in table.callers),
        )

    def _admit(self, method: str, scope: str, refusal: Any, context: Context) -> Any:
        """None when the call may run, else the status to abort it with."""
        token = bearer_token(context.invocation_metadata() or ())
        caller = None if token is None else self.table.identify(token)
        if caller is None:
            CALLER.set(UNAUTHENTICATED)
            self._note(method, UNAUTHENTICATED, context)
            return self._unauthenticated
        CALLER.set(caller.name)
        if not caller.may(scope):
            self._note(method, caller.name, context)
            return refusal
        if caller.rate is None:
            return None
        wait = self._bucket(caller).try_take()
        if wait == 0:
            return None
        self._note(method, caller.name, context)
        return rpc_status.to_status(to_status(RateLimited(caller.name, caller.rate, wait)))

    def _bucket(self, caller: Caller) -> TokenBucket:
        bucket = self._buckets.get(caller.name)
        if bucket is None or bucket.rate != caller.rate:
            assert caller.rate is not None
            burst = max(1, math.ceil(caller.rate))
            bucket = self._buckets[caller.name] = TokenBucket(caller.rate, burst, clock=self._clock)
        return bucket

    def wrap(self, method: str, inner: Unary) -> Unary:
        scope, refusal = self._scope_of(method)

        async def authorized(request: Any, context: Context) -> Any:
            denied = self._admit(method, scope, refusal, context)
            if denied is not None:
                await abort_with(context, denied)
            return await inner(request, context)

        return authorized

    def _scope_of(self, method: str) -> tuple[str, Any]:
        name = method.rsplit("/", 1)[-1]
        scope = SCOPES.get(name, UNASSIGNED)
        return scope, rpc_status.to_status(to_status(PermissionDenied(name, scope)))

    def _note(self, method: str, caller: str, context: Context) -> None:
        """One line now, then none for ``LOG_INTERVAL`` seconds (the next says how many)."""
        now = self._clock()
        if now < self._quiet_until:
            self._unlogged += 1
            return
        log.warning(
            "refused a call to %s from %s (caller %s)%s",
            method,
            context.peer(),
            caller,
            f"; {self._unlogged} more refusals since the last such line" if self._unlogged else "",
        )
        self._quiet_until, self._unlogged = now + LOG_INTERVAL, 0
