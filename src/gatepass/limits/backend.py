"""The interface both counter stores implement, and the reservation scheme they share.

Admission (one atomic step per request, across every scope of the plan):
  1. Drop the scope's expired reservations (a replica that died mid-request leaks nothing
     for longer than the lease).
  2. Refuse when `max_concurrent` reservations are live, when `rpm` requests were admitted
     this minute, or when a token/USD counter (`tpm` this minute, the budget this period) has
     reached its limit. A spent budget is a billing refusal; the rest are throttling.
  3. Refuse (throttling, retry in 1 s) when the counter plus the live reservations plus this
     request's estimate would pass the limit and some reservation is live: the room left is
     promised to requests in flight. With no reservation live, a request is admitted as long
     as the counter is under the limit, so the last request may overrun (and is charged),
     but concurrent requests can never overrun together.
  4. Otherwise record a reservation (estimated tokens and nano-USD, the window and minute it
     belongs to) in every scope and count the request in each scope's minute.
Settlement removes the reservation and adds what the upstream reported to the counters of
the window and minute the request was admitted in. N concurrent requests against a limit of
K therefore admit exactly K whenever each request's estimate is what it then uses, and never
let reservations of concurrent requests add up past a limit.

Budget counters that a backend does not hold yet (a new window, a restarted process, a Redis
that lost its data) are reported as `unseeded`; the limiter reads the window's spend from the
request log once and hands it to `seed`, which adds it (once) to whatever is there.
"""

from __future__ import annotations

import math
from typing import Protocol

from gatepass.limits.plan import Decision, Plan, Used


class BackendUnavailable(Exception):
    """The counter store could not be reached or answered nonsense."""


class Backend(Protocol):
    async def admit(self, plan: Plan) -> Decision:
        """Check every limit of every scope and, if all pass, reserve; one atomic step."""
        ...

    async def settle(self, plan: Plan, tokens: int, nano: int, *, first: bool = True) -> None:
        """Release the reservation and charge actual usage.

        A retry (`first=False`) charges only if the reservation is still there, so a
        settlement whose reply was lost is never charged twice.
        """
        ...

    async def seed(self, plan: Plan, scope: int, used: Used) -> None:
        """Add `used` to the scope's budget window unless it was seeded already."""
        ...

    async def peek(self, plan: Plan) -> Decision:
        """Committed spend per scope (no checks, no reservation); `unseeded` as in `admit`."""
        ...

    async def close(self) -> None: ...


def seconds_until(moment: float, now: float) -> int:
    """Whole seconds from `now` until `moment`, at least 1 (a `retry-after` value)."""
    return max(1, math.ceil(moment - now))
